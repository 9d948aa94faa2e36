//! [`Capabilities`]: what a provider can do, stated once, by the provider.
//!
//! Whether a grant, a client-authentication method or Client ID Metadata Documents are
//! available is a fact about the provider — it either implements `exchange_client_credentials`
//! or it does not, it either verifies client assertions or it does not. Before this type the
//! fact was stated up to three times (a settings flag, the provider's default method, and
//! `StoreProvider`'s optional collaborator), so a grant could be advertised in metadata that
//! the token endpoint then refused. Now the provider says it once
//! ([`OAuthAuthorizationServerProvider::capabilities`](crate::OAuthAuthorizationServerProvider::capabilities)),
//! and metadata, token-endpoint dispatch, client authentication and registration all read
//! that one value. Operator policy that is not about what the provider can do — whether
//! `/register` and `/revoke` are served, whether anyone may register public clients or a
//! client-credentials client — stays in [`AuthSettings`](crate::AuthSettings).

use mcp_auth_types::{GrantType, ID_JAG_GRANT_PROFILE, TokenEndpointAuthMethod};

/// What a provider supports beyond the authorization-code flow every MCP server has.
///
/// Built from [`Capabilities::new`] (authorization code and refresh token; client secrets)
/// with one method per optional capability:
///
/// ```
/// use mcp_auth_core::Capabilities;
/// use mcp_auth_core::types::GrantType;
///
/// let capabilities = Capabilities::new()
///     .client_credentials()
///     .private_key_jwt(["ES256", "RS256"]);
/// assert!(capabilities.supports_grant(&GrantType::ClientCredentials));
/// assert!(!capabilities.supports_grant(&GrantType::JwtBearer));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    grant_types: Vec<GrantType>,
    client_assertion_signing_algs: Vec<String>,
    client_id_metadata_documents: bool,
    signed_access_tokens: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::new()
    }
}

impl Capabilities {
    /// The capabilities every provider has: the authorization code grant (RFC 6749 §4.1), the
    /// refresh token grant (RFC 6749 §6), and client authentication by secret
    /// (`client_secret_post`, `client_secret_basic`) or none (public clients).
    pub fn new() -> Self {
        Self {
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            client_assertion_signing_algs: Vec::new(),
            client_id_metadata_documents: false,
            signed_access_tokens: false,
        }
    }

    /// Adds the client credentials grant (RFC 6749 §4.4): the provider implements
    /// `exchange_client_credentials`.
    pub fn client_credentials(self) -> Self {
        self.grant(GrantType::ClientCredentials)
    }

    /// Adds the SEP-990 identity-assertion grant (RFC 7523 jwt-bearer carrying an ID-JAG):
    /// the provider implements `exchange_identity_assertion`.
    pub fn identity_assertion(self) -> Self {
        self.grant(GrantType::JwtBearer)
    }

    fn grant(mut self, grant: GrantType) -> Self {
        if !self.grant_types.contains(&grant) {
            self.grant_types.push(grant);
        }
        self
    }

    /// Adds `private_key_jwt` client authentication (RFC 7523 §2.2) with assertions signed by
    /// these JWS algorithms: the provider implements `authenticate_client_assertion`. An empty
    /// list leaves it off.
    pub fn private_key_jwt<I: IntoIterator<Item = S>, S: Into<String>>(mut self, algs: I) -> Self {
        self.client_assertion_signing_algs = algs.into_iter().map(Into::into).collect();
        self
    }

    /// Adds Client ID Metadata Documents: the provider resolves https URL client ids
    /// (draft-ietf-oauth-client-id-metadata-document).
    pub fn client_id_metadata_documents(mut self) -> Self {
        self.client_id_metadata_documents = true;
        self
    }

    /// The grant types the token endpoint accepts, in the order metadata lists them.
    pub fn grant_types(&self) -> &[GrantType] {
        &self.grant_types
    }

    /// Whether the token endpoint accepts `grant`.
    pub fn supports_grant(&self, grant: &GrantType) -> bool {
        self.grant_types.contains(grant)
    }

    /// The authorization grant profiles the supported grants carry (SEP-990's ID-JAG profile
    /// with the jwt-bearer grant, which alone could mean any RFC 7523 use).
    pub fn authorization_grant_profiles(&self) -> Vec<String> {
        if self.supports_grant(&GrantType::JwtBearer) {
            vec![ID_JAG_GRANT_PROFILE.to_owned()]
        } else {
            Vec::new()
        }
    }

    /// The JWS algorithms of `private_key_jwt` assertions; empty when it is off.
    pub fn client_assertion_signing_algs(&self) -> &[String] {
        &self.client_assertion_signing_algs
    }

    /// Whether a client may authenticate with `method` at all (a client registered for it
    /// still authenticates only with its own method).
    pub fn supports_auth_method(&self, method: &TokenEndpointAuthMethod) -> bool {
        match method {
            TokenEndpointAuthMethod::None
            | TokenEndpointAuthMethod::ClientSecretPost
            | TokenEndpointAuthMethod::ClientSecretBasic => true,
            TokenEndpointAuthMethod::PrivateKeyJwt => {
                !self.client_assertion_signing_algs.is_empty()
            }
            _ => false,
        }
    }

    /// The client-authentication methods of the token (and revocation) endpoint, in the order
    /// metadata lists them. `none` is listed when `public_clients` exist, which is for the
    /// caller to say (registration may admit them, metadata documents always describe them).
    pub fn token_endpoint_auth_methods(
        &self,
        public_clients: bool,
    ) -> Vec<TokenEndpointAuthMethod> {
        let mut methods = vec![
            TokenEndpointAuthMethod::ClientSecretPost,
            TokenEndpointAuthMethod::ClientSecretBasic,
        ];
        if public_clients || self.client_id_metadata_documents {
            methods.push(TokenEndpointAuthMethod::None);
        }
        if self.supports_auth_method(&TokenEndpointAuthMethod::PrivateKeyJwt) {
            methods.push(TokenEndpointAuthMethod::PrivateKeyJwt);
        }
        methods
    }

    /// Whether https URL client ids resolve to Client ID Metadata Documents.
    pub fn supports_client_id_metadata_documents(&self) -> bool {
        self.client_id_metadata_documents
    }

    /// Access tokens are signed JWTs (RFC 9068) whose keys are published at `jwks_uri`.
    pub fn signed_access_tokens(mut self) -> Self {
        self.signed_access_tokens = true;
        self
    }

    /// Whether access tokens are signed JWTs with a published key set (`jwks_uri`).
    pub fn supports_signed_access_tokens(&self) -> bool {
        self.signed_access_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_the_code_flow_and_secrets_and_nothing_else() {
        let base = Capabilities::new();
        assert_eq!(
            base.grant_types(),
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        for grant in [
            GrantType::ClientCredentials,
            GrantType::JwtBearer,
            GrantType::Other("urn:x".into()),
        ] {
            assert!(!base.supports_grant(&grant), "{grant:?}");
        }
        assert!(!base.supports_auth_method(&TokenEndpointAuthMethod::PrivateKeyJwt));
        assert!(base.authorization_grant_profiles().is_empty());
        assert_eq!(
            base.token_endpoint_auth_methods(false),
            [
                TokenEndpointAuthMethod::ClientSecretPost,
                TokenEndpointAuthMethod::ClientSecretBasic
            ]
        );
    }

    #[test]
    fn each_capability_adds_its_grant_method_or_profile_once() {
        let all = Capabilities::new()
            .client_credentials()
            .identity_assertion()
            .client_credentials()
            .private_key_jwt(["ES256"])
            .client_id_metadata_documents();
        assert_eq!(
            all.grant_types(),
            [
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
                GrantType::JwtBearer
            ]
        );
        assert_eq!(all.authorization_grant_profiles(), [ID_JAG_GRANT_PROFILE]);
        assert_eq!(all.client_assertion_signing_algs(), ["ES256"]);
        assert_eq!(
            all.token_endpoint_auth_methods(false),
            [
                TokenEndpointAuthMethod::ClientSecretPost,
                TokenEndpointAuthMethod::ClientSecretBasic,
                TokenEndpointAuthMethod::None,
                TokenEndpointAuthMethod::PrivateKeyJwt
            ]
        );
        assert!(
            !Capabilities::new()
                .private_key_jwt(Vec::<String>::new())
                .supports_auth_method(&TokenEndpointAuthMethod::PrivateKeyJwt)
        );
    }
}
