//! [`SessionBindingLayer`]: binds each MCP session to the principal that created it.
//!
//! An MCP streamable-HTTP session id is a bearer capability of its own: whoever presents it
//! talks to that session. Binding it to the creating principal
//! ([`principal_components`](mcp_auth_types::principal_components): client, issuer, subject)
//! means a leaked session id is useless with another user's or client's token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use mcp_auth_types::PrincipalComponents;
use tower::{Layer, Service};

use crate::bearer::{Authenticated, close_unread};

/// The header carrying the MCP session id (MCP transports, "Session Management").
pub const MCP_SESSION_ID: &str = "mcp-session-id";

/// Binds MCP sessions to their creators. Place it inside [`RequireBearerLayer`](crate::RequireBearerLayer)
/// (so it sees [`Authenticated`]) and around the MCP service.
///
/// A request naming a session that another principal created — or a session this layer never
/// saw created — is answered `404 Not Found`, exactly as the MCP transport answers an unknown
/// session, so a probe learns nothing. Bindings are dropped when the session is deleted or has
/// been idle for `idle_timeout` (default 24 hours); a dropped binding makes the session
/// unusable through this layer, never usable by someone else.
#[derive(Clone, Debug)]
pub struct SessionBindingLayer {
    sessions: Arc<Sessions>,
}

#[derive(Debug)]
struct Sessions {
    owners: Mutex<HashMap<String, (PrincipalComponents, Instant)>>,
    idle_timeout: Duration,
    max_sessions: usize,
}

impl Default for SessionBindingLayer {
    fn default() -> Self {
        Self::new(Duration::from_secs(24 * 3600), 100_000)
    }
}

impl SessionBindingLayer {
    /// A layer forgetting sessions idle for `idle_timeout`, holding at most `max_sessions`
    /// bindings (the least recently used is dropped first when full).
    pub fn new(idle_timeout: Duration, max_sessions: usize) -> Self {
        Self {
            sessions: Arc::new(Sessions {
                owners: Mutex::new(HashMap::new()),
                idle_timeout,
                max_sessions: max_sessions.max(1),
            }),
        }
    }
}

impl Sessions {
    /// Whether `principal` may use `session`, refreshing its idle timer when it may.
    fn admit(&self, session: &str, principal: &PrincipalComponents) -> bool {
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match owners.get_mut(session) {
            Some((owner, last_used))
                if owner == principal && now.duration_since(*last_used) < self.idle_timeout =>
            {
                *last_used = now;
                true
            }
            _ => false,
        }
    }

    fn bind(&self, session: String, principal: PrincipalComponents) {
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if owners.len() >= self.max_sessions {
            owners.retain(|_, (_, last_used)| now.duration_since(*last_used) < self.idle_timeout);
        }
        if owners.len() >= self.max_sessions {
            let oldest = owners
                .iter()
                .min_by_key(|(_, (_, last_used))| *last_used)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                owners.remove(&oldest);
            }
        }
        owners.insert(session, (principal, now));
    }

    fn forget(&self, session: &str) {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session);
    }
}

impl<S> Layer<S> for SessionBindingLayer {
    type Service = SessionBinding<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionBinding {
            inner,
            sessions: Arc::clone(&self.sessions),
        }
    }
}

/// The service [`SessionBindingLayer`] produces.
#[derive(Clone, Debug)]
pub struct SessionBinding<S> {
    inner: S,
    sessions: Arc<Sessions>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

fn session_not_found() -> Response {
    (StatusCode::NOT_FOUND, "Session not found").into_response()
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for SessionBinding<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let sessions = Arc::clone(&self.sessions);
        Box::pin(async move {
            let Some(principal) = request
                .extensions()
                .get::<Authenticated>()
                .map(Authenticated::principal)
            else {
                tracing::error!("SessionBindingLayer runs without RequireBearerLayer around it");
                return Ok(close_unread(
                    StatusCode::UNAUTHORIZED.into_response(),
                    request.version(),
                ));
            };
            let session = request
                .headers()
                .get(MCP_SESSION_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(session) = &session
                && !sessions.admit(session, &principal)
            {
                return Ok(close_unread(session_not_found(), request.version()));
            }
            let deleting = request.method() == Method::DELETE;
            let response = inner.call(request).await?;
            match &session {
                None => {
                    if let Some(created) = response
                        .headers()
                        .get(MCP_SESSION_ID)
                        .and_then(|v| v.to_str().ok())
                    {
                        sessions.bind(created.to_owned(), principal);
                    }
                }
                Some(session) if deleting && response.status().is_success() => {
                    sessions.forget(session);
                }
                Some(_) => {}
            }
            Ok(response.map(Body::new))
        })
    }
}
