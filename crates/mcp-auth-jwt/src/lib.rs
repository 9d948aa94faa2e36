#![doc = include_str!("../README.md")]

mod access_token;
mod client_assertion;
mod error;
mod id_jag;
mod id_token;
mod jwks;
mod jws;
pub mod limits;
mod signing;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
mod verify_pool;

pub use access_token::{ACCESS_TOKEN_TYP, JwtAccessTokenVerifier, JwtAccessTokenVerifierBuilder};
pub use client_assertion::PrivateKeyJwtVerifier;
pub use error::{JwtConfigError, KeyFetchError, KeySetLimit, Rejection, VerificationUnavailable};
pub use id_jag::{DEFAULT_LEEWAY, ID_JAG_TYP, IdJagValidator, IdJagValidatorBuilder};
pub use id_token::{IdTokenClaims, IdTokenError, IdTokenValidator, IdTokenValidatorBuilder};
pub use jwks::{
    DEFAULT_MAX_AGE, FetchedJwks, HttpJwksFetcher, HttpJwksFetcherBuilder, JwksFetcher, JwksSource,
    MAX_MAX_AGE, MIN_REFETCH_INTERVAL,
};
pub use jws::{SUPPORTED_ALGORITHMS, SigningAlgorithm};
/// The SSRF-hardened fetcher for client `jwks_uri`s (it implements [`JwksFetcher`]).
pub use mcp_auth_fetch::VettedFetcher;
pub use signing::{
    DEFAULT_PUBLISH_AHEAD, DEFAULT_ROTATION_PERIOD, JwtAccessTokenSigner,
    JwtAccessTokenSignerBuilder, MIN_SECRET_LEN, REFRESH_INTERVAL, SealingKey, SigningKeyError,
    UnsealError,
};
