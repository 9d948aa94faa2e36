//! The bounds the proxy enforces, with why; the crate README lists them for operators.

use std::time::Duration;

/// Default time to the upstream's response headers: long enough for a tool call that answers
/// in its response (not a stream), short enough that a hung upstream frees the client.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Time to open a connection to the upstream (TCP and TLS), within the header timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default largest request body: JSON-RPC messages are small, but tool arguments may carry
/// documents; 4 MiB is far above the one and far below what would hurt.
pub const DEFAULT_MAX_REQUEST_BODY: usize = 4 * 1024 * 1024;

/// How long an idle upstream connection is kept for reuse: below the 5 s keep-alive timeout
/// of uvicorn and Node.js's `http` server, so the pool does not pick a connection the upstream
/// is about to close.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Idle upstream connections kept at most.
pub const POOL_MAX_IDLE: usize = 64;

/// The longest a readiness probe waits for the upstream.
pub const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a readiness answer is reused: a flood of probes costs the upstream one request
/// per this interval.
pub const READY_CACHE: Duration = Duration::from_secs(1);

/// Default cap on requests forwarded at once, open SSE streams included: each holds an upstream
/// connection (HTTP/1.1) and a file descriptor, so without a cap one token could exhaust the
/// process's descriptors, and the authorization server's with them. 1024 is far above what one
/// MCP server serves usefully and far below a default descriptor limit.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// `Retry-After` of the gateway's 503 when [`DEFAULT_MAX_IN_FLIGHT`] is reached, in seconds.
pub const BUSY_RETRY_AFTER: u64 = 1;
