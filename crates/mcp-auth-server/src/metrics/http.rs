//! Requests by endpoint and status, and their latency to the response's headers.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{Request, Response};
use tower::{Layer, Service};

/// Counts every request in `mcp_auth_http_requests_total{endpoint, status}` and times it in
/// `mcp_auth_http_request_duration_seconds{endpoint}`. The endpoint label is one of a fixed set
/// of names ([`endpoint`]), never the path a client chose, so the series stay bounded.
#[derive(Clone, Debug)]
pub(crate) struct HttpMetricsLayer {
    base: std::sync::Arc<str>,
}

impl HttpMetricsLayer {
    /// For a server whose OAuth endpoints live under the issuer path `base` (`""` at the root).
    pub(crate) fn new(base: &str) -> Self {
        Self {
            base: std::sync::Arc::from(base.trim_end_matches('/')),
        }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics {
            inner,
            base: std::sync::Arc::clone(&self.base),
        }
    }
}

/// The service of [`HttpMetricsLayer`].
#[derive(Clone, Debug)]
pub(crate) struct HttpMetrics<S> {
    inner: S,
    base: std::sync::Arc<str>,
}

/// The endpoint label of `path`: the OAuth endpoints under `base`, the well-known documents,
/// the sign-in page, `/mcp`, `/healthz`, and `other` for everything else.
pub(crate) fn endpoint(base: &str, path: &str) -> &'static str {
    if let Some(suffix) = path.strip_prefix(base) {
        match suffix {
            "/token" => return "token",
            "/authorize" => return "authorize",
            "/register" => return "register",
            "/revoke" => return "revoke",
            "/introspect" => return "introspect",
            "/sign-in" => return "sign_in",
            "/.well-known/jwks.json" => return "jwks",
            _ => {}
        }
    }
    match path {
        "/mcp" => "mcp",
        "/healthz" => "healthz",
        _ if path.starts_with("/.well-known/oauth-protected-resource") => {
            "protected_resource_metadata"
        }
        _ if path.contains("/.well-known/") => "authorization_server_metadata",
        _ => "other",
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let endpoint = endpoint(&self.base, request.uri().path());
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            metrics::histogram!("mcp_auth_http_request_duration_seconds", "endpoint" => endpoint)
                .record(started.elapsed().as_secs_f64());
            metrics::counter!(
                "mcp_auth_http_requests_total",
                "endpoint" => endpoint,
                "status" => status_label(response.status()),
            )
            .increment(1);
            Ok(response)
        })
    }
}

/// The status code as a label without allocating for the common ones.
fn status_label(status: axum::http::StatusCode) -> std::borrow::Cow<'static, str> {
    let known = match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        302 => "302",
        303 => "303",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        413 => "413",
        429 => "429",
        500 => "500",
        503 => "503",
        other => return std::borrow::Cow::Owned(other.to_string()),
    };
    std::borrow::Cow::Borrowed(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_a_fixed_set_whatever_the_path() {
        for (base, path, expected) in [
            ("", "/token", "token"),
            ("/tenant", "/tenant/token", "token"),
            ("/tenant", "/token", "other"),
            ("", "/sign-in", "sign_in"),
            ("", "/.well-known/jwks.json", "jwks"),
            (
                "",
                "/.well-known/oauth-authorization-server",
                "authorization_server_metadata",
            ),
            (
                "/t",
                "/.well-known/openid-configuration/t",
                "authorization_server_metadata",
            ),
            (
                "",
                "/.well-known/oauth-protected-resource/mcp",
                "protected_resource_metadata",
            ),
            ("", "/mcp", "mcp"),
            ("", "/healthz", "healthz"),
            ("", "/made-up/path/number/12345", "other"),
        ] {
            assert_eq!(endpoint(base, path), expected, "{base} {path}");
        }
    }
}
