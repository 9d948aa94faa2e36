use std::convert::Infallible;

use axum::body::to_bytes;
use tokio::sync::mpsc;
use tower::{Layer as _, Service as _, ServiceExt as _};

use super::*;

/// An event stream fed by the test through the returned sender; dropping it ends the body.
fn event_stream() -> (mpsc::UnboundedSender<&'static str>, Response<Body>) {
    let (events, receiver) = mpsc::unbounded_channel::<&'static str>();
    let response = Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::new(Events(receiver)))
        .unwrap();
    (events, response)
}

/// A body of the events sent on a channel, each a data frame.
struct Events(mpsc::UnboundedReceiver<&'static str>);

impl HttpBody for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|event| event.map(|text| Ok(Frame::data(Bytes::from_static(text.as_bytes())))))
    }
}

/// The frames a response's body yields, as text, each separately.
async fn frames(response: Response<Body>) -> Vec<String> {
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push(String::from_utf8(data.to_vec()).unwrap());
        }
    }
    frames
}

#[tokio::test(start_paused = true)]
async fn a_quick_answer_leaves_with_the_head_and_the_priming_event() {
    let (events, response) = event_stream();
    events.send("priming\n\n").unwrap();
    let held = tokio::spawn(hold_head(response, SSE_HEAD_HOLD));
    // The head waits for the answer: not released while only the priming event is there.
    tokio::time::sleep(SSE_HEAD_HOLD / 2).await;
    assert!(
        !held.is_finished(),
        "the head is held for the first awaited event"
    );
    events.send("answer\n\n").unwrap();
    drop(events);
    let response = held.await.unwrap();
    assert_eq!(frames(response).await, ["priming\n\n", "answer\n\n"]);
}

#[tokio::test(start_paused = true)]
async fn the_awaited_event_releases_the_head_at_once_and_later_events_follow_as_they_come() {
    let (events, response) = event_stream();
    events.send("priming\n\n").unwrap();
    let held = tokio::spawn(hold_head(response, SSE_HEAD_HOLD));
    tokio::task::yield_now().await;
    events.send("progress\n\n").unwrap();
    // Released without waiting out the hold, though the stream stays open.
    let started = tokio::time::Instant::now();
    let response = held.await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
    let reader = tokio::spawn(frames(response));
    events.send("answer\n\n").unwrap();
    drop(events);
    assert_eq!(
        reader.await.unwrap(),
        ["priming\n\n", "progress\n\n", "answer\n\n"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_gets_its_head_after_the_hold_and_its_event_when_ready() {
    let (events, response) = event_stream();
    events.send("priming\n\n").unwrap();
    let started = tokio::time::Instant::now();
    let response = hold_head(response, SSE_HEAD_HOLD).await;
    assert_eq!(started.elapsed(), SSE_HEAD_HOLD);
    let reader = tokio::spawn(frames(response));
    tokio::time::sleep(Duration::from_secs(60)).await;
    events.send("answer\n\n").unwrap();
    drop(events);
    assert_eq!(reader.await.unwrap(), ["priming\n\n", "answer\n\n"]);
}

#[tokio::test(start_paused = true)]
async fn a_large_first_event_is_not_gathered_past_the_byte_bound() {
    let (events, response) = event_stream();
    let big: &'static str = String::leak("x".repeat(SSE_HEAD_HOLD_BYTES));
    events.send(big).unwrap();
    events.send("next\n\n").unwrap();
    let started = tokio::time::Instant::now();
    let response = hold_head(response, SSE_HEAD_HOLD).await;
    assert_eq!(started.elapsed(), Duration::ZERO, "released at the bound");
    drop(events);
    let frames = frames(response).await;
    assert_eq!(frames.first().map(String::len), Some(SSE_HEAD_HOLD_BYTES));
    assert_eq!(frames[1..], ["next\n\n"]);
}

#[tokio::test]
async fn other_responses_pass_untouched_and_without_waiting() {
    let mut service = HoldSseHeadLayer.layer(tower::service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::new(never_ending()))
                .unwrap(),
        )
    }));
    // A JSON body that never ends would hold the response forever if it were read here.
    let response = service
        .ready()
        .await
        .unwrap()
        .call(Request::new(Body::empty()))
        .await
        .unwrap();
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let read = tokio::time::timeout(
        Duration::from_millis(50),
        to_bytes(response.into_body(), 1024),
    );
    assert!(read.await.is_err(), "the body was left to its reader");
}

/// A body that never yields.
fn never_ending() -> impl HttpBody<Data = Bytes, Error = Infallible> + Send + 'static {
    struct Pending;
    impl HttpBody for Pending {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Pending
        }
    }
    Pending
}

#[tokio::test(start_paused = true)]
async fn a_body_failing_while_held_has_no_length_and_ends_in_its_error() {
    struct Failing(u8);
    impl HttpBody for Failing {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.0 += 1;
            Poll::Ready(Some(match self.0 {
                1 => Ok(Frame::data(Bytes::from_static(b"priming\n\n"))),
                _ => Err(std::io::Error::other("upstream reset")),
            }))
        }
    }
    let response = Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::new(Failing(0)))
        .unwrap();
    let response = hold_head(response, SSE_HEAD_HOLD).await;
    let mut body = response.into_body();
    // An exact size would become a Content-Length that hides the failure.
    assert_eq!(body.size_hint().exact(), None);
    let first = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
    assert_eq!(first.unwrap().unwrap().into_data().unwrap(), "priming\n\n");
    let second = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
    assert!(second.unwrap().is_err(), "the failure reaches the client");
}
