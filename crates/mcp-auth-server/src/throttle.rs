//! Per-client-IP request budgets on the endpoints an anonymous caller can repeat, and the
//! client address they are counted against.
//!
//! The client address is the socket peer, unless the peer is a proxy the operator trusts
//! (`--trusted-proxy CIDR`): then it is the nearest address in `X-Forwarded-For` (or
//! `Forwarded: for=`) that is not itself a trusted proxy, reading from the right, because
//! every hop appends and only the hops we trust can be believed. IPv6 clients are counted per
//! /64, the smallest block a subscriber is routinely given, so one host cannot mint a fresh
//! budget per address.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use mcp_auth_axum::handlers::response::too_many_requests;
use mcp_auth_cimd::IpRange;
use mcp_auth_core::ErrorChain;
use mcp_auth_core::{Quota, RateDecision, RateLimitStore};

use crate::limits::EndpointQuotas;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpRange>);

/// `X-Forwarded-For` entries read at most, from the right: a longer chain than any real
/// deployment has is not walked (the header is attacker-controlled beyond our proxies).
const MAX_FORWARDED_HOPS: usize = 16;

impl TrustedProxies {
    pub(crate) fn new(ranges: Vec<IpRange>) -> Self {
        Self(ranges)
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(addr))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub(crate) fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_chain(headers)
            .into_iter()
            .rev()
            .take(MAX_FORWARDED_HOPS)
        {
            let Some(hop) = hop.map(canonical) else {
                // An entry we cannot read ("unknown", an obfuscated identifier): the last
                // trusted hop is the best we know.
                return client;
            };
            client = hop;
            if !self.trusts(hop) {
                return hop;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they are.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// The forwarding chain, left (client) to right (nearest hop): `Forwarded`'s `for=` when the
/// request has it (RFC 7239), else `X-Forwarded-For`. An unreadable entry is `None`.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<Option<IpAddr>> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_forwarded_node(value.trim()))
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|entry| entry.trim().parse().ok())
        .collect()
}

/// A `Forwarded` node: `192.0.2.1`, `"192.0.2.1:4711"`, `"[2001:db8::1]:4711"`.
fn parse_forwarded_node(node: &str) -> Option<IpAddr> {
    let node = node.trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.split(':').next()?.parse().ok()
}

/// The budget key for a client address: the address, or its /64 for IPv6.
pub(crate) fn client_key(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let prefix = Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            );
            format!("{prefix}/64")
        }
    }
}

/// What the rate-limit middleware needs.
#[derive(Debug, Clone)]
pub(crate) struct Throttle {
    pub(crate) limiter: Arc<dyn RateLimitStore>,
    pub(crate) proxies: TrustedProxies,
    /// `(path, budget name, quota)` for each limited endpoint.
    routes: Arc<Vec<(String, &'static str, Quota)>>,
}

impl Throttle {
    /// Budgets for the endpoints under the issuer path `base` (`""` for a root issuer) and the
    /// sign-in page at `sign_in_path`.
    pub(crate) fn new(
        limiter: Arc<dyn RateLimitStore>,
        proxies: TrustedProxies,
        base: &str,
        sign_in_path: &str,
        quotas: EndpointQuotas,
    ) -> Self {
        let base = base.trim_end_matches('/');
        let routes = [
            ("/register", "register", quotas.register),
            ("/token", "token", quotas.token),
            ("/authorize", "authorize", quotas.authorize),
            ("/revoke", "revoke", quotas.revoke),
            ("/introspect", "introspect", quotas.introspect),
        ]
        .into_iter()
        .map(|(path, name, quota)| (format!("{base}{path}"), name, quota))
        // The sign-in page and its OpenID Connect steps spend one budget.
        .chain(
            ["", "/oidc", "/oidc/callback", "/oidc/consent"]
                .map(|step| (format!("{sign_in_path}{step}"), "sign-in", quotas.sign_in)),
        )
        .filter_map(|(path, name, quota)| quota.map(|quota| (path, name, quota)))
        .collect();
        Self {
            limiter,
            proxies,
            routes: Arc::new(routes),
        }
    }

    /// The client address of `request` (its peer, or the forwarded address behind a trusted
    /// proxy). A request without a peer (an in-process `oneshot`) counts as unspecified.
    pub(crate) fn client_ip(
        &self,
        request_headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> IpAddr {
        let peer = peer.map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |peer| peer.ip());
        self.proxies.client_ip(peer, request_headers)
    }

    /// Takes one unit of `key`'s budget; a store that cannot answer lets the request through
    /// (the limit protects the store, and refusing everyone during its outage would turn a
    /// degraded store into a full outage), logging why.
    pub(crate) async fn admit(&self, key: &str, quota: Quota) -> Option<Response> {
        match self.limiter.acquire(key, quota).await {
            Ok(RateDecision::Allowed) => None,
            Ok(RateDecision::Limited { retry_after }) => {
                let (budget, client) = key.split_once(':').unwrap_or((key, ""));
                mcp_auth_core::audit_event!(
                    mcp_auth_core::audit::RATE_LIMITED,
                    budget,
                    client,
                    retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                );
                Some(
                    too_many_requests(retry_after)
                        .map(axum::body::Body::from)
                        .into_response(),
                )
            }
            Err(err) => {
                tracing::warn!(error = %ErrorChain(&err), "rate limiter unavailable; not limiting");
                None
            }
        }
    }
}

/// The middleware: counts each request to a limited endpoint against its client's budget and
/// answers 429 with `Retry-After` once it is spent.
pub(crate) async fn limit_requests(
    State(throttle): State<Throttle>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let Some((_, name, quota)) = throttle.routes.iter().find(|(p, _, _)| p == path) else {
        return next.run(request).await;
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let client = throttle.client_ip(request.headers(), peer);
    let key = format!("{name}:{}", client_key(client));
    if let Some(refusal) = throttle.admit(&key, *quota).await {
        return refusal;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn forwarding_headers_count_only_behind_a_trusted_proxy() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.7, 10.0.0.2")]);
        let none = proxies(&[]);
        let lb = proxies(&["10.0.0.0/8"]);
        for (trusted, peer, headers, client) in [
            // No trusted proxy: the header is whatever the client wrote.
            (&none, "10.0.0.1", &xff, "10.0.0.1"),
            // From a trusted proxy: the rightmost untrusted hop.
            (&lb, "10.0.0.1", &xff, "198.51.100.7"),
            // A client spoofing a chain in front of our proxy gets the address our proxy saw.
            (
                &lb,
                "10.0.0.1",
                &headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.5")]),
                "203.0.113.5",
            ),
            // A peer outside the trusted range is the client, whatever it forwards.
            (&lb, "192.0.2.9", &xff, "192.0.2.9"),
            // RFC 7239 Forwarded, quoted with a port, and IPv6 in brackets.
            (
                &lb,
                "10.0.0.1",
                &headers(&[("forwarded", "for=\"198.51.100.8:4711\";proto=https")]),
                "198.51.100.8",
            ),
            (
                &lb,
                "10.0.0.1",
                &headers(&[("forwarded", "for=\"[2001:db8::1]:4711\"")]),
                "2001:db8::1",
            ),
            // An unreadable entry stops the walk at the last trusted hop.
            (
                &lb,
                "10.0.0.1",
                &headers(&[("x-forwarded-for", "unknown")]),
                "10.0.0.1",
            ),
            // IPv4-mapped peers are IPv4.
            (&none, "::ffff:192.0.2.1", &HeaderMap::new(), "192.0.2.1"),
        ] {
            assert_eq!(
                trusted.client_ip(ip(peer), headers),
                ip(client),
                "{peer} {headers:?}"
            );
        }
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("192.0.2.1"), "192.0.2.1");
    }
}
