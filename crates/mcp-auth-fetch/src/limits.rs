//! Every bound of the fetcher, with why it has the value it has. Each default can be changed on
//! [`VettedFetcherBuilder`](crate::VettedFetcherBuilder).
//!
//! The fetcher exists for URLs that *clients* choose, so anyone who can send `/authorize` or
//! `/token` decides what it fetches and how often. The timeouts and the body cap bound one
//! fetch; the concurrency limit, single-flight and the negative cache bound how many fetches an
//! unauthenticated caller can cause: repeating a request with a failing client id costs the
//! server a cache lookup, not an outbound connection.

use std::time::Duration;

/// Default connect timeout. A metadata or key host that cannot complete a TCP and TLS handshake
/// in five seconds is down for our purposes; waiting longer only holds a concurrency permit.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default longest pause between two reads of a response: a host that stops sending for five
/// seconds (a slow-drip attacker) is given up on.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Default timeout of a whole fetch, connection included. Documents are a few kilobytes; ten
/// seconds is generous for a healthy host and bounds how long a permit can be held.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on a body: 64 KiB, far above a real key set (an RSA JWK is ~0.5 KB) and a
/// metadata document (whose resolver lowers it to 5 KB), so that buffering is bounded.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Default number of outbound fetches in flight at once, per fetcher (clones share it). Each
/// holds a socket, a TLS session and up to the body cap for up to the total timeout: 16 × 64 KiB
/// is 1 MiB at most. Legitimate traffic needs few: successes are cached by the callers (metadata
/// documents, key sets) and failures here, so the limit only bites under a flood of new URLs.
pub const DEFAULT_MAX_CONCURRENT_FETCHES: usize = 16;

/// Default longest wait for a concurrency permit before the fetch fails with
/// [`FetchError::Busy`](crate::FetchError::Busy) (`temporarily_unavailable` for the client).
/// One second absorbs a burst of legitimate first fetches (each takes ~100 ms on a healthy
/// host) without letting a flood queue requests, and the connections carrying them, for long.
pub const DEFAULT_PERMIT_WAIT: Duration = Duration::from_secs(1);

/// Default lifetime of a remembered failure, and the window in which a host's failures are
/// counted. Thirty seconds turns a loop of requests with a failing client id into one outbound
/// fetch per half minute, while a document or key host that was briefly down (or a client that
/// fixes its document) is retried soon enough that nobody notices.
pub const DEFAULT_FAILURE_TTL: Duration = Duration::from_secs(30);

/// Default number of transport failures (name resolution, refused address, connect, TLS,
/// timeout) of one host within [`DEFAULT_FAILURE_TTL`] after which the host is not contacted
/// for [`DEFAULT_FAILURE_TTL`]. Five tolerates a flaky network; past it, new URLs on a dead or
/// tarpitting host stop costing a connection each. A refused address refuses its host at once:
/// it is a property of the name, not of one URL.
pub const DEFAULT_HOST_FAILURE_THRESHOLD: u32 = 5;

/// Default number of failed URLs remembered. Past it the least useful entries are evicted
/// (quick_cache's CLOCK-Pro), so a flood of distinct URLs costs at most this many entries.
pub const DEFAULT_MAX_FAILED_URLS: usize = 4096;

/// Default number of hosts whose failures are counted at once; evicted as above.
pub const DEFAULT_MAX_FAILING_HOSTS: usize = 1024;

/// Bytes charged to each remembered failure at least: the memory budget of the URL cache is
/// `max_failed_urls × FAILED_URL_BYTES` and of the host cache `max_failing_hosts ×
/// FAILING_HOST_BYTES`. A URL (chosen by a client, of any length) is charged its real size when
/// that is more, so long URLs buy fewer entries, never more memory: 4096 × 512 B is 2 MiB.
pub const FAILED_URL_BYTES: usize = 512;

/// Bytes charged to each counted host at least; see [`FAILED_URL_BYTES`]. 1024 × 256 B is
/// 256 KiB.
pub const FAILING_HOST_BYTES: usize = 256;

/// Most distinct URLs being fetched or waited for at once; one more fails with
/// [`FetchError::Busy`](crate::FetchError::Busy). Waiters are bounded by the permit wait anyway;
/// this bounds the single-flight table itself, whatever the request rate.
pub const MAX_PENDING_URLS: usize = 1024;
