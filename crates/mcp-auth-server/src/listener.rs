//! The accept loop: every connection the server takes is bounded in number, in how long it may
//! take to send a request head, and in how many HTTP/2 streams it may open.
//!
//! `axum::serve` runs hyper without a timer, so it has no header-read timeout, no connection
//! cap and leaves Nagle's algorithm on. A half-sent request then holds its connection for ever,
//! and a small SSE response on a kept-alive connection waits ~40 ms for the peer's delayed ACK
//! (Nagle meeting delayed ACKs), which every MCP client that keeps its connection open pays on
//! every call. This loop drives hyper directly with those bounds.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::limits::ConnectionLimits;

/// How long accepting pauses after an error such as "too many open files", so that a
/// descriptor shortage does not turn the loop into a busy spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// How long graceful shutdown waits for requests in flight before dropping them.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and waits (at
/// most [`SHUTDOWN_GRACE`]) for the connections' requests in flight.
///
/// Each accepted socket gets `TCP_NODELAY`, and each request the peer's address as
/// [`ConnectInfo<SocketAddr>`], which the rate limits read.
///
/// `app` is cloned for every request (hyper calls a service through `&self`), so it should be
/// cheap to clone: a router and layers holding `Arc`s, not boxes.
pub(crate) async fn serve_connections<S>(
    listener: TcpListener,
    app: S,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = connection_builder(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Wait for a free slot before accepting: at the cap, new connections wait in the
        // kernel's backlog rather than costing us a task and buffers.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(AddConnectInfo {
            app: app.clone(),
            peer,
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = watched.await {
                // Peers hang up and time out all the time; this is not the server's failure.
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("graceful shutdown timed out; dropping the remaining connections");
        }
    }
}

/// hyper's connection settings from `limits`: HTTP/1.1 and HTTP/2 (prior knowledge, as a proxy
/// in front speaks it), header-read timeout and header limits on both, HTTP/2 stream limits.
fn connection_builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(limits.http2_max_pending_reset_streams)
        .max_local_error_reset_streams(limits.http2_max_pending_reset_streams)
        .keep_alive_interval(Some(limits.header_read_timeout))
        .keep_alive_timeout(limits.header_read_timeout);
    builder
}

/// The application, with the peer's address put in each request's extensions.
#[derive(Clone)]
struct AddConnectInfo<S> {
    app: S,
    peer: SocketAddr,
}

impl<S> tower::Service<Request<Incoming>> for AddConnectInfo<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.app.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.app.call(request.map(Body::new))
    }
}
