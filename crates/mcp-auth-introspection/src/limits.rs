//! The bounds of an [`IntrospectionTokenVerifier`](crate::IntrospectionTokenVerifier): every
//! request, answer and cache entry.

use std::time::Duration;

/// How long one introspection (or metadata) request may take, connection included (5 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest introspection answer or metadata document read (64 KiB): real ones are well
/// under 4 KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Introspection requests in flight at most per verifier (32): a flood of distinct made-up
/// tokens cannot open unbounded connections to the authorization server.
pub const MAX_CONCURRENT_REQUESTS: usize = 32;

/// How long a request waits for a slot before it is "temporarily unavailable" (2 s).
pub const SLOT_WAIT: Duration = Duration::from_secs(2);

/// Active answers remembered at most (10,000, about 300 bytes each); beyond it the least
/// useful are evicted.
pub const MAX_CACHED_ANSWERS: usize = 10_000;

/// Inactive answers remembered at most (1,024), apart from the active ones, so that a flood
/// of made-up tokens cannot evict the answers real clients need.
pub const MAX_CACHED_INACTIVE_ANSWERS: usize = 1024;

/// The longest token sent to the endpoint (8 KiB): anything longer is refused here without a
/// request, so that a client cannot make us post megabytes to the authorization server.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// How long an active answer is trusted by default (60 s), if the token does not expire
/// sooner: the longest a revocation at the authorization server can go unnoticed here.
pub const DEFAULT_ACTIVE_TTL: u64 = 60;

/// The longest [`DEFAULT_ACTIVE_TTL`] may be set to (300 s).
pub const MAX_ACTIVE_TTL: u64 = 300;

/// How long an inactive answer is remembered (5 s): long enough that one bad token repeated
/// costs one request per few seconds, short enough that a token issued a moment ago and
/// presented early is soon accepted.
pub const INACTIVE_TTL: i64 = 5;

/// How long after a failed discovery of the introspection endpoint the next is tried (60 s).
pub const DISCOVERY_RETRY_INTERVAL: i64 = 60;
