//! [`JwtAccessTokenVerifier`]: a resource server's check of JWT access tokens (RFC 9068) from
//! any authorization server — Keycloak, Auth0, Okta, Entra ID, or this project's own on
//! another host — through that issuer's published keys.

mod cache;
mod discovery;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use mcp_auth_core::{Clock, ProviderError, SystemClock, TokenVerifier};
use mcp_auth_types::{
    AccessToken, AccessTokenSecret, is_resource_indicator, resource_url_from_server_url,
    split_scopes,
};
use serde_json::Value;

use self::cache::VerifiedTokens;
pub(crate) use self::discovery::IssuerKeys;
use crate::error::{Failure, JwtConfigError, Rejection, configured_issuer, configured_leeway};
use crate::id_jag::DEFAULT_LEEWAY;
use crate::jwks::{JwksFetcher, JwksSource};
use crate::jws::{self, SigningAlgorithm, UnverifiedJws};
use crate::limits::{MAX_ACCESS_TOKEN_BYTES, MAX_VERIFIED_ACCESS_TOKENS};

/// The `typ` of a JWT access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Verifies JWT access tokens (RFC 9068) issued by one authorization server for one resource.
///
/// The rules, claims first (a forged token costs no key fetch and no signature check):
///
/// 1. a compact JWS with an `alg` among the allowed asymmetric ones (default RS256, PS256,
///    ES256, ES384, EdDSA; never `none` or HMAC) and no `crit`; `typ` `at+jwt` (or
///    `application/at+jwt`) unless [`accept_plain_jwt`](JwtAccessTokenVerifierBuilder::accept_plain_jwt)
///    also admits `JWT` or no `typ`, for providers that do not follow RFC 9068 §2.1 yet;
/// 2. `iss` exactly the configured issuer;
/// 3. `aud` (a string or an array) names this resource, compared in canonical form (RFC 8707);
/// 4. `exp` present and not passed (no leeway: the bearer check refuses an expired token
///    anyway), `nbf` and `iat` (when present) not in the future, with the leeway (default
///    60 s, at most 300); at most [`MAX_ACCESS_TOKEN_BYTES`] in all;
/// 5. the client from `client_id`, else `azp`, else `appid` (Entra ID v1), required; the
///    scopes from `scope` (a space-separated string) or `scp` (a string or an array);
///    `sub` when present;
/// 6. the signature verifies with the issuer's key named by `kid`: the key set comes from the
///    issuer's metadata (`jwks_uri`, by RFC 8414 or OpenID discovery, whose `issuer` must be
///    the configured one) or is given; an unknown `kid` refetches it at most once a minute,
///    and a token without `kid` is checked only against a set with one usable key;
///    signatures are checked on the blocking pool, one per core at most.
///
/// A verified token is remembered until its `exp` but at most
/// [`MAX_VERIFIED_TOKEN_AGE`](crate::limits::MAX_VERIFIED_TOKEN_AGE) (so that a key the
/// issuer withdraws stops vouching for its tokens within minutes), at most
/// [`MAX_VERIFIED_ACCESS_TOKENS`] of them (configurable; beyond it the least useful are
/// evicted), so a client's next requests cost a hash and a map read. It is found by the
/// SHA-256 of its signature and must then equal the remembered signed part (`header.payload`)
/// byte for byte: a hit is exactly a token verified before, and the cache holds no credential
/// (a signed part without its signature proves nothing).
///
/// A token that fails a rule is `None` (the resource answers 401 `invalid_token`); an issuer
/// whose keys cannot be had is an `Err` (503), never a 401, so an identity provider's outage
/// does not make MCP clients re-authorize.
pub struct JwtAccessTokenVerifier {
    issuer: String,
    resource: String,
    keys: IssuerKeys,
    algorithms: Vec<SigningAlgorithm>,
    accept_plain_jwt: bool,
    leeway: i64,
    verified: VerifiedTokens,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for JwtAccessTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAccessTokenVerifier")
            .field("issuer", &self.issuer)
            .field("resource", &self.resource)
            .field("algorithms", &self.algorithms)
            .field("accept_plain_jwt", &self.accept_plain_jwt)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

/// Builder for [`JwtAccessTokenVerifier`].
#[must_use]
pub struct JwtAccessTokenVerifierBuilder {
    issuer: String,
    resource: String,
    keys: Option<JwksSource>,
    algorithms: Vec<SigningAlgorithm>,
    accept_plain_jwt: bool,
    leeway: u64,
    capacity: usize,
    fetcher: Option<Arc<dyn JwksFetcher>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for JwtAccessTokenVerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAccessTokenVerifierBuilder")
            .field("issuer", &self.issuer)
            .field("resource", &self.resource)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl JwtAccessTokenVerifier {
    /// Starts building a verifier of `issuer`'s tokens for `resource` (the protected MCP
    /// endpoint, e.g. `https://mcp.example.com/mcp`, which the tokens' `aud` must name).
    pub fn builder(
        issuer: impl Into<String>,
        resource: impl Into<String>,
    ) -> JwtAccessTokenVerifierBuilder {
        JwtAccessTokenVerifierBuilder {
            issuer: issuer.into(),
            resource: resource.into(),
            keys: None,
            algorithms: crate::SUPPORTED_ALGORITHMS.to_vec(),
            accept_plain_jwt: false,
            leeway: DEFAULT_LEEWAY,
            capacity: MAX_VERIFIED_ACCESS_TOKENS,
            fetcher: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The issuer whose tokens this verifier accepts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

impl JwtAccessTokenVerifierBuilder {
    /// The issuer's keys, instead of discovering its `jwks_uri` from its metadata.
    pub fn jwks(mut self, keys: JwksSource) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The accepted signature algorithms (default: all of [`crate::SUPPORTED_ALGORITHMS`]).
    pub fn algorithms<I: IntoIterator<Item = SigningAlgorithm>>(mut self, algorithms: I) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Also accepts tokens whose `typ` is `JWT` or absent (RFC 9068 §2.1 requires `at+jwt`;
    /// some providers still send `JWT`). Off by default: `typ` is what keeps an ID token or
    /// another JWT of the same issuer from passing as an access token.
    pub fn accept_plain_jwt(mut self, accept: bool) -> Self {
        self.accept_plain_jwt = accept;
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat`, in seconds (default 60, at most 300).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// How many verified tokens are remembered at most (default
    /// [`MAX_VERIFIED_ACCESS_TOKENS`]; 0 remembers none).
    pub fn cache_capacity(mut self, tokens: usize) -> Self {
        self.capacity = tokens;
        self
    }

    /// The fetcher of the issuer's metadata and keys (default: [`HttpJwksFetcher::new`](crate::HttpJwksFetcher::new),
    /// https only, for an operator-configured issuer).
    pub fn fetcher(mut self, fetcher: Arc<dyn JwksFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// The clock for every time check (tests use a manual one).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configuration. Nothing is fetched yet: the issuer's metadata and keys
    /// are fetched on the first token, so that a resource server starts while its
    /// authorization server is down.
    pub fn build(self) -> Result<JwtAccessTokenVerifier, JwtConfigError> {
        let issuer = configured_issuer(&self.issuer)?;
        if !is_resource_indicator(&self.resource) {
            return Err(JwtConfigError::Url {
                setting: "resource",
                reason: "must be an absolute http or https URL without a fragment".to_owned(),
            });
        }
        let leeway = configured_leeway(self.leeway)?;
        if self.algorithms.is_empty() {
            return Err(JwtConfigError::Url {
                setting: "algorithms",
                reason: "at least one algorithm is required".to_owned(),
            });
        }
        let keys = IssuerKeys::configure(&issuer, self.keys, self.fetcher)?;
        Ok(JwtAccessTokenVerifier {
            resource: resource_url_from_server_url(&self.resource),
            issuer,
            keys,
            algorithms: self.algorithms,
            accept_plain_jwt: self.accept_plain_jwt,
            leeway,
            verified: VerifiedTokens::new(self.capacity),
            clock: self.clock,
        })
    }
}

impl JwtAccessTokenVerifier {
    async fn verify(&self, token: &str, now: i64) -> Result<AccessToken, Failure> {
        if token.len() > MAX_ACCESS_TOKEN_BYTES {
            return Err(Rejection::Malformed.into());
        }
        let jws = jws::parse(token)?;
        if !self.algorithms.contains(&jws.alg) {
            return Err(Rejection::Algorithm.into());
        }
        let typ_ok = jws::typ_is(jws.typ.as_deref(), ACCESS_TOKEN_TYP)
            || (self.accept_plain_jwt
                && jws
                    .typ
                    .as_deref()
                    .is_none_or(|typ| jws::typ_is(Some(typ), "JWT")));
        if !typ_ok {
            return Err(Rejection::Type {
                expected: ACCESS_TOKEN_TYP,
            }
            .into());
        }
        let access = self.check_claims(token, &jws, now)?;
        // Only now, with every claim in order, are keys looked at (and perhaps fetched).
        self.keys.check_signature(&jws, now).await?;
        Ok(access)
    }

    fn check_claims(
        &self,
        token: &str,
        jws: &UnverifiedJws<'_>,
        now: i64,
    ) -> Result<AccessToken, Rejection> {
        if jws.string("iss")? != self.issuer {
            return Err(Rejection::UntrustedIssuer);
        }
        let audiences: Vec<&str> = match jws.claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|aud| !aud.contains('#') && resource_url_from_server_url(aud) == self.resource)
        {
            return Err(Rejection::ForeignAudience);
        }
        let exp = jws
            .date("exp")?
            .ok_or(Rejection::Missing { claim: "exp" })?;
        // No leeway after `exp`: the bearer check refuses an expired token anyway, so a
        // leeway here would only be a promise the resource does not keep.
        if exp <= now {
            return Err(Rejection::Expired);
        }
        let not_after_now = now.saturating_add(self.leeway);
        let iat = jws.date("iat")?;
        if iat.is_some_and(|iat| iat > not_after_now) {
            return Err(Rejection::IssuedInFuture);
        }
        if jws.date("nbf")?.is_some_and(|nbf| nbf > not_after_now) {
            return Err(Rejection::NotYetValid);
        }
        let client_id = match jws.optional_string("client_id")? {
            Some(client) => client,
            None => match jws.optional_string("azp")? {
                Some(client) => client,
                None => jws
                    .optional_string("appid")?
                    .ok_or(Rejection::Missing { claim: "client_id" })?,
            },
        };
        let scopes = match (jws.claims.get("scope"), jws.claims.get("scp")) {
            (Some(Value::String(scope)), _) => split_scopes(Some(scope)),
            (None | Some(Value::Null), None | Some(Value::Null)) => Vec::new(),
            (None | Some(Value::Null), Some(Value::String(scp))) => split_scopes(Some(scp)),
            (None | Some(Value::Null), Some(Value::Array(values))) => values
                .iter()
                .map(|value| value.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or(Rejection::Missing { claim: "scp" })?,
            (Some(_), _) => return Err(Rejection::Missing { claim: "scope" }),
            (_, Some(_)) => return Err(Rejection::Missing { claim: "scp" }),
        };
        let subject = jws.optional_string("sub")?;
        let mut access = AccessToken::new(AccessTokenSecret::new(token), client_id, scopes);
        access.expires_at = Some(exp);
        access.resource = Some(self.resource.clone());
        access.subject = subject.map(str::to_owned);
        let mut claims = serde_json::Map::new();
        claims.insert("iss".to_owned(), Value::String(self.issuer.clone()));
        if let Some(iat) = iat {
            claims.insert("iat".to_owned(), Value::from(iat));
        }
        access.claims = Some(claims);
        Ok(access)
    }
}

#[async_trait]
impl TokenVerifier for JwtAccessTokenVerifier {
    async fn verify_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<AccessToken>, ProviderError> {
        let now = self.clock.now();
        if let Some(known) = self.verified.get(token, now) {
            return Ok(Some(known));
        }
        match self.verify(token.expose_secret(), now).await {
            Ok(access) => {
                self.verified.insert(token, &access, now);
                Ok(Some(access))
            }
            Err(Failure::Rejected(rejection)) => {
                tracing::debug!(issuer = %self.issuer, %rejection, "JWT access token refused");
                Ok(None)
            }
            Err(Failure::Keys(error)) => {
                tracing::warn!(issuer = %self.issuer, error = %mcp_auth_core::ErrorChain(&error), "issuer keys unavailable");
                Err(error.into())
            }
            Err(Failure::Verification(error)) => Err(error.into()),
        }
    }

    fn verify_token_now(
        &self,
        token: &AccessTokenSecret,
    ) -> Option<Result<Option<AccessToken>, ProviderError>> {
        self.verified
            .get(token, self.clock.now())
            .map(|known| Ok(Some(known)))
    }
}
