//! Prometheus metrics (`--metrics-bind ADDR`): a listener of its own serving `GET /metrics`, off
//! by default.
//!
//! The crates record through the `metrics` facade wherever a fact happens (audit events and
//! issued tokens in core, OAuth errors in the handlers, outbound fetches in the fetchers, cache
//! hits in the provider); this module installs the Prometheus recorder that turns those calls
//! into the exposition, and adds what only the server sees: requests by endpoint and status
//! ([`HttpMetricsLayer`]), storage latency by backend and operation
//! ([`MeteredStorage`](storage::MeteredStorage)), and open MCP sessions. Without
//! `--metrics-bind` no recorder is installed and every recording call is a no-op.

mod http;
pub(crate) mod storage;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio_util::sync::CancellationToken;

pub(crate) use self::http::HttpMetricsLayer;
use crate::limits::ConnectionLimits;

/// Latency buckets, in seconds, of every `*_duration_seconds` histogram: from a cached lookup
/// (tens of µs) to a request at its timeout.
const DURATION_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];

/// How often histograms are compacted (the recorder's upkeep), as its own listener would.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Connections the metrics listener takes at most: it serves a scraper or two.
const MAX_METRICS_CONNECTIONS: usize = 16;

/// The process's Prometheus recorder, installed on first use. A process has one global
/// recorder; every server started in it (tests start several) shares it.
fn handle() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".to_owned()),
                    &DURATION_BUCKETS,
                )
                .map_err(|err| err.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|err| err.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
}

/// The `# HELP` lines of the metrics this server and its crates record.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "mcp_auth_http_requests_total",
        "HTTP requests by endpoint and status"
    );
    describe_histogram!(
        "mcp_auth_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to the response's headers, by endpoint"
    );
    describe_counter!(
        "mcp_auth_oauth_errors_total",
        "OAuth error responses by error code"
    );
    describe_counter!(
        "mcp_auth_audit_events_total",
        "Audit events by event (sign-ins by outcome, reuse detected, rate limits hit, ...)"
    );
    describe_counter!(
        "mcp_auth_tokens_issued_total",
        "New grants' tokens by grant type"
    );
    describe_histogram!(
        "mcp_auth_storage_operation_duration_seconds",
        metrics::Unit::Seconds,
        "Storage operations by backend and operation"
    );
    describe_counter!(
        "mcp_auth_storage_errors_total",
        "Failed storage operations by backend, operation and kind"
    );
    describe_counter!(
        "mcp_auth_access_token_cache_total",
        "Access-token cache lookups by result (hit, miss)"
    );
    describe_counter!(
        "mcp_auth_unknown_token_cache_hits_total",
        "Presented tokens refused from the unknown-token cache, without a storage read"
    );
    describe_counter!(
        "mcp_auth_outbound_fetches_total",
        "Outbound fetches by fetcher (vetted, jwks, introspection) and outcome"
    );
    describe_gauge!("mcp_auth_mcp_sessions_open", "Open MCP sessions");
}

/// Installs the recorder and binds the metrics listener, before anything is recorded; the
/// returned future serves `/metrics` until `cancel` and keeps the histograms compacted.
pub(crate) async fn start(
    addr: SocketAddr,
    mut limits: ConnectionLimits,
    sessions: Arc<LocalSessionManager>,
    cancel: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + 'static, std::io::Error> {
    let handle = handle().map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving metrics at /metrics");
    let scrape = handle.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = scrape.clone();
                let sessions = Arc::clone(&sessions);
                async move {
                    let open = sessions.sessions.read().await.len();
                    metrics::gauge!("mcp_auth_mcp_sessions_open").set(open as f64);
                    (
                        [(
                            ::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        handle.render(),
                    )
                }
            }),
        )
        // Handlers become services once, not on every scrape (see `app::finish`).
        .with_state(());
    limits.max_connections = MAX_METRICS_CONNECTIONS;
    Ok(async move {
        let upkeep = async {
            let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                interval.tick().await;
                handle.run_upkeep();
            }
        };
        tokio::select! {
            () = crate::listener::serve_connections(listener, app, &limits, cancel.cancelled()) => {}
            () = upkeep => {}
        }
    })
}

/// Whether `--metrics-bind` asked for metrics (the layers that cost something per request are
/// added only then).
pub(crate) fn enabled(config: &crate::Config) -> bool {
    config.metrics_bind.is_some()
}
