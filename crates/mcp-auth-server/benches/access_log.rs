//! What logging adds to a request, without sockets: one request through a trivial axum
//! handler with the server's logging layers and a real `fmt` subscriber, beside the same
//! handler without them, in the same run. Run with
//! `cargo bench -p mcp-auth-server --bench access_log`.
//!
//! - `bare`: the handler alone.
//! - `request ids only`: `x-request-id` generated and echoed, no access log (the floor the
//!   access log adds to: the ids were there before it too).
//! - `access log (default)`: the server's logging layers through `with_observability`
//!   (`RUST_LOG` unset; the server itself wraps its router in the same `ObservabilityLayer`):
//!   the request id marked current while the request is polled and one access line per
//!   request, in the server's `LogFormat`, through the non-blocking writer.
//! - `access lines off`: the same with the access lines filtered out
//!   (`mcp_auth_server::access=off`): the cost of carrying the request id.
//! - `RUST_LOG=warn`: the same layers with nothing at info enabled.
//! - `TraceLayer (before)`: what the server did before: tower-http's `TraceLayer`, a span with
//!   method, path and id, `DefaultOnResponse` at info, written synchronously.
//!
//! The writer's background thread formats nothing; it copies finished lines to the sink (here
//! `io::sink()`, so that the figure is the request path's own cost, not the disk's). Every
//! variant uses a scoped dispatcher, which costs each variant the same few nanoseconds.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderName;
use mcp_auth_server::{LogFormat, LogGuard, LogWriter, REQUEST_ID, with_observability};
use tower::ServiceExt;
use tower_http::ServiceBuilderExt;
use tower_http::request_id::MakeRequestUuid;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{Dispatch, Level};
use tracing_subscriber::EnvFilter;

fn handler() -> Router {
    Router::new().route(
        "/.well-known/oauth-authorization-server",
        get(|| async { "{}" }),
    )
}

fn request() -> Request {
    Request::get("/.well-known/oauth-authorization-server?x=1")
        .body(Body::empty())
        .unwrap()
}

/// The stack the server used before: request ids and tower-http's `TraceLayer`.
fn trace_layer(app: Router) -> Router {
    const ID: HeaderName = REQUEST_ID;
    app.layer(
        tower::ServiceBuilder::new()
            .set_request_id(ID, MakeRequestUuid)
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|request: &Request| {
                        let request_id = request
                            .headers()
                            .get(ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!(
                            "request",
                            method = %request.method(),
                            path = request.uri().path(),
                            request_id = ?request_id,
                        )
                    })
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            .propagate_request_id(ID),
    )
}

fn request_ids_only(app: Router) -> Router {
    app.layer(
        tower::ServiceBuilder::new()
            .set_request_id(REQUEST_ID, mcp_auth_server::RequestIds::new())
            .propagate_request_id(REQUEST_ID),
    )
}

/// The server's subscriber (see `main.rs`) over its log writer to `io::sink()`.
fn non_blocking(filter: &str) -> (Dispatch, LogGuard) {
    let (writer, guard) = LogWriter::spawn(std::io::sink()).unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .event_format(LogFormat::Text)
        .with_env_filter(EnvFilter::new(filter))
        .finish();
    (Dispatch::new(subscriber), guard)
}

/// The subscriber the server had before: the default format, synchronous writes (to
/// `io::sink()` here).
fn blocking(filter: &str) -> Dispatch {
    Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_ansi(false)
            .with_env_filter(EnvFilter::new(filter))
            .finish(),
    )
}

/// The server's format written synchronously (to `io::sink()`): what the writer thread saves.
fn synchronous(filter: &str) -> Dispatch {
    Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_ansi(false)
            .event_format(LogFormat::Text)
            .with_env_filter(EnvFilter::new(filter))
            .finish(),
    )
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("access_log");
    let default_filter = "info,rmcp=warn";
    let (logging, _guard) = non_blocking(default_filter);
    let (span_only, _guard2) = non_blocking("info,rmcp=warn,mcp_auth_server::access=off");
    let (warn, _guard3) = non_blocking("warn");
    let variants: [(&str, Router, Dispatch); 7] = [
        (
            "access log, synchronous sink",
            with_observability(handler()),
            synchronous(default_filter),
        ),
        ("bare", handler(), logging.clone()),
        (
            "request ids only",
            request_ids_only(handler()),
            logging.clone(),
        ),
        (
            "access log (default)",
            with_observability(handler()),
            logging,
        ),
        ("access lines off", with_observability(handler()), span_only),
        ("RUST_LOG=warn", with_observability(handler()), warn),
        (
            "TraceLayer (before)",
            trace_layer(handler()),
            blocking(default_filter),
        ),
    ];
    for (name, app, dispatch) in variants {
        tracing::dispatcher::with_default(&dispatch, || {
            let response = runtime.block_on(app.clone().oneshot(request())).unwrap();
            assert_eq!(response.status(), 200);
            group.bench_function(name, |b| {
                b.iter(|| runtime.block_on(app.clone().oneshot(request())).unwrap());
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
