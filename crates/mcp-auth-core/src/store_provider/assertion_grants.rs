//! The grants without a user at the authorization endpoint: the SEP-990 jwt-bearer grant
//! (an ID-JAG from a trusted identity provider), the client credentials grant (RFC 6749 §4.4),
//! and `private_key_jwt` client authentication (RFC 7523 §2.2), all of which share replay
//! protection and the minting of refresh-less tokens.

use std::sync::Arc;

use mcp_auth_types::{
    Assertion, IdentityAssertionParams, OAuthClientInformationFull, OAuthToken, TokenErrorCode,
    resource_url_from_server_url,
};

use super::{GrantShape, StoreProvider};
use crate::access_token_signer::AccessTokenSigner;
use crate::assertion::{
    ClientAssertionError, ClientAssertionVerifier, IdentityAssertionValidator,
    identity_assertion_subject,
};
use crate::capabilities::Capabilities;
use crate::client_metadata::ClientMetadataResolver;
use crate::error::TokenError;
use crate::limits::{MAX_JTI_LENGTH, MAX_REPLAY_WINDOW};
use crate::secrets::{SecretHash, time_ordered_id};
use crate::storage::{Claims, Storage};

/// The optional collaborators of a [`StoreProvider`].
#[derive(Default, Clone)]
pub(super) struct Collaborators {
    pub(super) identity_assertions: Option<Arc<dyn IdentityAssertionValidator>>,
    pub(super) client_assertions: Option<Arc<dyn ClientAssertionVerifier>>,
    pub(super) client_metadata: Option<Arc<dyn ClientMetadataResolver>>,
    pub(super) access_token_signer: Option<Arc<dyn AccessTokenSigner>>,
}

impl Collaborators {
    /// What a provider with these collaborators can do: each optional grant or method exactly
    /// when the collaborator that serves it is present.
    pub(super) fn capabilities(&self, client_credentials: bool) -> Capabilities {
        let mut capabilities = Capabilities::new();
        if client_credentials {
            capabilities = capabilities.client_credentials();
        }
        if self.identity_assertions.is_some() {
            capabilities = capabilities.identity_assertion();
        }
        if let Some(verifier) = &self.client_assertions {
            capabilities = capabilities.private_key_jwt(verifier.signing_algorithms());
        }
        if self.client_metadata.is_some() {
            capabilities = capabilities.client_id_metadata_documents();
        }
        if self.access_token_signer.is_some() {
            capabilities = capabilities.signed_access_tokens();
        }
        capabilities
    }
}

impl std::fmt::Debug for Collaborators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collaborators")
            .field("identity_assertions", &self.identity_assertions.is_some())
            .field("client_assertions", &self.client_assertions.is_some())
            .field("client_metadata", &self.client_metadata.is_some())
            .field("access_token_signer", &self.access_token_signer.is_some())
            .finish()
    }
}

/// Who a refresh-less grant is for, and by which grant type (for the audit event).
struct IssuedGrant {
    grant_type: &'static str,
    subject: String,
    claims: Claims,
}

/// The replay-store issuer under which ID-JAG ids are recorded. The prefix keeps identity
/// providers and clients (whose ids may be URLs too) in separate namespaces.
fn id_jag_replay_issuer(issuer: &str) -> String {
    format!("id-jag:{issuer}")
}

/// The replay-store issuer under which a client's assertion ids are recorded.
fn client_assertion_replay_issuer(client_id: &str) -> String {
    format!("client:{client_id}")
}

/// What the replay store is asked to remember for an assertion, checked before anything else
/// happens: the SHA-256 of its `jti` (hex) and how long to keep it.
///
/// The hash gives every entry one size and keeps assertion ids out of storage. The collaborator
/// contracts bound `jti` and the entry's lifetime; they are checked again here so that a
/// faulty validator cannot make the store keep unbounded entries, nor get an assertion
/// accepted that would outlive its replay entry (a store may clamp entries to
/// [`MAX_REPLAY_WINDOW`]). An entry is kept at least one second, so that one already due
/// still blocks an immediate replay.
fn replay_entry(jti: &str, replay_until: i64, now: i64) -> Result<(String, i64), &'static str> {
    if jti.is_empty() || jti.chars().count() > MAX_JTI_LENGTH {
        return Err("jti: the assertion id must be 1 to 256 characters");
    }
    if replay_until > now.saturating_add(MAX_REPLAY_WINDOW) {
        return Err("exp: the assertion lives longer than this server can remember its id");
    }
    Ok((
        SecretHash::of(jti).to_hex(),
        replay_until.max(now.saturating_add(1)),
    ))
}

fn reject(code: TokenErrorCode, description: &str) -> TokenError {
    TokenError::new(code, description)
}

/// Picks the access token's audience among the ID-JAG's resources: the one the token request
/// named (RFC 8707 §2.2: outside the grant is `invalid_target`), or the only one.
fn select_resource(granted: &[String], requested: Option<&str>) -> Result<String, TokenError> {
    match requested {
        Some(requested) => {
            let requested = resource_url_from_server_url(requested);
            granted
                .iter()
                .find(|granted| resource_url_from_server_url(granted) == requested)
                .cloned()
                .ok_or_else(|| {
                    reject(
                        TokenErrorCode::InvalidTarget,
                        "resource: the token request names a resource the assertion does not grant",
                    )
                })
        }
        None => match granted {
            [only] => Ok(only.clone()),
            [] => Err(reject(
                TokenErrorCode::InvalidTarget,
                "resource: the assertion names no resource this server serves",
            )),
            _ => Err(reject(
                TokenErrorCode::InvalidTarget,
                "resource: the assertion names several resources; name one with the resource \
                 parameter",
            )),
        },
    }
}

impl<S: Storage> StoreProvider<S> {
    /// Scopes the server grants at all: the configured valid scopes, if any.
    fn within_valid_scopes(&self, scope: &str) -> bool {
        self.config
            .valid_scopes
            .as_ref()
            .is_none_or(|valid| valid.iter().any(|v| v == scope))
    }

    /// The jwt-bearer grant: validate the ID-JAG, choose its audience and scopes, burn its
    /// `jti` (hashed) once every other check has passed, and mint an access token without a refresh token.
    pub(super) async fn identity_assertion_exchange(
        &self,
        client: &OAuthClientInformationFull,
        params: IdentityAssertionParams,
    ) -> Result<OAuthToken, TokenError> {
        let Some(validator) = &self.collaborators.identity_assertions else {
            return Err(reject(
                TokenErrorCode::UnsupportedGrantType,
                "the identity assertion (jwt-bearer) grant is not supported",
            ));
        };
        let now = self.now();
        let grant = validator
            .validate_identity_assertion(client, &params.assertion, now)
            .await?;
        let (replay_jti, replay_until) = replay_entry(&grant.jti, grant.replay_until, now)
            .map_err(|rule| reject(TokenErrorCode::InvalidGrant, rule))?;
        // The validator checks the binding; checking again here keeps a faulty validator from
        // handing one client's grant to another (SEP-990 §5.1).
        if grant.client_id != client.client_id {
            return Err(reject(
                TokenErrorCode::InvalidGrant,
                "client_id: the assertion was issued to another client",
            ));
        }
        let resource = select_resource(&grant.resources, params.resource.as_deref())?;
        // Granted = ID-JAG scope ∩ requested (if any) ∩ the client's registered scope ∩ the
        // server's valid scopes. The identity provider's decision is the ceiling; the client
        // may only narrow it.
        let registered = client.registered_scopes();
        let scopes: Vec<String> = grant
            .scopes
            .iter()
            .filter(|scope| {
                params
                    .scopes
                    .as_ref()
                    .is_none_or(|requested| requested.contains(scope))
            })
            .filter(|scope| registered.contains(scope) && self.within_valid_scopes(scope))
            .cloned()
            .collect();
        // RFC 6749 §5.2: a requested scope that "exceeds the scope granted by the resource
        // owner" is `invalid_scope`; a request that can be partly met is narrowed instead.
        if scopes.is_empty() && params.scopes.is_some() {
            return Err(reject(
                TokenErrorCode::InvalidScope,
                "scope: none of the requested scopes is granted by the assertion and the \
                 client's registration",
            ));
        }
        // Replay protection last, so that a request refused for another reason does not burn
        // the assertion (RFC 7523 §3 item 7).
        if !self
            .storage
            .record_assertion_id(
                &id_jag_replay_issuer(&grant.issuer),
                &replay_jti,
                replay_until,
                now,
            )
            .await?
        {
            tracing::warn!(
                client_id = %client.client_id,
                issuer = %grant.issuer,
                "identity assertion presented again"
            );
            return Err(reject(
                TokenErrorCode::InvalidGrant,
                "jti: the assertion has already been used",
            ));
        }
        let mut claims = Claims::new();
        // `iss` is the identity provider, so that `principal_components` tells a user of one
        // provider from a same-named user of another.
        claims.insert("iss".to_owned(), grant.issuer.clone().into());
        if let Some(tenant) = &grant.tenant {
            claims.insert("tenant".to_owned(), tenant.clone().into());
        }
        let subject =
            identity_assertion_subject(&grant.issuer, grant.tenant.as_deref(), &grant.subject);
        let grant = IssuedGrant {
            grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
            subject,
            claims,
        };
        self.issue_without_refresh(client, &scopes, Some(resource), grant)
            .await
    }

    /// The client credentials grant: the client is the subject; scopes are the requested ones
    /// (already checked against the registration by the handler) or the registered ones.
    pub(super) async fn client_credentials_exchange(
        &self,
        client: &OAuthClientInformationFull,
        scopes: Option<Vec<String>>,
        resource: Option<String>,
    ) -> Result<OAuthToken, TokenError> {
        let registered = client.registered_scopes();
        // Re-checked here, so that the provider is safe with a caller that skipped the check.
        if let Some(scope) = scopes
            .iter()
            .flatten()
            .find(|scope| !registered.contains(scope))
        {
            return Err(TokenError::new(
                TokenErrorCode::InvalidScope,
                format!("scope: the client is not registered for {scope:?}"),
            ));
        }
        let scopes: Vec<String> = scopes
            .unwrap_or(registered)
            .into_iter()
            .filter(|scope| self.within_valid_scopes(scope))
            .collect();
        let claims = self.own_claims();
        let grant = IssuedGrant {
            grant_type: "client_credentials",
            subject: client.client_id.clone(),
            claims,
        };
        self.issue_without_refresh(client, &scopes, resource, grant)
            .await
    }

    async fn issue_without_refresh(
        &self,
        client: &OAuthClientInformationFull,
        scopes: &[String],
        resource: Option<String>,
        grant: IssuedGrant,
    ) -> Result<OAuthToken, TokenError> {
        let grant_id = time_ordered_id();
        let shape = GrantShape {
            grant_id: &grant_id,
            scopes,
            resource,
            subject: Some(grant.subject),
            claims: grant.claims,
            issued_at: self.now(),
        };
        let (access, _, response) = self.mint(client, &shape, scopes, false)?;
        if self.store_new_tokens(&access, None).await? {
            super::audit_issued(&access, grant.grant_type, false);
            Ok(response)
        } else {
            Err(reject(
                TokenErrorCode::InvalidGrant,
                "the grant is invalid, expired or revoked",
            ))
        }
    }

    /// `private_key_jwt`: verify the assertion, then burn its `jti` (hashed).
    pub(super) async fn client_assertion_authentication(
        &self,
        client: &OAuthClientInformationFull,
        assertion: &Assertion,
        audiences: &[String],
    ) -> Result<(), ClientAssertionError> {
        let Some(verifier) = &self.collaborators.client_assertions else {
            return Err(ClientAssertionError::rejected(
                "private_key_jwt client authentication is not supported by this server",
            ));
        };
        let now = self.now();
        let verified = verifier
            .verify_client_assertion(client, assertion, audiences, now)
            .await?;
        let (replay_jti, replay_until) = replay_entry(&verified.jti, verified.replay_until, now)
            .map_err(ClientAssertionError::rejected)?;
        if self
            .storage
            .record_assertion_id(
                &client_assertion_replay_issuer(&client.client_id),
                &replay_jti,
                replay_until,
                now,
            )
            .await?
        {
            Ok(())
        } else {
            tracing::warn!(client_id = %client.client_id, "client assertion presented again");
            Err(ClientAssertionError::rejected(
                "jti: the client assertion has already been used",
            ))
        }
    }
}

#[cfg(test)]
mod tests;
