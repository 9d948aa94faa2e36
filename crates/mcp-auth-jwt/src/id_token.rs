//! [`IdTokenValidator`]: a relying party's check of an OpenID Connect ID token (OpenID
//! Connect Core 1.0 §3.1.3.7), for signing users in through a company's identity provider.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use mcp_auth_core::{Clock, SystemClock};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::access_token::IssuerKeys;
use crate::error::{Failure, JwtConfigError, KeyFetchError, Rejection, VerificationUnavailable};
use crate::error::{configured_issuer, configured_leeway};
use crate::id_jag::DEFAULT_LEEWAY;
use crate::jwks::{JwksFetcher, JwksSource};
use crate::jws::{self, SigningAlgorithm};
use crate::limits::{MAX_ID_TOKEN_AGE, MAX_ID_TOKEN_BYTES, MAX_SUBJECT_LENGTH};

/// Validates the ID tokens one OpenID Provider issues to one client (this relying party).
///
/// The rules, claims first (a forged token costs no key fetch and no signature check):
///
/// 1. a compact JWS of at most [`MAX_ID_TOKEN_BYTES`] with an `alg` among the allowed
///    asymmetric ones (default RS256, PS256, ES256, ES384, EdDSA; never `none` or HMAC, so a
///    client secret can never sign one) and no `crit`; `typ`, when present, `JWT` (an access
///    token or an ID-JAG is not an ID token);
/// 2. `iss` exactly the provider's issuer;
/// 3. `aud` (a string or an array) contains this client; with several audiences `azp` is
///    required, and `azp`, when present, must be this client;
/// 4. `exp` not passed and `iat` not in the future, with the leeway (default 60 s, at most
///    300), and `iat` at most [`MAX_ID_TOKEN_AGE`] old: the token answers a code this
///    relying party redeemed a moment ago;
/// 5. `nonce` exactly the one this sign-in sent (compared in constant time);
/// 6. `sub` present, at most [`MAX_SUBJECT_LENGTH`] characters (OpenID Connect Core §2);
/// 7. the signature verifies with the provider's key named by `kid`: the key set is given,
///    or found through the provider's metadata (`jwks_uri`, whose document's `issuer` must be
///    the provider's); an unknown `kid` refetches it at most once a minute (rotation).
///
/// A token that breaks a rule is [`IdTokenError::Rejected`]; keys that cannot be had, or a
/// saturated verification pool, are [`IdTokenError::Unavailable`]: the provider's or this
/// server's trouble, not the user's.
pub struct IdTokenValidator {
    issuer: String,
    client_id: String,
    keys: IssuerKeys,
    algorithms: Vec<SigningAlgorithm>,
    leeway: i64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IdTokenValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenValidator")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

/// Builds an [`IdTokenValidator`].
pub struct IdTokenValidatorBuilder {
    issuer: String,
    client_id: String,
    keys: Option<JwksSource>,
    algorithms: Vec<SigningAlgorithm>,
    leeway: u64,
    fetcher: Option<Arc<dyn JwksFetcher>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IdTokenValidatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenValidatorBuilder")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Why an ID token was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// The token breaks a rule: the sign-in fails.
    #[error("the ID token is refused: {0}")]
    Rejected(#[from] Rejection),
    /// The provider's keys could not be had.
    #[error("the identity provider's keys are unavailable")]
    Keys(#[source] KeyFetchError),
    /// The signature could not be checked now.
    #[error("the ID token's signature could not be checked now")]
    Unavailable(#[source] VerificationUnavailable),
}

impl From<Failure> for IdTokenError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Rejected(rejection) => Self::Rejected(rejection),
            Failure::Keys(error) => Self::Keys(error),
            Failure::Verification(error) => Self::Unavailable(error),
        }
    }
}

/// A validated ID token: who the provider says the user is.
#[derive(Debug, Clone)]
pub struct IdTokenClaims {
    subject: String,
    claims: Map<String, Value>,
}

impl IdTokenClaims {
    /// `sub`: the user, unique at this provider.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// A string claim, such as `email` or `preferred_username`.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Whether the provider says it verified `email`: `email_verified` as a boolean (or the
    /// strings `"true"`/`"false"`, which some providers send); absent means not verified.
    pub fn email_verified(&self) -> bool {
        match self.claims.get("email_verified") {
            Some(Value::Bool(verified)) => *verified,
            Some(Value::String(text)) => text == "true",
            _ => false,
        }
    }

    /// Every claim of the token.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

impl IdTokenValidator {
    /// A validator for the ID tokens `issuer` issues to `client_id`; keys through the issuer's
    /// metadata unless [`jwks`](IdTokenValidatorBuilder::jwks) gives them.
    pub fn builder(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
    ) -> IdTokenValidatorBuilder {
        IdTokenValidatorBuilder {
            issuer: issuer.into(),
            client_id: client_id.into(),
            keys: None,
            algorithms: jws::SUPPORTED_ALGORITHMS.to_vec(),
            leeway: DEFAULT_LEEWAY,
            fetcher: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The provider's issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Validates `id_token`, which must answer the sign-in that sent `nonce`.
    pub async fn validate(
        &self,
        id_token: &str,
        nonce: &str,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let now = self.clock.now();
        if id_token.len() > MAX_ID_TOKEN_BYTES {
            return Err(Rejection::Malformed.into());
        }
        let jws = jws::parse(id_token)?;
        if !self.algorithms.contains(&jws.alg) {
            return Err(Rejection::Algorithm.into());
        }
        if jws.typ.is_some() && !jws::typ_is(jws.typ.as_deref(), "JWT") {
            return Err(Rejection::Type { expected: "JWT" }.into());
        }
        if jws.string("iss")? != self.issuer {
            return Err(Rejection::UntrustedIssuer.into());
        }
        let audiences: Vec<&str> = match jws.claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            // Every entry a string: a non-string one would otherwise vanish from the count
            // that decides whether `azp` is required.
            Some(Value::Array(values)) => values
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<&str>>>()
                .ok_or(Rejection::Malformed)?,
            _ => return Err(Rejection::Missing { claim: "aud" }.into()),
        };
        if !audiences.contains(&self.client_id.as_str()) {
            return Err(Rejection::ClientMismatch.into());
        }
        match jws.optional_string("azp")? {
            Some(azp) if azp != self.client_id => return Err(Rejection::ClientMismatch.into()),
            None if audiences.len() > 1 => return Err(Rejection::Missing { claim: "azp" }.into()),
            _ => {}
        }
        jws.check_times(now, self.leeway, u64::MAX)?;
        let iat = jws.date("iat")?.unwrap_or(now);
        if iat
            < now
                .saturating_sub(MAX_ID_TOKEN_AGE)
                .saturating_sub(self.leeway)
        {
            return Err(Rejection::Stale.into());
        }
        let sent = jws.string("nonce")?;
        if !bool::from(sent.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(Rejection::Nonce.into());
        }
        let subject = jws.string("sub")?;
        if subject.chars().count() > MAX_SUBJECT_LENGTH {
            return Err(Rejection::Missing { claim: "sub" }.into());
        }
        let subject = subject.to_owned();
        // Only now, with every claim in order, are keys looked at (and perhaps fetched).
        self.keys.check_signature(&jws, now).await?;
        Ok(IdTokenClaims {
            subject,
            claims: jws.claims,
        })
    }
}

impl IdTokenValidatorBuilder {
    /// The provider's keys, instead of discovering its `jwks_uri`.
    #[must_use]
    pub fn jwks(mut self, keys: JwksSource) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The signature algorithms accepted (default: every supported asymmetric one).
    #[must_use]
    pub fn algorithms<I: IntoIterator<Item = SigningAlgorithm>>(mut self, algorithms: I) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Clock tolerance in seconds (default 60, at most 300).
    #[must_use]
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// How key sets and metadata are fetched (default: [`HttpJwksFetcher`](crate::HttpJwksFetcher)).
    #[must_use]
    pub fn fetcher(mut self, fetcher: Arc<dyn JwksFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// The clock (tests).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The validator.
    pub fn build(self) -> Result<IdTokenValidator, JwtConfigError> {
        let issuer = configured_issuer(&self.issuer)?;
        if self.client_id.is_empty() {
            return Err(JwtConfigError::Url {
                setting: "client_id",
                reason: "must not be empty".to_owned(),
            });
        }
        if self.algorithms.is_empty() {
            return Err(JwtConfigError::Url {
                setting: "algorithms",
                reason: "at least one algorithm is required".to_owned(),
            });
        }
        let leeway = configured_leeway(self.leeway)?;
        let keys = IssuerKeys::configure(&issuer, self.keys, self.fetcher)?;
        Ok(IdTokenValidator {
            issuer,
            client_id: self.client_id,
            keys,
            algorithms: self.algorithms,
            leeway,
            clock: self.clock,
        })
    }
}
