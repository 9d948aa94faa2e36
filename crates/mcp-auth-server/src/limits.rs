//! The `[limits]` table: every bound the server itself enforces, with its default and why.
//!
//! The library crates keep their own bounds (form parameters, body sizes, registration fields,
//! key sets, outbound fetches) in their `limits` modules; this table holds what belongs to the
//! running server: connections, timeouts, per-client-IP request budgets and sign-in attempts.
//! docs/SECURITY.md lists them all.

use std::num::NonZeroU32;
use std::time::Duration;

use mcp_auth_core::Quota;
use serde::Deserialize;

/// Default cap on open connections (`--max-connections`): far above what one instance serves
/// usefully, far below the file-descriptor limits of a default service unit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// How long `/healthz` waits for the store's read and write probe before reporting it
/// unavailable: far longer than a healthy round trip (milliseconds, a synced SQLite commit
/// included), shorter than SQLite's busy timeout (5 s), so that a write lock held elsewhere is
/// reported rather than waited out, and an orchestrator's probe gets an answer.
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Capacity reserved for argon2's working memory (33 MiB; argon2 itself touches only the
/// 19 MiB its parameters need). glibc serves a block from a fresh mapping, unmapped again on
/// `free`, when it is at least the mmap threshold, and that threshold never rises above
/// 32 MiB on 64-bit systems (`DEFAULT_MMAP_THRESHOLD_MAX`, mallopt(3)); a smaller block
/// would, after the first free, come from the heap and stay in the process's memory for
/// good. The untouched 14 MiB cost address space only.
pub const ARGON2_RETURNED_MEMORY_BYTES: usize = 33 * 1024 * 1024;

/// The most argon2 memory a `--user NAME:PHC` hash may ask for (64 MiB, in KiB as argon2
/// counts it): the password-check concurrency bound assumes checks of this order (the default
/// parameters use 19 MiB).
pub const MAX_PHC_MEMORY_KIB: u32 = 64 * 1024;

/// The most argon2 passes a `--user NAME:PHC` hash may ask for (10; the default is 2): a
/// check must stay in the tens of milliseconds.
pub const MAX_PHC_PASSES: u32 = 10;

/// Bytes of log lines waiting for the background writer at most (1 MiB: several thousand
/// lines, enough to ride out a slow disk or a paused terminal; the buffer grows only as lines
/// wait, so an idle server holds none of it). Past it, lines are dropped, and counted in the
/// log, rather than making requests wait.
pub const LOG_BUFFER_BYTES: usize = 1024 * 1024;

/// How long the log writer lets lines collect before writing them (10 ms): one write and one
/// wake-up per batch instead of per line, and a line appears within about that delay.
pub const LOG_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// How long an `/mcp` event stream's head may wait for its first event (5 ms; see
/// `src/sse_head.rs`): far above what a quick tool takes on a loopback or LAN round trip (tens
/// to hundreds of µs), far below what a person or an MCP client could notice, and a small
/// fraction of the request timeout, which counts to the head.
pub const SSE_HEAD_HOLD: std::time::Duration = std::time::Duration::from_millis(5);

/// Bytes of events buffered with a held head at most (64 KiB): a first event larger than
/// that is sent as it comes instead of being gathered.
pub const SSE_HEAD_HOLD_BYTES: usize = 64 * 1024;

/// Bytes of a request path the access log prints at most: real paths are a few dozen bytes,
/// and a 16 KiB path (the header limit) must not make a 16 KiB log line.
pub const LOGGED_PATH_MAX: usize = 256;

/// Bytes of a request id the logs print at most: generated ids are 36-byte UUIDs, and a
/// client-chosen one is echoed in full in the response but cut in the log.
pub const LOGGED_REQUEST_ID_MAX: usize = 64;

/// The server's bounds, from the `[limits]` TOML table (every key optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// Open connections at most; at the cap, new ones wait in the listen backlog (default
    /// 4096; also `--max-connections`).
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, and the longest a kept-alive
    /// connection may sit idle between requests (default 30): a slow or half-sent request
    /// cannot hold a connection.
    pub header_read_timeout: u64,
    /// Seconds from a request's arrival to its response's headers, body reading included
    /// (default 30). An open `/mcp` SSE stream outlives it: it only bounds the time to the
    /// stream's headers; idle MCP sessions are closed by the MCP transport after 5 minutes.
    pub request_timeout: u64,
    /// Largest request head, in bytes (default 16 KiB), and at most `max_headers` headers
    /// (default 64).
    pub max_header_bytes: usize,
    /// Headers per request at most (default 64).
    pub max_headers: usize,
    /// HTTP/2 streams open at once on one connection (default 100, as most servers).
    pub http2_max_concurrent_streams: u32,
    /// argon2 password checks running at once (default: the number of cores). Each takes
    /// ~20 ms of CPU and 19 MiB; more at once only queue for the CPU and multiply memory.
    pub password_hashing_concurrency: usize,
    /// Milliseconds a sign-in waits for a free password check before answering 503 with
    /// `Retry-After` (default 2000).
    pub password_hashing_wait_ms: u64,
    /// Wrong passwords one pending sign-in accepts; the next attempt burns it and the client
    /// gets `access_denied` (default 5).
    pub sign_in_attempts_per_request: u32,
    /// Sign-in attempts per user name per 15 minutes, refilled evenly (default 10): slows
    /// guessing one account from many addresses.
    pub sign_in_attempts_per_user: u32,
    /// Sign-in attempts per client IP per 15 minutes, refilled evenly (default 30).
    pub sign_in_attempts_per_ip: u32,
    /// Requests per client IP per minute to `/register` (default 30).
    pub register_per_minute: u32,
    /// Requests per client IP per minute to `/token` (default 600: many users behind one
    /// NAT refresh their tokens).
    pub token_per_minute: u32,
    /// Requests per client IP per minute to `/authorize` (default 120).
    pub authorize_per_minute: u32,
    /// Requests per client IP per minute to `/revoke` (default 120).
    pub revoke_per_minute: u32,
    /// Requests per client IP per minute to `/introspect` (default 6000: a resource server
    /// asks about the tokens it sees, often from one address; it should cache the answers
    /// until their `exp`, and this bounds one that does not).
    pub introspect_per_minute: u32,
    /// Requests per client IP per minute to the sign-in page, GET and POST (default 60).
    pub sign_in_per_minute: u32,
    /// MCP sessions one principal (client, user) may hold open; opening another closes its
    /// oldest (default 16).
    pub mcp_sessions_per_principal: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: 30,
            request_timeout: 30,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            http2_max_concurrent_streams: 100,
            password_hashing_concurrency: std::thread::available_parallelism()
                .map_or(1, usize::from),
            password_hashing_wait_ms: 2000,
            sign_in_attempts_per_request: 5,
            sign_in_attempts_per_user: 10,
            sign_in_attempts_per_ip: 30,
            register_per_minute: 30,
            token_per_minute: 600,
            authorize_per_minute: 120,
            revoke_per_minute: 120,
            introspect_per_minute: 6000,
            sign_in_per_minute: 60,
            mcp_sessions_per_principal: 16,
        }
    }
}

/// How long a pending sign-in lives: `StoreProvider`'s authorization-request lifetime, which
/// the server leaves at its default (10 minutes).
pub(crate) const PENDING_SIGN_IN_LIFETIME: Duration = Duration::from_secs(600);

/// The window the sign-in attempt budgets refill over.
const SIGN_IN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The per-IP request budgets of the OAuth endpoints, each `None` when set to 0 (unlimited).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EndpointQuotas {
    pub(crate) register: Option<Quota>,
    pub(crate) token: Option<Quota>,
    pub(crate) authorize: Option<Quota>,
    pub(crate) revoke: Option<Quota>,
    pub(crate) introspect: Option<Quota>,
    pub(crate) sign_in: Option<Quota>,
}

impl Limits {
    /// Checks the values that would make the server unusable rather than merely strict.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_connections", self.max_connections as u64),
            ("header_read_timeout", self.header_read_timeout),
            ("request_timeout", self.request_timeout),
            ("max_header_bytes", self.max_header_bytes as u64),
            ("max_headers", self.max_headers as u64),
            (
                "http2_max_concurrent_streams",
                u64::from(self.http2_max_concurrent_streams),
            ),
            (
                "password_hashing_concurrency",
                self.password_hashing_concurrency as u64,
            ),
            (
                "sign_in_attempts_per_request",
                u64::from(self.sign_in_attempts_per_request),
            ),
            (
                "mcp_sessions_per_principal",
                self.mcp_sessions_per_principal as u64,
            ),
        ];
        match positive.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(format!("{name} must be at least 1")),
            None => Ok(()),
        }
    }

    /// Connection-level bounds for the accept loop.
    pub(crate) fn connections(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_secs(self.header_read_timeout),
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
            http2_max_pending_reset_streams: HTTP2_MAX_PENDING_RESET_STREAMS,
        }
    }

    /// The per-IP budgets of the OAuth endpoints and the sign-in page.
    pub(crate) fn endpoint_quotas(&self) -> EndpointQuotas {
        let per_minute = |n: u32| Quota::per_period(n, Duration::from_secs(60));
        EndpointQuotas {
            register: per_minute(self.register_per_minute),
            token: per_minute(self.token_per_minute),
            authorize: per_minute(self.authorize_per_minute),
            revoke: per_minute(self.revoke_per_minute),
            introspect: per_minute(self.introspect_per_minute),
            sign_in: per_minute(self.sign_in_per_minute),
        }
    }

    /// Sign-in attempts per user name, refilled over 15 minutes.
    pub(crate) fn sign_in_user_quota(&self) -> Option<Quota> {
        Quota::per_period(self.sign_in_attempts_per_user, SIGN_IN_WINDOW)
    }

    /// Sign-in attempts per client IP, refilled over 15 minutes.
    pub(crate) fn sign_in_ip_quota(&self) -> Option<Quota> {
        Quota::per_period(self.sign_in_attempts_per_ip, SIGN_IN_WINDOW)
    }

    /// Attempts per pending sign-in: all of them within its lifetime, never refilled.
    ///
    /// One attempt comes back only after [`PENDING_SIGN_IN_LIFETIME`], as long as a pending
    /// request lives, so a request gets its attempts once; and a budget is full again, so its
    /// key is swept, within `attempts` lifetimes (50 minutes by default) — short, so that the
    /// limiter's bounded key table is not filled by a day of abandoned sign-ins.
    pub(crate) fn sign_in_request_quota(&self) -> Quota {
        let attempts =
            NonZeroU32::new(self.sign_in_attempts_per_request).unwrap_or(NonZeroU32::MIN);
        Quota::new(attempts, PENDING_SIGN_IN_LIFETIME * attempts.get())
    }
}

/// HTTP/2 streams a peer may reset before the connection is refused (the "rapid reset" attack,
/// CVE-2023-44487); hyper's own default, pinned here so it cannot silently change.
const HTTP2_MAX_PENDING_RESET_STREAMS: usize = 20;

/// What the accept loop needs from [`Limits`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_headers: usize,
    pub(crate) http2_max_concurrent_streams: u32,
    pub(crate) http2_max_pending_reset_streams: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_sign_in_never_gets_an_attempt_back_and_its_budget_is_forgotten_within_the_hour() {
        let quota = Limits::default().sign_in_request_quota();
        assert_eq!(quota.burst().get(), 5);
        // No refill while the request lives.
        assert!(quota.replenish_interval() >= PENDING_SIGN_IN_LIFETIME);
        // Full again (so swept) within five lifetimes.
        assert!(quota.replenish_interval() * quota.burst().get() <= Duration::from_secs(3600));
    }
}
