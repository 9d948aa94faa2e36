//! [`IdJagValidator`]: the SEP-990 Identity Assertion JWT Authorization Grant validator.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use mcp_auth_core::{IdentityAssertionGrant, IdentityAssertionValidator, TokenError};
use mcp_auth_types::{
    Assertion, OAuthClientInformationFull, resource_url_from_server_url, split_scopes,
};
use serde_json::Value;

use crate::error::{Failure, JwtConfigError, Rejection, configured_issuer, configured_leeway};
use crate::jwks::{HttpJwksFetcher, JwksFetcher, JwksSource, KeyCache};
use crate::jws::{self, UnverifiedJws};
use crate::limits::{DEFAULT_MAX_ASSERTION_LIFETIME, MAX_ASSERTION_LIFETIME};
use crate::verify_pool::VerificationPool;

/// The `typ` header of an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant §3).
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// Default clock leeway, in seconds, for `exp`, `iat` and `nbf`.
pub const DEFAULT_LEEWAY: u64 = 60;

/// Validates ID-JAGs for [`StoreProvider`](mcp_auth_core::StoreProvider)'s jwt-bearer grant.
///
/// The rules, in the order they are checked (each failure names its rule in
/// `error_description`, and is `invalid_grant` unless said otherwise). Every claim is checked
/// before any key is looked at, so a forged assertion costs no key fetch and no signature
/// verification:
///
/// 1. a compact JWS whose header has `typ` = `oauth-id-jag+jwt`, an `alg` among RS256, PS256,
///    ES256, ES384 and EdDSA (`none` and HMAC never), and no `crit`;
/// 2. `iss` names a trusted issuer;
/// 3. `aud` is this authorization server's issuer identifier, as a string or a one-element
///    array;
/// 4. `exp` present and not passed, `iat` present and not in the future, `nbf` (if present)
///    passed — each with the configured leeway — and `exp` − `iat` at most the maximum
///    lifetime (default one hour);
/// 5. `sub`, `client_id` and `jti` present (`jti` at most 256 characters); `client_id` equal
///    to the authenticated client;
/// 6. `resource` (a string or an array) names at least one resource this server serves —
///    otherwise `invalid_target`. Only the served ones are kept;
/// 7. the signature verifies with one of that issuer's keys — the one named by `kid`, the key
///    set being refetched (at most once a minute) when the `kid` is unknown — on the blocking
///    pool, at most one verification per core in the process.
///
/// `jti` replay is left to the provider (see
/// [`IdentityAssertionValidator`]).
pub struct IdJagValidator {
    audience: String,
    resources: Vec<String>,
    issuers: HashMap<String, KeyCache>,
    leeway: i64,
    max_lifetime: u64,
}

impl std::fmt::Debug for IdJagValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdJagValidator")
            .field("audience", &self.audience)
            .field("resources", &self.resources)
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .field("leeway", &self.leeway)
            .field("max_lifetime", &self.max_lifetime)
            .finish()
    }
}

/// Builder for [`IdJagValidator`].
#[must_use]
pub struct IdJagValidatorBuilder {
    audience: String,
    resources: Vec<String>,
    issuers: Vec<(String, JwksSource)>,
    leeway: u64,
    max_lifetime: u64,
    fetcher: Option<Arc<dyn JwksFetcher>>,
}

impl std::fmt::Debug for IdJagValidatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdJagValidatorBuilder")
            .field("audience", &self.audience)
            .field("resources", &self.resources)
            .field("issuers", &self.issuers)
            .field("leeway", &self.leeway)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

impl IdJagValidator {
    /// Starts building a validator for the authorization server `issuer`: ID-JAGs must name it
    /// as their `aud`.
    pub fn builder(issuer: impl Into<String>) -> IdJagValidatorBuilder {
        IdJagValidatorBuilder {
            audience: issuer.into(),
            resources: Vec::new(),
            issuers: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_ASSERTION_LIFETIME,
            fetcher: None,
        }
    }
}

impl IdJagValidatorBuilder {
    /// A resource this authorization server serves (an RFC 8707 resource indicator, such as
    /// `https://mcp.example.com/mcp`). At least one is required.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Several served resources at once.
    pub fn resources<I: IntoIterator<Item = T>, T: Into<String>>(mut self, resources: I) -> Self {
        self.resources.extend(resources.into_iter().map(Into::into));
        self
    }

    /// Trusts `issuer` (compared exactly with `iss`) with the keys from `keys`.
    pub fn trusted_issuer(mut self, issuer: impl Into<String>, keys: JwksSource) -> Self {
        self.issuers.push((issuer.into(), keys));
        self
    }

    /// Clock leeway for `exp`, `iat` and `nbf`, in seconds (default 60, at most 300).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// Longest accepted lifetime (`exp` − `iat`) in seconds: default one hour
    /// ([`DEFAULT_MAX_ASSERTION_LIFETIME`]), at least 1 and at most [`MAX_ASSERTION_LIFETIME`]
    /// (one day).
    pub fn max_lifetime(mut self, seconds: u64) -> Self {
        self.max_lifetime = seconds;
        self
    }

    /// The fetcher for https key sets (default: [`HttpJwksFetcher::new`]).
    pub fn fetcher(mut self, fetcher: Arc<dyn JwksFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Validates the configuration and reads inline and file key sets.
    pub fn build(self) -> Result<IdJagValidator, JwtConfigError> {
        let audience = configured_issuer(&self.audience)?;
        if self.resources.is_empty() {
            return Err(JwtConfigError::NoResources);
        }
        let leeway = configured_leeway(self.leeway)?;
        if !(1..=MAX_ASSERTION_LIFETIME).contains(&self.max_lifetime) {
            return Err(JwtConfigError::Url {
                setting: "max_lifetime",
                reason: "must be between 1 second and one day".to_owned(),
            });
        }
        let fetcher = match self.fetcher {
            Some(fetcher) => fetcher,
            None => Arc::new(HttpJwksFetcher::new()?),
        };
        let mut issuers = HashMap::new();
        for (issuer, source) in self.issuers {
            if issuers.contains_key(&issuer) {
                return Err(JwtConfigError::DuplicateIssuer(issuer));
            }
            let cache = KeyCache::new(&issuer, source, &fetcher)?;
            issuers.insert(issuer, cache);
        }
        Ok(IdJagValidator {
            audience,
            resources: self
                .resources
                .iter()
                .map(|r| resource_url_from_server_url(r))
                .collect(),
            issuers,
            leeway,
            max_lifetime: self.max_lifetime,
        })
    }
}

impl IdJagValidator {
    /// The trusted issuers.
    pub fn trusted_issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.keys().map(String::as_str)
    }

    async fn validate(
        &self,
        client: &OAuthClientInformationFull,
        token: &str,
        now: i64,
    ) -> Result<IdentityAssertionGrant, Failure> {
        let jws = jws::parse(token)?;
        if !jws::typ_is(jws.typ.as_deref(), ID_JAG_TYP) {
            return Err(Rejection::Type {
                expected: ID_JAG_TYP,
            }
            .into());
        }
        let issuer = jws.string("iss")?;
        let Some(keys) = self.issuers.get(issuer) else {
            return Err(Rejection::UntrustedIssuer.into());
        };
        let grant = self.check_claims(client, &jws, now)?;
        // Only now, with every claim in order, are keys looked at (and perhaps fetched).
        let keys = keys.keys(jws.kid.as_deref(), now).await?;
        let candidates = jws.issuer_candidates(&keys)?;
        jws.verify(keys, candidates, VerificationPool::global())
            .await?;
        Ok(grant)
    }

    fn check_claims(
        &self,
        client: &OAuthClientInformationFull,
        jws: &UnverifiedJws<'_>,
        now: i64,
    ) -> Result<IdentityAssertionGrant, Rejection> {
        if jws.single_audience() != Some(self.audience.as_str()) {
            return Err(Rejection::Audience {
                detail: ", as a string or a one-element array",
            });
        }
        let expires_at = jws.check_times(now, self.leeway, self.max_lifetime)?;
        let subject = jws.string("sub")?;
        let client_id = jws.string("client_id")?;
        let jti = jws.jti()?;
        if client_id != client.client_id {
            return Err(Rejection::ClientMismatch);
        }
        let named: Vec<&str> = match jws.claims.get("resource") {
            Some(Value::String(resource)) => vec![resource.as_str()],
            Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if named.is_empty() {
            return Err(Rejection::Missing { claim: "resource" });
        }
        let mut resources: Vec<String> = Vec::new();
        for resource in named {
            // A fragment is never part of a resource indicator (RFC 8707 §2).
            if resource.contains('#') {
                continue;
            }
            let canonical = resource_url_from_server_url(resource);
            if self.resources.contains(&canonical) && !resources.contains(&canonical) {
                resources.push(canonical);
            }
        }
        if resources.is_empty() {
            return Err(Rejection::ForeignResource);
        }
        let scopes = match jws.claims.get("scope") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(scope)) => split_scopes(Some(scope)),
            Some(_) => return Err(Rejection::Missing { claim: "scope" }),
        };
        let tenant = jws.optional_string("tenant")?;
        let issuer = jws.string("iss")?;
        let mut grant =
            IdentityAssertionGrant::new(issuer, subject, client_id, resources, jti, expires_at);
        grant.tenant = tenant.map(str::to_owned);
        grant.scopes = scopes;
        grant.replay_until = expires_at.saturating_add(self.leeway);
        Ok(grant)
    }
}

#[async_trait]
impl IdentityAssertionValidator for IdJagValidator {
    async fn validate_identity_assertion(
        &self,
        client: &OAuthClientInformationFull,
        assertion: &Assertion,
        now: i64,
    ) -> Result<IdentityAssertionGrant, TokenError> {
        self.validate(client, assertion.expose_secret(), now)
            .await
            .map_err(|failure| {
                if let Failure::Rejected(rejection) = &failure {
                    tracing::debug!(client_id = %client.client_id, %rejection, "ID-JAG rejected");
                }
                failure.into_token_error()
            })
    }
}

#[cfg(test)]
mod tests;
