//! Identifiers no client should send (control characters, NUL included) reaching a store.
//!
//! Handlers refuse them first, but a store must still answer sensibly: a lookup of an id that
//! cannot exist is simply absent (never an error the provider turns into a server error), and
//! a write is either stored faithfully or refused with a `StorageError`, never a panic.

use std::sync::Arc;

use mcp_auth_core::types::{OAuthClientInformationFull, OAuthClientMetadata};
use mcp_auth_core::{ClientRecord, Storage};

use super::records::NOW;

/// Ids with control characters, NUL first (PostgreSQL text cannot hold it).
const HOSTILE_IDS: [&str; 4] = ["a\0b", "\0", "a\u{1}b", "line\r\nbreak"];

/// Looking up, deleting or revoking by an id with control characters finds nothing and fails
/// nothing; storing a client under such an id either round-trips or is refused; recording an
/// assertion id with such an issuer never reports a first use twice; upstream tokens under
/// such a grant id are absent and deleting them fails nothing.
pub async fn ids_with_control_characters_are_absent_not_errors(store: Arc<dyn Storage>) {
    for id in HOSTILE_IDS {
        let found = store.get_client(id).await;
        assert!(matches!(found, Ok(None)), "get_client({id:?}): {found:?}");
        let deleted = store.delete_client(id).await;
        assert!(
            matches!(deleted, Ok(false)),
            "delete_client({id:?}): {deleted:?}"
        );
        store
            .revoke_grant(id, NOW + 60)
            .await
            .unwrap_or_else(|err| panic!("revoke_grant({id:?}): {err:?}"));
        let upstream = store.get_upstream_tokens(id, NOW).await;
        assert!(
            matches!(upstream, Ok(None)),
            "get_upstream_tokens({id:?}): {upstream:?}"
        );
        store
            .delete_upstream_tokens(id)
            .await
            .unwrap_or_else(|err| panic!("delete_upstream_tokens({id:?}): {err:?}"));

        let record = ClientRecord::new(OAuthClientInformationFull::new(
            id,
            OAuthClientMetadata::new(vec!["http://127.0.0.1/cb".to_owned()]),
        ));
        match store.insert_client(&record).await {
            Ok(()) => {
                let loaded = store.get_client(id).await.expect("get").expect("stored");
                assert_eq!(loaded.info.client_id, id);
            }
            Err(_) => assert!(matches!(store.get_client(id).await, Ok(None))),
        }

        let first = store.record_assertion_id(id, "jti-1", NOW + 60, NOW).await;
        let second = store.record_assertion_id(id, "jti-1", NOW + 60, NOW).await;
        assert!(
            !matches!((&first, &second), (Ok(true), Ok(true))),
            "issuer {id:?}: a replay was accepted ({first:?}, {second:?})"
        );
    }
}
