//! Cross-crate test harness: service helpers and the storage conformance suite.

// Everything here runs only inside tests, where a failed expectation is meant to abort the
// test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod conformance;
pub mod services;
