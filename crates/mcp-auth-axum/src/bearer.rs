//! [`RequireBearerLayer`]: a tower layer that lets through only requests with a valid bearer
//! token, and the [`Authenticated`] extractor that reads the verified token.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use mcp_auth_core::TokenVerifier;
use mcp_auth_handlers::bearer::BearerAuth;
use mcp_auth_handlers::scope::{McpOperationScopes, ScopeImplication};
use mcp_auth_types::{AccessToken, PrincipalComponents, principal_components};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

pub(crate) use crate::drain::close_unread;
use crate::drain::{UnreadBody, answer_unread, unread_body};
use crate::operation::McpScopesLayer;

/// The token verifier type the layer uses, so that any verifier fits one layer type.
pub type DynTokenVerifier = Arc<dyn TokenVerifier>;

/// Requires a valid bearer token (RFC 6750) on every request it wraps.
///
/// On success the verified token goes into the request extensions as [`Authenticated`]; on
/// failure the request is answered with the RFC 6750 / RFC 9728 challenge the handlers render
/// (401 without or with a bad token, 403 for missing scopes, 503 when the verifier is down) and
/// never reaches the inner service.
///
/// With axum, protect routes with `Router::route_layer`, not `layer`: `route_layer` runs only
/// for matched routes, so an unknown path stays a 404 instead of becoming a 401.
///
/// The `Authorization` header is marked sensitive so that tracing layers never print it.
#[derive(Clone)]
pub struct RequireBearerLayer {
    auth: Arc<BearerAuth<DynTokenVerifier>>,
}

impl std::fmt::Debug for RequireBearerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireBearerLayer")
            .field("audience", &self.auth.audience())
            .field("scopes", &self.auth.scopes())
            .finish_non_exhaustive()
    }
}

impl RequireBearerLayer {
    /// A layer around an already configured [`BearerAuth`].
    pub fn new(auth: BearerAuth<DynTokenVerifier>) -> Self {
        Self {
            auth: Arc::new(auth),
        }
    }

    /// The same layer requiring `scopes` instead of the configured ones (all of them; a 403
    /// names the full set so a client can step up in one round).
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(&self, scopes: I) -> Self {
        Self::new(self.auth.as_ref().clone().required_scopes(scopes))
    }

    /// The same layer judging scope sufficiency by `implication` (default: identity plus the
    /// `a` ⇒ `a:b` hierarchy rule).
    #[must_use]
    pub fn scope_implication(&self, implication: ScopeImplication) -> Self {
        Self::new(self.auth.as_ref().clone().scope_implication(implication))
    }

    /// A companion layer requiring `scopes` per MCP method and tool on top of this layer's;
    /// put it inside this one. See [`McpScopesLayer`].
    pub fn operation_scopes(&self, scopes: McpOperationScopes) -> McpScopesLayer {
        McpScopesLayer::new(self, scopes)
    }

    pub(crate) fn auth(&self) -> Arc<BearerAuth<DynTokenVerifier>> {
        Arc::clone(&self.auth)
    }
}

impl<S> Layer<S> for RequireBearerLayer {
    type Service = RequireBearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireBearer {
            inner,
            auth: Arc::clone(&self.auth),
        }
    }
}

/// The service [`RequireBearerLayer`] produces.
#[derive(Clone)]
pub struct RequireBearer<S> {
    inner: S,
    auth: Arc<BearerAuth<DynTokenVerifier>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for RequireBearer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireBearer")
            .field("inner", &self.inner)
            .field("audience", &self.auth.audience())
            .finish_non_exhaustive()
    }
}

pub(crate) type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RequireBearer<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: http_body::Body + Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequireBearerFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        if let Some(value) = request.headers_mut().get_mut(AUTHORIZATION) {
            value.set_sensitive(true);
        }
        // The common case: the verifier holds the token in memory (or the header alone decides).
        // The request is then answered without a future of the layer's own: the inner service,
        // ready since `poll_ready`, is called at once.
        match self.auth.authenticate_now(request.headers()) {
            Some(Ok(token)) => {
                request.extensions_mut().insert(Authenticated(token));
                return RequireBearerFuture::inner(self.inner.call(request));
            }
            Some(Err(rejection)) => {
                let response = rejection.into_response().map(Body::from);
                return match unread_body(request.headers(), request.version()) {
                    UnreadBody::None => RequireBearerFuture::rejected(response),
                    UnreadBody::Close => {
                        RequireBearerFuture::rejected(close_unread(response, request.version()))
                    }
                    // A small body is read before answering, to keep the connection: a future
                    // of its own, on the rejection path only.
                    UnreadBody::Drain => RequireBearerFuture::waiting(Box::pin(async move {
                        Ok(answer_unread(response, request).await)
                    })),
                };
            }
            None => {}
        }
        // The verifier must wait (a database, the network): authenticate and call in one future.
        // The clone that was made ready is the one that must be called (tower's contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = Arc::clone(&self.auth);
        RequireBearerFuture::waiting(Box::pin(async move {
            match auth.authenticate(request.headers()).await {
                Ok(token) => {
                    request.extensions_mut().insert(Authenticated(token));
                    let response = inner.call(request).await?;
                    Ok(response.map(Body::new))
                }
                Err(rejection) => {
                    let response = rejection.into_response().map(Body::from);
                    Ok(answer_unread(response, request).await)
                }
            }
        }))
    }
}

pin_project! {
    /// The response future of [`RequireBearer`].
    ///
    /// A named type rather than a boxed future: a request whose token the verifier answers
    /// without waiting costs no allocation of the layer's own.
    pub struct RequireBearerFuture<F, E> {
        #[pin]
        state: State<F, E>,
    }
}

pin_project! {
    #[project = StateProjection]
    enum State<F, E> {
        // Authenticated without waiting: the inner service is answering.
        Inner { #[pin] future: F },
        // Refused without waiting; `None` once the response is handed out.
        Rejected { response: Option<Response> },
        // The verifier had to wait: authentication and the inner call, boxed.
        Waiting { future: BoxFuture<Result<Response, E>> },
    }
}

impl<F, E> RequireBearerFuture<F, E> {
    fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    fn rejected(response: Response) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    fn waiting(future: BoxFuture<Result<Response, E>>) -> Self {
        Self {
            state: State::Waiting { future },
        }
    }
}

impl<F, E> std::fmt::Debug for RequireBearerFuture<F, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireBearerFuture")
            .finish_non_exhaustive()
    }
}

impl<F, E, ResBody> Future for RequireBearerFuture<F, E>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProjection::Inner { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(Body::new))),
            StateProjection::Rejected { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled after completion: a contract violation by the caller; stay pending
                // rather than panic on a request path.
                None => Poll::Pending,
            },
            StateProjection::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

/// The verified token of the request, put there by [`RequireBearerLayer`].
///
/// Used on a route without the layer it rejects with `401` and a bare `Bearer` challenge (and
/// logs the misconfiguration): it never lets an unauthenticated request through, and never
/// turns into the 500 of a missing extension. `Option<Authenticated>` gives `None` instead.
#[derive(Clone, Debug)]
pub struct Authenticated(pub AccessToken);

impl Authenticated {
    /// The verified token.
    pub fn token(&self) -> &AccessToken {
        &self.0
    }

    /// Who the token's principal is: (client_id, issuer, subject).
    pub fn principal(&self) -> PrincipalComponents {
        principal_components(&self.0)
    }
}

/// The rejection of [`Authenticated`] on a route the bearer layer does not cover.
#[derive(Debug, Clone, Copy)]
pub struct MissingAuthentication;

impl IntoResponse for MissingAuthentication {
    fn into_response(self) -> Response {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = MissingAuthentication;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Authenticated>() {
            Some(authenticated) => Ok(authenticated.clone()),
            None => {
                tracing::error!(
                    path = %parts.uri.path(),
                    "Authenticated extracted on a route without RequireBearerLayer"
                );
                Err(MissingAuthentication)
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Authenticated>().cloned())
    }
}
