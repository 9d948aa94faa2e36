//! Issuer and resource URLs: RFC 8414 issuer rules, RFC 8707 resource indicators, RFC 9728
//! metadata locations.

use url::Url;

/// Hosts on which plain `http` is tolerated for an issuer, so that local development works.
const LOCAL_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Why an issuer URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerUrlError {
    /// Not an absolute URL.
    #[error("issuer URL is not an absolute URL")]
    NotAbsolute,
    /// Plain `http` on a host other than `localhost`, `127.0.0.1` or `[::1]`.
    #[error("issuer URL must use https (http is allowed only for localhost, 127.0.0.1 and [::1])")]
    NotHttps,
    /// Has a query component (RFC 8414 §2).
    #[error("issuer URL must not have a query component")]
    Query,
    /// Has a fragment component (RFC 8414 §2).
    #[error("issuer URL must not have a fragment component")]
    Fragment,
    /// Carries userinfo (`user@host`): an issuer is compared as a string and shown to users,
    /// and userinfo there only serves to disguise the real host.
    #[error("issuer URL must not contain userinfo")]
    Userinfo,
}

/// A validated issuer identifier (RFC 8414 §2), kept as the exact string it was given.
///
/// RFC 8414 §3.3 and RFC 9207 §2.4 compare issuers as exact strings, so the value is never
/// re-serialised: `https://as.example` stays without the slash a URL parser would add.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IssuerUrl(String);

impl IssuerUrl {
    /// The issuer, byte for byte as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The issuer with any trailing slash removed, for appending endpoint paths.
    pub fn base(&self) -> &str {
        self.0.trim_end_matches('/')
    }

    /// The issuer's path component without a trailing slash (`""` for a path-less issuer).
    pub fn path(&self) -> &str {
        let after_scheme = self.0.split_once("://").map_or("", |(_, rest)| rest);
        after_scheme
            .find('/')
            .map_or("", |i| after_scheme[i..].trim_end_matches('/'))
    }

    /// `scheme://authority` of the issuer.
    pub fn origin(&self) -> &str {
        let path = self.path();
        let base = self.base();
        &base[..base.len() - path.len()]
    }

    /// An endpoint URL under the issuer, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }
}

impl std::fmt::Display for IssuerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates an issuer identifier: `https` (or `http` only for exactly `localhost`,
/// `127.0.0.1` or `[::1]`), no query, no fragment (RFC 8414 §2), no userinfo.
pub fn validate_issuer_url(url: &str) -> Result<IssuerUrl, IssuerUrlError> {
    let parsed = Url::parse(url).map_err(|_| IssuerUrlError::NotAbsolute)?;
    if !parsed.has_host() {
        return Err(IssuerUrlError::NotAbsolute);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(IssuerUrlError::Userinfo);
    }
    let host = host_as_written(url);
    match parsed.scheme() {
        "https" => {}
        "http" if LOCAL_HOSTS.contains(&host) => {}
        _ => return Err(IssuerUrlError::NotHttps),
    }
    if url.contains('#') {
        return Err(IssuerUrlError::Fragment);
    }
    if url.contains('?') {
        return Err(IssuerUrlError::Query);
    }
    Ok(IssuerUrl(url.to_owned()))
}

/// The host of an absolute URL as written (without port or userinfo), lower-cased comparison
/// being the caller's business.
fn host_as_written(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if authority.starts_with('[') {
        authority.find(']').map_or(authority, |i| &authority[..=i])
    } else {
        authority.split(':').next().unwrap_or(authority)
    }
}

/// Whether `url` can be a resource indicator (RFC 8707 §2): an absolute `http` or `https` URL
/// (scheme compared case-insensitively) with a host and without a fragment, that a URL parser
/// accepts (so not `https://host:99999/`). What every configured resource — a protected MCP
/// endpoint, an audience a verifier checks — must be.
pub fn is_resource_indicator(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    (scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http"))
        && !rest.is_empty()
        && !rest.starts_with(['/', '?'])
        && !url.contains('#')
        && Url::parse(url).is_ok()
}

/// The canonical resource indicator for a server URL (RFC 8707 §2): scheme and host
/// lower-cased, fragment removed, everything else kept.
pub fn resource_url_from_server_url(url: &str) -> String {
    let without_fragment = url.split_once('#').map_or(url, |(head, _)| head);
    let Some((scheme, rest)) = without_fragment.split_once("://") else {
        return without_fragment.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    format!(
        "{}://{}{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase(),
        tail
    )
}

/// Whether `requested` falls under `configured`: same origin (scheme, host and port), and the
/// requested path starts with the configured path after both get a trailing slash, so that
/// `/api` covers `/api/x` but not `/api123`.
pub fn check_resource_allowed(requested: &str, configured: &str) -> bool {
    let (Ok(requested), Ok(configured)) = (Url::parse(requested), Url::parse(configured)) else {
        return false;
    };
    if requested.scheme() != configured.scheme()
        || requested.host_str() != configured.host_str()
        || requested.port_or_known_default() != configured.port_or_known_default()
    {
        return false;
    }
    let with_slash = |path: &str| {
        if path.ends_with('/') {
            path.to_owned()
        } else {
            format!("{path}/")
        }
    };
    with_slash(requested.path()).starts_with(&with_slash(configured.path()))
}

/// Whether a token bound to `resource` is for exactly the resource `audience` (RFC 8707 §2,
/// MCP specification "Token Handling"): both are compared as URLs after the normalisation every
/// URL parser applies — scheme and host case, the default port, an empty path read as `/` — and
/// without their fragments; everything else, the path included, must be identical.
///
/// A path beneath the audience is a different resource: a token for
/// `https://mcp.example.com/mcp/sub` is not one for `https://mcp.example.com/mcp`, nor the
/// reverse. Resource indicators name one protected resource each, and another server under a
/// sub-path of the same origin must not be able to replay its tokens here. Strings that do not
/// parse as absolute URLs match only when byte-identical.
pub fn resource_matches(resource: &str, audience: &str) -> bool {
    if resource == audience {
        return true;
    }
    let normalise = |value: &str| {
        Url::parse(value).ok().map(|mut url| {
            url.set_fragment(None);
            url
        })
    };
    match (normalise(resource), normalise(audience)) {
        (Some(resource), Some(audience)) => resource == audience,
        _ => false,
    }
}

/// The RFC 9728 §3.1 metadata URL of a protected resource: `/.well-known/oauth-protected-resource`
/// inserted between the host and the resource's path (a lone `/` path counts as empty).
pub fn build_resource_metadata_url(resource_url: &str) -> String {
    well_known_url(resource_url, "oauth-protected-resource")
}

/// The RFC 8414 §3.1 metadata URL of an authorization server: the well-known suffix inserted
/// between the host and the issuer's path.
pub fn build_authorization_server_metadata_url(issuer: &IssuerUrl) -> String {
    format!(
        "{}/.well-known/oauth-authorization-server{}",
        issuer.origin(),
        issuer.path()
    )
}

fn well_known_url(url: &str, suffix: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("/.well-known/{suffix}");
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let path = tail.split(['?', '#']).next().unwrap_or("");
    let path = if path == "/" { "" } else { path };
    format!("{scheme}://{authority}/.well-known/{suffix}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_indicators_are_absolute_http_urls_without_a_fragment() {
        for url in [
            "https://mcp.example/mcp",
            "HTTP://127.0.0.1:8080/mcp",
            "https://x",
        ] {
            assert!(is_resource_indicator(url), "{url}");
        }
        for url in [
            "mcp",
            "https://",
            "https:///mcp",
            "ftp://x/y",
            "https://x/#f",
            "//x/y",
            // Shaped right, but no URL parser accepts it.
            "https://mcp.example.com:99999/mcp",
            "https://exa mple.com/mcp",
        ] {
            assert!(!is_resource_indicator(url), "{url}");
        }
    }

    #[test]
    fn issuer_validation() {
        let ok = [
            "https://as.example",
            "https://as.example/",
            "https://as.example/tenant",
            "http://localhost:8080",
            "http://127.0.0.1",
            "http://[::1]:9000/x",
        ];
        for url in ok {
            assert_eq!(
                validate_issuer_url(url).map(|i| i.0),
                Ok(url.to_owned()),
                "{url}"
            );
        }
        let bad = [
            ("http://as.example", IssuerUrlError::NotHttps),
            ("http://localhost.example", IssuerUrlError::NotHttps),
            ("http://127.0.0.2", IssuerUrlError::NotHttps),
            ("http://127.0.0.1.evil.com", IssuerUrlError::NotHttps),
            ("http://localhost@evil.com", IssuerUrlError::Userinfo),
            ("http://evil.com@localhost", IssuerUrlError::Userinfo),
            ("https://user:pw@as.example", IssuerUrlError::Userinfo),
            ("ftp://localhost", IssuerUrlError::NotHttps),
            ("https://as.example?x=1", IssuerUrlError::Query),
            ("https://as.example?", IssuerUrlError::Query),
            ("https://as.example#f", IssuerUrlError::Fragment),
            ("as.example", IssuerUrlError::NotAbsolute),
        ];
        for (url, err) in bad {
            assert_eq!(validate_issuer_url(url), Err(err), "{url}");
        }
    }

    #[test]
    fn resources_match_exactly_after_url_normalisation() {
        let audience = "https://mcp.example.com/mcp";
        let cases = [
            ("https://mcp.example.com/mcp", true),
            ("HTTPS://MCP.Example.COM/mcp", true),
            ("https://mcp.example.com:443/mcp", true),
            ("https://mcp.example.com/mcp#f", true),
            ("https://mcp.example.com/mcp/sub", false),
            ("https://mcp.example.com/mcp/", false),
            ("https://mcp.example.com/MCP", false),
            ("https://mcp.example.com/mcp2", false),
            ("https://mcp.example.com", false),
            ("https://mcp.example.com:8443/mcp", false),
            ("http://mcp.example.com/mcp", false),
            ("https://mcp.example.com/mcp?x=1", false),
            ("not a url", false),
        ];
        for (resource, expect) in cases {
            assert_eq!(resource_matches(resource, audience), expect, "{resource}");
        }
        assert!(!resource_matches(
            audience,
            "https://mcp.example.com/mcp/sub"
        ));
        assert!(resource_matches("https://a.example", "https://a.example/"));
        assert!(resource_matches("not a url", "not a url"));
    }

    #[test]
    fn pathless_issuer_keeps_its_exact_string() {
        let issuer = validate_issuer_url("https://as.example").unwrap();
        assert_eq!(issuer.as_str(), "https://as.example");
        assert_eq!(issuer.endpoint("/token"), "https://as.example/token");
        assert_eq!(
            build_authorization_server_metadata_url(&issuer),
            "https://as.example/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn issuer_with_path_gets_path_inserted_metadata_url() {
        let issuer = validate_issuer_url("https://as.example/tenant1/").unwrap();
        assert_eq!(issuer.path(), "/tenant1");
        assert_eq!(issuer.origin(), "https://as.example");
        assert_eq!(
            build_authorization_server_metadata_url(&issuer),
            "https://as.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            issuer.endpoint("/authorize"),
            "https://as.example/tenant1/authorize"
        );
    }

    #[test]
    fn resource_url_canonicalisation() {
        let cases = [
            ("HTTPS://API.Example.COM/MCP", "https://api.example.com/MCP"),
            (
                "https://api.example.com/mcp#frag",
                "https://api.example.com/mcp",
            ),
            (
                "https://api.example.com:8443",
                "https://api.example.com:8443",
            ),
            (
                "https://api.example.com/mcp?x=Y",
                "https://api.example.com/mcp?x=Y",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(resource_url_from_server_url(input), expected);
        }
    }

    #[test]
    fn resource_allowed_by_origin_and_path_prefix() {
        let cases = [
            ("https://a.example/mcp", "https://a.example/mcp", true),
            ("https://a.example/mcp/", "https://a.example/mcp", true),
            ("https://a.example/mcp", "https://a.example/mcp/", true),
            ("https://a.example/mcp/tools", "https://a.example/mcp", true),
            ("https://a.example/mcp123", "https://a.example/mcp", false),
            ("https://a.example/other", "https://a.example/mcp", false),
            (
                "https://a.example/mcp",
                "https://a.example/mcp/tools",
                false,
            ),
            ("http://a.example/mcp", "https://a.example/mcp", false),
            ("https://b.example/mcp", "https://a.example/mcp", false),
            ("https://a.example:8443/mcp", "https://a.example/mcp", false),
            ("https://a.example:443/mcp", "https://a.example/mcp", true),
            ("https://A.EXAMPLE/mcp", "https://a.example/mcp", true),
            ("https://a.example/", "https://a.example", true),
            ("not a url", "https://a.example", false),
        ];
        for (requested, configured, expected) in cases {
            assert_eq!(
                check_resource_allowed(requested, configured),
                expected,
                "{requested} under {configured}"
            );
        }
    }

    #[test]
    fn resource_metadata_url_inserts_well_known() {
        let cases = [
            (
                "https://a.example/mcp",
                "https://a.example/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "https://a.example/",
                "https://a.example/.well-known/oauth-protected-resource",
            ),
            (
                "https://a.example",
                "https://a.example/.well-known/oauth-protected-resource",
            ),
            (
                "http://127.0.0.1:8/a/b",
                "http://127.0.0.1:8/.well-known/oauth-protected-resource/a/b",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(build_resource_metadata_url(input), expected);
        }
    }
}
