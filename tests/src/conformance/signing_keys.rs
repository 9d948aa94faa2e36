//! Contracts of `SigningKeyStore`: the access-token signing keys every instance of a
//! deployment shares.
//!
//! Storage treats a key's fields as opaque text and numbers, so the records here are made up:
//! what matters is that every field comes back exactly as stored, that a generation is stored
//! once however many instances race to store it, and that no two generations share a `kid`.

use std::sync::Arc;

use mcp_auth_core::{SigningKeyRecord, Storage, StorageErrorKind};

use super::records::NOW;
use super::store::futures_all;

/// A key of `generation` named `kid`, every field distinct from another key's.
fn key(generation: i64, kid: &str) -> SigningKeyRecord {
    SigningKeyRecord::new(
        generation,
        kid.to_owned(),
        "ES256".to_owned(),
        format!(
            r#"{{"kty":"EC","crv":"P-256","kid":"{kid}","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}"#
        ),
        // About the size of a sealed RSA-2048 private key, with characters JSON must escape.
        format!(
            "sealed:{generation}:\"quoted\"\\backslash/✓:{}",
            "A".repeat(1_700)
        ),
        NOW + generation * 10,
        NOW + generation * 10 + 3_600,
    )
}

/// Asserts that `stored` holds exactly the keys `expected`, in that order, field for field.
/// (The records' `Debug` redacts the private key, so fields are compared one by one.)
fn assert_keys(stored: &[SigningKeyRecord], expected: &[&SigningKeyRecord], what: &str) {
    let generations = |keys: &mut dyn Iterator<Item = &SigningKeyRecord>| {
        keys.map(|key| key.generation).collect::<Vec<_>>()
    };
    assert_eq!(
        generations(&mut stored.iter()),
        generations(&mut expected.iter().copied()),
        "{what}: generations stored"
    );
    for (stored, expected) in stored.iter().zip(expected) {
        assert_same(stored, expected, what);
    }
}

/// Asserts that two records are equal in every field.
fn assert_same(stored: &SigningKeyRecord, expected: &SigningKeyRecord, what: &str) {
    let generation = expected.generation;
    assert_eq!(stored.generation, generation, "{what}: generation");
    assert_eq!(stored.kid, expected.kid, "{what}: kid of {generation}");
    assert_eq!(
        stored.algorithm, expected.algorithm,
        "{what}: algorithm of {generation}"
    );
    assert_eq!(
        stored.public_jwk, expected.public_jwk,
        "{what}: public_jwk of {generation}"
    );
    assert!(
        stored.private_key == expected.private_key,
        "{what}: private_key of {generation} differs"
    );
    assert_eq!(
        stored.created_at, expected.created_at,
        "{what}: created_at of {generation}"
    );
    assert_eq!(
        stored.activates_at, expected.activates_at,
        "{what}: activates_at of {generation}"
    );
}

async fn stored_keys(store: &Arc<dyn Storage>) -> Vec<SigningKeyRecord> {
    store.signing_keys().await.expect("list signing keys")
}

async fn insert(store: &Arc<dyn Storage>, key: &SigningKeyRecord) -> bool {
    store
        .insert_signing_key(key)
        .await
        .unwrap_or_else(|err| panic!("insert generation {}: {err:?}", key.generation))
}

/// Keys inserted out of order are listed by increasing generation (numerically: 10 after 2),
/// with every field as stored.
pub async fn keys_round_trip_in_generation_order(store: Arc<dyn Storage>) {
    assert!(
        stored_keys(&store).await.is_empty(),
        "a new store has no key"
    );
    let (ten, one, two) = (key(10, "kid-ten"), key(1, "kid-one"), key(2, "kid-two"));
    for key in [&ten, &one, &two] {
        assert!(insert(&store, key).await, "generation {}", key.generation);
    }
    assert_keys(&stored_keys(&store).await, &[&one, &two, &ten], "listed");
}

/// A second insert of a stored generation stores nothing and says so, whatever it carries: the
/// first key stays.
pub async fn a_generation_is_inserted_once(store: Arc<dyn Storage>) {
    let first = key(1, "kid-first");
    assert!(insert(&store, &first).await);
    let mut other = key(1, "kid-second");
    other.algorithm = "EdDSA".to_owned();
    other.private_key = "another private key".to_owned();
    assert!(
        !insert(&store, &other).await,
        "a stored generation is not replaced"
    );
    assert!(
        !insert(&store, &first).await,
        "inserting the same key again stores nothing"
    );
    assert_keys(
        &stored_keys(&store).await,
        &[&first],
        "after the second insert",
    );
    // The refused key's kid was not taken: another generation may use it.
    let next = key(2, "kid-second");
    assert!(insert(&store, &next).await, "the refused kid is free");
    assert_keys(
        &stored_keys(&store).await,
        &[&first, &next],
        "after the next",
    );
}

/// Of 16 instances inserting the same generation at once, each with its own key, exactly one
/// stores it; the others are told nothing was stored, and the store holds the winner's key.
pub async fn one_of_concurrent_key_insertions_wins(store: Arc<dyn Storage>) {
    const RACERS: usize = 16;
    let keys: Vec<SigningKeyRecord> = (0..RACERS).map(|i| key(7, &format!("kid-{i}"))).collect();
    let results = futures_all(RACERS, |i| {
        let (store, key) = (Arc::clone(&store), keys[i].clone());
        async move { store.insert_signing_key(&key).await }
    })
    .await;
    let mut winners = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(true) => winners.push(i),
            Ok(false) => {}
            Err(err) => panic!("racer {i} failed instead of losing: {err:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one insert wins: {winners:?}");
    assert_keys(
        &stored_keys(&store).await,
        &[&keys[winners[0]]],
        "after the race",
    );
}

/// A `kid` stored under one generation is refused under another, as a conflict, and the
/// refused key is not stored; under concurrency, exactly one generation gets the `kid`.
pub async fn a_duplicate_kid_is_a_conflict(store: Arc<dyn Storage>) {
    let first = key(1, "kid-shared");
    assert!(insert(&store, &first).await);
    match store.insert_signing_key(&key(2, "kid-shared")).await {
        Err(err) => assert_eq!(err.kind(), StorageErrorKind::Conflict, "{err:?}"),
        Ok(stored) => panic!("a duplicate kid was accepted (stored: {stored})"),
    }
    assert_keys(&stored_keys(&store).await, &[&first], "after the conflict");
    let second = key(2, "kid-own");
    assert!(
        insert(&store, &second).await,
        "the refused generation is free"
    );

    // 16 generations racing for one new kid: one stores it, every other is a conflict.
    const RACERS: usize = 16;
    let racing: Vec<SigningKeyRecord> = (0..RACERS)
        .map(|i| key(100 + i as i64, "kid-raced"))
        .collect();
    let results = futures_all(RACERS, |i| {
        let (store, key) = (Arc::clone(&store), racing[i].clone());
        async move { store.insert_signing_key(&key).await }
    })
    .await;
    let mut winners = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(true) => winners.push(i),
            Err(err) if err.kind() == StorageErrorKind::Conflict => {}
            other => panic!("racer {i} neither won nor conflicted: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one generation gets the kid");
    assert_keys(
        &stored_keys(&store).await,
        &[&first, &second, &racing[winners[0]]],
        "after the kid race",
    );
}

/// Deleting before a generation deletes exactly the lower generations (numerically: 9 before
/// 10, and neighbours beyond 2^53, which a double cannot tell apart) and counts them.
pub async fn deleting_before_a_generation_keeps_the_rest(store: Arc<dyn Storage>) {
    let keys: Vec<SigningKeyRecord> = [1, 2, 9, 10, 11]
        .into_iter()
        .map(|generation| key(generation, &format!("kid-{generation}")))
        .collect();
    for key in &keys {
        assert!(insert(&store, key).await);
    }
    let deleted = store.delete_signing_keys_before(10).await.expect("delete");
    assert_eq!(deleted, 3, "generations 1, 2 and 9 go");
    let rest: Vec<&SigningKeyRecord> = keys[3..].iter().collect();
    assert_keys(&stored_keys(&store).await, &rest, "after deleting below 10");
    let deleted = store.delete_signing_keys_before(10).await.expect("delete");
    assert_eq!(deleted, 0, "nothing is left below 10");
    let deleted = store
        .delete_signing_keys_before(i64::MIN)
        .await
        .expect("delete");
    assert_eq!(deleted, 0, "nothing is below i64::MIN");
    assert_keys(&stored_keys(&store).await, &rest, "after deleting nothing");

    // 2^53 and 2^53 + 1 are one double; a store must keep them apart.
    let big = 1_i64 << 53;
    let (low, high) = (key(big, "kid-big"), key(big + 1, "kid-big-plus-one"));
    assert!(insert(&store, &low).await);
    assert!(insert(&store, &high).await);
    let deleted = store
        .delete_signing_keys_before(big + 1)
        .await
        .expect("delete");
    assert_eq!(deleted, 3, "10, 11 and 2^53 go; 2^53 + 1 stays");
    assert_keys(
        &stored_keys(&store).await,
        &[&high],
        "after deleting below 2^53 + 1",
    );
    let deleted = store
        .delete_signing_keys_before(i64::MAX)
        .await
        .expect("delete");
    assert_eq!(deleted, 1);
    assert!(stored_keys(&store).await.is_empty());
}

/// Text with control characters, NUL first (PostgreSQL text cannot hold it).
const HOSTILE_TEXT: [&str; 5] = ["a\0b", "\0", "a\u{1}b", "line\r\nbreak", "del\u{7f}"];

/// A key with control characters (NUL included) in any text field is stored faithfully or
/// refused with a `StorageError`, storing nothing; never a panic. A `kid` stored that way is
/// still found by the duplicate check.
pub async fn key_fields_with_control_characters_are_stored_faithfully_or_refused(
    store: Arc<dyn Storage>,
) {
    let mut generation = 0;
    let mut expected: Vec<SigningKeyRecord> = Vec::new();
    for text in HOSTILE_TEXT {
        for field in ["kid", "algorithm", "public_jwk", "private_key"] {
            generation += 1;
            let mut key = key(generation, &format!("kid-{generation}"));
            let target = match field {
                "kid" => &mut key.kid,
                "algorithm" => &mut key.algorithm,
                "public_jwk" => &mut key.public_jwk,
                _ => &mut key.private_key,
            };
            *target = format!("{text}{generation}");
            let what = format!("{field} = {text:?}");
            match store.insert_signing_key(&key).await {
                Ok(true) => {
                    if field == "kid" {
                        let twin = self::key(generation + 1_000, &key.kid);
                        let again = store.insert_signing_key(&twin).await;
                        assert!(
                            matches!(&again, Err(err) if err.kind() == StorageErrorKind::Conflict),
                            "{what}: the stored kid under another generation: {again:?}"
                        );
                    }
                    expected.push(key);
                }
                Ok(false) => panic!("{what}: generation {generation} was not stored before"),
                Err(_) => {}
            }
            let stored = stored_keys(&store).await;
            let expected: Vec<&SigningKeyRecord> = expected.iter().collect();
            assert_keys(&stored, &expected, &what);
        }
    }
    // The store still works.
    let plain = key(generation + 1, "kid-plain");
    assert!(
        insert(&store, &plain).await,
        "a plain key after hostile ones"
    );
}
