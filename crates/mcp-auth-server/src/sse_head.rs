//! [`HoldSseHeadLayer`]: an event-stream response leaves in one write when its first event is
//! quick.
//!
//! An MCP call answered over SSE (rmcp, and most upstreams behind the gateway) produces its
//! response head and a priming event at once, and its answer a moment later, from another
//! task. hyper writes the head as soon as the body has nothing more to give, so each call cost
//! two `writev`s where a JSON answer costs one — and on loopback a write is most of a small
//! request's CPU (the kernel delivers it to the reader on the writer's time): `perf` put a
//! third of a `tools/call`'s samples in `writev`, counted two per call.
//!
//! This layer holds an event stream's head until its first awaited event has arrived (and
//! whatever is ready with it, such as the end of a request's stream), or [`SSE_HEAD_HOLD`] has
//! passed, or [`SSE_HEAD_HOLD_BYTES`] are held, and then releases head and events together
//! (hyper queues the ready chunks behind the head and writes them in one `writev`). No event
//! is delayed: the event that ends the hold leaves the moment it is ready, as it would have.
//! Only the head and the events produced with it (the priming event) wait, at most
//! [`SSE_HEAD_HOLD`], which no client can tell from the server taking that long to start; a
//! long-running tool's stream gets its head after the hold and its events as they come.
//! Any other response passes untouched.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http::{Request, Response, header};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::limits::{SSE_HEAD_HOLD, SSE_HEAD_HOLD_BYTES};

/// Holds an event-stream response's head until its first awaited event is ready (at most
/// [`SSE_HEAD_HOLD`], 5 ms, or [`SSE_HEAD_HOLD_BYTES`] held), so that head and event leave in
/// one write instead of two; any other response passes untouched. The server puts it around
/// `/mcp`; it is public for other servers of rmcp (the bench's floor among them), which pay
/// the same second write without it.
#[derive(Clone, Copy, Debug, Default)]
pub struct HoldSseHeadLayer;

impl<S> tower::Layer<S> for HoldSseHeadLayer {
    type Service = HoldSseHead<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HoldSseHead { inner }
    }
}

/// The service of [`HoldSseHeadLayer`]: answers of the inner service, event streams held.
#[derive(Clone, Debug)]
pub struct HoldSseHead<S> {
    inner: S,
}

impl<S, B, ResBody> tower::Service<Request<B>> for HoldSseHead<S>
where
    S: tower::Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?.map(Body::new);
            if !is_event_stream(&response) {
                return Ok(response);
            }
            Ok(hold_head(response, SSE_HEAD_HOLD).await)
        })
    }
}

fn is_event_stream(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("text/event-stream"))
}

/// Reads `response`'s body until the first awaited event and what is ready with it, its end,
/// `hold` or [`SSE_HEAD_HOLD_BYTES`], and returns the response with those events in front of
/// the rest of its body.
async fn hold_head(response: Response<Body>, hold: Duration) -> Response<Body> {
    let (parts, mut body) = response.into_parts();
    let mut held = Held::default();
    let deadline = tokio::time::sleep(hold);
    tokio::pin!(deadline);
    // Whether an event arrived after the body kept us waiting: the one the head waits for.
    let mut awaited = false;
    loop {
        if held.bytes >= SSE_HEAD_HOLD_BYTES {
            break;
        }
        let ready = Pin::new(&mut body).poll_frame(&mut Context::from_waker(Waker::noop()));
        let frame = match ready {
            Poll::Ready(frame) => frame,
            // Nothing more is ready: release with the awaited event, or wait for it.
            Poll::Pending if awaited => break,
            Poll::Pending => {
                tokio::select! {
                    frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)) => {
                        awaited = true;
                        frame
                    }
                    () = &mut deadline => break,
                }
            }
        };
        match frame {
            Some(Ok(frame)) => held.push(frame),
            Some(Err(error)) => {
                held.error = Some(error);
                held.ended = true;
                break;
            }
            None => {
                held.ended = true;
                break;
            }
        }
    }
    Response::from_parts(parts, Body::new(held.before(body)))
}

/// What was read while the head was held. Frames are kept as they came, never copied: hyper
/// queues the chunks a body has ready and writes them with the head in one `writev`.
#[derive(Default)]
struct Held {
    frames: VecDeque<Frame<Bytes>>,
    /// Data bytes among `frames`, against [`SSE_HEAD_HOLD_BYTES`].
    bytes: usize,
    error: Option<axum::Error>,
    /// The body ended (or failed) while held: nothing follows.
    ended: bool,
}

impl Held {
    fn push(&mut self, frame: Frame<Bytes>) {
        self.bytes += frame.data_ref().map_or(0, Bytes::len);
        self.frames.push_back(frame);
    }

    fn before(self, rest: Body) -> Prefixed {
        Prefixed {
            frames: self.frames,
            error: self.error,
            rest: (!self.ended).then_some(rest),
        }
    }
}

/// The held frames, then the held error if any, then the rest of the body.
struct Prefixed {
    frames: VecDeque<Frame<Bytes>>,
    error: Option<axum::Error>,
    rest: Option<Body>,
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(error) = self.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let held: u64 = self
            .frames
            .iter()
            .filter_map(|frame| frame.data_ref())
            .map(|data| data.len() as u64)
            .sum();
        let rest = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint);
        let mut hint = SizeHint::new();
        hint.set_lower(held + rest.lower());
        // A held error ends the body with a failure, which only a body of unknown length can
        // show: with an exact length hyper would send `Content-Length` and call the response
        // complete once the held bytes are out, never reaching the error.
        if self.error.is_none()
            && let Some(upper) = rest.upper()
        {
            hint.set_upper(held + upper);
        }
        hint
    }
}

#[cfg(test)]
mod tests;
