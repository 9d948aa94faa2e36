//! Gateway mode (`--upstream`): `/mcp` proxied to an existing streamable-HTTP MCP server,
//! behind the same bearer, per-tool scope and session-binding layers as the demo tools, and
//! `/readyz`, which reports whether that server (and the store) can be reached.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use mcp_auth_core::ErrorChain;
use mcp_auth_gateway::{UpstreamConfigError, UpstreamHeader, UpstreamProxy};

use crate::store::{self, DynStorage};

/// Default seconds to the upstream's response headers (`--upstream-timeout`).
pub const DEFAULT_UPSTREAM_TIMEOUT: u64 = 30;

/// The most `--upstream-timeout` may be: a request that waits longer for its headers is a
/// stream that should have sent them.
pub const MAX_UPSTREAM_TIMEOUT: u64 = 3600;

/// `--upstream` and the settings that go with it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpstreamSettings {
    /// The upstream MCP endpoint (`http://` or `https://`, path included).
    pub url: String,
    /// Headers added to every upstream request; `Debug` redacts their values.
    pub headers: Vec<UpstreamHeader>,
    /// Seconds to the upstream's response headers.
    pub timeout: u64,
    /// Extra PEM roots for an https upstream (`--upstream-root-cert`), read at start.
    pub root_certificates_pem: Vec<u8>,
}

impl UpstreamSettings {
    /// Settings for `url` with no extra header and the default timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: Vec::new(),
            timeout: DEFAULT_UPSTREAM_TIMEOUT,
            root_certificates_pem: Vec::new(),
        }
    }

    /// The proxy these settings describe.
    pub fn proxy(&self) -> Result<UpstreamProxy, UpstreamConfigError> {
        self.proxy_forwarding(None)
    }

    /// The proxy these settings describe, forwarding `credential`'s answer for each principal
    /// in `X-MCP-Auth-Upstream-Token` when given.
    pub fn proxy_forwarding(
        &self,
        credential: Option<std::sync::Arc<dyn mcp_auth_gateway::PrincipalCredential>>,
    ) -> Result<UpstreamProxy, UpstreamConfigError> {
        let mut builder = UpstreamProxy::builder(self.url.as_str())
            .header_timeout(std::time::Duration::from_secs(self.timeout));
        for header in &self.headers {
            builder = builder.header(header.clone());
        }
        if !self.root_certificates_pem.is_empty() {
            builder = builder.root_certificates_pem(&self.root_certificates_pem)?;
        }
        if let Some(credential) = credential {
            builder = builder.forward_credential(credential);
        }
        builder.build()
    }
}

/// What `/readyz` checks: the store (absent in resource-server-only mode) and the upstream
/// (absent without `--upstream`).
#[derive(Clone)]
pub(crate) struct Readiness {
    pub(crate) storage: Option<DynStorage>,
    pub(crate) upstream: Option<UpstreamProxy>,
}

/// `/readyz`: 200 when every dependency answers, else 503 naming which one does not. The
/// upstream probe is single-file and cached for a second (see `UpstreamProxy::check_ready`),
/// so this unauthenticated route cannot be used to flood the upstream.
pub(crate) async fn readyz(State(readiness): State<Readiness>) -> Response {
    if let Some(storage) = &readiness.storage
        && let Err(err) = store::is_healthy(storage).await
    {
        tracing::error!(error = %ErrorChain(&err), "readiness: the store does not answer");
        return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
    }
    if let Some(upstream) = &readiness.upstream
        && !upstream.check_ready().await
    {
        tracing::warn!("readiness: the upstream MCP server does not answer");
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable\n").into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}
