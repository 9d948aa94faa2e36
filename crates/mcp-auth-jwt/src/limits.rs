//! Every bound of this crate, with why it has its value. The bounds shared with the provider
//! (`jti` length, the lifetime ceiling, the leeway ceiling) are core's and re-exported here.

use std::time::Duration;

pub use mcp_auth_core::limits::{MAX_ASSERTION_LEEWAY, MAX_ASSERTION_LIFETIME, MAX_JTI_LENGTH};

/// Most keys a client key set (inline `jwks`, or the document at its `jwks_uri`) may hold,
/// counting every entry of `keys`: the bound registration applies to an inline `jwks`
/// ([`mcp_auth_types::limits::MAX_JWKS_KEYS`], 10), enforced here again when a set is used or
/// fetched, since a stored client or a `jwks_uri` may predate or escape that check. A client
/// needs one key, two while it rotates; without a bound, one registration with thousands of
/// keys made every token request try each of them.
pub const MAX_KEYS_PER_SET: usize = mcp_auth_types::limits::MAX_JWKS_KEYS;

/// Largest client key set, in bytes of compact JSON (an inline `jwks`) or of the fetched
/// `jwks_uri` body: registration's bound ([`mcp_auth_types::limits::MAX_JWKS_BYTES`],
/// 16 KiB), in which ten 4096-bit RSA keys with their parameters fit.
pub const MAX_KEY_SET_BYTES: usize = mcp_auth_types::limits::MAX_JWKS_BYTES;

/// Default longest lifetime (`exp` − `iat`) of an assertion, in seconds: one hour. ID-JAGs and
/// client assertions are meant to be used at once (identity providers issue them for minutes);
/// a long-lived one is a bearer credential waiting to be stolen, and its replay entry must be
/// kept as long. Configurable on [`IdJagValidatorBuilder::max_lifetime`] and
/// [`PrivateKeyJwtVerifier::max_lifetime`], up to [`MAX_ASSERTION_LIFETIME`].
///
/// [`IdJagValidatorBuilder::max_lifetime`]: crate::IdJagValidatorBuilder::max_lifetime
/// [`PrivateKeyJwtVerifier::max_lifetime`]: crate::PrivateKeyJwtVerifier::max_lifetime
pub const DEFAULT_MAX_ASSERTION_LIFETIME: u64 = 3600;

/// Most parsed inline client key sets kept in memory. Each holds at most
/// [`MAX_KEYS_PER_SET`] keys, so the cache stays within a few megabytes; past the bound an
/// arbitrary entry is evicted (a miss costs one parse, never a wrong answer: entries are keyed
/// by the SHA-256 of the set's bytes).
pub const MAX_CACHED_KEY_SETS: usize = 1024;

/// Most clients' `jwks_uri` key-set caches kept at once; past that the map starts over (each
/// entry may also hold a fetched set, so the bound is on memory and on pinned URLs alike).
pub const MAX_CACHED_JWKS_URIS: usize = 1024;

/// How long a verification waits for a free signature-verification slot before the request
/// is answered `temporarily_unavailable`: long enough to ride out a burst, short enough that a
/// flood of assertions is shed instead of queueing without end.
pub const VERIFICATION_WAIT: Duration = Duration::from_secs(2);

/// Signature verifications that may run at once, in the whole process: one per core. They run
/// on tokio's blocking pool, never on the async workers, so a flood of expensive signatures
/// cannot stall other endpoints; the bound keeps them from taking every core (or every thread
/// of the blocking pool) either.
pub fn max_concurrent_verifications() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Verified JWT access tokens a [`JwtAccessTokenVerifier`](crate::JwtAccessTokenVerifier)
/// remembers at most: a client's later requests cost a hash of the token's signature, a lookup
/// and a comparison until the token expires. Beyond it the least useful entries are evicted.
/// Each entry holds the token's claims and its signed part (`header.payload`, which the next
/// request's token must equal), never its signature: about 700 bytes for a typical ES256 token,
/// under twice [`MAX_ACCESS_TOKEN_BYTES`] for the longest token accepted, so a few megabytes
/// when full of ordinary tokens.
pub const MAX_VERIFIED_ACCESS_TOKENS: usize = 10_000;

/// How long after a failed discovery of an issuer's metadata the next is tried (60 s): a
/// flood of tokens while the authorization server is down must not become a flood of
/// requests to it; until then tokens are answered "temporarily unavailable".
pub const DISCOVERY_RETRY_INTERVAL: i64 = 60;

/// How long a verified JWT access token is remembered at most (300 s), whatever its `exp`:
/// after its issuer withdraws the signing key (a compromise, a rotation) the token is checked
/// against the current keys again within this long.
pub const MAX_VERIFIED_TOKEN_AGE: i64 = 300;

/// The longest JWT access token looked at (8 KiB): real ones are under 2 KiB, and nothing
/// longer is base64-decoded or parsed.
pub const MAX_ACCESS_TOKEN_BYTES: usize = 8 * 1024;

/// The largest ID token accepted (16 KiB): real ones are one to two kilobytes, a few more with
/// group claims; a bound keeps parsing cheap.
pub const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

/// How old an ID token's `iat` may be, in seconds (10 minutes, plus the leeway): it answers a
/// code this relying party redeemed a moment ago, so an older one is a replay or a provider
/// whose clock is far off.
pub const MAX_ID_TOKEN_AGE: i64 = 600;

/// The longest `sub` accepted: OpenID Connect Core §2 allows at most 255 ASCII characters.
pub const MAX_SUBJECT_LENGTH: usize = 255;
