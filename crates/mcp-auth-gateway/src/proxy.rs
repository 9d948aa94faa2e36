//! [`UpstreamProxy`]: the tower service that forwards a verified MCP request upstream and
//! streams the answer back.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, HOST};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use mcp_auth_axum::{Authenticated, MissingAuthentication};
use mcp_auth_types::AccessToken;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::failure::Failure;
use crate::headers::{self, UpstreamHeader};
use crate::limits;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Why the proxy could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamConfigError {
    /// The upstream URL is not an absolute http(s) URL without credentials or fragment.
    #[error("{0}")]
    Url(String),
    /// A root certificate could not be read.
    #[error("root certificates: {0}")]
    Certificate(String),
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The principal's credential at another service, forwarded to the upstream in
/// [`UPSTREAM_TOKEN_HEADER`] (for example the user's access token at the company's identity
/// provider, when the server keeps it): never the client's own token.
#[async_trait::async_trait]
pub trait PrincipalCredential: Send + Sync + 'static {
    /// The credential for the principal of `token`; `Ok(None)` when it has none (a user who
    /// signed in otherwise), `Err` when it has one that cannot be had now (the request is then
    /// answered 502 rather than forwarded without it).
    async fn credential(&self, token: &AccessToken) -> Result<Option<String>, String>;
}

/// The header carrying the [`PrincipalCredential`].
pub const UPSTREAM_TOKEN_HEADER: http::HeaderName =
    http::HeaderName::from_static("x-mcp-auth-upstream-token");

/// Forwards MCP requests to one upstream streamable-HTTP endpoint; see the crate docs for
/// what crosses it. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct UpstreamProxy {
    shared: Arc<Shared>,
}

struct Shared {
    client: Client<HttpsConnector<HttpConnector>, UpstreamBody>,
    /// The upstream's authority, sent as `Host` (RFC 9110 §7.2).
    host: HeaderValue,
    uri: Uri,
    headers: Vec<UpstreamHeader>,
    header_timeout: Duration,
    max_request_body: usize,
    /// Supplies [`UPSTREAM_TOKEN_HEADER`], when configured.
    credential: Option<Arc<dyn PrincipalCredential>>,
    /// Requests forwarded and not yet answered to their end, at most.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// The last readiness answer and when it was found; the lock also makes probes single-file.
    readiness: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl std::fmt::Debug for UpstreamProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamProxy")
            .field("uri", &self.shared.uri)
            .field("headers", &self.shared.headers)
            .field("header_timeout", &self.shared.header_timeout)
            .field("max_request_body", &self.shared.max_request_body)
            .finish_non_exhaustive()
    }
}

/// Builds an [`UpstreamProxy`].
pub struct UpstreamProxyBuilder {
    url: String,
    headers: Vec<UpstreamHeader>,
    header_timeout: Duration,
    max_request_body: usize,
    max_in_flight: usize,
    credential: Option<Arc<dyn PrincipalCredential>>,
    root_certificates: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for UpstreamProxyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamProxyBuilder")
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("forwards_credential", &self.credential.is_some())
            .finish_non_exhaustive()
    }
}

impl UpstreamProxy {
    /// A proxy to the MCP endpoint at `url` (`http://` or `https://`, path included).
    pub fn builder(url: impl Into<String>) -> UpstreamProxyBuilder {
        UpstreamProxyBuilder {
            url: url.into(),
            headers: Vec::new(),
            header_timeout: limits::DEFAULT_HEADER_TIMEOUT,
            max_request_body: limits::DEFAULT_MAX_REQUEST_BODY,
            max_in_flight: limits::DEFAULT_MAX_IN_FLIGHT,
            credential: None,
            root_certificates: Vec::new(),
        }
    }

    /// The upstream endpoint.
    pub fn upstream(&self) -> &Uri {
        &self.shared.uri
    }

    /// Whether the upstream answers HTTP at all (any status counts; an `OPTIONS` request with
    /// the operator's headers). Probes run one at a time and an answer is reused for
    /// [`READY_CACHE`](limits::READY_CACHE), so that probing cannot be used to flood the
    /// upstream.
    pub async fn check_ready(&self) -> bool {
        let mut last = self.shared.readiness.lock().await;
        if let Some((at, ready)) = *last
            && at.elapsed() < limits::READY_CACHE
        {
            return ready;
        }
        let mut request = Request::new(UpstreamBody::default());
        *request.method_mut() = Method::OPTIONS;
        *request.uri_mut() = self.shared.uri.clone();
        request.headers_mut().insert(HOST, self.shared.host.clone());
        for header in &self.shared.headers {
            let (name, value) = header.pair();
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let timeout = limits::READY_PROBE_TIMEOUT.min(self.shared.header_timeout);
        let ready = matches!(
            tokio::time::timeout(timeout, self.shared.client.request(request)).await,
            Ok(Ok(_))
        );
        *last = Some((Instant::now(), ready));
        ready
    }
}

impl UpstreamProxyBuilder {
    /// Adds `header` to every upstream request, replacing a client header of that name.
    #[must_use]
    pub fn header(mut self, header: UpstreamHeader) -> Self {
        self.headers.push(header);
        self
    }

    /// Time to the upstream's response headers, connection set-up included (default 30 s).
    #[must_use]
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Largest request body forwarded, in bytes (default 4 MiB).
    #[must_use]
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.max_request_body = bytes;
        self
    }

    /// Requests forwarded at once at most, open streams included (default 1024); beyond it
    /// the gateway answers 503 with `Retry-After`.
    #[must_use]
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests.max(1);
        self
    }

    /// Forwards `credential`'s answer for each request's principal in
    /// [`UPSTREAM_TOKEN_HEADER`] (a client's own copy of the header is always removed).
    #[must_use]
    pub fn forward_credential(mut self, credential: Arc<dyn PrincipalCredential>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Trusts the PEM root certificates in `pem` for an https upstream, besides the system's.
    pub fn root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, UpstreamConfigError> {
        let before = self.root_certificates.len();
        for certificate in CertificateDer::pem_slice_iter(pem) {
            self.root_certificates.push(
                certificate.map_err(|err| UpstreamConfigError::Certificate(err.to_string()))?,
            );
        }
        if self.root_certificates.len() == before {
            return Err(UpstreamConfigError::Certificate(
                "no PEM certificate found".to_owned(),
            ));
        }
        Ok(self)
    }

    /// The proxy. Opens no connection: the first request does.
    pub fn build(self) -> Result<UpstreamProxy, UpstreamConfigError> {
        let uri = upstream_uri(&self.url)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = if self.root_certificates.is_empty() {
            rustls_platform_verifier::Verifier::new(Arc::clone(&provider))?
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                self.root_certificates,
                Arc::clone(&provider),
            )?
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        // The upstream's answers are often several small writes (SSE events); without
        // TCP_NODELAY, Nagle's algorithm meets delayed ACKs and each waits ~40 ms.
        http.set_nodelay(true);
        http.set_connect_timeout(Some(limits::CONNECT_TIMEOUT));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            // `Host` is computed once here (`host`) rather than from the URI per request.
            .set_host(false)
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(limits::POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(limits::POOL_MAX_IDLE)
            .build(connector);
        let host = HeaderValue::from_str(uri.authority().map_or("", |a| a.as_str()))
            .map_err(|_| UpstreamConfigError::Url(format!("{:?}: no valid host", self.url)))?;
        Ok(UpstreamProxy {
            shared: Arc::new(Shared {
                client,
                host,
                uri,
                headers: self.headers,
                header_timeout: self.header_timeout,
                max_request_body: self.max_request_body,
                credential: self.credential,
                in_flight: Arc::new(tokio::sync::Semaphore::new(self.max_in_flight)),
                readiness: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

/// Checks the upstream URL: absolute http(s), a host, no user information or fragment.
fn upstream_uri(url: &str) -> Result<Uri, UpstreamConfigError> {
    let refuse = |why: &str| UpstreamConfigError::Url(format!("{url:?}: {why}"));
    if url.contains('#') {
        return Err(refuse("a fragment is not allowed"));
    }
    let uri: Uri = url.parse().map_err(|_| refuse("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(refuse("the scheme must be http or https"));
    }
    let authority = uri.authority().ok_or_else(|| refuse("no host"))?;
    if authority.as_str().contains('@') {
        return Err(refuse(
            "credentials in the URL are not allowed; use --upstream-header",
        ));
    }
    if authority.host().is_empty() {
        return Err(refuse("no host"));
    }
    Ok(uri)
}

impl<B> tower::Service<Request<B>> for UpstreamProxy
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(shared.forward(request).await) })
    }
}

impl Shared {
    async fn forward<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        let close = parts.version <= Version::HTTP_11;
        if !matches!(parts.method, Method::GET | Method::POST | Method::DELETE) {
            let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            return response;
        }
        let Some(Authenticated(token)) = parts.extensions.get::<Authenticated>() else {
            // Fail closed: a proxy mounted without the bearer layer forwards nothing.
            tracing::error!("UpstreamProxy reached without RequireBearerLayer around it");
            return MissingAuthentication.into_response();
        };
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_request_body as u64) {
            return self.failed(Failure::TooLarge, close);
        }
        let Ok(mut headers) = headers::to_upstream(&parts.headers, token, &self.headers) else {
            return self.failed(Failure::IdentityNotForwardable, false);
        };
        if let Some(credential) = &self.credential {
            match credential.credential(token).await {
                Ok(Some(value)) => match HeaderValue::from_str(&value) {
                    Ok(mut value) => {
                        value.set_sensitive(true);
                        headers.insert(UPSTREAM_TOKEN_HEADER, value);
                    }
                    Err(_) => return self.failed(Failure::CredentialUnavailable, close),
                },
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(reason, "the principal's upstream credential is unavailable");
                    return self.failed(Failure::CredentialUnavailable, close);
                }
            }
        }
        // Every forwarded request holds an upstream connection until its answer ends (an SSE
        // stream for as long as it lasts): the permit bounds them, and travels in the body.
        let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            return self.failed(Failure::Busy, close);
        };
        let mut upstream = Request::new(
            Limited::new(body, self.max_request_body)
                .map_err(Into::into)
                .boxed_unsync(),
        );
        *upstream.method_mut() = parts.method;
        *upstream.uri_mut() = self.uri_for(parts.uri.query());
        *upstream.headers_mut() = headers;
        upstream.headers_mut().insert(HOST, self.host.clone());
        let answer = tokio::time::timeout(self.header_timeout, self.client.request(upstream)).await;
        let response = match answer {
            Err(_) => return self.failed(Failure::Timeout, close),
            Ok(Err(err)) => {
                let failure = classify(&err);
                tracing::warn!(
                    failure = failure.code(),
                    error = %mcp_auth_axum::core::ErrorChain(&err),
                    "the upstream MCP server did not answer"
                );
                return self.failed(failure, close);
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_redirection() {
            // Its Location names the upstream (it answered to its own Host), and a client
            // following it would bypass the gateway.
            tracing::warn!(
                upstream_status = status.as_u16(),
                "the upstream MCP server answered with a redirect; check the --upstream path"
            );
            return self.failed(Failure::Redirected, false);
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            // The client's token was valid here: an upstream refusing the gateway is a
            // misconfiguration (a missing or wrong --upstream-header), not the client's fault,
            // and a 401 would send the client to re-authorize for nothing.
            tracing::warn!(
                upstream_status = status.as_u16(),
                "the upstream MCP server refused the gateway's request; check --upstream-header"
            );
            return self.failed(Failure::RejectedGateway, false);
        }
        metrics::counter!("mcp_auth_gateway_upstream_requests_total", "outcome" => "answered")
            .increment(1);
        let (mut parts, incoming) = response.into_parts();
        headers::from_upstream(&mut parts.headers);
        Response::from_parts(
            parts,
            Body::new(Permitted {
                body: incoming,
                _permit: permit,
            }),
        )
    }

    /// The upstream URL, with the client's query when the configured URL has none.
    fn uri_for(&self, query: Option<&str>) -> Uri {
        let Some(query) = query.filter(|_| self.uri.query().is_none()) else {
            return self.uri.clone();
        };
        let mut parts = self.uri.clone().into_parts();
        let path = parts
            .path_and_query
            .as_ref()
            .map_or("/", PathAndQuery::path);
        match PathAndQuery::try_from(format!("{path}?{query}")) {
            Ok(path_and_query) => {
                parts.path_and_query = Some(path_and_query);
                Uri::from_parts(parts).unwrap_or_else(|_| self.uri.clone())
            }
            Err(_) => self.uri.clone(),
        }
    }

    fn failed(&self, failure: Failure, close: bool) -> Response<Body> {
        metrics::counter!(
            "mcp_auth_gateway_upstream_requests_total",
            "outcome" => failure.code()
        )
        .increment(1);
        failure.into_response(close)
    }
}

/// An upstream response body that holds its in-flight permit until it ends or is dropped.
struct Permitted {
    body: hyper::body::Incoming,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for Permitted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Which failure a client error is: the request body over the limit, no connection, or a
/// connection lost before the answer.
fn classify(err: &hyper_util::client::legacy::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause.is::<LengthLimitError>() {
            return Failure::TooLarge;
        }
        source = cause.source();
    }
    if err.is_connect() {
        Failure::Unreachable
    } else {
        Failure::ConnectionLost
    }
}

#[cfg(test)]
mod tests;
