//! The introspection endpoint's response (RFC 7662 §2.2).

use serde::{Deserialize, Serialize};

use crate::{AccessTokenInfo, BearerTokenType};

/// An introspection response, RFC 7662 §2.2. An inactive token is exactly `{"active": false}`
/// ([`IntrospectionResponse::inactive`]): RFC 7662 §2.2 lets the server say nothing more, and
/// saying nothing more tells a caller nothing about why (unknown, expired, revoked, issued by
/// someone else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IntrospectionResponse {
    /// Whether the token is currently active.
    pub active: bool,
    /// The granted scopes, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The resource owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The audience: the RFC 8707 resource the token is restricted to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issue time, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// `Bearer` for an active access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<BearerTokenType>,
}

impl IntrospectionResponse {
    /// `{"active": false}`.
    pub fn inactive() -> Self {
        Self {
            active: false,
            scope: None,
            client_id: None,
            sub: None,
            aud: None,
            iss: None,
            exp: None,
            iat: None,
            token_type: None,
        }
    }

    /// The response for an active access token described by `info`: its scopes, client,
    /// subject, audience, expiry, and the `iss` and `iat` claims when it carries them.
    pub fn active(info: &AccessTokenInfo) -> Self {
        let claim_time = |name: &str| {
            info.claims
                .as_ref()
                .and_then(|claims| claims.get(name))
                .and_then(serde_json::Value::as_i64)
        };
        Self {
            active: true,
            scope: (!info.scopes.is_empty()).then(|| info.scopes.join(" ")),
            client_id: Some(info.client_id.clone()),
            sub: info.subject.clone(),
            aud: info.resource.clone(),
            iss: info.issuer(),
            exp: info.expires_at,
            iat: claim_time("iat"),
            token_type: Some(BearerTokenType),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inactive_is_exactly_active_false() {
        assert_eq!(
            serde_json::to_value(IntrospectionResponse::inactive()).unwrap(),
            json!({"active": false})
        );
    }

    #[test]
    fn active_carries_every_member_the_token_has() {
        let mut info = AccessTokenInfo::new("client-1", vec!["read".into(), "write".into()]);
        info.expires_at = Some(2000);
        info.resource = Some("https://rs.example/mcp".into());
        info.subject = Some("alice".into());
        info.claims =
            serde_json::from_value(json!({"iss": "https://as.example", "iat": 1000})).unwrap();
        assert_eq!(
            serde_json::to_value(IntrospectionResponse::active(&info)).unwrap(),
            json!({
                "active": true, "scope": "read write", "client_id": "client-1", "sub": "alice",
                "aud": "https://rs.example/mcp", "iss": "https://as.example", "exp": 2000,
                "iat": 1000, "token_type": "Bearer",
            })
        );
        let bare = IntrospectionResponse::active(&AccessTokenInfo::new("c", Vec::new()));
        assert_eq!(
            serde_json::to_value(bare).unwrap(),
            json!({"active": true, "client_id": "c", "token_type": "Bearer"})
        );
    }
}
