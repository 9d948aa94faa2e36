//! Purging leaves nothing expired behind: checked by looking at the backend directly.
//!
//! The trait alone cannot show that a purge removed everything (an expired record is invisible
//! through it either way), so these cases take, beside the store, a [`RecordCounter`] that
//! counts what the backend really holds: rows of every table but `clients`, keys under the
//! prefix but clients', entries of `MemoryStore`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use mcp_auth_core::secrets::{SecretHash, random_id};
use mcp_auth_core::{Storage, UpstreamTokenRecord};

use super::records::{NOW, access, code, refresh};
use super::store::request;

/// Counts the records a backend holds besides clients, looking at it directly.
pub type RecordCounter = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = u64> + Send>> + Send + Sync>;

/// A store and the counter that sees into it.
pub struct Inspected {
    /// The store under test.
    pub store: Arc<dyn Storage>,
    /// What it really holds.
    pub count: RecordCounter,
}

/// Rows of every SQL table but `clients` (and the migrations' own), the same query on SQLite
/// and PostgreSQL.
pub const COUNT_SQL_ROWS: &str = "SELECT (SELECT count(*) FROM authorization_requests) \
     + (SELECT count(*) FROM codes) + (SELECT count(*) FROM grants) \
     + (SELECT count(*) FROM access_tokens) + (SELECT count(*) FROM refresh_tokens) \
     + (SELECT count(*) FROM assertion_ids) + (SELECT count(*) FROM upstream_tokens)";

/// An [`Inspected`] SQL store (`SqliteStore` or `PostgresStore`), its records counted with
/// [`COUNT_SQL_ROWS`] through the store's own pool (so that an in-memory SQLite database,
/// which lives in its one connection, is counted too). A macro because the pool types differ
/// and this crate does not depend on `mcp-auth-sqlx`.
#[macro_export]
macro_rules! sql_inspected {
    ($store:expr) => {{
        let store = $store;
        let pool = store.pool().clone();
        $crate::conformance::purge::Inspected {
            store: ::std::sync::Arc::new(store),
            count: ::std::sync::Arc::new(move || {
                let pool = pool.clone();
                ::std::boxed::Box::pin(async move {
                    let rows: i64 = mcp_auth_sqlx::sqlx::query_scalar(
                        $crate::conformance::purge::COUNT_SQL_ROWS,
                    )
                    .fetch_one(&pool)
                    .await
                    .expect("count rows");
                    u64::try_from(rows).expect("a count")
                })
            }),
        }
    }};
}

/// Expands to one `#[tokio::test]` per purge case, each on a fresh store from `$factory`, an
/// async expression yielding an [`Inspected`] store.
#[macro_export]
macro_rules! purge_conformance {
    ($factory:expr) => {
        $crate::purge_conformance!(@tests $factory;
            purge_leaves_no_expired_record_of_any_kind,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let inspected: $crate::conformance::purge::Inspected = $factory.await;
                $crate::conformance::purge::$name(inspected).await;
            }
        )*
    };
}

/// Stores records of every kind the storage traits keep, all expired by `NOW + 100`: a
/// pending authorization request, a live code and a redeemed one (its marker), an issued
/// pair, a rotated refresh token (its marker) with the pair that replaced it, a revoked grant
/// (its marker) with its tokens, an assertion id, and a grant's upstream tokens.
pub async fn store_records_of_every_kind(store: &dyn Storage) {
    let (_, pending) = request(NOW + 10);
    store
        .insert_authorization_request(&pending)
        .await
        .expect("insert request");
    let (_, live_code) = code("client-1", NOW + 10);
    let (taken_raw, taken_code) = code("client-1", NOW + 20);
    store.insert_code(&live_code).await.expect("insert code");
    store.insert_code(&taken_code).await.expect("insert code");
    store
        .take_code(&SecretHash::of(&taken_raw), NOW)
        .await
        .expect("take code");

    let issued = random_id();
    let (_, access_1) = access(&issued, NOW + 10);
    let (_, refresh_1) = refresh(&issued, NOW + 30);
    assert!(
        store
            .issue_tokens(&access_1, Some(&refresh_1))
            .await
            .expect("issue")
    );

    let rotated = random_id();
    let (_, access_2) = access(&rotated, NOW + 10);
    let (refresh_2_raw, refresh_2) = refresh(&rotated, NOW + 30);
    assert!(
        store
            .issue_tokens(&access_2, Some(&refresh_2))
            .await
            .expect("issue")
    );
    let (_, access_3) = access(&rotated, NOW + 40);
    let (_, refresh_3) = refresh(&rotated, NOW + 50);
    store
        .rotate_refresh_token(
            &SecretHash::of(&refresh_2_raw),
            &access_3,
            Some(&refresh_3),
            NOW,
        )
        .await
        .expect("rotate");

    let revoked = random_id();
    let (_, access_4) = access(&revoked, NOW + 10);
    let (_, refresh_4) = refresh(&revoked, NOW + 30);
    assert!(
        store
            .issue_tokens(&access_4, Some(&refresh_4))
            .await
            .expect("issue")
    );
    store
        .revoke_grant(&revoked, NOW + 60)
        .await
        .expect("revoke");
    store
        .revoke_grant(&random_id(), NOW + 60)
        .await
        .expect("revoke");

    assert!(
        store
            .record_assertion_id("https://idp.example", &random_id(), NOW + 10, NOW)
            .await
            .expect("record")
    );

    store
        .put_upstream_tokens(&UpstreamTokenRecord::new(&issued, "c2VhbGVk", NOW + 30))
        .await
        .expect("put upstream tokens");
}

/// After purging at a time when every kind of record has expired (see
/// [`store_records_of_every_kind`]), the backend holds nothing at all besides clients: no row,
/// no key, no index entry, no per-grant bookkeeping.
pub async fn purge_leaves_no_expired_record_of_any_kind(inspected: Inspected) {
    let Inspected { store, count } = inspected;
    assert_eq!(count().await, 0, "a fresh store is empty");
    store_records_of_every_kind(&*store).await;
    assert!(count().await > 0, "the records are stored");

    let later = NOW + 100;
    store
        .purge_expired_authorization_requests(later)
        .await
        .expect("purge requests");
    store.purge_expired_codes(later).await.expect("purge codes");
    store
        .purge_expired_tokens(later)
        .await
        .expect("purge tokens");
    store
        .purge_expired_assertion_ids(later)
        .await
        .expect("purge assertion ids");
    store
        .purge_expired_upstream_tokens(later)
        .await
        .expect("purge upstream tokens");
    assert_eq!(
        count().await,
        0,
        "records (or their bookkeeping) survived a purge after they all expired"
    );
}
