//! The bounds the relying party enforces, with why.

use std::time::Duration;

/// Time for one request to the provider (discovery, the token request), connection included:
/// the user waits at the callback meanwhile.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read from the provider (64 KiB): a discovery document or a token
/// response is a few kilobytes; the cap is enforced while reading.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Requests to the provider in flight at most: sign-ins are human-paced, and a flood of
/// callbacks must not become a flood of token requests.
pub const MAX_CONCURRENT_REQUESTS: usize = 32;

/// How long a request waits for a slot among [`MAX_CONCURRENT_REQUESTS`].
pub const SLOT_WAIT: Duration = Duration::from_secs(2);

/// After a failed discovery, the next attempt waits this long (seconds): an unreachable
/// provider costs one request a minute, not one per sign-in.
pub const DISCOVERY_RETRY_INTERVAL: i64 = 60;

/// How long a started sign-in may take at the provider (10 minutes, seconds): after it, the
/// callback is refused as expired.
pub const SIGN_IN_LIFETIME: i64 = 600;

/// The longest `code`, `state` or `error` accepted on the callback: real ones are well under
/// 1 KiB.
pub const MAX_CALLBACK_PARAMETER: usize = 2048;
