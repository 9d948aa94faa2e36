//! The token endpoint's success response (RFC 6749 §5.1).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{AccessTokenSecret, RefreshTokenSecret};

/// A successful token response, RFC 6749 §5.1.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthToken {
    /// The access token.
    pub access_token: AccessTokenSecret,
    /// Always `Bearer` (RFC 6750); parsed case-insensitively.
    pub token_type: BearerTokenType,
    /// Lifetime of the access token in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The granted scope, space separated (RFC 6749 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A refresh token, when one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshTokenSecret>,
}

impl OAuthToken {
    /// A bearer token response with no lifetime, scope or refresh token.
    pub fn bearer(access_token: AccessTokenSecret) -> Self {
        Self {
            access_token,
            token_type: BearerTokenType,
            expires_in: None,
            scope: None,
            refresh_token: None,
        }
    }

    /// Sets `expires_in`.
    pub fn with_expires_in(mut self, seconds: u64) -> Self {
        self.expires_in = Some(seconds);
        self
    }

    /// Sets `scope` from a list of scopes (an empty list leaves it absent).
    pub fn with_scopes(mut self, scopes: &[String]) -> Self {
        self.scope = (!scopes.is_empty()).then(|| scopes.join(" "));
        self
    }

    /// Sets `refresh_token`.
    pub fn with_refresh_token(mut self, token: RefreshTokenSecret) -> Self {
        self.refresh_token = Some(token);
        self
    }
}

/// The `token_type` `Bearer`. RFC 6750 §4 title-cases it but RFC 6749 §5.1 makes the value
/// case-insensitive, so any casing parses and `Bearer` is always written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BearerTokenType;

impl Serialize for BearerTokenType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("Bearer")
    }
}

impl<'de> Deserialize<'de> for BearerTokenType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        if value.eq_ignore_ascii_case("bearer") {
            Ok(Self)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported token_type {value:?}, expected Bearer"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_type_is_normalised_to_bearer() {
        for raw in ["bearer", "BEARER", "Bearer"] {
            let json = format!(r#"{{"access_token":"a","token_type":"{raw}"}}"#);
            let token: OAuthToken = serde_json::from_str(&json).unwrap();
            let out = serde_json::to_value(&token).unwrap();
            assert_eq!(out["token_type"], "Bearer");
        }
    }

    #[test]
    fn other_token_types_are_rejected() {
        let json = r#"{"access_token":"a","token_type":"mac"}"#;
        assert!(serde_json::from_str::<OAuthToken>(json).is_err());
    }

    #[test]
    fn round_trip_keeps_every_field_and_omits_absent_ones() {
        let token = OAuthToken::bearer(AccessTokenSecret::new("at"))
            .with_expires_in(3600)
            .with_scopes(&["a".into(), "b".into()])
            .with_refresh_token(RefreshTokenSecret::new("rt"));
        let json = serde_json::to_value(&token).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"access_token":"at","token_type":"Bearer","expires_in":3600,"scope":"a b","refresh_token":"rt"})
        );
        let bare = serde_json::to_value(OAuthToken::bearer(AccessTokenSecret::new("x"))).unwrap();
        assert_eq!(
            bare,
            serde_json::json!({"access_token":"x","token_type":"Bearer"})
        );
    }
}
