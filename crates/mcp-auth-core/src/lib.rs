#![doc = include_str!("../README.md")]

mod access_token_signer;
mod assertion;
pub mod audit;
mod capabilities;
mod client_metadata;
mod clock;
mod error;
pub mod limits;
mod memory;
mod provider;
pub mod rate_limit;
pub mod secrets;
mod settings;
pub mod storage;
mod store_provider;
mod verifier_chain;

pub use access_token_signer::{AccessTokenClaims, AccessTokenSigner};
pub use assertion::{
    ClientAssertionError, ClientAssertionVerifier, IdentityAssertionGrant,
    IdentityAssertionValidator, VerifiedClientAssertion, identity_assertion_subject,
};
pub use capabilities::Capabilities;
pub use client_metadata::{
    ClientMetadataError, ClientMetadataResolver, is_metadata_document_client_id,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{
    AuthorizeError, ConfigError, ErrorChain, ProviderError, ProviderErrorKind, RegistrationError,
    StorageError, StorageErrorKind, TokenError,
};
pub use memory::MemoryStore;
pub use provider::{
    OAuthAuthorizationServerProvider, ProviderTokenVerifier, RevocableToken, TokenVerifier,
};
pub use rate_limit::{LocalRateLimiter, Quota, RateDecision, RateLimitStore};
pub use settings::{
    AuthSettings, AuthSettingsBuilder, ClientRegistrationOptions, IntrospectionOptions,
    RevocationOptions,
};
pub use storage::{
    AccessTokenRecord, AdminStore, AuthorizationRequestRecord, AuthorizationRequestStore,
    ClientRecord, ClientStore, CodeRecord, CodeStore, CodeTake, GrantRecord, RefreshLookup,
    RefreshTokenRecord, ReplayStore, Rotation, SigningKeyRecord, SigningKeyStore, Storage,
    TokenStore, UpstreamTokenRecord, UpstreamTokenStore, UserRecord,
};
pub use store_provider::{
    DEFAULT_UPSTREAM_TOKEN_LIFETIME, MAX_ACCESS_TOKEN_CACHE_TTL, MAX_CODE_TTL,
    MAX_REFRESH_REUSE_INTERVAL, PendingAuthorization, PurgeReport, StoreProvider,
    StoreProviderBuilder, StoredAccessToken, StoredAuthorizationCode, StoredRefreshToken,
};

/// Re-export of the wire types, so that implementers need one dependency.
pub use mcp_auth_types as types;
#[doc(hidden)]
pub use metrics as __metrics;
#[doc(hidden)]
pub use tracing as __tracing;
pub use verifier_chain::ChainedTokenVerifier;
