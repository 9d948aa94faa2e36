//! The storage conformance suite against `MemoryStore`.

use std::sync::Arc;

mcp_auth_tests::storage_conformance!(async {
    Arc::new(mcp_auth_core::MemoryStore::new()) as Arc<dyn mcp_auth_core::Storage>
});
