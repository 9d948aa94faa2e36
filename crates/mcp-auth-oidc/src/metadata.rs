//! The provider's OpenID Connect Discovery 1.0 document: what it must say for a sign-in to
//! be safe, and how this client authenticates at its token endpoint.

use serde_json::Value;

use crate::OidcError;

/// How this client authenticates at the token endpoint: whichever of the two the provider
/// lists first (`token_endpoint_auth_methods_supported`), `client_secret_basic` when it lists
/// none (the specification's default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthentication {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form.
    ClientSecretPost,
}

/// What a sign-in needs from the discovery document.
#[derive(Clone, Debug)]
pub(crate) struct ProviderMetadata {
    pub(crate) authorization_endpoint: String,
    pub(crate) token_endpoint: String,
    pub(crate) jwks_uri: String,
    pub(crate) client_authentication: ClientAuthentication,
}

/// Reads the discovery document of `issuer`: its `issuer` must be `issuer` byte for byte
/// (OpenID Connect Discovery §4.3, else whoever serves the document could name other
/// endpoints), the three endpoints https URLs, the code flow and (when listed) PKCE S256
/// supported, and one client authentication method this client has.
pub(crate) fn read(body: &[u8], issuer: &str) -> Result<ProviderMetadata, OidcError> {
    let document: Value = serde_json::from_slice(body)
        .map_err(|_| OidcError::Invalid("the discovery document is not JSON"))?;
    if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(OidcError::Invalid(
            "the discovery document names another issuer",
        ));
    }
    let endpoint = |name: &'static str| -> Result<String, OidcError> {
        let url = document
            .get(name)
            .and_then(Value::as_str)
            .ok_or(OidcError::Invalid(
                "the discovery document lacks an endpoint",
            ))?;
        match url::Url::parse(url) {
            Ok(parsed)
                if parsed.scheme() == "https"
                    && parsed.has_host()
                    && parsed.fragment().is_none()
                    && parsed.username().is_empty() =>
            {
                Ok(url.to_owned())
            }
            _ => Err(OidcError::Invalid(
                "a provider endpoint is not an https URL",
            )),
        }
    };
    let listed = |name: &str, value: &str| -> Option<bool> {
        let list = document.get(name)?.as_array()?;
        Some(list.iter().any(|item| item.as_str() == Some(value)))
    };
    if listed("response_types_supported", "code") == Some(false) {
        return Err(OidcError::Invalid(
            "the provider does not support the code flow",
        ));
    }
    if listed("code_challenge_methods_supported", "S256") == Some(false) {
        return Err(OidcError::Invalid(
            "the provider does not support PKCE S256",
        ));
    }
    let client_authentication = match document
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array)
    {
        None => ClientAuthentication::ClientSecretBasic,
        Some(methods) => methods
            .iter()
            .find_map(|method| match method.as_str() {
                Some("client_secret_basic") => Some(ClientAuthentication::ClientSecretBasic),
                Some("client_secret_post") => Some(ClientAuthentication::ClientSecretPost),
                _ => None,
            })
            .ok_or(OidcError::Invalid(
                "the provider supports neither client_secret_basic nor client_secret_post",
            ))?,
    };
    Ok(ProviderMetadata {
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        jwks_uri: endpoint("jwks_uri")?,
        client_authentication,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://idp.example/realms/acme";

    fn document(changes: Value) -> Vec<u8> {
        let mut document = json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://idp.example/realms/acme/auth",
            "token_endpoint": "https://idp.example/realms/acme/token",
            "jwks_uri": "https://idp.example/realms/acme/certs",
            "response_types_supported": ["code", "id_token"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_post", "client_secret_basic"],
        });
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                document.as_object_mut().unwrap().remove(name);
            } else {
                document[name] = value.clone();
            }
        }
        document.to_string().into_bytes()
    }

    #[test]
    fn a_complete_document_gives_the_endpoints_and_the_first_usable_method() {
        let metadata = read(&document(json!({})), ISSUER).unwrap();
        assert_eq!(
            metadata.token_endpoint,
            "https://idp.example/realms/acme/token"
        );
        assert_eq!(
            metadata.client_authentication,
            ClientAuthentication::ClientSecretPost
        );
        let default = read(
            &document(json!({"token_endpoint_auth_methods_supported": null})),
            ISSUER,
        )
        .unwrap();
        assert_eq!(
            default.client_authentication,
            ClientAuthentication::ClientSecretBasic
        );
        // Lists that are absent assert nothing.
        assert!(read(
            &document(json!({"response_types_supported": null, "code_challenge_methods_supported": null})),
            ISSUER
        )
        .is_ok());
    }

    #[test]
    fn unsafe_or_unusable_documents_are_refused() {
        for (case, changes) in [
            ("another issuer", json!({"issuer": "https://evil.example"})),
            ("a trailing slash", json!({"issuer": format!("{ISSUER}/")})),
            (
                "http token endpoint",
                json!({"token_endpoint": "http://idp.example/token"}),
            ),
            ("no jwks_uri", json!({"jwks_uri": null})),
            (
                "endpoint with a fragment",
                json!({"authorization_endpoint": "https://idp.example/a#x"}),
            ),
            (
                "no code flow",
                json!({"response_types_supported": ["id_token"]}),
            ),
            (
                "no S256",
                json!({"code_challenge_methods_supported": ["plain"]}),
            ),
            (
                "no secret method",
                json!({"token_endpoint_auth_methods_supported": ["private_key_jwt"]}),
            ),
        ] {
            assert!(read(&document(changes), ISSUER).is_err(), "{case}");
        }
        assert!(read(b"not json", ISSUER).is_err());
    }
}
