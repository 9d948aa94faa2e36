//! The whole authorization-code flow against `mcp-auth-server` on Redis (`cargo xtask test`
//! starts the server). Every key the flow writes is named by a fresh random credential or
//! client id, so tests sharing the default key prefix do not meet.

mcp_auth_tests::server_flow_tests!(async { mcp_auth_tests::services::redis_url() });
