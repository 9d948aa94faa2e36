//! Typed failures: the broken rule of an assertion, a key-fetch failure, and configuration
//! errors.

use mcp_auth_core::ErrorChain;
use mcp_auth_core::{ClientAssertionError, ProviderError, TokenError};
use mcp_auth_types::TokenErrorCode;

/// The rule an assertion (an ID-JAG or a client assertion) breaks. The `Display` text starts
/// with the offending header parameter or claim and is safe to send as `error_description`: it
/// never contains the assertion or any of its values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Not three base64url parts, or a header or payload that is not a JSON object.
    #[error("the assertion is not a well-formed compact JWS (RFC 7515 §7.1)")]
    Malformed,
    /// The header's `typ` is not the one this kind of assertion must carry.
    #[error("typ: the header must carry typ \"{expected}\"")]
    Type {
        /// The required `typ`.
        expected: &'static str,
    },
    /// The ID-JAG `typ` on a client assertion: a token of one kind presented as another.
    #[error("typ: an identity assertion cannot authenticate a client")]
    ConfusedType,
    /// The header names an algorithm outside the allow-list (`none` and HMAC never pass).
    #[error("alg: only RS256, PS256, ES256, ES384 and EdDSA are accepted")]
    Algorithm,
    /// The header has a `crit` parameter; no extension is understood (RFC 7515 §4.1.11).
    #[error("crit: no critical header extension is supported")]
    Critical,
    /// `iss` names no trusted issuer.
    #[error("iss: the issuer is not trusted by this authorization server")]
    UntrustedIssuer,
    /// No key of the issuer has the header's `kid` (after refreshing the key set).
    #[error("kid: no key of the issuer has this key id")]
    UnknownKey,
    /// The issuer has keys, but none fits the algorithm (or, without `kid`, none verifies).
    #[error("alg: no key of the issuer is usable with this algorithm")]
    NoUsableKey,
    /// The signature does not verify.
    #[error("signature: the signature does not verify")]
    Signature,
    /// A required claim is absent, or not of the right JSON type.
    #[error("{claim}: the claim is required")]
    Missing {
        /// The claim.
        claim: &'static str,
    },
    /// An access token's `aud` does not name this resource.
    #[error("aud: the token is not for this resource")]
    ForeignAudience,
    /// `aud` is not this authorization server (or has more than one value).
    #[error("aud: the audience must be this authorization server{detail}")]
    Audience {
        /// What else is accepted.
        detail: &'static str,
    },
    /// `exp` has passed (beyond the leeway).
    #[error("exp: the assertion has expired")]
    Expired,
    /// `iat` lies in the future (beyond the leeway).
    #[error("iat: the assertion is issued in the future")]
    IssuedInFuture,
    /// `nbf` lies in the future (beyond the leeway).
    #[error("nbf: the assertion is not valid yet")]
    NotYetValid,
    /// The ID-JAG's `client_id` is not the authenticated client.
    #[error("client_id: the assertion was issued to another client")]
    ClientMismatch,
    /// A client assertion's `iss` or `sub` is not the client id (RFC 7523 §3 items 1 and 2).
    #[error("{claim}: must be the client id")]
    NotTheClient {
        /// `iss` or `sub`.
        claim: &'static str,
    },
    /// The ID-JAG names no resource this authorization server serves.
    #[error("resource: the assertion names no resource this authorization server serves")]
    ForeignResource,
    /// The client registered no key (`jwks` or `jwks_uri`) to verify its assertions with.
    #[error("the client has registered no jwks or jwks_uri")]
    NoClientKeys,
    /// The header names no `kid`, and the client has several keys (RFC 7515 §4.1.4: the `kid`
    /// says which key signed).
    #[error("kid: the header must name one of the client's keys")]
    KeyIdRequired,
    /// `exp` − `iat` exceeds the longest lifetime this server accepts.
    #[error("exp: the assertion may live at most {max} seconds after its iat")]
    LifetimeTooLong {
        /// The longest lifetime accepted, in seconds.
        max: u64,
    },
    /// The ID token's `nonce` is not the one this sign-in sent (OpenID Connect Core
    /// §3.1.3.7 rule 11): it answers another sign-in, or is replayed.
    #[error("nonce: the ID token does not answer this sign-in")]
    Nonce,
    /// The ID token's `iat` is older than a token answering this sign-in can be.
    #[error("iat: the ID token was issued too long ago")]
    Stale,
    /// `jti` is longer than [`MAX_JTI_LENGTH`](crate::limits::MAX_JTI_LENGTH) characters.
    #[error("jti: the assertion id may be at most 256 characters long")]
    JtiTooLong,
    /// The client's key set breaks a limit of [`crate::limits`].
    #[error("the client's key set is refused: {0}")]
    ClientKeySet(KeySetLimit),
    /// The client's registered `jwks` is not a key set with a usable key, or its `jwks_uri`
    /// is not an https URL or leads to an address this server refuses to reach (RFC 6890
    /// special-use, see `mcp-auth-fetch`). Which address is never said to the client.
    #[error("the client's registered jwks or jwks_uri is not usable")]
    UnusableClientKeys,
}

impl Rejection {
    /// The token-endpoint error for an ID-JAG that breaks this rule: `invalid_target` for a
    /// foreign resource, `invalid_grant` for everything else (RFC 6749 §5.2, RFC 8707 §2).
    pub fn into_token_error(self) -> TokenError {
        let code = match self {
            Self::ForeignResource => TokenErrorCode::InvalidTarget,
            _ => TokenErrorCode::InvalidGrant,
        };
        TokenError::new(code, self.to_string())
    }

    /// The client-authentication failure for a client assertion that breaks this rule.
    pub fn into_client_assertion_error(self) -> ClientAssertionError {
        ClientAssertionError::rejected(self.to_string())
    }
}

/// A rule a client key set breaks (inline `jwks`, or the document at its `jwks_uri`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetLimit {
    /// Not a JSON object with a `keys` array.
    #[error("it is not a JSON Web Key Set")]
    NotAKeySet,
    /// More than [`MAX_KEYS_PER_SET`](crate::limits::MAX_KEYS_PER_SET) entries in `keys`.
    #[error("it holds more than 10 keys")]
    TooManyKeys,
    /// More than [`MAX_KEY_SET_BYTES`](crate::limits::MAX_KEY_SET_BYTES) bytes.
    #[error("it is larger than 16 KiB")]
    TooLarge,
    /// Several keys, and one of them without a `kid` or with another key's `kid`.
    #[error("with more than one key, every key needs a kid of its own")]
    KeyIdsRequired,
}

/// Signature verification could not run: every slot stayed busy (the process verifies at most
/// one signature per core at a time), or the verification task failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerificationUnavailable {
    /// No verification slot freed up within the wait: answered `temporarily_unavailable`.
    #[error("every signature verification slot stayed busy for {0:?}")]
    Saturated(std::time::Duration),
    /// The verification task panicked or was cancelled: answered `server_error`.
    #[error("the signature verification task failed")]
    Failed(#[source] tokio::task::JoinError),
    /// The verification panicked on the calling worker: answered `server_error`.
    #[error("the signature verification panicked")]
    Panicked,
}

impl From<VerificationUnavailable> for ProviderError {
    fn from(error: VerificationUnavailable) -> Self {
        match error {
            VerificationUnavailable::Saturated(_) => ProviderError::unavailable(error),
            VerificationUnavailable::Failed(_) | VerificationUnavailable::Panicked => {
                ProviderError::internal(error)
            }
        }
    }
}

/// A key set could not be obtained: the https fetch failed, timed out, was too large, or the
/// document is not a JWKS. The client sees `temporarily_unavailable`; the cause goes to logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFetchError {
    /// The request failed or timed out.
    #[error("fetching the JWKS failed")]
    Http(#[source] reqwest::Error),
    /// The server answered with another status than 200.
    #[error("the JWKS endpoint answered with status {0}")]
    Status(u16),
    /// The body exceeds the size cap.
    #[error("the JWKS document exceeds {0} bytes")]
    TooLarge(usize),
    /// The file could not be read.
    #[error("reading the JWKS file failed")]
    Io(#[source] std::io::Error),
    /// The document is not a JSON Web Key Set.
    #[error("the document is not a JSON Web Key Set")]
    Invalid(#[source] serde_json::Error),
    /// A client's `jwks_uri` could not be fetched by the SSRF-hardened fetcher; see
    /// [`KeyFetchError::is_refusal`] for the failures that are the client's fault.
    #[error("fetching the client's JWKS failed")]
    Fetch(#[source] mcp_auth_fetch::FetchError),
    /// A client's fetched key set breaks a limit: the client's fault, like a refused URL.
    #[error("the client's JWKS is refused: {0}")]
    KeySet(KeySetLimit),
    /// No keys are cached and the last fetch, less than a minute ago, failed.
    #[error("no keys are cached and the last fetch failed less than a minute ago")]
    RecentFailure,
    /// The issuer's metadata (RFC 8414 or OpenID discovery) could not be fetched or used to
    /// find its `jwks_uri`.
    #[error("the issuer's metadata is unusable: {0}")]
    Metadata(&'static str),
}

impl KeyFetchError {
    /// Whether the URL itself was refused (not https, or an address the fetcher must not
    /// reach) rather than the key host failing: for a client's `jwks_uri`, the client's fault,
    /// answered with `invalid_client` instead of `temporarily_unavailable`.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Fetch(error) if error.is_refusal()) || matches!(self, Self::KeySet(_))
    }
}

impl From<KeyFetchError> for ProviderError {
    fn from(error: KeyFetchError) -> Self {
        ProviderError::unavailable(error)
    }
}

/// A failure to validate: a broken rule, or keys that could not be obtained.
#[derive(Debug)]
pub(crate) enum Failure {
    Rejected(Rejection),
    Keys(KeyFetchError),
    Verification(VerificationUnavailable),
}

impl From<VerificationUnavailable> for Failure {
    fn from(error: VerificationUnavailable) -> Self {
        Self::Verification(error)
    }
}

impl From<Rejection> for Failure {
    fn from(rejection: Rejection) -> Self {
        Self::Rejected(rejection)
    }
}

impl From<KeyFetchError> for Failure {
    fn from(error: KeyFetchError) -> Self {
        Self::Keys(error)
    }
}

impl Failure {
    pub(crate) fn into_token_error(self) -> TokenError {
        match self {
            Self::Rejected(rejection) => rejection.into_token_error(),
            Self::Keys(error) => {
                tracing::error!(error = %ErrorChain(&error), "identity provider keys unavailable");
                TokenError::Provider(error.into())
            }
            Self::Verification(error) => {
                tracing::warn!(error = %ErrorChain(&error), "ID-JAG signature not verified");
                TokenError::Provider(error.into())
            }
        }
    }

    pub(crate) fn into_client_assertion_error(self) -> ClientAssertionError {
        match self {
            Self::Rejected(rejection) => rejection.into_client_assertion_error(),
            Self::Keys(KeyFetchError::KeySet(limit)) => {
                Rejection::ClientKeySet(limit).into_client_assertion_error()
            }
            Self::Keys(error) if error.is_refusal() => {
                tracing::warn!(error = %ErrorChain(&error), "client jwks_uri refused");
                Rejection::UnusableClientKeys.into_client_assertion_error()
            }
            Self::Keys(error) => {
                tracing::warn!(error = %ErrorChain(&error), "client keys unavailable");
                ClientAssertionError::Provider(error.into())
            }
            Self::Verification(error) => {
                tracing::warn!(error = %error, "client assertion signature not verified");
                ClientAssertionError::Provider(error.into())
            }
        }
    }
}

/// Invalid configuration of a validator or a fetcher, found when it is built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// A JWKS given inline or as a file is not a JSON Web Key Set with a usable key.
    #[error("invalid JWKS for {issuer}: {reason}")]
    Jwks {
        /// The issuer (or file) the key set belongs to.
        issuer: String,
        /// What is wrong.
        reason: String,
    },
    /// A JWKS file could not be read.
    #[error("cannot read the JWKS file {path}")]
    File {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A JWKS URL is not an `https` URL.
    #[error("the JWKS URL {0} must be an https URL")]
    NotHttps(String),
    /// An issuer is listed twice.
    #[error("the issuer {0} is configured twice")]
    DuplicateIssuer(String),
    /// The validator knows no resource this authorization server serves.
    #[error("at least one served resource is required")]
    NoResources,
    /// A URL setting is invalid.
    #[error("invalid {setting}: {reason}")]
    Url {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built (for example, a bad root certificate).
    #[error("cannot build the JWKS HTTP client")]
    Http(#[source] reqwest::Error),
    /// The SSRF-hardened fetcher of client `jwks_uri`s refused its configuration.
    #[error("cannot build the client JWKS fetcher")]
    Fetcher(#[source] mcp_auth_fetch::FetchConfigError),
}

/// A configured issuer identifier (RFC 8414 §2), as the validators keep it.
pub(crate) fn configured_issuer(issuer: &str) -> Result<String, JwtConfigError> {
    mcp_auth_types::validate_issuer_url(issuer)
        .map(|issuer| issuer.as_str().to_owned())
        .map_err(|error| JwtConfigError::Url {
            setting: "issuer",
            reason: error.to_string(),
        })
}

/// A configured clock leeway, at most [`MAX_ASSERTION_LEEWAY`](crate::limits::MAX_ASSERTION_LEEWAY)
/// seconds.
pub(crate) fn configured_leeway(seconds: u64) -> Result<i64, JwtConfigError> {
    i64::try_from(seconds)
        .ok()
        .filter(|_| seconds <= crate::limits::MAX_ASSERTION_LEEWAY)
        .ok_or_else(|| JwtConfigError::Url {
            setting: "leeway",
            reason: "must be at most 300 seconds".to_owned(),
        })
}
