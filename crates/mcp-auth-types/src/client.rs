//! Dynamic client registration documents (RFC 7591).

use serde::{Deserialize, Deserializer, Serialize};

use crate::redirect::redirect_uri_matches;
use crate::{ClientSecret, GrantType, ResponseType, TokenEndpointAuthMethod};

/// Client metadata (RFC 7591 §2): the body of a registration request, and the metadata half of
/// a registered client's record.
///
/// URLs are kept as the strings the client sent: redirect URIs are compared exactly as
/// registered (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3), and re-serialising a parsed URL could change
/// them (an added trailing slash, a normalised percent-escape). Unknown members are ignored as
/// RFC 7591 §2 requires.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthClientMetadata {
    /// Redirection URIs (RFC 6749 §3.1.2), exactly as registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// The token-endpoint authentication method; `None` means the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// Grant types the client will use.
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,
    /// Response types the client will use.
    #[serde(default = "default_response_types")]
    pub response_types: Vec<ResponseType>,
    /// Space-separated scopes the client may request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Human-readable name, shown on the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Home page of the client.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_none"
    )]
    pub client_uri: Option<String>,
    /// Logo of the client.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_none"
    )]
    pub logo_uri: Option<String>,
    /// Contacts responsible for the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    /// Terms of service of the client.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_none"
    )]
    pub tos_uri: Option<String>,
    /// Privacy policy of the client.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_none"
    )]
    pub policy_uri: Option<String>,
    /// URL of the client's JSON Web Key Set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_none"
    )]
    pub jwks_uri: Option<String>,
    /// The client's JSON Web Key Set, by value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Identifier of the client software.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// Version of the client software.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// OIDC `application_type` (`web` or `native`, SEP-837); informational here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

fn default_response_types() -> Vec<ResponseType> {
    vec![ResponseType::Code]
}

/// RFC 7591 marks the URL members OPTIONAL; clients send `""` as a placeholder for absent.
fn empty_as_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    Ok(value.filter(|v| !v.is_empty()))
}

impl OAuthClientMetadata {
    /// Metadata with the given redirect URIs and RFC 7591 defaults for everything else.
    pub fn new(redirect_uris: Vec<String>) -> Self {
        Self {
            redirect_uris: Some(redirect_uris),
            token_endpoint_auth_method: None,
            grant_types: default_grant_types(),
            response_types: default_response_types(),
            scope: None,
            client_name: None,
            client_uri: None,
            logo_uri: None,
            contacts: None,
            tos_uri: None,
            policy_uri: None,
            jwks_uri: None,
            jwks: None,
            software_id: None,
            software_version: None,
            application_type: None,
        }
    }
}

/// A registered client: the client information response of RFC 7591 §3.2.1, and the record an
/// authorization server keeps.
///
/// Parsed leniently: a member sent as `null` or `""` reads as absent, and unknown
/// authentication methods and grant types are kept (in their `Other` variants), because a
/// server "MAY reject or replace any of the client's requested metadata values" and a record
/// must not be lost over a placeholder. Whether a value is usable is decided where it is used.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct OAuthClientInformationFull {
    /// The client identifier (RFC 7591 §3.2.1, REQUIRED).
    pub client_id: String,
    /// The client secret, when one was issued. Authorization servers that store clients keep only
    /// a hash of it and leave this `None` on records they read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
    /// When the client id was issued, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_issued_at: Option<i64>,
    /// When the secret expires, seconds since the epoch; `0` means never (RFC 7591 §3.2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// The issuer the credentials were registered with (SEP-2352; not an RFC 7591 member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The registered metadata.
    #[serde(flatten)]
    pub metadata: OAuthClientMetadata,
}

#[derive(Deserialize)]
struct RawClientInformation {
    client_id: String,
    #[serde(default)]
    client_secret: Option<ClientSecret>,
    #[serde(default)]
    client_id_issued_at: Option<i64>,
    #[serde(default)]
    client_secret_expires_at: Option<i64>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(flatten)]
    metadata: OAuthClientMetadata,
}

impl<'de> Deserialize<'de> for OAuthClientInformationFull {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut members = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        members.retain(|_, value| !value.is_null() && value.as_str() != Some(""));
        let raw: RawClientInformation = serde_json::from_value(serde_json::Value::Object(members))
            .map_err(serde::de::Error::custom)?;
        Ok(Self {
            client_id: raw.client_id,
            client_secret: raw.client_secret,
            client_id_issued_at: raw.client_id_issued_at,
            client_secret_expires_at: raw.client_secret_expires_at,
            issuer: raw.issuer,
            metadata: raw.metadata,
        })
    }
}

/// A requested scope the client was not registered for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client was not registered with scope {scope:?}")]
pub struct InvalidScopeError {
    /// The offending scope.
    pub scope: String,
}

/// A redirect URI that cannot be used for this client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRedirectUriError {
    /// The URI is not among the client's registered URIs.
    #[error("redirect_uri is not registered for this client")]
    NotRegistered,
    /// No URI was given and the client has more than one (or none) registered.
    #[error("redirect_uri must be specified unless the client has exactly one registered URI")]
    Ambiguous,
}

impl OAuthClientInformationFull {
    /// A record for `client_id` with the given metadata and nothing else.
    pub fn new(client_id: impl Into<String>, metadata: OAuthClientMetadata) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            client_id_issued_at: None,
            client_secret_expires_at: None,
            issuer: None,
            metadata,
        }
    }

    /// The authentication method the client must use at the token endpoint. An absent method
    /// reads as `client_secret_basic`, the RFC 7591 §2 default.
    pub fn auth_method(&self) -> TokenEndpointAuthMethod {
        self.metadata
            .token_endpoint_auth_method
            .clone()
            .unwrap_or(TokenEndpointAuthMethod::ClientSecretBasic)
    }

    /// Whether the client is confidential: it authenticates with something other than `none`.
    pub fn is_confidential(&self) -> bool {
        self.auth_method() != TokenEndpointAuthMethod::None
    }

    /// Whether the client registered for `grant`.
    pub fn has_grant_type(&self, grant: &GrantType) -> bool {
        self.metadata.grant_types.contains(grant)
    }

    /// The scopes registered for the client, split on spaces.
    pub fn registered_scopes(&self) -> Vec<String> {
        split_scopes(self.metadata.scope.as_deref())
    }

    /// Checks a space-separated scope request against the registered scopes. `None` passes
    /// through as `None` (the server's default applies).
    pub fn validate_scope(
        &self,
        requested: Option<&str>,
    ) -> Result<Option<Vec<String>>, InvalidScopeError> {
        let Some(requested) = requested else {
            return Ok(None);
        };
        let allowed = self.registered_scopes();
        let requested = split_scopes(Some(requested));
        match requested.iter().find(|scope| !allowed.contains(scope)) {
            Some(scope) => Err(InvalidScopeError {
                scope: scope.clone(),
            }),
            None => Ok(Some(requested)),
        }
    }

    /// Resolves the redirect URI of an authorization request (RFC 6749 §3.1.2.3): an explicit
    /// URI must match a registered one (exactly, or by RFC 8252 §7.3 loopback port rules); an
    /// omitted one is allowed only when exactly one URI is registered.
    pub fn validate_redirect_uri(
        &self,
        requested: Option<&str>,
    ) -> Result<String, InvalidRedirectUriError> {
        let registered = self.metadata.redirect_uris.as_deref().unwrap_or_default();
        match requested {
            Some(uri) => registered
                .iter()
                .any(|candidate| redirect_uri_matches(candidate, uri))
                .then(|| uri.to_owned())
                .ok_or(InvalidRedirectUriError::NotRegistered),
            None => match registered {
                [only] => Ok(only.clone()),
                _ => Err(InvalidRedirectUriError::Ambiguous),
            },
        }
    }
}

/// Splits a space-delimited scope string (RFC 6749 §3.3), dropping empty entries.
pub fn split_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: serde_json::Value) -> OAuthClientInformationFull {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn record_reads_null_and_empty_members_as_absent() {
        let client = record(json!({
            "client_id": "c1",
            "client_secret": null,
            "token_endpoint_auth_method": "",
            "grant_types": null,
            "redirect_uris": null,
            "logo_uri": "",
            "scope": null,
        }));
        assert!(client.client_secret.is_none());
        assert!(client.metadata.token_endpoint_auth_method.is_none());
        assert_eq!(client.metadata.grant_types, default_grant_types());
        assert!(client.metadata.redirect_uris.is_none());
        assert!(client.metadata.logo_uri.is_none());
    }

    #[test]
    fn record_keeps_unknown_methods_and_grants() {
        let client = record(json!({
            "client_id": "c1",
            "token_endpoint_auth_method": "tls_client_auth",
            "grant_types": ["authorization_code", "urn:example:custom"],
        }));
        assert_eq!(
            client.metadata.token_endpoint_auth_method,
            Some(TokenEndpointAuthMethod::Other("tls_client_auth".into()))
        );
        assert_eq!(
            client.metadata.grant_types[1],
            GrantType::Other("urn:example:custom".into())
        );
        let back = serde_json::to_value(&client).unwrap();
        assert_eq!(back["token_endpoint_auth_method"], "tls_client_auth");
        assert_eq!(back["grant_types"][1], "urn:example:custom");
    }

    #[test]
    fn record_requires_client_id() {
        assert!(
            serde_json::from_value::<OAuthClientInformationFull>(json!({"client_id": null}))
                .is_err()
        );
        assert!(serde_json::from_value::<OAuthClientInformationFull>(json!({})).is_err());
    }

    #[test]
    fn record_round_trips() {
        let value = json!({
            "client_id": "c1",
            "client_secret": "s",
            "client_id_issued_at": 1,
            "client_secret_expires_at": 0,
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "read write",
            "client_name": "App",
            "jwks": {"keys": []},
        });
        assert_eq!(serde_json::to_value(record(value.clone())).unwrap(), value);
    }

    #[test]
    fn request_applies_rfc7591_defaults_and_ignores_unknown_members() {
        let meta: OAuthClientMetadata = serde_json::from_value(json!({
            "redirect_uris": ["http://localhost:3000/cb"],
            "client_uri": "",
            "unknown_member": 42,
        }))
        .unwrap();
        assert_eq!(meta.grant_types, default_grant_types());
        assert_eq!(meta.response_types, vec![ResponseType::Code]);
        assert!(meta.client_uri.is_none());
    }

    #[test]
    fn absent_auth_method_reads_as_client_secret_basic() {
        let client = record(json!({"client_id": "c"}));
        assert_eq!(
            client.auth_method(),
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert!(client.is_confidential());
    }

    #[test]
    fn scope_validation_follows_registration() {
        let client = record(json!({"client_id": "c", "scope": "read write"}));
        assert_eq!(client.validate_scope(None), Ok(None));
        assert_eq!(
            client.validate_scope(Some("read")),
            Ok(Some(vec!["read".to_owned()]))
        );
        assert_eq!(
            client.validate_scope(Some("read admin")),
            Err(InvalidScopeError {
                scope: "admin".into()
            })
        );
        let unscoped = record(json!({"client_id": "c"}));
        assert!(unscoped.validate_scope(Some("read")).is_err());
    }

    #[test]
    fn redirect_uri_resolution() {
        let one = record(json!({"client_id": "c", "redirect_uris": ["https://a.example/cb"]}));
        assert_eq!(
            one.validate_redirect_uri(None).unwrap(),
            "https://a.example/cb"
        );
        assert_eq!(
            one.validate_redirect_uri(Some("https://a.example/cb/")),
            Err(InvalidRedirectUriError::NotRegistered)
        );
        let two = record(
            json!({"client_id": "c", "redirect_uris": ["https://a.example/1", "https://a.example/2"]}),
        );
        assert_eq!(
            two.validate_redirect_uri(None),
            Err(InvalidRedirectUriError::Ambiguous)
        );
        assert_eq!(
            two.validate_redirect_uri(Some("https://a.example/2"))
                .unwrap(),
            "https://a.example/2"
        );
        let loopback =
            record(json!({"client_id": "c", "redirect_uris": ["http://127.0.0.1:1234/cb"]}));
        assert_eq!(
            loopback
                .validate_redirect_uri(Some("http://127.0.0.1:5555/cb"))
                .unwrap(),
            "http://127.0.0.1:5555/cb"
        );
    }
}
