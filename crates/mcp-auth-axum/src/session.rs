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
use crate::limits::DEFAULT_SESSIONS_PER_PRINCIPAL;

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
///
/// Each principal holds at most `max_per_principal` sessions (default
/// [`DEFAULT_SESSIONS_PER_PRINCIPAL`](crate::limits::DEFAULT_SESSIONS_PER_PRINCIPAL)): opening one more closes that principal's oldest, by
/// sending the MCP service a `DELETE` for it, so one token cannot pin unbounded server state.
#[derive(Clone, Debug)]
pub struct SessionBindingLayer {
    sessions: Arc<Sessions>,
}

#[derive(Debug)]
struct Sessions {
    state: Mutex<Bindings>,
    idle_timeout: Duration,
    max_sessions: usize,
    max_per_principal: usize,
}

#[derive(Debug, Default)]
struct Bindings {
    owners: HashMap<String, (PrincipalComponents, Instant)>,
    /// Each principal's sessions, oldest first.
    by_principal: HashMap<PrincipalComponents, std::collections::VecDeque<String>>,
}

impl Bindings {
    fn remove(&mut self, session: &str) {
        if let Some((principal, _)) = self.owners.remove(session)
            && let Some(list) = self.by_principal.get_mut(&principal)
        {
            list.retain(|id| id != session);
            if list.is_empty() {
                self.by_principal.remove(&principal);
            }
        }
    }
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
                state: Mutex::new(Bindings::default()),
                idle_timeout,
                max_sessions: max_sessions.max(1),
                max_per_principal: DEFAULT_SESSIONS_PER_PRINCIPAL,
            }),
        }
    }

    /// At most `max` sessions per principal; opening one more closes its oldest.
    pub fn max_per_principal(self, max: usize) -> Self {
        Self {
            sessions: Arc::new(Sessions {
                state: Mutex::new(Bindings::default()),
                idle_timeout: self.sessions.idle_timeout,
                max_sessions: self.sessions.max_sessions,
                max_per_principal: max.max(1),
            }),
        }
    }
}

impl Sessions {
    /// Whether `principal` may use `session`, refreshing its idle timer when it may.
    fn admit(&self, session: &str, principal: &PrincipalComponents) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match state.owners.get_mut(session) {
            Some((owner, last_used))
                if owner == principal && now.duration_since(*last_used) < self.idle_timeout =>
            {
                *last_used = now;
                true
            }
            _ => false,
        }
    }

    /// Binds `session` to `principal`; returns the sessions that had to go to make room (the
    /// principal's oldest beyond its share), which the caller closes.
    fn bind(&self, session: String, principal: PrincipalComponents) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if state.owners.len() >= self.max_sessions {
            let idle: Vec<String> = state
                .owners
                .iter()
                .filter(|(_, (_, last_used))| now.duration_since(*last_used) >= self.idle_timeout)
                .map(|(id, _)| id.clone())
                .collect();
            for id in idle {
                state.remove(&id);
            }
        }
        if state.owners.len() >= self.max_sessions {
            let oldest = state
                .owners
                .iter()
                .min_by_key(|(_, (_, last_used))| *last_used)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                state.remove(&oldest);
            }
        }
        let mut evicted = Vec::new();
        let list = state.by_principal.entry(principal.clone()).or_default();
        while list.len() >= self.max_per_principal {
            match list.pop_front() {
                Some(oldest) => evicted.push(oldest),
                None => break,
            }
        }
        list.push_back(session.clone());
        for id in &evicted {
            state.owners.remove(id);
        }
        state.owners.insert(session, (principal, now));
        evicted
    }

    fn forget(&self, session: &str) {
        self.state
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

/// Asks the MCP service to end `session` (a `DELETE` carrying its id), as its client would,
/// authenticated as its owner (`owner`), so that a service that needs the verified token,
/// such as a gateway forwarding the DELETE upstream, accepts it.
async fn close_session<S, ReqBody, ResBody>(
    inner: &mut S,
    uri: &http::Uri,
    host: Option<&http::HeaderValue>,
    owner: &Authenticated,
    session: &str,
) where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ReqBody: Default,
{
    let mut request = http::Request::new(ReqBody::default());
    *request.method_mut() = Method::DELETE;
    *request.uri_mut() = uri.clone();
    if let Some(host) = host {
        request
            .headers_mut()
            .insert(http::header::HOST, host.clone());
    }
    let Ok(id) = http::HeaderValue::from_str(session) else {
        return;
    };
    request.headers_mut().insert(MCP_SESSION_ID, id);
    request.extensions_mut().insert(owner.clone());
    if std::future::poll_fn(|cx| inner.poll_ready(cx))
        .await
        .is_ok()
    {
        match inner.call(request).await {
            Ok(response) => tracing::debug!(
                status = %response.status(),
                "closed a principal's oldest MCP session"
            ),
            Err(_) => tracing::warn!("could not close a principal's oldest MCP session"),
        }
    }
}

fn session_not_found() -> Response {
    (StatusCode::NOT_FOUND, "Session not found").into_response()
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for SessionBinding<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Default + Send + 'static,
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
            let Some(owner) = request.extensions().get::<Authenticated>() else {
                tracing::error!("SessionBindingLayer runs without RequireBearerLayer around it");
                return Ok(close_unread(
                    StatusCode::UNAUTHORIZED.into_response(),
                    request.version(),
                ));
            };
            let principal = owner.principal();
            let owner = owner.clone();
            let mut named = request.headers().get_all(MCP_SESSION_ID).iter();
            let session = match (named.next(), named.next()) {
                (None, _) => None,
                (Some(value), None) => match value.to_str() {
                    Ok(id) => Some(id.to_owned()),
                    // A session id that cannot be read cannot be checked: unknown, like any.
                    Err(_) => return Ok(close_unread(session_not_found(), request.version())),
                },
                // Two session ids: which one the service reads is not this layer's to guess.
                (Some(_), Some(_)) => {
                    return Ok(close_unread(session_not_found(), request.version()));
                }
            };
            if let Some(session) = &session
                && !sessions.admit(session, &principal)
            {
                return Ok(close_unread(session_not_found(), request.version()));
            }
            let deleting = request.method() == Method::DELETE;
            // Kept to address a DELETE of an evicted session as this request was addressed
            // (the MCP transport checks `Host` against DNS rebinding).
            let host = request.headers().get(http::header::HOST).cloned();
            let uri = request.uri().clone();
            let response = inner.call(request).await?;
            // Any session the service names that is not the one admitted is new, and this
            // principal's (whatever the request carried), so it is bound and counted.
            let created = response
                .headers()
                .get(MCP_SESSION_ID)
                .and_then(|v| v.to_str().ok())
                .filter(|created| session.as_deref() != Some(*created))
                .map(str::to_owned);
            if let Some(created) = created {
                for evicted in sessions.bind(created, principal) {
                    close_session(&mut inner, &uri, host.as_ref(), &owner, &evicted).await;
                }
            }
            if let Some(session) = &session
                && deleting
                && response.status().is_success()
            {
                sessions.forget(session);
            }
            Ok(response.map(Body::new))
        })
    }
}
