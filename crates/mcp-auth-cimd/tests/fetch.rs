//! The resolver against a local https metadata host (self-signed certificate trusted through
//! configuration, loopback admitted through the allow-list option), and SSRF refusals through
//! a name resolver the tests control.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod host;

use std::sync::Arc;
use std::time::Duration;

use host::{Answer, Host, clock, fetch_error, json, names};
use mcp_auth_cimd::{CimdResolver, FetchError, TrustPolicy};
use mcp_auth_core::{ClientMetadataError, ClientMetadataResolver, Clock};

#[tokio::test]
async fn a_valid_document_resolves_to_its_client() {
    let host = Host::start().await;
    let url = host.serve_client("/client.json", None);
    let resolver = host.resolver(clock()).build().unwrap();
    let client = resolver.resolve(&url).await.unwrap();
    assert_eq!(client.client_id, url);
    assert_eq!(
        client.metadata.redirect_uris.as_deref(),
        Some(&["http://127.0.0.1/cb".to_owned()][..])
    );
    assert!(!client.is_confidential());
}

#[tokio::test]
async fn max_age_is_honoured_within_the_bounds() {
    let host = Host::start().await;
    let clock = clock();
    let resolver = host.resolver(clock.clone()).build().unwrap();
    // (path, Cache-Control, seconds the entry lives: max-age clamped to 60..=3600, default 300)
    let cases = [
        ("/a", Some("max-age=120"), 120),
        ("/b", Some("max-age=5"), 60),
        ("/c", Some("public, max-age=100000"), 3600),
        ("/d", None, 300),
        ("/e", Some("no-store"), 60),
    ];
    for (path, cache_control, lifetime) in cases {
        let url = host.serve_client(path, cache_control);
        let start = clock.now();
        resolver.resolve(&url).await.unwrap();
        resolver.resolve(&url).await.unwrap();
        assert_eq!(host.hits(path), 1, "{path}: served from cache");
        clock.set(start + lifetime - 1);
        resolver.resolve(&url).await.unwrap();
        assert_eq!(
            host.hits(path),
            1,
            "{path}: still cached just before {lifetime}s"
        );
        clock.set(start + lifetime);
        resolver.resolve(&url).await.unwrap();
        assert_eq!(host.hits(path), 2, "{path}: refetched after {lifetime}s");
        clock.set(start + 10_000);
    }
}

#[tokio::test]
async fn failures_and_invalid_documents_are_remembered_for_the_failure_ttl() {
    let host = Host::start().await;
    let clock = clock();
    let resolver = host
        .resolver(clock.clone())
        .failure_ttl(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = host.url("/client.json");
    // Not there yet (404): fetched once, then remembered for the TTL.
    for _ in 0..5 {
        let error = resolver.resolve(&url).await.unwrap_err();
        assert!(matches!(fetch_error(&error), FetchError::Status(404)));
    }
    assert_eq!(
        host.hits("/client.json"),
        1,
        "a failing client id is fetched once"
    );
    clock.advance(29);
    assert!(resolver.resolve(&url).await.is_err());
    assert_eq!(
        host.hits("/client.json"),
        1,
        "still remembered just before the TTL"
    );
    // Invalid (another client_id): refused once the TTL has passed, then remembered too.
    host.serve(
        "/client.json",
        json(
            r#"{"client_id":"https://cimd.test/other","redirect_uris":["http://127.0.0.1/cb"]}"#,
            Some("max-age=3600"),
        ),
    );
    clock.advance(1);
    for _ in 0..5 {
        let error = resolver.resolve(&url).await.unwrap_err();
        assert!(
            matches!(error, ClientMetadataError::InvalidDocument(ref d) if d.contains("does not equal")),
            "{error:?}"
        );
    }
    assert_eq!(
        host.hits("/client.json"),
        2,
        "an invalid document is fetched once"
    );
    // Fixed: picked up once the TTL has passed, and then cached as valid.
    host.serve_client("/client.json", Some("max-age=3600"));
    clock.advance(30);
    resolver.resolve(&url).await.unwrap();
    resolver.resolve(&url).await.unwrap();
    assert_eq!(host.hits("/client.json"), 3);
}

#[tokio::test]
async fn fetch_rules() {
    let host = Host::start().await;
    let resolver = host
        .resolver(clock())
        .max_body_bytes(5 * 1024)
        .build()
        .unwrap();
    let target = host.serve_client("/target.json", None);
    let mut redirect = json("", None);
    redirect.status = "302 Found";
    redirect.headers.push(format!("location: {target}"));
    let mut not_found = json("{}", None);
    not_found.status = "404 Not Found";
    let mut server_error = json("{}", None);
    server_error.status = "500 Internal Server Error";
    let mut html = json("{}", None);
    html.headers = vec!["content-type: text/html".into()];
    let mut untyped = json("{}", None);
    untyped.headers.clear();
    let big = format!(r#"{{"client_id":"x","pad":"{}"}}"#, "a".repeat(6 * 1024));
    let oversize = json(big.clone(), None);
    let mut oversize_unannounced = json(big, None);
    oversize_unannounced.no_length = true;
    let mut no_content = json("", None);
    no_content.status = "204 No Content";
    type Check = fn(&FetchError) -> bool;
    let cases: [(&str, Answer, Check); 8] = [
        ("/redirect", redirect, |e| {
            matches!(e, FetchError::Status(302))
        }),
        ("/missing", not_found, |e| {
            matches!(e, FetchError::Status(404))
        }),
        ("/broken", server_error, |e| {
            matches!(e, FetchError::Status(500))
        }),
        ("/nocontent", no_content, |e| {
            matches!(e, FetchError::Status(204))
        }),
        (
            "/html",
            html,
            |e| matches!(e, FetchError::ContentType(t) if t == "text/html"),
        ),
        (
            "/untyped",
            untyped,
            |e| matches!(e, FetchError::ContentType(t) if t.is_empty()),
        ),
        ("/big", oversize, |e| {
            matches!(e, FetchError::TooLarge(5120))
        }),
        ("/bigstream", oversize_unannounced, |e| {
            matches!(e, FetchError::TooLarge(5120))
        }),
    ];
    for (path, answer, check) in cases {
        host.serve(path, answer);
        let error = resolver.resolve(&host.url(path)).await.unwrap_err();
        let fetch = fetch_error(&error);
        assert!(check(fetch), "{path}: {fetch:?}");
    }
    assert_eq!(
        host.hits("/target.json"),
        0,
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn a_slow_host_times_out() {
    let host = Host::start().await;
    let mut slow = json("{}", None);
    slow.delay = Duration::from_secs(5);
    host.serve("/slow", slow);
    let resolver = host
        .resolver(clock())
        .read_timeout(Duration::from_millis(300))
        .total_timeout(Duration::from_millis(600))
        .build()
        .unwrap();
    let error = resolver.resolve(&host.url("/slow")).await.unwrap_err();
    let fetch = fetch_error(&error);
    assert!(
        matches!(fetch, FetchError::Http(e) if e.is_timeout()),
        "{fetch:?}"
    );
}

#[tokio::test]
async fn special_use_addresses_are_refused_as_literals_and_through_names() {
    let host = Host::start().await;
    let resolver = host.resolver(clock()).build().unwrap();
    let port = host.port;
    let hosts = [
        "127.0.0.2",
        "[::1]",
        "10.1.2.3",
        "172.16.5.4",
        "192.168.0.10",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.251",
        "192.0.2.10",
        "198.51.100.1",
        "203.0.113.1",
        "0.0.0.0",
        "255.255.255.255",
        "[::ffff:7f00:1]",
        "[::ffff:a00:1]",
        "[fd00::1]",
        "[fe80::1]",
        "[2001:db8::1]",
        "[ff02::1]",
        "loopback2.test",
        "loopback6.test",
        "private10.test",
        "private172.test",
        "private192.test",
        "linklocal.test",
        "cgnat.test",
        "multicast.test",
        "doc.test",
        "unspecified.test",
        "broadcast.test",
        "mapped.test",
        "compat.test",
        "ula.test",
        "linklocal6.test",
        "doc6.test",
        "nat64.test",
        "mixed.test",
    ];
    for name in hosts {
        let url = format!("https://{name}:{port}/client.json");
        let error = resolver.resolve(&url).await.unwrap_err();
        let fetch = fetch_error(&error);
        assert!(
            matches!(fetch, FetchError::AddressRefused { .. }),
            "{name}: {fetch:?}"
        );
    }
    assert_eq!(host.hits("/client.json"), 0);
}

#[tokio::test]
async fn without_the_allow_list_even_the_test_host_and_localhost_are_refused() {
    let host = Host::start().await;
    let url = host.serve_client("/client.json", None);
    let strict = CimdResolver::builder()
        .root_certificates_pem(host.pem.as_bytes())
        .unwrap()
        .name_resolver(Arc::new(names()))
        .build()
        .unwrap();
    let error = strict.resolve(&url).await.unwrap_err();
    assert!(matches!(
        fetch_error(&error),
        FetchError::AddressRefused { .. }
    ));
    // `localhost` through the system resolver.
    let system = CimdResolver::builder()
        .root_certificates_pem(host.pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let error = system
        .resolve(&format!("https://localhost:{}/client.json", host.port))
        .await
        .unwrap_err();
    assert!(matches!(
        fetch_error(&error),
        FetchError::AddressRefused { .. }
    ));
    assert_eq!(host.hits("/client.json"), 0);
}

#[tokio::test]
async fn invalid_client_ids_and_untrusted_hosts_are_refused_before_any_fetch() {
    let host = Host::start().await;
    host.serve_client("/client.json", None);
    let resolver = host
        .resolver(clock())
        .trust_policy(TrustPolicy::default().deny_hosts(["cimd.test"]))
        .build()
        .unwrap();
    let error = resolver
        .resolve(&host.url("/client.json"))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientMetadataError::Untrusted(ref h) if h == "cimd.test"));
    let allow_other = host
        .resolver(clock())
        .trust_policy(TrustPolicy::default().allow_hosts(["*.example.com"]))
        .build()
        .unwrap();
    let error = allow_other
        .resolve(&host.url("/client.json"))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientMetadataError::Untrusted(_)));
    for bad in [
        format!("http://cimd.test:{}/client.json", host.port),
        format!("https://cimd.test:{}/client.json#x", host.port),
        format!("https://u@cimd.test:{}/client.json", host.port),
        format!("https://cimd.test:{}/x/../client.json", host.port),
        format!("https://cimd.test:{}/", host.port),
    ] {
        let error = resolver.resolve(&bad).await.unwrap_err();
        assert!(
            matches!(error, ClientMetadataError::InvalidClientId(_)),
            "{bad}: {error:?}"
        );
    }
    assert_eq!(host.hits("/client.json"), 0);
}
