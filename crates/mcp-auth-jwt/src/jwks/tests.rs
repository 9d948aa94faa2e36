use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;
use crate::test_util::TestKey;

const URL: &str = "https://idp.example.com/keys";
const T0: i64 = 1_700_000_000;

/// Serves a configurable key set with a configurable `max-age` and counts fetches.
struct FakeFetcher {
    fetches: AtomicUsize,
    document: Mutex<Result<(Value, Option<u64>), ()>>,
}

impl FakeFetcher {
    fn new(document: Value, max_age: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            fetches: AtomicUsize::new(0),
            document: Mutex::new(Ok((document, max_age))),
        })
    }

    fn count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn serve(&self, document: Result<(Value, Option<u64>), ()>) {
        *self.document.lock().unwrap() = document;
    }
}

#[async_trait]
impl JwksFetcher for FakeFetcher {
    async fn fetch(&self, _: &str) -> Result<FetchedJwks, KeyFetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        match &*self.document.lock().unwrap() {
            Ok((document, max_age)) => Ok(FetchedJwks::new(
                document.to_string().into_bytes(),
                *max_age,
            )),
            Err(()) => Err(KeyFetchError::Status(503)),
        }
    }
}

fn url_cache(fetcher: &Arc<FakeFetcher>) -> KeyCache {
    let fetcher: Arc<dyn JwksFetcher> = fetcher.clone();
    KeyCache::new("idp", JwksSource::Url(URL.into()), &fetcher).unwrap()
}

fn key(kid: &str) -> TestKey {
    TestKey::generate(crate::SigningAlgorithm::ES256, kid)
}

async fn kids(cache: &KeyCache, kid: Option<&str>, now: i64) -> Vec<String> {
    let keys = cache.keys(kid, now).await.unwrap();
    keys.iter().filter_map(|k| k.kid.clone()).collect()
}

#[tokio::test]
async fn a_fetched_set_is_cached_for_its_max_age() {
    let fetcher = FakeFetcher::new(TestKey::jwks(&[&key("a")]), Some(120));
    let cache = url_cache(&fetcher);
    assert_eq!(kids(&cache, Some("a"), T0).await, ["a"]);
    assert_eq!(kids(&cache, Some("a"), T0 + 119).await, ["a"]);
    assert_eq!(fetcher.count(), 1, "served from the cache within max-age");
    kids(&cache, Some("a"), T0 + 120).await;
    assert_eq!(fetcher.count(), 2, "fetched again once max-age has passed");
}

#[tokio::test]
async fn max_age_is_bounded_and_defaults_to_an_hour() {
    // (max-age, still cached at, refetched at)
    let cases = [
        (Some(0), T0 + 59, T0 + 60),
        (Some(5), T0 + 59, T0 + 60),
        (None, T0 + 3599, T0 + 3600),
        (Some(10 * 24 * 3600), T0 + 24 * 3600 - 1, T0 + 24 * 3600),
    ];
    for (max_age, cached, refetched) in cases {
        let fetcher = FakeFetcher::new(TestKey::jwks(&[&key("a")]), max_age);
        let cache = url_cache(&fetcher);
        kids(&cache, None, T0).await;
        kids(&cache, None, cached).await;
        assert_eq!(fetcher.count(), 1, "{max_age:?}");
        kids(&cache, None, refetched).await;
        assert_eq!(fetcher.count(), 2, "{max_age:?}");
    }
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_a_minute() {
    let fetcher = FakeFetcher::new(TestKey::jwks(&[&key("a")]), Some(3600));
    let cache = url_cache(&fetcher);
    kids(&cache, Some("a"), T0).await;
    // Within the minute after the first fetch an unknown kid does not refetch.
    assert_eq!(kids(&cache, Some("rotated"), T0 + 30).await, ["a"]);
    assert_eq!(fetcher.count(), 1);
    // After it, one refetch picks up the rotated key.
    fetcher.serve(Ok((
        TestKey::jwks(&[&key("a"), &key("rotated")]),
        Some(3600),
    )));
    assert_eq!(
        kids(&cache, Some("rotated"), T0 + 60).await,
        ["a", "rotated"]
    );
    assert_eq!(fetcher.count(), 2);
    // Made-up kids cannot make it fetch more than once a minute.
    for offset in 0..59 {
        kids(&cache, Some(&format!("bogus-{offset}")), T0 + 61 + offset).await;
    }
    assert_eq!(fetcher.count(), 2);
    kids(&cache, Some("bogus"), T0 + 120).await;
    assert_eq!(fetcher.count(), 3);
}

#[tokio::test]
async fn concurrent_misses_cause_one_fetch() {
    let fetcher = FakeFetcher::new(TestKey::jwks(&[&key("a")]), None);
    let cache = Arc::new(url_cache(&fetcher));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.keys(Some("a"), T0).await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(fetcher.count(), 1);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_stale_keys_and_no_keys_means_unavailable() {
    let fetcher = FakeFetcher::new(TestKey::jwks(&[&key("a")]), Some(60));
    let cache = url_cache(&fetcher);
    kids(&cache, None, T0).await;
    fetcher.serve(Err(()));
    assert_eq!(
        kids(&cache, None, T0 + 100).await,
        ["a"],
        "stale keys served"
    );
    assert_eq!(fetcher.count(), 2);

    let down = FakeFetcher::new(json!({}), None);
    down.serve(Err(()));
    let cache = url_cache(&down);
    assert!(cache.keys(None, T0).await.is_err());
    // The failure is not retried for a minute.
    assert!(matches!(
        cache.keys(None, T0 + 10).await,
        Err(KeyFetchError::RecentFailure)
    ));
    assert_eq!(down.count(), 1);
    down.serve(Ok((TestKey::jwks(&[&key("b")]), None)));
    assert_eq!(kids(&cache, None, T0 + 60).await, ["b"]);
}

#[tokio::test]
async fn a_file_set_is_reread_on_an_unknown_kid() {
    let dir = std::env::temp_dir().join(format!("mcp-auth-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, TestKey::jwks(&[&key("a")]).to_string()).unwrap();
    let fetcher: Arc<dyn JwksFetcher> = FakeFetcher::new(json!({}), None);
    let cache = KeyCache::new("file", JwksSource::File(path.clone()), &fetcher).unwrap();
    assert_eq!(kids(&cache, Some("a"), T0).await, ["a"]);
    std::fs::write(&path, TestKey::jwks(&[&key("b")]).to_string()).unwrap();
    assert_eq!(kids(&cache, Some("b"), T0 + 1).await, ["b"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn only_signature_keys_of_allowed_types_are_kept() {
    let ec = key("ec");
    let mut encryption = key("enc").public_jwk();
    encryption["use"] = json!("enc");
    let document = json!({"keys": [
        ec.public_jwk(),
        encryption,
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA", "kid": "k1"},
        {"kty": "unknown", "kid": "u"},
        "not a key",
    ]});
    let keys = KeySet::parse(&document).unwrap();
    let kept: Vec<_> = keys.iter().filter_map(|k| k.kid.clone()).collect();
    assert_eq!(kept, ["ec"]);
    assert!(KeySet::parse(&json!({"nokeys": []})).is_err());
    assert!(KeySet::parse(&json!([])).is_err());
}

#[test]
fn cache_control_max_age_is_read() {
    let cases = [
        ("max-age=300", Some(300)),
        ("public, max-age=60, must-revalidate", Some(60)),
        ("MAX-AGE = 10", Some(10)),
        ("no-store", Some(0)),
        ("no-cache, max-age=600", Some(0)),
        ("public", None),
        ("max-age=abc", None),
    ];
    for (value, expected) in cases {
        assert_eq!(max_age(value), expected, "{value}");
    }
}

#[test]
fn specs_tell_urls_from_files() {
    assert_eq!(
        JwksSource::from_spec("https://idp.example.com/keys"),
        JwksSource::Url("https://idp.example.com/keys".into())
    );
    assert_eq!(
        JwksSource::from_spec("/etc/idp/jwks.json"),
        JwksSource::File("/etc/idp/jwks.json".into())
    );
    assert!(matches!(
        JwksSource::from_spec("http://x/keys"),
        JwksSource::Url(_)
    ));
}

/// Fails busy (the fetcher's own saturation, nothing sent) the first time, then serves the set.
struct BusyOnce {
    fetches: AtomicUsize,
    document: Value,
}

#[async_trait]
impl JwksFetcher for BusyOnce {
    async fn fetch(&self, _: &str) -> Result<FetchedJwks, KeyFetchError> {
        if self.fetches.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(KeyFetchError::Fetch(FetchError::Busy));
        }
        Ok(FetchedJwks::new(
            self.document.to_string().into_bytes(),
            None,
        ))
    }
}

#[tokio::test]
async fn a_busy_fetcher_does_not_hold_back_the_next_attempt() {
    let fetcher = Arc::new(BusyOnce {
        fetches: AtomicUsize::new(0),
        document: TestKey::jwks(&[&key("a")]),
    });
    let shared: Arc<dyn JwksFetcher> = fetcher.clone();
    let cache = KeyCache::new("client", JwksSource::Url(URL.into()), &shared).unwrap();
    let error = cache.keys(Some("a"), T0).await.unwrap_err();
    assert!(
        matches!(error, KeyFetchError::Fetch(ref e) if e.is_busy()),
        "{error:?}"
    );
    assert_eq!(
        kids(&cache, Some("a"), T0).await,
        ["a"],
        "tried again at once, not a minute later"
    );
    assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 2);
}
