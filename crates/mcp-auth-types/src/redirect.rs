//! Redirect URIs: matching, registration rules and building the redirect.

use url::Url;

use crate::limits::contains_control_character;

/// Hosts RFC 8252 §7.3 treats as loopback for native apps.
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// Whether `requested` may be used for a client that registered `registered`.
///
/// Redirect URIs are compared as exact strings (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3): any
/// normalisation would let an attacker find a URI that normalises to a registered one. The one
/// exception is RFC 8252 §7.3: for an `http` loopback URI the port may differ, because a native
/// app listens on whatever ephemeral port the OS gives it. Scheme, host, path and query must
/// still be identical.
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (loopback_parts(registered), loopback_parts(requested)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// For an `http` loopback URI, its host and everything after the port; `None` otherwise.
fn loopback_parts(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return None;
    }
    let host = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, port) = authority.split_at(close + 1);
        valid_port(port)?;
        host
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if let Some(port) = port {
            valid_port(&format!(":{port}"))?;
        }
        host
    };
    LOOPBACK_HOSTS.contains(&host).then_some((host, tail))
}

fn valid_port(port: &str) -> Option<()> {
    match port.strip_prefix(':') {
        None if port.is_empty() => Some(()),
        Some(digits) if !digits.is_empty() && digits.len() <= 5 => {
            digits.parse::<u16>().ok().map(|_| ())
        }
        _ => None,
    }
}

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectUriRejection {
    /// Not an absolute URI.
    #[error("redirect URI is not an absolute URI")]
    NotAbsolute,
    /// Contains a fragment (RFC 6749 §3.1.2).
    #[error("redirect URI must not contain a fragment")]
    Fragment,
    /// Plain `http` to a host other than loopback.
    #[error("redirect URI must use https, or http on a loopback host")]
    InsecureScheme,
    /// Holds a control character ([`contains_control_character`]). A URL parser would strip
    /// some (tab, newline) and percent-encode others (NUL), so the URI as registered would not
    /// be the URI used.
    #[error("redirect URI must not contain control characters")]
    ControlCharacter,
}

/// Checks a redirect URI offered at registration: absolute, no fragment (RFC 6749 §3.1.2), and
/// `https` or loopback `http` (MCP authorization spec, "Communication Security"). Private-use
/// schemes of native apps (RFC 8252 §7.1, e.g. `com.example.app:/cb`) are accepted since they
/// never travel over a network.
pub fn check_registrable_redirect_uri(uri: &str) -> Result<(), RedirectUriRejection> {
    if contains_control_character(uri) {
        return Err(RedirectUriRejection::ControlCharacter);
    }
    let parsed = Url::parse(uri).map_err(|_| RedirectUriRejection::NotAbsolute)?;
    if uri.contains('#') {
        return Err(RedirectUriRejection::Fragment);
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback_parts(uri).is_some() => Ok(()),
        "http" => Err(RedirectUriRejection::InsecureScheme),
        // Private-use schemes must contain a period (RFC 8252 §7.1); anything else, such as
        // `javascript:` or `data:`, is refused.
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(RedirectUriRejection::InsecureScheme),
    }
}

/// Appends `params` (skipping `None`) to `base`'s query, keeping the query the URI already has
/// byte for byte (RFC 6749 §3.1.2: the endpoint URI "MAY include a query component which MUST be
/// retained when adding additional query parameters").
///
/// The Python SDK re-encodes the existing query through `parse_qs`, which drops blank values;
/// this keeps them.
pub fn construct_redirect_uri(base: &str, params: &[(&str, Option<&str>)]) -> String {
    let (without_fragment, fragment) = match base.split_once('#') {
        Some((head, fragment)) => (head, Some(fragment)),
        None => (base, None),
    };
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if let Some(value) = value {
            serializer.append_pair(name, value);
        }
    }
    let added = serializer.finish();
    let mut out = String::with_capacity(without_fragment.len() + added.len() + 2);
    out.push_str(without_fragment);
    if !added.is_empty() {
        match without_fragment.split_once('?') {
            None => out.push('?'),
            Some((_, query)) if query.is_empty() || query.ends_with('&') => {}
            Some(_) => out.push('&'),
        }
        out.push_str(&added);
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_matching() {
        let cases = [
            ("https://a.example/cb", "https://a.example/cb", true),
            ("https://a.example/cb", "https://a.example/cb/", false),
            ("https://a.example/cb", "https://A.example/cb", false),
            ("https://a.example:443/cb", "https://a.example/cb", false),
            ("https://a.example:1/cb", "https://a.example:2/cb", false),
            ("http://127.0.0.1:1/cb", "http://127.0.0.1:2/cb", true),
            ("http://127.0.0.1/cb", "http://127.0.0.1:49152/cb", true),
            ("http://[::1]:1/cb", "http://[::1]:2/cb", true),
            ("http://localhost:1/cb", "http://localhost:2/cb", true),
            ("http://localhost:1/cb", "http://localhost:2/other", false),
            (
                "http://localhost:1/cb?x=1",
                "http://localhost:2/cb?x=2",
                false,
            ),
            ("http://localhost:1/cb", "http://127.0.0.1:1/cb", false),
            ("http://localhost:1/cb", "http://localhost.evil:1/cb", false),
            (
                "http://127.0.0.1:1/cb",
                "http://127.0.0.1.evil.com:1/cb",
                false,
            ),
            ("http://localhost:1/cb", "http://localhost:x/cb", false),
            ("http://localhost:1/cb", "http://user@localhost:1/cb", false),
            ("http://localhost:1/cb", "https://localhost:1/cb", false),
        ];
        for (registered, requested, expected) in cases {
            assert_eq!(
                redirect_uri_matches(registered, requested),
                expected,
                "{registered} vs {requested}"
            );
        }
    }

    #[test]
    fn registrable_redirect_uris() {
        let cases: [(&str, Result<(), RedirectUriRejection>); 12] = [
            ("https://a.example/cb", Ok(())),
            ("http://localhost:3000/cb", Ok(())),
            ("http://127.0.0.1/cb", Ok(())),
            ("http://[::1]:8/cb", Ok(())),
            ("com.example.app:/cb", Ok(())),
            (
                "http://a.example/cb",
                Err(RedirectUriRejection::InsecureScheme),
            ),
            (
                "https://a.example/cb#x",
                Err(RedirectUriRejection::Fragment),
            ),
            (
                "javascript:alert(1)",
                Err(RedirectUriRejection::InsecureScheme),
            ),
            ("/relative", Err(RedirectUriRejection::NotAbsolute)),
            (
                "https://a.example/cb\u{0}",
                Err(RedirectUriRejection::ControlCharacter),
            ),
            (
                "http://127.0.0.1/c\tb",
                Err(RedirectUriRejection::ControlCharacter),
            ),
            (
                "com.example.app:/cb\u{7f}",
                Err(RedirectUriRejection::ControlCharacter),
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(check_registrable_redirect_uri(uri), expected, "{uri}");
        }
    }

    #[test]
    fn construct_keeps_existing_query() {
        let cases = [
            (
                "https://a.example/cb",
                "https://a.example/cb?code=c&state=s",
            ),
            (
                "https://a.example/cb?x=1",
                "https://a.example/cb?x=1&code=c&state=s",
            ),
            (
                "https://a.example/cb?x=",
                "https://a.example/cb?x=&code=c&state=s",
            ),
            (
                "https://a.example/cb?",
                "https://a.example/cb?code=c&state=s",
            ),
            (
                "https://a.example/cb?x=1&",
                "https://a.example/cb?x=1&code=c&state=s",
            ),
        ];
        for (base, expected) in cases {
            let out = construct_redirect_uri(
                base,
                &[("code", Some("c")), ("state", Some("s")), ("iss", None)],
            );
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn construct_encodes_values() {
        let out = construct_redirect_uri("https://a.example/cb", &[("state", Some("a b&c=d"))]);
        assert_eq!(out, "https://a.example/cb?state=a+b%26c%3Dd");
        assert_eq!(
            construct_redirect_uri("https://a.example/cb", &[]),
            "https://a.example/cb"
        );
    }
}
