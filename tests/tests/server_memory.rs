//! The whole authorization-code flow against `mcp-auth-server` on the in-memory store.

mcp_auth_tests::server_flow_tests!(async { "memory".to_owned() });
