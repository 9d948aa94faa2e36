//! Answering a request before reading its body without losing the connection.
//!
//! hyper cannot find the next request behind an unread body, so a response sent before the
//! body was read ends the connection; the client then pays a new TCP handshake (and TLS, in
//! production) for its next request. Every MCP client's first request is refused with a 401,
//! so this cost is on every client's path. A request that has no body loses nothing, and a
//! small declared body is cheaper to read and discard than a reconnection; anything larger, or
//! of unknown length, still closes, so that an unauthenticated caller cannot make the server
//! read an upload.

use std::pin::Pin;

use axum::response::Response;
use http::HeaderValue;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};

use crate::limits::{DRAIN_TIMEOUT, MAX_DRAINED_BODY};

/// What to do with the unread body of a request answered early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnreadBody {
    /// None to read (no body, or HTTP/2, where hyper resets the stream only).
    None,
    /// Small and of declared length: read it, then keep the connection.
    Drain,
    /// Too large or of unknown length: close the connection.
    Close,
}

/// Classifies the body of a request with `headers` and `version`.
pub(crate) fn unread_body(headers: &http::HeaderMap, version: http::Version) -> UnreadBody {
    if version >= http::Version::HTTP_2 {
        return UnreadBody::None;
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        return UnreadBody::Close;
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let length = match (lengths.next(), lengths.next()) {
        // RFC 9112 §6.3: without Content-Length or Transfer-Encoding a request has no body.
        (None, _) => return UnreadBody::None,
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok()),
        (Some(_), Some(_)) => None,
    };
    match length {
        Some(0) => UnreadBody::None,
        Some(n) if n <= MAX_DRAINED_BODY => UnreadBody::Drain,
        _ => UnreadBody::Close,
    }
}

/// Marks a response sent before the request body was read `Connection: close` (HTTP/1.x), so
/// that a keep-alive client opens a new connection rather than sending its next request into
/// one hyper is about to close (and failing with "server disconnected").
pub(crate) fn close_unread(mut response: Response, version: http::Version) -> Response {
    if version <= http::Version::HTTP_11 {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads and discards `body` (at most [`MAX_DRAINED_BODY`] bytes within [`DRAIN_TIMEOUT`]),
/// then answers `response` on the kept connection; closes it if the body misbehaves.
pub(crate) async fn answer_after_draining<B>(
    response: Response,
    body: B,
    version: http::Version,
) -> Response
where
    B: http_body::Body + Send + 'static,
{
    let mut body: Pin<Box<B>> = Box::pin(body);
    let read = async {
        let mut seen: u64 = 0;
        while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen += bytes::Buf::remaining(data) as u64;
                if seen > MAX_DRAINED_BODY {
                    return false;
                }
            }
        }
        true
    };
    match tokio::time::timeout(DRAIN_TIMEOUT, read).await {
        Ok(true) => response,
        _ => close_unread(response, version),
    }
}

/// Answers `response` to `request` without having read its body: directly when there is none,
/// after draining a small one, else closing the connection.
pub(crate) async fn answer_unread<B>(response: Response, request: http::Request<B>) -> Response
where
    B: http_body::Body + Send + 'static,
{
    let version = request.version();
    match unread_body(request.headers(), version) {
        UnreadBody::None => response,
        UnreadBody::Drain => answer_after_draining(response, request.into_body(), version).await,
        UnreadBody::Close => close_unread(response, version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[test]
    fn only_small_declared_bodies_are_drained() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = http::HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, HeaderValue::from_static(value));
            }
            map
        };
        let v11 = http::Version::HTTP_11;
        for (pairs, expected) in [
            (&[][..], UnreadBody::None),
            (&[("content-length", "0")][..], UnreadBody::None),
            (&[("content-length", "300")][..], UnreadBody::Drain),
            (&[("content-length", "4096")][..], UnreadBody::Drain),
            (&[("content-length", "4097")][..], UnreadBody::Close),
            (&[("transfer-encoding", "chunked")][..], UnreadBody::Close),
            (
                &[("content-length", "3"), ("content-length", "3")][..],
                UnreadBody::Close,
            ),
            (&[("content-length", "x")][..], UnreadBody::Close),
        ] {
            assert_eq!(unread_body(&headers(pairs), v11), expected, "{pairs:?}");
        }
        assert_eq!(
            unread_body(
                &headers(&[("content-length", "99999")]),
                http::Version::HTTP_2
            ),
            UnreadBody::None
        );
    }

    #[tokio::test]
    async fn a_drained_body_keeps_the_connection_and_an_oversized_one_closes_it() {
        let response = || Response::new(Body::empty());
        let kept = answer_after_draining(
            response(),
            Body::from("x".repeat(100)),
            http::Version::HTTP_11,
        )
        .await;
        assert!(kept.headers().get(CONNECTION).is_none());
        let closed = answer_after_draining(
            response(),
            Body::from("x".repeat(5000)),
            http::Version::HTTP_11,
        )
        .await;
        assert_eq!(closed.headers()[CONNECTION], "close");
    }
}
