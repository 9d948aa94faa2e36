//! Operations abandoned half-way: what a store must survive when a client hangs up.
//!
//! A request future is dropped at whatever `.await` it has reached when its client disconnects
//! (or a timeout fires). A store operation dropped there must leave no transaction open, no
//! lock held and no pooled connection in a state the next caller trips over. These helpers drop
//! store operations at random points, as a load generator that drops its connections does, and
//! then check that ordinary operations still work.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_core::Storage;
use mcp_auth_core::secrets::{SecretHash, random_id};
use rand::Rng as _;

use super::records::{NOW, access, code, refresh};

/// Rounds of abandoned operations; each round starts [`OPERATIONS_PER_ROUND`] at once.
const ROUNDS: usize = 48;

/// Operations started together in one round: enough to queue for the pool's connections.
const OPERATIONS_PER_ROUND: usize = 12;

/// The longest an abandoned operation is given before it is dropped. Operations take from tens
/// of microseconds (memory) to a few milliseconds (a synced SQLite commit), so drops land before,
/// inside and after their transactions.
const LONGEST_GRACE_MICROS: u64 = 3_000;

/// How long an ordinary operation after the abandoned ones may take before the check gives up
/// and reports it stuck. Far longer than any healthy operation (and than SQLite's busy timeout),
/// so it fails only on a lock that is never released; it keeps a hang from holding the test
/// until the runner kills it.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

/// Awaits `operation`, panicking with `what` if it has not finished after [`STUCK_AFTER`].
pub async fn unstuck<T>(what: &str, operation: impl Future<Output = T>) -> T {
    tokio::time::timeout(STUCK_AFTER, operation)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {STUCK_AFTER:?}, a lock is held"))
}

/// One grant's state at the start of a round, for operations to act on.
struct Round {
    grant: String,
    refresh_hash: SecretHash,
    code_hash: SecretHash,
}

/// Sets up a grant with an access and refresh token, and a live code, using the store normally.
async fn prepare(store: &Arc<dyn Storage>) -> Round {
    let grant = random_id();
    let (_, access) = access(&grant, NOW + 600);
    let (refresh_raw, refresh) = refresh(&grant, NOW + 3_600);
    let issued = unstuck(
        "issuing tokens after abandoned operations",
        store.issue_tokens(&access, Some(&refresh)),
    )
    .await
    .expect("issuing tokens after abandoned operations");
    assert!(issued, "a fresh grant must accept tokens");
    let (code_raw, code) = code("client-1", NOW + 300);
    unstuck(
        "storing a code after abandoned operations",
        store.insert_code(&code),
    )
    .await
    .expect("storing a code after abandoned operations");
    Round {
        grant,
        refresh_hash: SecretHash::of(&refresh_raw),
        code_hash: SecretHash::of(&code_raw),
    }
}

/// Starts operation `which` of a round; its outcome does not matter, only what it leaves behind.
fn operation(
    store: &Arc<dyn Storage>,
    round: &Round,
    which: usize,
) -> impl Future<Output = ()> + Send + 'static {
    let store = Arc::clone(store);
    let grant = round.grant.clone();
    let refresh_hash = round.refresh_hash;
    let code_hash = round.code_hash;
    async move {
        match which % 7 {
            0 => {
                let (_, access) = access(&grant, NOW + 600);
                let (_, refresh) = refresh(&grant, NOW + 3_600);
                let _ = store.issue_tokens(&access, Some(&refresh)).await;
            }
            1 => {
                let (_, access) = access(&grant, NOW + 600);
                let (_, refresh) = refresh(&grant, NOW + 3_600);
                let _ = store
                    .rotate_refresh_token(&refresh_hash, &access, Some(&refresh), NOW)
                    .await;
            }
            2 => {
                let _ = store.revoke_grant(&grant, NOW + 3_600).await;
            }
            3 => {
                let _ = store.take_code(&code_hash, NOW).await;
            }
            4 => {
                let _ = store.purge_expired_tokens(NOW).await;
            }
            5 => {
                let _ = store
                    .record_assertion_id("https://idp.example", &random_id(), NOW + 60, NOW)
                    .await;
            }
            _ => {
                // A fresh grant, so that issuance really writes rather than finding a revoked one.
                let (_, access) = access(&random_id(), NOW + 600);
                let _ = store.issue_tokens(&access, None).await;
            }
        }
    }
}

/// Drops store operations at random points: 48 rounds of concurrent issuance,
/// rotation, revocation, code redemption, purge and replay recording, each operation either
/// given a random few microseconds to a few milliseconds before its future is dropped, or
/// spawned and aborted after a random number of scheduler turns. Returns the grants the rounds
/// worked on.
pub async fn abandon_operations(store: &Arc<dyn Storage>) -> Vec<String> {
    let mut grants = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let round = prepare(store).await;
        let mut tasks = Vec::with_capacity(OPERATIONS_PER_ROUND);
        for which in 0..OPERATIONS_PER_ROUND {
            let work = operation(store, &round, which);
            let (grace, abort_after_yields) = {
                let mut rng = rand::rng();
                (
                    Duration::from_micros(rng.random_range(0..=LONGEST_GRACE_MICROS)),
                    rng.random_range(0..8_usize),
                )
            };
            if which % 2 == 0 {
                // Dropped by a timeout, as a request future is when its client hangs up.
                tasks.push(tokio::spawn(async move {
                    let _ = tokio::time::timeout(grace, work).await;
                }));
            } else {
                // Aborted from outside after a few scheduler turns.
                let handle = tokio::spawn(work);
                tasks.push(tokio::spawn(async move {
                    for _ in 0..abort_after_yields {
                        tokio::task::yield_now().await;
                    }
                    handle.abort();
                    let _ = handle.await;
                }));
            }
        }
        for task in tasks {
            task.await
                .expect("the abandoning task itself does not panic");
        }
        grants.push(round.grant);
    }
    grants
}

/// Ordinary operations all succeed: issuing, rotating and revoking a fresh grant, redeeming a
/// code, recording an assertion id, purging, and revoking every grant that abandoned
/// operations worked on (which waits for any lock an abandoned operation still held).
pub async fn ordinary_operations_succeed(store: &Arc<dyn Storage>, grants: &[String]) {
    let round = prepare(store).await;
    let (_, access) = access(&round.grant, NOW + 600);
    let (_, next) = refresh(&round.grant, NOW + 3_600);
    let rotation = unstuck(
        "rotating",
        store.rotate_refresh_token(&round.refresh_hash, &access, Some(&next), NOW),
    )
    .await
    .expect("rotating after abandoned operations");
    assert!(
        matches!(rotation, mcp_auth_core::Rotation::Rotated),
        "{rotation:?}"
    );
    let taken = unstuck("taking a code", store.take_code(&round.code_hash, NOW))
        .await
        .expect("taking a code after abandoned operations");
    assert!(matches!(taken, mcp_auth_core::CodeTake::Taken(_)));
    assert!(
        unstuck(
            "recording an assertion id",
            store.record_assertion_id("https://idp.example", &random_id(), NOW + 60, NOW),
        )
        .await
        .expect("recording an assertion id after abandoned operations")
    );
    unstuck("purging", store.purge_expired_tokens(NOW))
        .await
        .expect("purging after abandoned operations");
    for grant in grants.iter().chain([&round.grant]) {
        unstuck("revoking", store.revoke_grant(grant, NOW + 3_600))
            .await
            .expect("revoking after abandoned operations");
    }
}

/// Store operations abandoned at any point (a client that hangs up mid-request) leave the store
/// fully usable: afterwards every ordinary operation succeeds, none waits on a lock.
pub async fn abandoned_operations_leave_the_store_usable(store: Arc<dyn Storage>) {
    let grants = abandon_operations(&store).await;
    ordinary_operations_succeed(&store, &grants).await;
}
