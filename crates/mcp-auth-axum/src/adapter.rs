//! Calling a transport-neutral handler from axum: buffer the body up to the limit, hand over
//! `http::Request<Bytes>`, and turn the `http::Response<Bytes>` back into an axum response.

use std::future::Future;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use mcp_auth_handlers::response::payload_too_large;

/// Buffers `request`'s body (at most `limit` bytes) and runs `handler` on it. A larger body is
/// answered with 413 and an OAuth error body before the handler sees anything.
pub(crate) async fn call<F, Fut>(request: Request, limit: usize, handler: F) -> Response
where
    F: FnOnce(http::Request<Bytes>) -> Fut,
    Fut: Future<Output = http::Response<Bytes>>,
{
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        // `to_bytes` fails on the limit or on a broken connection; either way the request is
        // unusable, and 413 is right for the only case a client can cause on purpose.
        Err(_) => return payload_too_large(limit).map(Body::from),
    };
    handler(http::Request::from_parts(parts, bytes))
        .await
        .map(Body::from)
}
