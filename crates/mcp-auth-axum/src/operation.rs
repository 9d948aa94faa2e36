//! [`McpScopesLayer`]: per-operation scopes of an MCP endpoint, behind [`RequireBearerLayer`].
//!
//! The decision (which scopes an operation needs, whether the token has them, the challenge)
//! is made in `mcp_auth_handlers`; this module only reads the body and puts it back.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame, SizeHint};
use mcp_auth_handlers::bearer::BearerAuth;
use mcp_auth_handlers::scope::{DEFAULT_OPERATION_BODY_LIMIT, McpOperationScopes, OperationBody};
use tower::{Layer, Service};

use crate::bearer::{Authenticated, BoxFuture, DynTokenVerifier, RequireBearerLayer, close_unread};

/// Requires scopes per MCP method and per tool, on top of the bearer layer's base scopes.
///
/// Place it inside [`RequireBearerLayer`] (it reads the [`Authenticated`] token that layer
/// stores; a request without one is refused as unauthenticated). The operation is taken from
/// the `Mcp-Method`/`Mcp-Name` headers and from the JSON-RPC body, of which at most
/// [`body_limit`](Self::body_limit) bytes are read before the request goes on, with the body
/// re-attached in full; see [`McpOperationScopes`] for how headers, bodies, batches and
/// over-limit bodies are judged. The layer fails closed: a body it cannot judge — over the
/// limit, not JSON, not JSON-RPC, or repeating a member name — needs every scope configured
/// for any operation. A token that lacks a scope gets `403 insufficient_scope` with `scope`
/// naming the base scopes and the operation's, all of them.
#[derive(Clone)]
pub struct McpScopesLayer {
    auth: Arc<BearerAuth<DynTokenVerifier>>,
    scopes: Arc<McpOperationScopes>,
    body_limit: usize,
}

impl std::fmt::Debug for McpScopesLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpScopesLayer")
            .field("scopes", &self.scopes)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl McpScopesLayer {
    /// Per-operation `scopes`, judged and challenged like `bearer` (same base scopes, scope
    /// implication and `resource_metadata`).
    pub fn new(bearer: &RequireBearerLayer, scopes: McpOperationScopes) -> Self {
        Self {
            auth: bearer.auth(),
            scopes: Arc::new(scopes),
            body_limit: DEFAULT_OPERATION_BODY_LIMIT,
        }
    }

    /// Reads at most `limit` body bytes to find the operation (default 64 KiB).
    #[must_use]
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }
}

impl<S> Layer<S> for McpScopesLayer {
    type Service = McpScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        McpScopes {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`McpScopesLayer`] produces.
#[derive(Clone)]
pub struct McpScopes<S> {
    inner: S,
    layer: McpScopesLayer,
}

impl<S: std::fmt::Debug> std::fmt::Debug for McpScopes<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpScopes")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, ResBody> Service<http::Request<Body>> for McpScopes<S>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let version = request.version();
            let authenticated = request.extensions().get::<Authenticated>();
            if authenticated.is_some() && layer.scopes.is_empty() {
                // Nothing to judge: no copy of the token, no look at the body.
                return inner.call(request).await.map(|r| r.map(Body::new));
            }
            let Some(Authenticated(token)) = authenticated.cloned() else {
                tracing::error!("McpScopesLayer used without a RequireBearerLayer around it");
                let response = layer.auth.unauthenticated().into_response().map(Body::from);
                return Ok(close_unread(response, version));
            };
            let mut needed = layer.scopes.for_headers(request.headers());
            let (parts, body) = request.into_parts();
            let read = match read_prefix(body, layer.body_limit).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::debug!(%error, "request body failed while reading the operation");
                    let response = http::Response::builder()
                        .status(http::StatusCode::BAD_REQUEST)
                        .body(Body::empty())
                        .unwrap_or_default();
                    return Ok(close_unread(response, version));
                }
            };
            let judged = match &read {
                Read::Complete(bytes) if bytes.is_empty() => OperationBody::Empty,
                Read::Complete(bytes) => OperationBody::Complete(bytes),
                Read::TooLarge(..) => OperationBody::TooLarge,
            };
            for scope in layer.scopes.for_body(judged) {
                if !needed.contains(&scope) {
                    needed.push(scope);
                }
            }
            if let Err(rejection) = layer.auth.authorize(&token, &needed) {
                let response = rejection.into_response().map(Body::from);
                // The body was read (or is being abandoned mid-way): close when it was not read
                // to its end.
                return Ok(match read {
                    Read::Complete(_) => response,
                    Read::TooLarge(..) => close_unread(response, version),
                });
            }
            let body = match read {
                Read::Complete(bytes) => Body::from(bytes),
                Read::TooLarge(prefix, rest) => Body::new(Prefixed {
                    prefix: Some(prefix),
                    rest,
                }),
            };
            inner
                .call(http::Request::from_parts(parts, body))
                .await
                .map(|r| r.map(Body::new))
        })
    }
}

/// A body read up to a limit.
enum Read {
    /// All of it.
    Complete(Bytes),
    /// More than the limit: what was read, and the rest still unread.
    TooLarge(Bytes, Body),
}

/// Reads `body` until it ends or more than `limit` bytes have arrived. Trailers are dropped
/// (JSON-RPC over HTTP has none).
async fn read_prefix(mut body: Body, limit: usize) -> Result<Read, axum::Error> {
    let mut buffer = BytesMut::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return Ok(Read::Complete(buffer.freeze())),
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    buffer.extend_from_slice(&data);
                    if buffer.len() > limit {
                        return Ok(Read::TooLarge(buffer.freeze(), body));
                    }
                }
            }
        }
    }
}

/// The bytes already read, then the rest of the body.
struct Prefixed {
    prefix: Option<Bytes>,
    rest: Body,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let extra = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + extra);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

#[cfg(test)]
mod tests;
