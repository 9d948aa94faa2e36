//! Minting: what a new grant's tokens are and say, opaque or signed, and the audit event of
//! an issuance.

use mcp_auth_types::{
    AccessTokenSecret, GrantType, OAuthClientInformationFull, OAuthToken, RefreshTokenSecret,
};

use super::{StoreProvider, secs};
use crate::access_token_signer::AccessTokenClaims;
use crate::audit;
use crate::error::ProviderError;
use crate::secrets::{SecretHash, random_id, random_secret};
use crate::storage::{AccessTokenRecord, Claims, RefreshTokenRecord, Storage};

impl<S: Storage> StoreProvider<S> {
    /// Mints an access token (and a refresh token when enabled and the client may refresh) for
    /// `grant`, returning the records and the response. The access token is a random string,
    /// or a JWT saying the same as its record when a signer is configured.
    pub(super) fn mint(
        &self,
        client: &OAuthClientInformationFull,
        grant: &GrantShape<'_>,
        access_scopes: &[String],
        with_refresh: bool,
    ) -> Result<(AccessTokenRecord, Option<RefreshTokenRecord>, OAuthToken), ProviderError> {
        let now = self.now();
        let grant_end = self
            .config
            .grant_lifetime
            .map(|lifetime| grant.issued_at + secs(lifetime));
        let cap = |expires_at: i64| grant_end.map_or(expires_at, |end| expires_at.min(end));
        let access_expires_at = cap(now + secs(self.config.access_token_ttl));
        let access_secret = match &self.collaborators.access_token_signer {
            None => random_secret(),
            Some(signer) => signer.sign(&AccessTokenClaims {
                issuer: self.config.issuer.as_str(),
                subject: grant.subject.as_deref().unwrap_or(&client.client_id),
                audience: grant.resource.as_deref(),
                client_id: &client.client_id,
                scopes: access_scopes,
                issued_at: now,
                expires_at: access_expires_at,
                jwt_id: &random_id(),
            })?,
        };
        // The grant's claims plus the token's own `iat` (the grant may be older), which
        // introspection reports (RFC 7662 §2.2).
        let mut access_claims = grant.claims.clone();
        access_claims.insert("iat".to_owned(), serde_json::Value::from(now));
        let access = AccessTokenRecord {
            token_hash: SecretHash::of(&access_secret),
            grant_id: grant.grant_id.to_owned(),
            client_id: client.client_id.clone(),
            scopes: access_scopes.to_vec(),
            expires_at: access_expires_at,
            resource: grant.resource.clone(),
            subject: grant.subject.clone(),
            claims: Some(access_claims),
        };
        let mut response = OAuthToken::bearer(AccessTokenSecret::new(access_secret))
            .with_expires_in(u64::try_from(access_expires_at - now).unwrap_or(0))
            .with_scopes(access_scopes);
        let refresh = match self.config.refresh_token_ttl {
            Some(ttl) if with_refresh && client.has_grant_type(&GrantType::RefreshToken) => {
                let expires_at = cap(now + secs(ttl));
                // A refresh token that would expire with the access token adds nothing.
                (expires_at > access_expires_at).then(|| {
                    let secret = random_secret();
                    let record = RefreshTokenRecord {
                        token_hash: SecretHash::of(&secret),
                        grant_id: grant.grant_id.to_owned(),
                        client_id: client.client_id.clone(),
                        scopes: grant.scopes.to_vec(),
                        expires_at,
                        resource: grant.resource.clone(),
                        subject: grant.subject.clone(),
                        claims: Some(grant.claims.clone()),
                        grant_issued_at: grant.issued_at,
                    };
                    response.refresh_token = Some(RefreshTokenSecret::new(secret));
                    record
                })
            }
            _ => None,
        };
        Ok((access, refresh, response))
    }

    pub(super) fn own_claims(&self) -> Claims {
        let mut claims = Claims::new();
        claims.insert(
            "iss".to_owned(),
            serde_json::Value::String(self.config.issuer.as_str().to_owned()),
        );
        claims
    }
}

/// What a grant's tokens share.
pub(super) struct GrantShape<'a> {
    pub(super) grant_id: &'a str,
    pub(super) scopes: &'a [String],
    pub(super) resource: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) claims: Claims,
    pub(super) issued_at: i64,
}

/// The audit event of a new grant's tokens.
pub(super) fn audit_issued(
    access: &AccessTokenRecord,
    grant_type: &'static str,
    with_refresh: bool,
) {
    metrics::counter!("mcp_auth_tokens_issued_total", "grant_type" => grant_type).increment(1);
    crate::audit_event!(
        audit::TOKEN_ISSUED,
        grant_type,
        client_id = %access.client_id,
        subject = access.subject.as_deref().unwrap_or(""),
        grant_id = %access.grant_id,
        scope = %access.scopes.join(" "),
        resource = access.resource.as_deref().unwrap_or(""),
        refresh_token = with_refresh,
    );
}
