//! Contracts of the upstream-token store (`UpstreamTokenStore`), one function per contract.

use std::sync::Arc;

use mcp_auth_core::secrets::random_id;
use mcp_auth_core::{Storage, UpstreamTokenRecord};

use super::records::NOW;

/// Sealed text as the server stores it: base64url, of a realistic length.
fn sealed(tag: &str) -> String {
    format!("{tag}.{}", "A-b_0".repeat(120))
}

async fn sealed_at(store: &dyn Storage, grant_id: &str, now: i64) -> Option<String> {
    store
        .get_upstream_tokens(grant_id, now)
        .await
        .expect("get upstream tokens")
        .map(|record| {
            assert_eq!(record.grant_id, grant_id);
            record.sealed
        })
}

/// A grant's record is stored, replaced whole by a second put, and deleted; another grant's
/// record is never the one returned, and deleting an absent record is not an error.
pub async fn upstream_tokens_are_stored_replaced_and_deleted_per_grant(store: Arc<dyn Storage>) {
    let (first, second) = (random_id(), random_id());
    store
        .put_upstream_tokens(&UpstreamTokenRecord::new(&first, sealed("one"), NOW + 60))
        .await
        .expect("put");
    assert_eq!(sealed_at(&*store, &second, NOW).await, None);
    store
        .put_upstream_tokens(&UpstreamTokenRecord::new(&second, sealed("two"), NOW + 60))
        .await
        .expect("put");
    assert_eq!(sealed_at(&*store, &first, NOW).await, Some(sealed("one")));
    assert_eq!(sealed_at(&*store, &second, NOW).await, Some(sealed("two")));

    store
        .put_upstream_tokens(&UpstreamTokenRecord::new(
            &first,
            sealed("one-refreshed"),
            NOW + 120,
        ))
        .await
        .expect("replace");
    let replaced = store
        .get_upstream_tokens(&first, NOW)
        .await
        .expect("get")
        .expect("replaced, not gone");
    assert_eq!(replaced.sealed, sealed("one-refreshed"));
    assert_eq!(replaced.expires_at, NOW + 120);
    assert_eq!(sealed_at(&*store, &second, NOW).await, Some(sealed("two")));

    store.delete_upstream_tokens(&first).await.expect("delete");
    assert_eq!(sealed_at(&*store, &first, NOW).await, None);
    assert_eq!(sealed_at(&*store, &second, NOW).await, Some(sealed("two")));
    store
        .delete_upstream_tokens(&first)
        .await
        .expect("deleting an absent record");
    store
        .delete_upstream_tokens(&random_id())
        .await
        .expect("deleting a record never stored");
}

/// A record is found until `expires_at` and not at it, by the caller's clock.
pub async fn upstream_tokens_expire_at_their_end(store: Arc<dyn Storage>) {
    let grant = random_id();
    store
        .put_upstream_tokens(&UpstreamTokenRecord::new(&grant, sealed("x"), NOW + 10))
        .await
        .expect("put");
    assert_eq!(sealed_at(&*store, &grant, NOW + 9).await, Some(sealed("x")));
    assert_eq!(sealed_at(&*store, &grant, NOW + 10).await, None);
    assert_eq!(sealed_at(&*store, &grant, NOW + 11).await, None);
}

/// The purge deletes exactly the records expired at `now` and says how many; the live ones
/// stay, and a deleted record is not counted.
pub async fn purge_counts_and_removes_only_expired_upstream_tokens(store: Arc<dyn Storage>) {
    let expired: Vec<String> = (0..3).map(|_| random_id()).collect();
    for grant in &expired {
        store
            .put_upstream_tokens(&UpstreamTokenRecord::new(grant, sealed("old"), NOW + 10))
            .await
            .expect("put");
    }
    store
        .delete_upstream_tokens(&expired[2])
        .await
        .expect("delete");
    let live = random_id();
    store
        .put_upstream_tokens(&UpstreamTokenRecord::new(&live, sealed("new"), NOW + 100))
        .await
        .expect("put");

    let purged = store
        .purge_expired_upstream_tokens(NOW + 10)
        .await
        .expect("purge");
    assert_eq!(purged, 2);
    assert_eq!(
        store
            .purge_expired_upstream_tokens(NOW + 10)
            .await
            .expect("purge again"),
        0
    );
    assert_eq!(
        sealed_at(&*store, &live, NOW + 10).await,
        Some(sealed("new"))
    );
    // Gone, not only expired: a lookup at an earlier time finds nothing either.
    for grant in &expired {
        assert_eq!(sealed_at(&*store, grant, NOW).await, None);
    }
}
