//! The whole authorization-code flow against `mcp-auth-server` on a SQLite file the server
//! creates and migrates at start-up.

mcp_auth_tests::server_flow_tests!(mcp_auth_tests::server::fresh_sqlite_url(env!(
    "CARGO_TARGET_TMPDIR"
)));
