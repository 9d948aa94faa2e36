//! Cross-crate test harness: service helpers, the storage conformance suite, and the
//! in-process `mcp-auth-server` with a scripted client.

// Everything here runs only inside tests, where a failed expectation is meant to abort the
// test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod bench;
pub mod conformance;
pub mod hostile;
pub mod rate_limit;
pub mod server;
pub mod services;
