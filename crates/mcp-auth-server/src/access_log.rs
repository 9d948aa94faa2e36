//! Logging on the request path: one access-log line per request, the request's id on every
//! line the request logs, and a writer that never blocks a request.
//!
//! The access log replaces tower-http's `TraceLayer` with `DefaultOnResponse`, which cost
//! 5–8 µs per request (a span with three formatted fields, a latency formatted as text, and a
//! synchronous write to stderr under its lock). Here the only per-request work on the request
//! path is a request id from a counter, a copy of that id into a thread-local slot while the
//! request is polled (read by [`LogFormat`](crate::log_format::LogFormat), so that a
//! handler's warning names its request without the cost of a span), one event formatted into
//! the subscriber's reused buffer, and one copy of that line into a bounded buffer
//! ([`LogWriter`](crate::log_writer::LogWriter)); a background thread does the writing.
//! `benches/access_log.rs` measures it.
//!
//! What is logged is chosen so that no secret can reach the log: the method, the path
//! without its query string (codes, states and tokens travel in query strings and bodies, never
//! in paths), the status, the latency and the request id. No header, query or body is read.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use http::uri::PathAndQuery;
use http::{HeaderName, HeaderValue, Method, Request, Response};
use tower::{Layer, Service};
use tower_http::ServiceBuilderExt;
use tower_http::request_id::{MakeRequestId, PropagateRequestId, RequestId, SetRequestId};
use tower_http::sensitive_headers::{SetSensitiveRequestHeaders, SetSensitiveResponseHeaders};
use tracing::Level;

use crate::limits::{LOGGED_PATH_MAX, LOGGED_REQUEST_ID_MAX};

/// The header carrying each request's id, generated unless the client sent one.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The target of the access-log events, so that an operator can silence or redirect them
/// alone (`RUST_LOG=info,mcp_auth_server::access=off`).
pub const ACCESS_LOG_TARGET: &str = "mcp_auth_server::access";

/// Request ids: a random prefix drawn once per process and a counter, in the shape of a UUID
/// (`xxxxxxxx-xxxx-4xxx-yxxx-` then 12 hex digits of the counter). They only need to be
/// unique, not secret; tower-http's `MakeRequestUuid` drew a fresh random UUID for every
/// request, which was half of what request ids cost.
#[derive(Clone, Debug)]
pub struct RequestIds {
    prefix: [u8; 24],
    counter: Arc<AtomicU64>,
}

impl RequestIds {
    /// Ids with a fresh random prefix.
    pub fn new() -> Self {
        let mut prefix = [b'0'; 24];
        let random = mcp_auth_core::secrets::random_id();
        let n = random.len().min(prefix.len());
        prefix[..n].copy_from_slice(&random.as_bytes()[..n]);
        Self {
            prefix,
            counter: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = [0; 36];
        id[..24].copy_from_slice(&self.prefix);
        for digit in id[24..].iter_mut().rev() {
            *digit = HEX[(n & 0xf) as usize];
            n >>= 4;
        }
        HeaderValue::from_bytes(&id).ok().map(RequestId::new)
    }
}

/// Request ids, the access log, and `Authorization`, `Cookie` and `Set-Cookie` marked
/// sensitive for any layer that might print headers, around `app`.
///
/// A router's layers are cloned, boxed, with every request; the server itself puts
/// [`ObservabilityLayer`] around its router instead, where a request costs no clone.
pub fn with_observability(app: axum::Router) -> axum::Router {
    app.layer(ObservabilityLayer::new())
}

/// What [`with_observability`] adds, as a layer for any service: request ids, the access log,
/// and sensitive headers marked.
#[derive(Clone, Debug, Default)]
pub struct ObservabilityLayer {
    ids: RequestIds,
}

impl ObservabilityLayer {
    /// The layer, with request ids of a fresh random prefix.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The service [`ObservabilityLayer`] produces, outermost first.
pub type Observability<S> = SetSensitiveRequestHeaders<
    SetRequestId<AccessLog<PropagateRequestId<SetSensitiveResponseHeaders<S>>>, RequestIds>,
>;

impl<S> Layer<S> for ObservabilityLayer {
    type Service = Observability<S>;

    fn layer(&self, inner: S) -> Self::Service {
        tower::ServiceBuilder::new()
            .sensitive_request_headers([AUTHORIZATION, COOKIE].into())
            .set_request_id(REQUEST_ID, self.ids.clone())
            .layer(AccessLogLayer)
            .propagate_request_id(REQUEST_ID)
            .sensitive_response_headers([SET_COOKIE].into())
            .service(inner)
    }
}

/// Logs one line per request when its response's headers are ready (target
/// [`ACCESS_LOG_TARGET`], level INFO): method, path without query, status, latency in
/// microseconds. While the request is polled its id (the [`REQUEST_ID`] header, set by an
/// outer layer) is marked current, so that the access line and whatever the handlers log on
/// its behalf name the request (printed by [`LogFormat`](crate::LogFormat)).
///
/// For a streamed response (an MCP SSE stream) the latency is the time to the headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLog { inner }
    }
}

/// The service [`AccessLogLayer`] produces.
#[derive(Clone, Debug)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AccessLog<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Both checks read a cached per-call-site answer: with the access log filtered out
        // (`RUST_LOG=warn`) nothing below is built.
        let log = tracing::enabled!(target: ACCESS_LOG_TARGET, Level::INFO).then(|| Entry {
            start: Instant::now(),
            method: request.method().clone(),
            path: request.uri().path_and_query().cloned(),
        });
        let id = LoggedRequestId::of(&request);
        let inner = {
            let _current = CurrentRequest::enter(id);
            self.inner.call(request)
        };
        AccessLogFuture { inner, id, log }
    }
}

/// A request's id as the logs print it: at most [`LOGGED_REQUEST_ID_MAX`] bytes of the
/// [`REQUEST_ID`] header (the id may come from the client, so the formatter prints it quoted
/// and escaped, and it can neither forge fields nor flood a line). `Copy`, so that entering a
/// request is a copy of a few dozen bytes, not an allocation.
#[derive(Clone, Copy, Debug)]
struct LoggedRequestId {
    bytes: [u8; LOGGED_REQUEST_ID_MAX],
    len: usize,
}

impl LoggedRequestId {
    fn of<B>(request: &Request<B>) -> Self {
        let id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // A header value that is valid `str` is visible ASCII, so any cut is a char boundary.
        let id = id.get(..LOGGED_REQUEST_ID_MAX).unwrap_or(id);
        let mut bytes = [0; LOGGED_REQUEST_ID_MAX];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        Self {
            bytes,
            len: id.len(),
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("-")
    }
}

thread_local! {
    /// The id of the request this thread is polling, if any.
    static CURRENT_REQUEST: Cell<Option<LoggedRequestId>> = const { Cell::new(None) };
}

/// Marks a request as the one this thread is polling until dropped, then restores whatever
/// was marked before (a request served inside another's poll, as in tests, nests correctly;
/// a panicking handler cannot leave its id behind).
struct CurrentRequest(Option<LoggedRequestId>);

impl CurrentRequest {
    fn enter(id: LoggedRequestId) -> Self {
        Self(CURRENT_REQUEST.replace(Some(id)))
    }
}

impl Drop for CurrentRequest {
    fn drop(&mut self) {
        CURRENT_REQUEST.set(self.0);
    }
}

/// Calls `f` with the id of the request this thread is polling, if any: how a log line names
/// its request.
pub(crate) fn with_current_request_id<R>(f: impl FnOnce(Option<&str>) -> R) -> R {
    let current = CURRENT_REQUEST.get();
    f(current.as_ref().map(LoggedRequestId::as_str))
}

/// What the access line needs from the request, kept while it is served.
struct Entry {
    start: Instant,
    method: Method,
    /// Cloning the request target shares its bytes; only the path is printed.
    path: Option<PathAndQuery>,
}

impl Entry {
    fn log(&self, status: http::StatusCode) {
        let latency_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let path = self.path.as_ref().map_or("/", PathAndQuery::path);
        // A parsed path holds only URI characters (no space, quote or control character), so
        // it is printed as is; a longer one is cut at a character boundary.
        let path = path.get(..LOGGED_PATH_MAX).unwrap_or(path);
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            method = %self.method.as_str(),
            path = %path,
            status = status.as_u16(),
            latency_us,
        );
    }
}

pin_project_lite::pin_project! {
    /// The future of [`AccessLog`]: the inner future, polled with its request marked current.
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        id: LoggedRequestId,
        log: Option<Entry>,
    }
}

impl<F, ResBody, E> Future for AccessLogFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _current = CurrentRequest::enter(*this.id);
        let result = ready!(this.inner.poll(cx));
        if let (Some(entry), Ok(response)) = (this.log.take(), &result) {
            entry.log(response.status());
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex, PoisonError};

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// Everything a subscriber printed, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// The server's log format, writing into a buffer the test reads, as this thread's
    /// subscriber until the guard is dropped.
    fn capture(ansi: bool) -> (Captured, tracing::subscriber::DefaultGuard) {
        capture_in(crate::LogFormat::Text, ansi)
    }

    /// [`capture`] in `format`.
    fn capture_in(
        format: crate::LogFormat,
        ansi: bool,
    ) -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(ansi)
            .event_format(format)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    /// What the app logs for one request (the handler logs a warning of its own).
    async fn log_of(request: Request<Body>) -> (String, Response<Body>) {
        let (captured, _default) = capture(false);
        let app = with_observability(Router::new().route(
            "/token",
            get(|| async {
                tracing::warn!("handler speaking");
                "ok"
            }),
        ));
        let response = app.oneshot(request).await.unwrap();
        (captured.text(), response)
    }

    fn is_access(line: &str) -> bool {
        line.contains(&format!(" {ACCESS_LOG_TARGET}: "))
    }

    fn get_request(uri: &str, request_id: Option<&str>) -> Request<Body> {
        let mut request = Request::get(uri)
            .header(AUTHORIZATION, "Bearer bearer-secret")
            .header(COOKIE, "session=cookie-secret");
        if let Some(id) = request_id {
            request = request.header(REQUEST_ID, id);
        }
        request.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn one_access_line_names_method_path_status_latency_and_request_id_and_no_secret() {
        let (log, response) = log_of(get_request("/token?code=query-secret", Some("abc-1"))).await;
        assert_eq!(response.headers()[REQUEST_ID], "abc-1");
        let access: Vec<&str> = log.lines().filter(|line| is_access(line)).collect();
        assert_eq!(access.len(), 1, "{log}");
        let line = access[0];
        for field in [
            "request{id=\"abc-1\"}",
            "method=GET",
            "path=/token ",
            "status=200",
            "latency_us=",
        ] {
            assert!(line.contains(field), "{field} missing from {line}");
        }
        let handler = log
            .lines()
            .find(|l| l.contains("handler speaking"))
            .unwrap();
        assert!(handler.contains("request{id=\"abc-1\"}"), "{handler}");
        for secret in ["query-secret", "bearer-secret", "cookie-secret", "code="] {
            assert!(!log.contains(secret), "{secret} logged: {log}");
        }
    }

    #[tokio::test]
    async fn requests_without_an_id_get_a_generated_one_in_the_log_and_the_response() {
        let (log, response) = log_of(get_request("/token", None)).await;
        let id = response.headers()[REQUEST_ID].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "a UUID");
        assert!(log.contains(&format!("request{{id=\"{id}\"}}")), "{log}");
    }

    #[tokio::test]
    async fn a_client_chosen_request_id_is_quoted_and_cut_so_it_forges_no_field() {
        let forged = format!("x status=500 {}", "a".repeat(200));
        let (log, _) = log_of(get_request("/token", Some(&forged))).await;
        let line = log.lines().find(|line| is_access(line)).unwrap();
        let expected = format!("request{{id={:?}}}", &forged[..LOGGED_REQUEST_ID_MAX]);
        assert!(line.contains(&expected), "{line}");
        assert!(!line.contains(&forged), "{line}");
        assert!(line.contains(" status=200"), "{line}");
    }

    #[tokio::test]
    async fn lines_outside_a_request_name_none_and_a_finished_request_leaves_no_id_behind() {
        let (captured, _default) = capture(false);
        let app = with_observability(Router::new().route("/panics", get(panicking_handler)));
        tracing::warn!("before");
        let served = tokio::spawn(app.oneshot(get_request("/panics", Some("gone-1"))));
        assert!(served.await.is_err(), "the handler panics");
        let _ = app_of_nothing()
            .oneshot(get_request("/", Some("next-2")))
            .await;
        tracing::warn!("after");
        let log = captured.text();
        let line = |needle: &str| log.lines().find(|l| l.contains(needle)).unwrap().to_owned();
        assert!(
            line("about to panic").contains("request{id=\"gone-1\"}"),
            "{log}"
        );
        for outside in ["before", "after"] {
            assert!(!line(outside).contains("request{"), "{log}");
        }
    }

    async fn panicking_handler() -> &'static str {
        tracing::warn!("about to panic");
        panic!("handler panicked")
    }

    fn app_of_nothing() -> Router {
        with_observability(Router::new())
    }

    #[tokio::test]
    async fn colours_are_written_only_when_the_writer_has_them() {
        for ansi in [false, true] {
            let (captured, _default) = capture(ansi);
            let app = with_observability(Router::new().route("/token", get(|| async { "ok" })));
            app.oneshot(get_request("/token", Some("c-1")))
                .await
                .unwrap();
            let log = captured.text();
            assert_eq!(log.contains('\x1b'), ansi, "{log:?}");
            assert!(log.contains("INFO"), "{log}");
            assert!(log.contains("status"), "{log}");
        }
    }

    #[tokio::test]
    async fn json_lines_are_objects_with_typed_fields_the_request_id_and_no_colour() {
        let (captured, _default) = capture_in(crate::LogFormat::Json, true);
        let app = with_observability(Router::new().route(
            "/token",
            get(|| async {
                tracing::warn!(quote = "a \"b\"\n", "handler speaking");
                "ok"
            }),
        ));
        let forged = "x\",\"level\":\"ERROR";
        app.oneshot(get_request("/token?code=query-secret", Some(forged)))
            .await
            .unwrap();
        tracing::info!("outside");
        let log = captured.text();
        assert!(!log.contains('\x1b'), "{log:?}");
        assert!(!log.contains("query-secret"), "{log}");
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 3, "{log}");
        let handler = &lines[0];
        assert_eq!(handler["level"], "WARN");
        assert_eq!(
            handler["request_id"], forged,
            "kept as data, not as members"
        );
        assert_eq!(handler["fields"]["message"], "handler speaking");
        assert_eq!(handler["fields"]["quote"], "a \"b\"\n");
        let access = &lines[1];
        assert_eq!(access["target"], ACCESS_LOG_TARGET);
        assert_eq!(access["fields"]["status"], 200);
        assert_eq!(access["fields"]["path"], "/token");
        assert!(access["fields"]["latency_us"].is_u64());
        assert!(access["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(lines[2].get("request_id").is_none(), "{}", lines[2]);
    }

    #[test]
    fn generated_request_ids_are_unique_and_uuid_shaped() {
        let mut ids = RequestIds::new();
        let request = Request::new(());
        let a = ids.make_request_id(&request).unwrap();
        let b = ids.clone().make_request_id(&request).unwrap();
        let (a, b) = (
            a.header_value().to_str().unwrap(),
            b.header_value().to_str().unwrap(),
        );
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[..24], &b[..24]);
        assert_eq!(&b[24..], "000000000001");
        assert_ne!(&RequestIds::new().prefix, &ids.prefix);
    }
}
