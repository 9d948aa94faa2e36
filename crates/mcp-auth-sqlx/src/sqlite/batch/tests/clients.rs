//! Group commit of client registrations (`ClientStore::insert_client`), on a database file and
//! in memory.

use mcp_auth_core::storage::{ClientRecord, ClientStore};
use mcp_auth_core::types::{OAuthClientInformationFull, OAuthClientMetadata};

use super::*;

/// A client whose `client_name` tells apart two records of one `client_id`.
fn client(id: &str, name: &str) -> ClientRecord {
    let mut info = OAuthClientInformationFull::new(
        id,
        OAuthClientMetadata::new(vec!["http://127.0.0.1/cb".to_owned()]),
    );
    info.metadata.client_name = Some(name.to_owned());
    ClientRecord::new(info)
}

/// Writes in `batcher`'s hands: taken as the first of a batch, or waiting in its queue.
fn handed_over<O: Op>(batcher: &Batcher<O>) -> usize {
    let taken = batcher.log.firsts.load(Ordering::SeqCst);
    let queued = batcher
        .queue
        .get()
        .map_or(0, |queue| queue.max_capacity() - queue.capacity());
    taken + queued
}

/// Waits until `count` writes are in `batcher`'s hands.
async fn until_handed_over<O: Op>(batcher: &Batcher<O>, count: usize) {
    while handed_over(batcher) < count {
        // Waiting for a condition, not timing anything.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

type Insert = tokio::task::JoinHandle<Result<(), StorageError>>;

fn insert(store: &SqliteStore, client: ClientRecord) -> Insert {
    let store = store.clone();
    tokio::spawn(async move { store.insert_client(&client).await })
}

async fn outcomes(tasks: Vec<Insert>) -> Vec<Result<(), StorageError>> {
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("inserting task"));
    }
    outcomes
}

/// Starts every insert at once while the test holds the writer connection, released once all
/// are in the batcher's hands: then they are committed in batches of [`MAX_OPS_PER_COMMIT`].
async fn insert_queued(
    store: &SqliteStore,
    clients: Vec<ClientRecord>,
) -> Vec<Result<(), StorageError>> {
    let held = store.writer.acquire().await.expect("hold the writer");
    let expected = handed_over(&store.client_inserts) + clients.len();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| insert(store, client))
        .collect();
    until_handed_over(&store.client_inserts, expected).await;
    drop(held);
    outcomes(tasks).await
}

/// The same, but each insert is in the batcher's hands before the next starts, so that the
/// batch holds them in this order.
async fn insert_in_order(
    store: &SqliteStore,
    clients: Vec<ClientRecord>,
) -> Vec<Result<(), StorageError>> {
    let held = store.writer.acquire().await.expect("hold the writer");
    let mut tasks = Vec::with_capacity(clients.len());
    for client in clients {
        let expected = handed_over(&store.client_inserts) + 1;
        tasks.push(insert(store, client));
        until_handed_over(&store.client_inserts, expected).await;
    }
    drop(held);
    outcomes(tasks).await
}

fn client_batches(store: &SqliteStore) -> Vec<usize> {
    store
        .client_inserts
        .log
        .batches
        .lock()
        .expect("log")
        .clone()
}

fn clients_alone(store: &SqliteStore) -> usize {
    store.client_inserts.log.alone.load(Ordering::SeqCst)
}

/// The stored `client_name` of `id`, `None` if the client is absent.
async fn stored_name(store: &SqliteStore, id: &str) -> Option<String> {
    let found = store.get_client(id).await.expect("lookup");
    found.map(|client| client.info.metadata.client_name.unwrap_or_default())
}

async fn check_concurrent_registrations_are_committed_together(store: SqliteStore) {
    let clients = (0..CONCURRENT)
        .map(|i| client(&format!("client-{i}"), &format!("name {i}")))
        .collect();
    for outcome in insert_queued(&store, clients).await {
        outcome.expect("registered");
    }
    for i in 0..CONCURRENT {
        let name = stored_name(&store, &format!("client-{i}")).await;
        assert_eq!(name.as_deref(), Some(format!("name {i}").as_str()), "{i}");
    }
    let batches = client_batches(&store);
    assert_eq!(batches.iter().sum::<usize>(), CONCURRENT);
    assert!(batches.iter().all(|&size| size <= MAX_OPS_PER_COMMIT));
    assert_eq!(batches.len(), CONCURRENT.div_ceil(MAX_OPS_PER_COMMIT));
    // Committed as batches, not one by one after a failed batch.
    assert_eq!(clients_alone(&store), 0);
    // The issuance batcher saw none of it.
    assert!(super::batches(&store).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_are_committed_together_and_all_stored() {
    on_file_and_in_memory(check_concurrent_registrations_are_committed_together).await;
}

async fn check_duplicates_in_a_batch(store: SqliteStore) {
    store
        .insert_client(&client("existing", "original"))
        .await
        .expect("first registration");
    let batch = vec![
        client("c1", "c1"),
        client("existing", "again"),
        client("c2", "first"),
        client("c2", "second"),
        client("c3", "c3"),
    ];
    let size = batch.len();
    let outcomes = insert_in_order(&store, batch).await;
    let conflicts: Vec<bool> = outcomes
        .iter()
        .map(|outcome| match outcome {
            Ok(()) => false,
            Err(error) if error.kind() == StorageErrorKind::Conflict => true,
            Err(error) => panic!("neither stored nor a conflict: {error}"),
        })
        .collect();
    assert_eq!(conflicts, [false, true, false, true, false]);
    for (id, name) in [
        ("c1", "c1"),
        ("existing", "original"),
        ("c2", "first"),
        ("c3", "c3"),
    ] {
        assert_eq!(stored_name(&store, id).await.as_deref(), Some(name), "{id}");
    }
    // The first registration alone, then the batch, which failed and ran one by one.
    assert_eq!(client_batches(&store), [1, size]);
    assert_eq!(clients_alone(&store), size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_duplicates_in_a_batch_of_registrations_conflict() {
    on_file_and_in_memory(check_duplicates_in_a_batch).await;
}

/// Both batchers at once, free-running: their tasks take turns on the one writer connection,
/// and every write of either kind is stored.
async fn check_issuances_and_registrations_together(store: SqliteStore) {
    let issues = many_issuances();
    let inserts: Vec<_> = (0..CONCURRENT)
        .map(|i| insert(&store, client(&format!("client-{i}"), "both")))
        .collect();
    let (issued, registered) = tokio::join!(issue_concurrently(&store, &issues), outcomes(inserts));
    for (issue, outcome) in issues.iter().zip(issued) {
        assert!(outcome.expect("issued"), "{issue:?}");
        assert_stored(&store, issue, true).await;
    }
    for (i, outcome) in registered.into_iter().enumerate() {
        outcome.expect("registered");
        let name = stored_name(&store, &format!("client-{i}")).await;
        assert_eq!(name.as_deref(), Some("both"), "{i}");
    }
    assert_eq!(super::batches(&store).iter().sum::<usize>(), CONCURRENT);
    assert_eq!(client_batches(&store).iter().sum::<usize>(), CONCURRENT);
    assert_eq!(ran_alone(&store) + clients_alone(&store), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuances_and_registrations_share_the_writer_and_are_all_stored() {
    on_file_and_in_memory(check_issuances_and_registrations_together).await;
}
