//! The records a provider hands to and receives from the handlers (the Python SDK's
//! `provider.py` models).

use serde::{Deserialize, Serialize};

use crate::{AccessTokenSecret, Assertion, AuthorizationCodeSecret, RefreshTokenSecret};

/// A validated authorization request (RFC 6749 §4.1.1 with PKCE and RFC 8707).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationParams {
    /// The client's opaque state, returned unchanged.
    pub state: Option<String>,
    /// The requested scopes; `None` when the request had no `scope`.
    pub scopes: Option<Vec<String>>,
    /// The PKCE S256 challenge (RFC 7636 §4.2).
    pub code_challenge: String,
    /// Where to send the response; one of the client's registered URIs.
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (then the token request must repeat it,
    /// RFC 6749 §4.1.3).
    pub redirect_uri_provided_explicitly: bool,
    /// The canonical RFC 8707 resource indicator, already checked against the served resources.
    pub resource: Option<String>,
}

impl AuthorizationParams {
    /// Parameters for a request; `resource` and `state` start absent.
    pub fn new(
        scopes: Option<Vec<String>>,
        code_challenge: impl Into<String>,
        redirect_uri: impl Into<String>,
        redirect_uri_provided_explicitly: bool,
    ) -> Self {
        Self {
            state: None,
            scopes,
            code_challenge: code_challenge.into(),
            redirect_uri: redirect_uri.into(),
            redirect_uri_provided_explicitly,
            resource: None,
        }
    }
}

/// A SEP-990 identity-assertion request: the RFC 7523 jwt-bearer grant carrying an ID-JAG.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IdentityAssertionParams {
    /// The ID-JAG the enterprise identity provider issued (RFC 7523 §2.1).
    pub assertion: Assertion,
    /// Scopes named in the token request, if any.
    pub scopes: Option<Vec<String>>,
    /// The RFC 8707 resource from the token request. The client controls it; the ID-JAG's own
    /// `resource` claim is authoritative.
    pub resource: Option<String>,
}

impl IdentityAssertionParams {
    /// Parameters for an assertion with no scope or resource.
    pub fn new(assertion: Assertion) -> Self {
        Self {
            assertion,
            scopes: None,
            resource: None,
        }
    }
}

/// An issued authorization code (RFC 6749 §4.1.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationCode {
    /// The code itself.
    pub code: AuthorizationCodeSecret,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
    /// The client it was issued to.
    pub client_id: String,
    /// The PKCE S256 challenge of the authorization request.
    pub code_challenge: String,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI.
    pub redirect_uri_provided_explicitly: bool,
    /// The RFC 8707 resource the grant is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The resource owner; carried to the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl AuthorizationCode {
    /// A code record; `resource` and `subject` start absent (set the public fields).
    pub fn new(
        code: AuthorizationCodeSecret,
        client_id: impl Into<String>,
        scopes: Vec<String>,
        expires_at: i64,
        code_challenge: impl Into<String>,
        redirect_uri: impl Into<String>,
        redirect_uri_provided_explicitly: bool,
    ) -> Self {
        Self {
            code,
            scopes,
            expires_at,
            client_id: client_id.into(),
            code_challenge: code_challenge.into(),
            redirect_uri: redirect_uri.into(),
            redirect_uri_provided_explicitly,
            resource: None,
            subject: None,
        }
    }
}

impl AsRef<AuthorizationCode> for AuthorizationCode {
    fn as_ref(&self) -> &AuthorizationCode {
        self
    }
}

/// An issued refresh token (RFC 6749 §1.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefreshToken {
    /// The token itself.
    pub token: RefreshTokenSecret,
    /// The client it was issued to.
    pub client_id: String,
    /// Scopes of the grant; a refresh may narrow but never widen them (RFC 6749 §6).
    pub scopes: Vec<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The resource owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The RFC 8707 resource of the grant, so refreshed access tokens keep their audience.
    /// (The Python SDK's record lacks it and loses the audience on refresh.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl RefreshToken {
    /// A refresh-token record; expiry, subject and resource start absent (set the public
    /// fields).
    pub fn new(
        token: RefreshTokenSecret,
        client_id: impl Into<String>,
        scopes: Vec<String>,
    ) -> Self {
        Self {
            token,
            client_id: client_id.into(),
            scopes,
            expires_at: None,
            subject: None,
            resource: None,
        }
    }
}

impl AsRef<RefreshToken> for RefreshToken {
    fn as_ref(&self) -> &RefreshToken {
        self
    }
}

/// A verified access token: the token itself, and what is known about it
/// ([`AccessTokenInfo`]), shared.
///
/// The fields of [`AccessTokenInfo`] read and write as if they were this type's own
/// (`token.client_id`, `token.expires_at = Some(t)`), through `Deref` and `DerefMut`, so the
/// shape of the Python SDK's `AccessToken` is kept. They sit behind an `Arc` because every
/// protected request hands a verified token to its handler. A verifier holding tokens in
/// memory builds each token's information once and shares it; a request then costs one
/// reference count instead of a copy of every string, scope and claim. The token itself is
/// never part of the shared information: it is the one credential, so it lives only as long as
/// the request that presented it, and nothing built once per token (a cache, a store) ever holds
/// it. Writing a field through `DerefMut` copies the information first when it is shared.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccessToken {
    /// The token itself.
    pub token: AccessTokenSecret,
    #[serde(flatten)]
    info: std::sync::Arc<AccessTokenInfo>,
}

/// What is known about an access token apart from the token itself: its client, scopes,
/// expiry, audience, subject and further claims (RFC 7662's introspection response, roughly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccessTokenInfo {
    /// The client it was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The RFC 8707 resource (audience) the token is restricted to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The resource owner (`sub` of RFC 7662/9068); unique only per issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Further claims, such as `iss` or `act`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AccessTokenInfo {
    /// Information for a token of `client_id` with `scopes` and nothing else.
    pub fn new(client_id: impl Into<String>, scopes: Vec<String>) -> Self {
        Self {
            client_id: client_id.into(),
            scopes,
            expires_at: None,
            resource: None,
            subject: None,
            claims: None,
        }
    }

    /// The `iss` claim, if the verifier supplied one.
    pub fn issuer(&self) -> Option<String> {
        let value = self.claims.as_ref()?.get("iss")?;
        Some(match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

impl AsRef<AccessToken> for AccessToken {
    fn as_ref(&self) -> &AccessToken {
        self
    }
}

impl std::ops::Deref for AccessToken {
    type Target = AccessTokenInfo;

    fn deref(&self) -> &AccessTokenInfo {
        &self.info
    }
}

impl std::ops::DerefMut for AccessToken {
    /// Copies the information first if another token shares it.
    fn deref_mut(&mut self) -> &mut AccessTokenInfo {
        std::sync::Arc::make_mut(&mut self.info)
    }
}

impl AccessToken {
    /// A token for `client_id` with `scopes` and nothing else.
    pub fn new(
        token: AccessTokenSecret,
        client_id: impl Into<String>,
        scopes: Vec<String>,
    ) -> Self {
        Self::with_info(
            token,
            std::sync::Arc::new(AccessTokenInfo::new(client_id, scopes)),
        )
    }

    /// `token`, described by `info`, which other tokens' values may share.
    pub fn with_info(token: AccessTokenSecret, info: std::sync::Arc<AccessTokenInfo>) -> Self {
        Self { token, info }
    }

    /// The shared information about the token.
    pub fn info(&self) -> &std::sync::Arc<AccessTokenInfo> {
        &self.info
    }
}

/// Who a token's principal is: (client_id, issuer, subject).
///
/// The one definition of "the same principal", used for session ownership and any other
/// binding of state to a caller. Components the verifier did not supply are `None`, so
/// comparisons fall back to the remaining ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrincipalComponents {
    /// The client the token was issued to.
    pub client_id: String,
    /// The issuer of the token (`iss` claim), when known.
    pub issuer: Option<String>,
    /// The resource owner, when known.
    pub subject: Option<String>,
}

/// The principal a token represents; see [`PrincipalComponents`].
pub fn principal_components(token: &AccessToken) -> PrincipalComponents {
    PrincipalComponents {
        client_id: token.client_id.clone(),
        issuer: token.issuer(),
        subject: token.subject.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn principal_components_read_issuer_from_claims() {
        let mut token = AccessToken::new(AccessTokenSecret::new("t"), "c1", vec![]);
        assert_eq!(
            principal_components(&token),
            PrincipalComponents {
                client_id: "c1".into(),
                issuer: None,
                subject: None
            }
        );
        token.subject = Some("alice".into());
        token.claims = serde_json::from_value(json!({"iss": "https://idp.example"})).unwrap();
        assert_eq!(
            principal_components(&token),
            PrincipalComponents {
                client_id: "c1".into(),
                issuer: Some("https://idp.example".into()),
                subject: Some("alice".into())
            }
        );
    }

    #[test]
    fn records_round_trip() {
        let code = json!({
            "code": "c", "scopes": ["a"], "expires_at": 10, "client_id": "x",
            "code_challenge": "ch", "redirect_uri": "https://a/cb",
            "redirect_uri_provided_explicitly": true, "resource": "https://rs/mcp", "subject": "u"
        });
        let parsed: AuthorizationCode = serde_json::from_value(code.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), code);
        let access = json!({
            "token": "t", "client_id": "x", "scopes": [], "expires_at": 5,
            "resource": "https://rs/mcp", "subject": "u", "claims": {"iss": "i"}
        });
        let parsed: AccessToken = serde_json::from_value(access.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), access);
        let refresh = json!({"token": "r", "client_id": "x", "scopes": ["a"]});
        let parsed: RefreshToken = serde_json::from_value(refresh.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), refresh);
    }

    #[test]
    fn access_token_information_is_shared_until_written() {
        let info = std::sync::Arc::new(AccessTokenInfo::new("c", vec!["a".into()]));
        let first = AccessToken::with_info(AccessTokenSecret::new("t1"), info.clone());
        let mut second = AccessToken::with_info(AccessTokenSecret::new("t2"), info.clone());
        assert!(std::sync::Arc::ptr_eq(first.info(), second.info()));
        assert_eq!(second.client_id, "c");
        second.subject = Some("bob".into());
        assert!(!std::sync::Arc::ptr_eq(first.info(), second.info()));
        assert_eq!(
            first.subject, None,
            "a write never shows through another token"
        );
        assert_eq!(info.subject, None);
    }

    #[test]
    fn record_debug_redacts_the_credential() {
        let token = AccessToken::new(AccessTokenSecret::new("very-secret-token"), "c", vec![]);
        assert!(!format!("{token:?}").contains("very-secret-token"));
    }
}
