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
