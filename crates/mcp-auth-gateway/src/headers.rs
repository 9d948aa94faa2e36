//! Which headers cross the gateway, in each direction.
//!
//! Requests lose every credential of the client and every identity header it tried to set,
//! then gain the verified identity and the operator's headers. Responses lose what belongs
//! to one hop and the upstream's cookies. Both lose the hop-by-hop headers of RFC 9110
//! §7.6.1, including those the `Connection` header names.

use std::str::FromStr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use mcp_auth_types::AccessToken;

/// The verified token's subject: the user's, or for a `client_credentials` token the client's
/// own id; absent only for a token without a subject.
pub const SUBJECT_HEADER: HeaderName = HeaderName::from_static("x-mcp-auth-subject");
/// The verified token's client.
pub const CLIENT_ID_HEADER: HeaderName = HeaderName::from_static("x-mcp-auth-client-id");
/// The verified token's scopes, space-separated.
pub const SCOPES_HEADER: HeaderName = HeaderName::from_static("x-mcp-auth-scopes");

/// Every header whose name starts with this is the gateway's to set: a client's copy is
/// removed, and an operator header may not use it.
pub const IDENTITY_HEADER_PREFIX: &str = "x-mcp-auth-";

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy `proxy-connection` and `keep-alive`);
/// `expect` is answered by this server's own HTTP stack, so it is not repeated upstream.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
];

/// What a client says about the way its request came (addresses, hosts, schemes, and the
/// user names some proxies pass on): the upstream reaches only through the gateway, so it
/// would read these as the gateway's word. Removed; the verified identity is in
/// `X-MCP-Auth-*`.
const CLIENT_CLAIMS: [&str; 7] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-forwarded-user",
    "remote-user",
];

/// A header the operator adds to every upstream request (`"NAME: VALUE"`), such as the
/// upstream's own API key. Its value is a secret: `Debug` shows only the name.
#[derive(Clone)]
pub struct UpstreamHeader {
    name: HeaderName,
    value: HeaderValue,
}

impl UpstreamHeader {
    /// The header's name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    pub(crate) fn pair(&self) -> (&HeaderName, &HeaderValue) {
        (&self.name, &self.value)
    }
}

impl std::fmt::Debug for UpstreamHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: [redacted]", self.name)
    }
}

/// Why an upstream header was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamHeaderError {
    /// Not `NAME: VALUE`.
    #[error("expected \"NAME: VALUE\"")]
    Syntax,
    /// The name is not a valid header name.
    #[error("{0:?} is not a valid header name")]
    Name(String),
    /// The value holds a character a header value cannot.
    #[error("the value of {0} holds a character a header value cannot")]
    Value(String),
    /// The name is one the gateway sets or the connection owns.
    #[error("{0} is set by the gateway or by the connection, not by --upstream-header")]
    Reserved(String),
}

impl FromStr for UpstreamHeader {
    type Err = UpstreamHeaderError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let (name, value) = line.split_once(':').ok_or(UpstreamHeaderError::Syntax)?;
        let name = name.trim();
        let name =
            HeaderName::from_str(name).map_err(|_| UpstreamHeaderError::Name(name.to_owned()))?;
        if name.as_str().starts_with(IDENTITY_HEADER_PREFIX)
            || HOP_BY_HOP.contains(&name)
            || [header::HOST, header::CONTENT_LENGTH].contains(&name)
        {
            return Err(UpstreamHeaderError::Reserved(name.to_string()));
        }
        let mut value = HeaderValue::from_str(value.trim())
            .map_err(|_| UpstreamHeaderError::Value(name.to_string()))?;
        value.set_sensitive(true);
        Ok(Self { name, value })
    }
}

/// The identity could not be written as header values: the subject or client id holds a
/// control character.
#[derive(Debug)]
pub(crate) struct IdentityNotForwardable;

/// The headers the upstream receives for a request with `client` headers, made by the holder
/// of `token`.
pub(crate) fn to_upstream(
    client: &HeaderMap,
    token: &AccessToken,
    operator: &[UpstreamHeader],
) -> Result<HeaderMap, IdentityNotForwardable> {
    let mut headers = HeaderMap::with_capacity(client.len() + operator.len() + 3);
    let named_by_connection = connection_named(client);
    for (name, value) in client {
        let name_str = name.as_str();
        let credential = matches!(
            *name,
            header::AUTHORIZATION | header::COOKIE | header::PROXY_AUTHORIZATION | header::HOST
        );
        if credential
            || name_str.starts_with(IDENTITY_HEADER_PREFIX)
            || CLIENT_CLAIMS.contains(&name_str)
            || HOP_BY_HOP.contains(name)
            || named_by_connection.contains(name)
            || operator.iter().any(|header| header.name == *name)
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    // UTF-8 goes through as its bytes (obs-text); only control characters are refused.
    let value = |text: &str| HeaderValue::from_bytes(text.as_bytes());
    if let Some(subject) = &token.subject {
        headers.insert(
            SUBJECT_HEADER,
            value(subject).map_err(|_| IdentityNotForwardable)?,
        );
    }
    headers.insert(
        CLIENT_ID_HEADER,
        value(&token.client_id).map_err(|_| IdentityNotForwardable)?,
    );
    headers.insert(
        SCOPES_HEADER,
        value(&token.scopes.join(" ")).map_err(|_| IdentityNotForwardable)?,
    );
    for header in operator {
        headers.insert(header.name.clone(), header.value.clone());
    }
    Ok(headers)
}

/// Removes from the upstream's response headers what must not reach the client.
pub(crate) fn from_upstream(headers: &mut HeaderMap) {
    for name in connection_named(headers) {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::SET_COOKIE);
}

/// The header names a `Connection` header lists (RFC 9110 §7.6.1): they are this hop's only.
/// Never the MCP transport's own end-to-end headers: a client naming `Mcp-Session-Id` there
/// would have the session binding admit its session while the upstream saw none (and opened
/// a new, unbound one).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|name| HeaderName::from_str(name.trim()).ok())
        .filter(|name| {
            !name.as_str().starts_with("mcp-")
                && !matches!(
                    name.as_str(),
                    "last-event-id" | "content-type" | "content-length" | "accept"
                )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use mcp_auth_types::AccessTokenSecret;

    use super::*;

    fn token(subject: Option<&str>) -> AccessToken {
        let mut token = AccessToken::new(
            AccessTokenSecret::new("secret-token"),
            "client-1",
            vec!["mcp:tools".to_owned(), "mcp:admin".to_owned()],
        );
        token.subject = subject.map(str::to_owned);
        token
    }

    fn client_headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_str(name).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn credentials_and_forged_identity_never_reach_the_upstream() {
        let client = client_headers(&[
            ("authorization", "Bearer secret-token"),
            ("cookie", "mcp_auth_sign_in=abc"),
            ("proxy-authorization", "Basic eDp5"),
            ("x-mcp-auth-subject", "root"),
            ("X-MCP-Auth-Scopes", "everything"),
            ("x-mcp-auth-upstream-token", "forged"),
            ("host", "gateway.example"),
            ("mcp-session-id", "s-1"),
            ("mcp-protocol-version", "2025-06-18"),
            ("last-event-id", "7"),
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json"),
        ]);
        let headers = to_upstream(&client, &token(Some("alice")), &[]).unwrap();
        for gone in ["authorization", "cookie", "proxy-authorization", "host"] {
            assert!(headers.get(gone).is_none(), "{gone} forwarded");
        }
        assert!(headers.get("x-mcp-auth-upstream-token").is_none());
        assert_eq!(headers[SUBJECT_HEADER], "alice");
        assert_eq!(headers[CLIENT_ID_HEADER], "client-1");
        assert_eq!(headers[SCOPES_HEADER], "mcp:tools mcp:admin");
        assert_eq!(headers.get_all(SUBJECT_HEADER).iter().count(), 1);
        for kept in [
            "mcp-session-id",
            "mcp-protocol-version",
            "last-event-id",
            "accept",
            "content-type",
        ] {
            assert_eq!(headers[kept], client[kept], "{kept}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let client = client_headers(&[
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-end-to-end", "kept"),
        ]);
        let headers = to_upstream(&client, &token(None), &[]).unwrap();
        for gone in [
            "connection",
            "x-hop",
            "keep-alive",
            "te",
            "transfer-encoding",
            "upgrade",
        ] {
            assert!(headers.get(gone).is_none(), "{gone} forwarded");
        }
        assert_eq!(headers["x-end-to-end"], "kept");
        assert!(
            headers.get(SUBJECT_HEADER).is_none(),
            "no subject, no header"
        );

        let mut response = client_headers(&[
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("set-cookie", "session=upstream"),
            ("mcp-session-id", "s-2"),
            ("content-type", "text/event-stream"),
        ]);
        from_upstream(&mut response);
        assert!(response.get("connection").is_none());
        assert!(response.get("x-hop").is_none());
        assert!(response.get("set-cookie").is_none());
        assert_eq!(response["mcp-session-id"], "s-2");
        assert_eq!(response["content-type"], "text/event-stream");
    }

    #[test]
    fn the_mcp_headers_survive_a_connection_nomination_and_client_claims_do_not() {
        let client = client_headers(&[
            (
                "connection",
                "mcp-session-id, mcp-protocol-version, last-event-id",
            ),
            ("mcp-session-id", "s-1"),
            ("mcp-protocol-version", "2025-06-18"),
            ("last-event-id", "3"),
            ("x-forwarded-for", "10.0.0.1"),
            ("forwarded", "for=10.0.0.1"),
            ("x-real-ip", "10.0.0.1"),
            ("remote-user", "root"),
        ]);
        let headers = to_upstream(&client, &token(None), &[]).unwrap();
        assert_eq!(headers["mcp-session-id"], "s-1");
        assert_eq!(headers["mcp-protocol-version"], "2025-06-18");
        assert_eq!(headers["last-event-id"], "3");
        for gone in ["x-forwarded-for", "forwarded", "x-real-ip", "remote-user"] {
            assert!(headers.get(gone).is_none(), "{gone} forwarded");
        }
    }

    #[test]
    fn operator_headers_replace_the_clients_and_stay_redacted() {
        let key: UpstreamHeader = "X-Upstream-Key:  s3cret ".parse().unwrap();
        assert_eq!(format!("{key:?}"), "x-upstream-key: [redacted]");
        let client = client_headers(&[("x-upstream-key", "guessed")]);
        let headers = to_upstream(&client, &token(None), &[key]).unwrap();
        assert_eq!(headers.get_all("x-upstream-key").iter().count(), 1);
        assert_eq!(headers["x-upstream-key"], "s3cret");
        assert!(headers["x-upstream-key"].is_sensitive());
        // The upstream's own bearer token is the operator's to send.
        assert!(
            "Authorization: Bearer upstream-key"
                .parse::<UpstreamHeader>()
                .is_ok()
        );
    }

    #[test]
    fn operator_headers_are_validated() {
        for (line, error) in [
            ("no colon", UpstreamHeaderError::Syntax),
            ("bad name: v", UpstreamHeaderError::Name("bad name".into())),
            (
                "X-MCP-Auth-Subject: root",
                UpstreamHeaderError::Reserved("x-mcp-auth-subject".into()),
            ),
            ("Host: a", UpstreamHeaderError::Reserved("host".into())),
            (
                "Connection: close",
                UpstreamHeaderError::Reserved("connection".into()),
            ),
            ("X-Key: a\u{7}b", UpstreamHeaderError::Value("x-key".into())),
        ] {
            assert_eq!(line.parse::<UpstreamHeader>().unwrap_err(), error, "{line}");
        }
    }

    #[test]
    fn identities_with_control_characters_are_refused_not_mangled() {
        assert!(to_upstream(&HeaderMap::new(), &token(Some("a\r\nX-Evil: 1")), &[]).is_err());
        let utf8 = to_upstream(&HeaderMap::new(), &token(Some("zoë")), &[]).unwrap();
        assert_eq!(utf8[SUBJECT_HEADER].as_bytes(), "zoë".as_bytes());
    }
}
