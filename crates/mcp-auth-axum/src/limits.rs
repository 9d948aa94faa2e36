//! The bounds this crate enforces on its own; docs/SECURITY.md lists them with the others.

use std::time::Duration;

/// Request bodies up to this many bytes (by `Content-Length`) are read and discarded before a
/// rejection is sent: an MCP JSON-RPC message is a few hundred bytes, and reading 4 KiB costs
/// less than the reconnection it saves.
pub const MAX_DRAINED_BODY: u64 = 4 * 1024;

/// How long draining may take before the connection is closed instead: a client that declared
/// a small body and does not send it gets no more of the server's time than this.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Sessions one principal may hold by default: enough for an IDE with several windows and a
/// few agents, far below what would let one token exhaust the server.
pub const DEFAULT_SESSIONS_PER_PRINCIPAL: usize = 16;
