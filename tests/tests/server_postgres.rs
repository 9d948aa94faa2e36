//! The whole authorization-code flow against `mcp-auth-server` on PostgreSQL, a fresh
//! database per test that the server migrates at start-up (`cargo xtask test` starts the
//! server).

mcp_auth_tests::server_flow_tests!(mcp_auth_tests::services::fresh_postgres_database());
