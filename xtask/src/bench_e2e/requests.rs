//! The requests of each endpoint shape, built once as bytes, and the MCP session set-up.

use std::net::SocketAddr;

use super::http::{self, Conn};
use super::{
    MACHINE_CLIENT, MACHINE_SECRET, MCP_PROTOCOL_VERSION, PUBLIC_CLIENT, REDIRECT_URI, SCOPE,
};
use crate::Result;

/// The text the `echo` tool is asked to return.
pub(super) const ECHO_TEXT: &str = "bench";

fn mcp_headers<'a>(token: &'a str, session: Option<&'a str>) -> Vec<(&'a str, String)> {
    let mut headers = vec![
        ("authorization", format!("Bearer {token}")),
        ("accept", "application/json, text/event-stream".to_owned()),
        ("content-type", "application/json".to_owned()),
        ("mcp-protocol-version", MCP_PROTOCOL_VERSION.to_owned()),
    ];
    if let Some(session) = session {
        headers.push(("mcp-session-id", session.to_owned()));
    }
    headers
}

fn mcp_request(addr: SocketAddr, token: &str, session: Option<&str>, body: &str) -> Vec<u8> {
    let headers = mcp_headers(token, session);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    http::request("POST", addr, "/mcp", &headers, body.as_bytes())
}

pub(super) fn tools_call_request(addr: SocketAddr, token: &str, session: Option<&str>) -> Vec<u8> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{ECHO_TEXT}"}}}}}}"#
    );
    mcp_request(addr, token, session, &body)
}

/// Opens an MCP session on `conn` (`initialize`, then `notifications/initialized`) and returns
/// the `tools/call` request of that session.
pub(super) fn mcp_session(conn: &mut Conn, addr: SocketAddr, token: &str) -> Result<Vec<u8>> {
    let initialize = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{MCP_PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"xtask-bench","version":"0"}}}}}}"#
    );
    let response = conn.round_trip(&mcp_request(addr, token, None, &initialize))?;
    let session = match (response.status, response.session, response.close) {
        (200, Some(session), false) => session,
        (status, _, _) => {
            let body = String::from_utf8_lossy(&response.body);
            return Err(format!("initialize answered {status} without a session: {body}").into());
        }
    };
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let response = conn.round_trip(&mcp_request(addr, token, Some(&session), initialized))?;
    if response.status != 202 || response.close {
        return Err(format!("notifications/initialized answered {}", response.status).into());
    }
    Ok(tools_call_request(addr, token, Some(&session)))
}

fn form_request(addr: SocketAddr, path: &str, form: &str) -> Vec<u8> {
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    http::request("POST", addr, path, &headers, form.as_bytes())
}

pub(super) fn issue_token_request(addr: SocketAddr) -> Vec<u8> {
    let resource = percent_encode(&format!("http://{addr}/mcp"));
    let form = format!(
        "grant_type=client_credentials&client_id={MACHINE_CLIENT}&client_secret={MACHINE_SECRET}\
         &scope={}&resource={resource}",
        percent_encode(SCOPE)
    );
    form_request(addr, "/token", &form)
}

pub(super) fn bogus_code_request(addr: SocketAddr) -> Vec<u8> {
    let form = format!(
        "grant_type=authorization_code&code=bogus-code-0123456789abcdef0123456789abcdef\
         &redirect_uri={}&client_id={PUBLIC_CLIENT}\
         &code_verifier=bench-verifier-0123456789abcdef0123456789abcdef",
        percent_encode(REDIRECT_URI)
    );
    form_request(addr, "/token", &form)
}

pub(super) fn registration_request(addr: SocketAddr) -> Vec<u8> {
    let body = format!(
        r#"{{"redirect_uris":["{REDIRECT_URI}"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"xtask bench","scope":"{SCOPE}"}}"#
    );
    let headers = [("content-type", "application/json")];
    http::request("POST", addr, "/register", &headers, body.as_bytes())
}

/// Form-encodes everything but unreserved characters (RFC 3986 §2.3).
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The string value of `"name": "…"` in a flat JSON body, without unescaping (tokens and ids
/// are URL-safe).
pub(super) fn json_string_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let key = format!("\"{name}\"");
    let rest = text[text.find(&key)? + key.len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_escape_all_but_unreserved_characters() {
        assert_eq!(
            percent_encode("http://127.0.0.1:8080/mcp a~b"),
            "http%3A%2F%2F127.0.0.1%3A8080%2Fmcp%20a~b"
        );
    }

    #[test]
    fn a_string_field_is_read_from_a_json_body() {
        let body = br#"{"token_type": "Bearer", "access_token" : "abc-123", "expires_in": 3600}"#;
        assert_eq!(
            json_string_field(body, "access_token").as_deref(),
            Some("abc-123")
        );
        assert_eq!(json_string_field(body, "expires_in"), None);
        assert_eq!(json_string_field(body, "refresh_token"), None);
    }
}
