//! A Rust stand-in for an MCP server behind the gateway, on a real socket: it records what it
//! receives and answers each request the way a test asks for.
//!
//! `POST` reads the JSON-RPC message: `initialize` opens a session (`mcp-session-id: s-N`,
//! and a `Set-Cookie` the gateway must not pass on); a notification gets 202; `tools/call`
//! of `stream` answers three SSE events 300 ms apart, of `slow` answers after 3 s, of
//! `reject` answers 401, of anything else a JSON result. `GET` opens an SSE stream that sends
//! one event and stays open; `DELETE` answers 200. A `POST` to `/mcp?answer=early` gets 202
//! at once and its body is read afterwards, as an upstream that answers before the body has
//! arrived. A body that breaks off is recorded as far as it arrived. [`Upstream::start_https`]
//! serves the same over TLS with a self-signed certificate for `127.0.0.1`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::https_host::{self, TlsListener};

/// The most body bytes recorded per request: above the gateway's 4 MiB limit, so that a body
/// the gateway let through whole would show here whole.
const MAX_RECORDED_BODY: usize = 16 * 1024 * 1024;

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// Whether the body arrived to its end (false: the connection broke off first).
    pub(super) complete: bool,
}

impl Seen {
    /// The JSON-RPC `params.name` (a tool call's tool), if any.
    pub(super) fn tool(&self) -> Option<String> {
        let message: Value = serde_json::from_slice(&self.body).ok()?;
        message["params"]["name"].as_str().map(str::to_owned)
    }
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    sessions: Arc<Mutex<u32>>,
}

/// The running stand-in; stops with the test's runtime.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    scheme: &'static str,
    shared: Shared,
}

impl Upstream {
    pub(crate) async fn start() -> Self {
        let shared = Shared::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app(&shared);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            scheme: "http",
            shared,
        }
    }

    /// The stand-in over TLS, and a file holding its (self-signed) certificate as PEM.
    pub(super) async fn start_https() -> (Self, PathBuf) {
        let shared = Shared::default();
        let certificate = https_host::self_signed(&["127.0.0.1"]);
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = TlsListener {
            tcp,
            acceptor: certificate.acceptor,
        };
        let app = app(&shared);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let upstream = Self {
            addr,
            scheme: "https",
            shared,
        };
        (upstream, certificate.pem_file)
    }

    pub(crate) fn url(&self) -> String {
        format!("{}://{}/mcp", self.scheme, self.addr)
    }

    /// Every request received so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

fn app(shared: &Shared) -> axum::Router {
    axum::Router::new()
        .route("/mcp", axum::routing::any(handle))
        .with_state(shared.clone())
}

/// Reads `body` until it ends or breaks off (keeping at most [`MAX_RECORDED_BODY`] bytes):
/// the bytes, and whether that was its end.
async fn read_body(mut body: Body) -> (Bytes, bool) {
    let mut read = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return (read.freeze(), false);
        };
        if let Ok(data) = frame.into_data() {
            if read.len() + data.len() > MAX_RECORDED_BODY {
                return (read.freeze(), false);
            }
            read.extend_from_slice(&data);
        }
    }
    (read.freeze(), true)
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if parts.method == Method::POST && parts.uri.query() == Some("answer=early") {
        tokio::spawn(async move {
            let read = tokio::time::timeout(Duration::from_secs(30), read_body(body)).await;
            let (body, complete) = read.unwrap_or_default();
            shared.seen.lock().unwrap().push(Seen {
                method: parts.method,
                headers: parts.headers,
                body,
                complete,
            });
        });
        return StatusCode::ACCEPTED.into_response();
    }
    let (body, complete) = read_body(body).await;
    let seen = Seen {
        method: parts.method.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
        complete,
    };
    let tool = seen.tool();
    shared.seen.lock().unwrap().push(seen);
    match parts.method {
        Method::GET => sse(vec![(Duration::ZERO, "listening")], true),
        Method::DELETE => StatusCode::OK.into_response(),
        _ => {
            let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let id = message["id"].clone();
            match message["method"].as_str() {
                Some("initialize") => {
                    let session = {
                        let mut count = shared.sessions.lock().unwrap();
                        *count += 1;
                        format!("s-{count}")
                    };
                    let mut response = axum::Json(json!({
                        "jsonrpc": "2.0",
                        "id": id,
                        "result": {"serverInfo": {"name": "mcp-auth-server", "version": "0"}},
                    }))
                    .into_response();
                    let headers = response.headers_mut();
                    headers.insert("mcp-session-id", HeaderValue::from_str(&session).unwrap());
                    headers.insert("set-cookie", HeaderValue::from_static("upstream=1"));
                    response
                }
                Some(_) if id.is_null() => StatusCode::ACCEPTED.into_response(),
                _ => match tool.as_deref() {
                    Some("stream") => sse(
                        (1..=3)
                            .map(|i| (Duration::from_millis(300), ["one", "two", "three"][i - 1]))
                            .collect(),
                        false,
                    ),
                    Some("slow") => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": {}}))
                            .into_response()
                    }
                    Some("reject") => StatusCode::UNAUTHORIZED.into_response(),
                    // As a server mounted under another path answers: its own address.
                    Some("redirect") => (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(
                            "location",
                            format!(
                                "http://{}/mcp/",
                                parts.headers["host"].to_str().unwrap_or_default()
                            ),
                        )],
                    )
                        .into_response(),
                    _ => axum::Json(json!({
                        "jsonrpc": "2.0",
                        "id": id,
                        "result": {"content": [{"type": "text", "text": "ok"}]},
                    }))
                    .into_response(),
                },
            }
        }
    }
}

/// An SSE response sending each `(delay, data)` after its delay; kept open afterwards when
/// `stay_open`.
fn sse(events: Vec<(Duration, &'static str)>, stay_open: bool) -> Response {
    let (mut sender, body) = Channel::<Bytes, std::convert::Infallible>::new(4);
    tokio::spawn(async move {
        for (delay, data) in events {
            tokio::time::sleep(delay).await;
            let event = format!("event: message\ndata: {data}\n\n");
            if sender.send_data(Bytes::from(event)).await.is_err() {
                return;
            }
        }
        if stay_open {
            // Until the client goes away (the send fails) or the test ends.
            for _ in 0..600 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if sender
                    .send_data(Bytes::from_static(b": keep-alive\n\n"))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    let mut response = Response::new(Body::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}
