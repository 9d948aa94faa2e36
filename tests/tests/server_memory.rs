//! The whole authorization-code flow against `mcp-auth-server` on the in-memory store.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "server_memory/audit.rs"]
mod audit;
#[path = "server_memory/gateway.rs"]
mod gateway;
#[path = "https_host/mod.rs"]
mod https_host;
#[path = "server_memory/metrics.rs"]
mod metrics;
#[path = "server_memory/oidc.rs"]
mod oidc;

mcp_auth_tests::server_flow_tests!(async { "memory".to_owned() });
