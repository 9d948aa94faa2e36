//! Validation of a fetched Client ID Metadata Document
//! (draft-ietf-oauth-client-id-metadata-document §4).

use mcp_auth_types::{
    GrantType, MetadataLimitError, OAuthClientInformationFull, ResponseType,
    TokenEndpointAuthMethod, check_registrable_redirect_uri,
};

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The body is not a JSON object.
    #[error("the document is not a JSON object")]
    NotAnObject,
    /// The body does not parse as client metadata.
    #[error("the document is not valid client metadata: {0}")]
    Malformed(String),
    /// `client_id` in the document is not the URL it was fetched from, character for character.
    #[error("client_id in the document does not equal the document URL")]
    ClientIdMismatch,
    /// `redirect_uris` is absent or empty.
    #[error("redirect_uris is required")]
    MissingRedirectUris,
    /// A redirect URI is not registrable (fragment, plain http off loopback, ...).
    #[error("redirect URI {uri:?} is not acceptable: {reason}")]
    InvalidRedirectUri {
        /// The offending URI.
        uri: String,
        /// Why it is refused.
        reason: String,
    },
    /// The document carries a client secret: a metadata document is public, so a secret in it
    /// is no secret.
    #[error("a metadata document must not carry a client secret")]
    ClientSecret,
    /// The document asks for an authentication method that needs a shared secret.
    #[error(
        "token_endpoint_auth_method {0:?} needs a shared secret, which a metadata document cannot have"
    )]
    SharedSecretMethod(String),
    /// `private_key_jwt` without keys, or while this server does not verify client assertions.
    #[error("private_key_jwt {0}")]
    PrivateKeyJwt(&'static str),
    /// An authentication method this server does not know.
    #[error("token_endpoint_auth_method {0:?} is not supported")]
    UnsupportedMethod(String),
    /// A member breaks a bound of `mcp_auth_types::limits`, as a registration would (too many
    /// redirect URIs, an over-long name, an inline `jwks` of more than 10 keys or 16 KiB, …).
    #[error("{0}")]
    Limit(#[source] MetadataLimitError),
    /// `grant_types` lists a grant other than `authorization_code` and `refresh_token`.
    ///
    /// Anyone who can publish a JSON file can be a metadata-document client, so such a client
    /// may only obtain tokens through a user's consent. `client_credentials` would give a
    /// stranger user-less tokens, and the jwt-bearer grant is for clients an operator knows.
    #[error(
        "grant_types: {0:?} is not allowed for a metadata document client \
         (only authorization_code and refresh_token)"
    )]
    UnsupportedGrantType(String),
    /// `response_types` lists a response type other than `code`.
    #[error("response_types: {0:?} is not allowed for a metadata document client (only code)")]
    UnsupportedResponseType(String),
}

/// The grant types a metadata-document client may list: those that pass through a user's
/// consent at the authorization endpoint.
const ALLOWED_GRANT_TYPES: [GrantType; 2] = [GrantType::AuthorizationCode, GrantType::RefreshToken];

/// Validates `body`, fetched from `client_id`, and returns the client it describes.
///
/// An absent `token_endpoint_auth_method` reads as `none` (a public client), not as RFC 7591's
/// `client_secret_basic` default: a metadata document cannot hold a secret.
pub(crate) fn validate_document(
    client_id: &str,
    body: &[u8],
    private_key_jwt_supported: bool,
) -> Result<OAuthClientInformationFull, DocumentError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| DocumentError::Malformed(e.to_string()))?;
    let object = value.as_object().ok_or(DocumentError::NotAnObject)?;
    if object.get("client_id").and_then(|v| v.as_str()) != Some(client_id) {
        return Err(DocumentError::ClientIdMismatch);
    }
    if object.contains_key("client_secret") || object.contains_key("client_secret_expires_at") {
        return Err(DocumentError::ClientSecret);
    }
    let mut client: OAuthClientInformationFull =
        serde_json::from_value(value).map_err(|e| DocumentError::Malformed(e.to_string()))?;
    // The bounds of registration apply: a metadata document is client-supplied metadata too,
    // and the resolver caches what passes.
    client
        .metadata
        .check_limits()
        .map_err(DocumentError::Limit)?;
    if let Some(grant) = client
        .metadata
        .grant_types
        .iter()
        .find(|grant| !ALLOWED_GRANT_TYPES.contains(grant))
    {
        return Err(DocumentError::UnsupportedGrantType(
            grant.as_str().to_owned(),
        ));
    }
    if let Some(response_type) = client
        .metadata
        .response_types
        .iter()
        .find(|response_type| **response_type != ResponseType::Code)
    {
        return Err(DocumentError::UnsupportedResponseType(
            response_type.as_str().to_owned(),
        ));
    }
    let uris = client
        .metadata
        .redirect_uris
        .as_deref()
        .filter(|uris| !uris.is_empty())
        .ok_or(DocumentError::MissingRedirectUris)?;
    for uri in uris {
        check_registrable_redirect_uri(uri).map_err(|reason| {
            DocumentError::InvalidRedirectUri {
                uri: uri.clone(),
                reason: reason.to_string(),
            }
        })?;
    }
    let method = client
        .metadata
        .token_endpoint_auth_method
        .clone()
        .unwrap_or(TokenEndpointAuthMethod::None);
    match &method {
        TokenEndpointAuthMethod::None => {}
        TokenEndpointAuthMethod::PrivateKeyJwt => {
            if !private_key_jwt_supported {
                return Err(DocumentError::PrivateKeyJwt(
                    "is not supported by this authorization server",
                ));
            }
            // The rules of registration (RFC 7591 §2): one of `jwks` and `jwks_uri`, and a
            // `jwks_uri` over https (its addresses are vetted when it is fetched).
            match (&client.metadata.jwks, &client.metadata.jwks_uri) {
                (None, None) => return Err(DocumentError::PrivateKeyJwt("needs jwks or jwks_uri")),
                (Some(_), Some(_)) => {
                    return Err(DocumentError::PrivateKeyJwt(
                        "takes jwks or jwks_uri, not both",
                    ));
                }
                (None, Some(uri)) if !is_https_url(uri) => {
                    return Err(DocumentError::PrivateKeyJwt(
                        "needs a jwks_uri that is an https URL",
                    ));
                }
                _ => {}
            }
        }
        TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost => {
            return Err(DocumentError::SharedSecretMethod(
                method.as_str().to_owned(),
            ));
        }
        TokenEndpointAuthMethod::Other(other) if other == "client_secret_jwt" => {
            return Err(DocumentError::SharedSecretMethod(other.clone()));
        }
        other => {
            return Err(DocumentError::UnsupportedMethod(other.as_str().to_owned()));
        }
    }
    client.metadata.token_endpoint_auth_method = Some(method);
    Ok(client)
}

fn is_https_url(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|url| url.scheme() == "https" && url.has_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "https://app.example/client.json";

    fn check(document: &str, private_key_jwt: bool, expected: Result<(), DocumentError>) {
        let got = validate_document(ID, document.as_bytes(), private_key_jwt).map(|_| ());
        assert_eq!(got, expected, "{document}");
    }

    #[test]
    fn document_rules() {
        use DocumentError::*;
        let ok = Ok(());
        let pkj = |r| Err(PrivateKeyJwt(r));
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"]}"#,
            false,
            ok.clone(),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["http://127.0.0.1/cb"],"client_name":"App"}"#,
            false,
            ok.clone(),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}"#,
            false,
            ok.clone(),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://app.example/jwks"}"#,
            true,
            ok.clone(),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[]}}"#,
            true,
            ok.clone(),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://app.example/jwks"}"#,
            false,
            pkj("is not supported by this authorization server"),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            true,
            pkj("needs jwks or jwks_uri"),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[]},"jwks_uri":"https://app.example/jwks"}"#,
            true,
            pkj("takes jwks or jwks_uri, not both"),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"http://app.example/jwks"}"#,
            true,
            pkj("needs a jwks_uri that is an https URL"),
        );
        check(
            r#"{"client_id":"https://app.example/other.json","redirect_uris":["https://app.example/cb"]}"#,
            false,
            Err(ClientIdMismatch),
        );
        check(
            r#"{"client_id":"https://app.example/client.json/","redirect_uris":["https://app.example/cb"]}"#,
            false,
            Err(ClientIdMismatch),
        );
        check(
            r#"{"client_id":"HTTPS://app.example/client.json","redirect_uris":["https://app.example/cb"]}"#,
            false,
            Err(ClientIdMismatch),
        );
        check(
            r#"{"redirect_uris":["https://app.example/cb"]}"#,
            false,
            Err(ClientIdMismatch),
        );
        check(
            r#"{"client_id":"https://app.example/client.json"}"#,
            false,
            Err(MissingRedirectUris),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":[]}"#,
            false,
            Err(MissingRedirectUris),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"client_secret":"s"}"#,
            false,
            Err(ClientSecret),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"client_secret_expires_at":0}"#,
            false,
            Err(ClientSecret),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#,
            false,
            Err(SharedSecretMethod("client_secret_basic".into())),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_post"}"#,
            false,
            Err(SharedSecretMethod("client_secret_post".into())),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_jwt"}"#,
            false,
            Err(SharedSecretMethod("client_secret_jwt".into())),
        );
        check(
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"tls_client_auth"}"#,
            false,
            Err(UnsupportedMethod("tls_client_auth".into())),
        );
        check(r#"[1]"#, false, Err(NotAnObject));
    }

    #[test]
    fn a_document_may_list_only_grants_that_pass_through_a_user() {
        use DocumentError::*;
        let document = |extra: &str| {
            format!(r#"{{"client_id":"{ID}","redirect_uris":["https://app.example/cb"]{extra}}}"#)
        };
        let cases: &[(&str, Result<(), DocumentError>)] = &[
            ("", Ok(())),
            (r#","grant_types":["authorization_code"]"#, Ok(())),
            (
                r#","grant_types":["authorization_code","refresh_token"],"response_types":["code"]"#,
                Ok(()),
            ),
            (
                r#","grant_types":["authorization_code","client_credentials"]"#,
                Err(UnsupportedGrantType("client_credentials".into())),
            ),
            (
                r#","grant_types":["client_credentials"]"#,
                Err(UnsupportedGrantType("client_credentials".into())),
            ),
            (
                r#","grant_types":["urn:ietf:params:oauth:grant-type:jwt-bearer"]"#,
                Err(UnsupportedGrantType(
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                )),
            ),
            (
                r#","grant_types":["authorization_code","password"]"#,
                Err(UnsupportedGrantType("password".into())),
            ),
            (
                r#","grant_types":["implicit"]"#,
                Err(UnsupportedGrantType("implicit".into())),
            ),
            (
                r#","response_types":["code","token"]"#,
                Err(UnsupportedResponseType("token".into())),
            ),
        ];
        for (extra, expected) in cases {
            check(&document(extra), true, expected.clone());
        }
    }

    #[test]
    fn the_bounds_of_registration_apply_to_a_document() {
        let key = |kid: usize| {
            format!(r#"{{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"k{kid}"}}"#)
        };
        let keys = |count: usize| (0..count).map(key).collect::<Vec<_>>().join(",");
        let document = |jwks: &str| {
            format!(
                r#"{{"client_id":"{ID}","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{jwks}}}"#
            )
        };
        check(
            &document(&format!(r#"{{"keys":[{}]}}"#, keys(10))),
            true,
            Ok(()),
        );
        for jwks in [
            format!(r#"{{"keys":[{}]}}"#, keys(11)),
            r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"},{"kty":"EC","crv":"P-256","x":"AB","y":"AB"}]}"#.to_owned(),
        ] {
            let got = validate_document(ID, document(&jwks).as_bytes(), true);
            assert!(matches!(got, Err(DocumentError::Limit(_))), "{jwks}: {got:?}");
        }
        let many_redirects: Vec<String> = (0..100)
            .map(|i| format!("\"https://app.example/cb{i}\""))
            .collect();
        let got = validate_document(
            ID,
            format!(
                r#"{{"client_id":"{ID}","redirect_uris":[{}]}}"#,
                many_redirects.join(",")
            )
            .as_bytes(),
            false,
        );
        assert!(matches!(got, Err(DocumentError::Limit(_))), "{got:?}");
    }

    #[test]
    fn a_refused_grant_is_named_in_the_reason() {
        let error = validate_document(
            ID,
            br#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"],"grant_types":["client_credentials"]}"#,
            false,
        )
        .unwrap_err();
        assert!(error.to_string().contains("client_credentials"), "{error}");
    }

    #[test]
    fn malformed_and_unsafe_redirects_are_refused() {
        for document in [
            "not json",
            r#"{"client_id":"https://app.example/client.json","redirect_uris":"https://app.example/cb"}"#,
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb#f"]}"#,
            r#"{"client_id":"https://app.example/client.json","redirect_uris":["http://app.example/cb"]}"#,
        ] {
            assert!(
                validate_document(ID, document.as_bytes(), true).is_err(),
                "{document}"
            );
        }
    }

    #[test]
    fn an_absent_method_reads_as_a_public_client() {
        let client = validate_document(
            ID,
            br#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"]}"#,
            false,
        )
        .unwrap();
        assert_eq!(client.auth_method(), TokenEndpointAuthMethod::None);
        assert!(client.client_secret.is_none());
    }
}
