//! The gateway's request body limit on a body that streams: chunked (`Transfer-Encoding:
//! chunked`, no `Content-Length`), so that nothing can be refused up front and the limit must
//! hold while the body is forwarded. Written by hand over a raw socket, because the test
//! client (reqwest without its `stream` feature) always sends a length.

use std::time::{Duration, Instant};

use mcp_auth_tests::server::{MCP_PROTOCOL_VERSION, TestServer};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

use super::upstream::{Seen, Upstream};
use super::{admin_token, gateway, initialize};

/// `mcp_auth_gateway::limits::DEFAULT_MAX_REQUEST_BODY`, which the server does not change.
const LIMIT: usize = 4 * 1024 * 1024;

/// The size of each chunk the test client writes.
const CHUNK: usize = 64 * 1024;

/// The longest the test waits for an answer, or for the upstream to see a request end.
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_with_413_and_never_arrives_whole() {
    let upstream = Upstream::start().await;
    let server = gateway(&upstream.url(), &[]).await;
    let token = admin_token(&server).await;
    let session = initialize(&server, &token).await;

    // Just under the limit, the chunked body streams through whole (past the scope layer's
    // 64 KiB window, so its re-attached prefix is part of what arrives).
    let before = upstream.seen().len();
    let fits = ping(LIMIT - CHUNK);
    let answer = post_chunked(&server, &token, &session, "", fits.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let seen = next_seen(&upstream, before).await;
    assert!(seen.complete, "a body under the limit was cut off");
    assert!(
        seen.body == fits,
        "the body arrived changed ({} bytes of {})",
        seen.body.len(),
        fits.len()
    );

    // Over it, the forwarded body is cut off at the limit and the client gets the gateway's
    // 413; the upstream sees a request whose body broke off.
    let before = upstream.seen().len();
    let answer = post_chunked(&server, &token, &session, "", ping(LIMIT + 16 * CHUNK)).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text
    );
    assert!(
        answer.text.contains(r#""error":"request_too_large""#),
        "{}",
        answer.text
    );
    let seen = next_seen(&upstream, before).await;
    assert!(!seen.complete, "an over-limit body arrived whole");
    assert!(
        seen.body.len() <= LIMIT,
        "{} bytes forwarded, over the {LIMIT}-byte limit",
        seen.body.len()
    );
}

#[tokio::test]
async fn an_upstream_that_answers_before_the_body_gets_no_more_than_the_limit() {
    let upstream = Upstream::start().await;
    let server = gateway(&upstream.url(), &[]).await;
    let token = admin_token(&server).await;
    let session = initialize(&server, &token).await;

    // The upstream answers 202 on the request's head and reads the body afterwards: the
    // answer is the upstream's, and the limit must still cut the body off.
    let before = upstream.seen().len();
    let query = "?answer=early";
    let answer = post_chunked(&server, &token, &session, query, ping(LIMIT + 16 * CHUNK)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    let seen = next_seen(&upstream, before).await;
    assert!(!seen.complete, "an over-limit body arrived whole");
    assert!(
        seen.body.len() <= LIMIT,
        "{} bytes forwarded, over the {LIMIT}-byte limit",
        seen.body.len()
    );
}

/// A JSON-RPC `ping` of exactly `size` bytes (padded in `params`).
fn ping(size: usize) -> Vec<u8> {
    let head = r#"{"jsonrpc":"2.0","id":3,"method":"ping","params":{"pad":""#;
    let tail = r#""}}"#;
    let mut body = head.as_bytes().to_vec();
    body.resize(size - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

/// The gateway's answer to a chunked POST.
struct Answer {
    status: StatusCode,
    /// The whole response, head and body, as text.
    text: String,
}

/// POSTs `body` to `/mcp{query}` in [`CHUNK`]-byte chunks, reading the answer while writing
/// (the gateway may answer, and stop reading, before the body ends). Returns once both are
/// done, each within [`WAIT`].
async fn post_chunked(
    server: &TestServer,
    token: &str,
    session: &str,
    query: &str,
    body: Vec<u8>,
) -> Answer {
    let authority = server.base.trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(&authority).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /mcp{query} HTTP/1.1\r\nhost: {authority}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         mcp-protocol-version: {MCP_PROTOCOL_VERSION}\r\nmcp-session-id: {session}\r\n\
         transfer-encoding: chunked\r\n\r\n"
    );
    // The write half is returned rather than dropped when the body is written: dropping it
    // would half-close the connection before the answer is in, which hyper may take for the
    // client going away.
    let writing = tokio::spawn(tokio::time::timeout(WAIT, async move {
        writer.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(CHUNK) {
            writer
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            writer.write_all(chunk).await?;
            writer.write_all(b"\r\n").await?;
        }
        writer.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(writer)
    }));
    let received = read_response(reader).await;
    // The body is written to its end (or until the gateway closes the connection) even when
    // the answer came first: cutting it short here would look like the gateway cutting it.
    let _writer = writing.await;
    let text = String::from_utf8_lossy(&received).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or_else(|| panic!("no HTTP/1.1 answer: {text:?}"));
    Answer { status, text }
}

/// Reads one response (at most 1 MiB, within [`WAIT`]): until its `Content-Length` is in, its
/// last chunk has come, or the connection ends.
async fn read_response(mut reader: OwnedReadHalf) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    while !response_complete(&received) && received.len() < 1024 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, reader.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
    received
}

fn response_complete(received: &[u8]) -> bool {
    let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
    let body = &received[end + 4..];
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    match length {
        Some(length) => body.len() >= length,
        None if head.contains("transfer-encoding: chunked") => body.ends_with(b"0\r\n\r\n"),
        None => false,
    }
}

/// The first request the upstream records after its `before`th (it records a request when its
/// body has ended or broken off, which may be after the gateway answered).
async fn next_seen(upstream: &Upstream, before: usize) -> Seen {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(seen) = upstream.seen().get(before) {
            return seen.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the upstream saw no request end within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
