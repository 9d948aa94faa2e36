//! What a caller can make the resolver send, counted at the loopback https host: one request
//! for concurrent resolutions of one document, none for a host that keeps failing, never more
//! in flight than the concurrency limit, and a cache bounded in entries and bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod host;

use std::sync::Arc;
use std::time::Duration;

use host::{Host, clock, fetch_error, json, until};
use mcp_auth_cimd::FetchError;
use mcp_auth_core::{ClientMetadataError, ClientMetadataResolver};

#[tokio::test]
async fn concurrent_resolutions_of_one_document_make_one_request() {
    let host = Host::start().await;
    let url = host.serve_client("/client.json", None);
    let mut slow = json(
        format!(r#"{{"client_id":"{url}","redirect_uris":["http://127.0.0.1/cb"]}}"#),
        None,
    );
    // Long enough that every resolution joins while the first request is answered.
    slow.delay = Duration::from_millis(300);
    host.serve("/client.json", slow);
    let resolver = Arc::new(host.resolver(clock()).build().unwrap());
    let mut resolutions = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (resolver, url) = (resolver.clone(), url.clone());
        resolutions.spawn(async move { resolver.resolve(&url).await });
    }
    while let Some(result) = resolutions.join_next().await {
        assert_eq!(result.unwrap().unwrap().client_id, url);
    }
    assert_eq!(host.hits("/client.json"), 1);
}

#[tokio::test]
async fn a_host_failing_repeatedly_is_refused_without_connecting() {
    let host = Host::start().await;
    let clock = clock();
    let resolver = host
        .resolver(clock.clone())
        .read_timeout(Duration::from_millis(200))
        .total_timeout(Duration::from_millis(300))
        .failure_ttl(Duration::from_secs(30))
        .host_failure_threshold(2)
        .build()
        .unwrap();
    for path in ["/slow1", "/slow2"] {
        let mut slow = json("{}", None);
        slow.delay = Duration::from_secs(5);
        host.serve(path, slow);
        let error = resolver.resolve(&host.url(path)).await.unwrap_err();
        assert!(
            matches!(fetch_error(&error), FetchError::Http(e) if e.is_timeout()),
            "{error:?}"
        );
    }
    // A valid document on the same host: not fetched while the host is refused.
    let fine = host.serve_client("/fine.json", None);
    let error = resolver.resolve(&fine).await.unwrap_err();
    assert!(
        matches!(fetch_error(&error), FetchError::HostUnavailable { .. }),
        "{error:?}"
    );
    assert_eq!(
        host.hits("/fine.json"),
        0,
        "no connection to a refused host"
    );
    clock.advance(30);
    resolver.resolve(&fine).await.unwrap();
    assert_eq!(host.hits("/fine.json"), 1, "contacted again after the TTL");
}

#[tokio::test]
async fn no_more_than_the_concurrency_limit_is_in_flight_at_the_host() {
    let host = Host::start().await;
    let resolver = Arc::new(
        host.resolver(clock())
            .max_concurrent_fetches(2)
            .permit_wait(Duration::from_secs(60))
            .build()
            .unwrap(),
    );
    let mut resolutions = tokio::task::JoinSet::new();
    for i in 0..5 {
        let path = format!("/client{i}.json");
        let url = host.url(&path);
        let mut slow = json(
            format!(r#"{{"client_id":"{url}","redirect_uris":["http://127.0.0.1/cb"]}}"#),
            None,
        );
        slow.delay = Duration::from_millis(150);
        host.serve(&path, slow);
        let resolver = resolver.clone();
        resolutions.spawn(async move { resolver.resolve(&url).await });
    }
    while let Some(result) = resolutions.join_next().await {
        result.unwrap().unwrap();
    }
    assert!(
        host.max_in_flight() <= 2,
        "{} requests at once",
        host.max_in_flight()
    );
    for i in 0..5 {
        assert_eq!(host.hits(&format!("/client{i}.json")), 1);
    }
}

#[tokio::test]
async fn a_saturated_fetcher_answers_busy_without_a_request() {
    let host = Host::start().await;
    let resolver = Arc::new(
        host.resolver(clock())
            .max_concurrent_fetches(1)
            .permit_wait(Duration::ZERO)
            .build()
            .unwrap(),
    );
    let mut slow = json("{}", None);
    slow.delay = Duration::from_secs(5);
    host.serve("/slow.json", slow);
    let holder = {
        let (resolver, url) = (resolver.clone(), host.url("/slow.json"));
        tokio::spawn(async move { resolver.resolve(&url).await })
    };
    until(|| host.in_flight() == 1).await;
    let other = host.serve_client("/other.json", None);
    let error = resolver.resolve(&other).await.unwrap_err();
    // Busy is an outage to retry (temporarily_unavailable), not a refused document.
    assert!(
        matches!(error, ClientMetadataError::Unavailable(_)),
        "{error:?}"
    );
    assert!(fetch_error(&error).is_busy(), "{error:?}");
    assert_eq!(host.hits("/other.json"), 0, "nothing was sent");
    holder.abort();
    // Busy is not the client id's fault and is not remembered: once a permit is free, the
    // document is fetched.
    let _ = holder.await;
    resolver.resolve(&other).await.unwrap();
    assert_eq!(host.hits("/other.json"), 1);
}

#[tokio::test]
async fn the_document_cache_is_bounded_in_entries_and_bytes() {
    let host = Host::start().await;
    let urls: Vec<String> = (0..10)
        .map(|i| host.serve_client(&format!("/c{i}.json"), Some("max-age=3600")))
        .collect();
    let hits = |host: &Host| -> usize { (0..10).map(|i| host.hits(&format!("/c{i}.json"))).sum() };
    // Two entries: resolving ten documents twice fetches at least eight of them again.
    let two = host.resolver(clock()).cache_entries(2).build().unwrap();
    for _ in 0..2 {
        for url in &urls {
            two.resolve(url).await.unwrap();
        }
    }
    assert!(hits(&host) >= 18, "{} fetches", hits(&host));
    two.resolve(&urls[9]).await.unwrap();
    let before = hits(&host);
    two.resolve(&urls[9]).await.unwrap();
    assert_eq!(hits(&host), before, "the latest document is cached");
    // A byte budget smaller than one document: nothing is cached.
    let tiny = host.resolver(clock()).cache_bytes(512).build().unwrap();
    let before = host.hits("/c0.json");
    for _ in 0..3 {
        tiny.resolve(&urls[0]).await.unwrap();
    }
    assert_eq!(host.hits("/c0.json"), before + 3);
}

#[tokio::test]
async fn invalid_documents_count_against_nothing_but_their_own_url() {
    // A 404 and an invalid document on a host do not refuse the host: a shared document host
    // stays usable whatever made-up paths an attacker asks for.
    let host = Host::start().await;
    let resolver = host
        .resolver(clock())
        .host_failure_threshold(1)
        .build()
        .unwrap();
    for i in 0..3 {
        let error = resolver
            .resolve(&host.url(&format!("/missing{i}.json")))
            .await
            .unwrap_err();
        assert!(matches!(fetch_error(&error), FetchError::Status(404)));
    }
    host.serve("/invalid.json", json("[]", None));
    let error = resolver
        .resolve(&host.url("/invalid.json"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientMetadataError::InvalidDocument(_)),
        "{error:?}"
    );
    let fine = host.serve_client("/fine.json", None);
    resolver.resolve(&fine).await.unwrap();
}
