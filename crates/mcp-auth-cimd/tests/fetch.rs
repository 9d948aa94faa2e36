//! The resolver against a local https metadata host (self-signed certificate trusted through
//! configuration, loopback admitted through the allow-list option), and SSRF refusals through
//! a name resolver the tests control.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mcp_auth_cimd::{CimdResolver, CimdResolverBuilder, FetchError, NameResolver, TrustPolicy};
use mcp_auth_core::{ClientMetadataError, ClientMetadataResolver, Clock, ManualClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One canned answer of the host.
#[derive(Clone)]
struct Answer {
    status: &'static str,
    headers: Vec<String>,
    body: String,
    /// Leave out Content-Length (the body ends when the connection closes).
    no_length: bool,
    delay: Duration,
}

fn json(body: impl Into<String>, cache_control: Option<&str>) -> Answer {
    let mut headers = vec!["content-type: application/json".to_owned()];
    if let Some(value) = cache_control {
        headers.push(format!("cache-control: {value}"));
    }
    Answer {
        status: "200 OK",
        headers,
        body: body.into(),
        no_length: false,
        delay: Duration::ZERO,
    }
}

/// A loopback https host answering per path, counting requests per path.
struct Host {
    port: u16,
    pem: String,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Host {
    async fn start() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "cimd.test".to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![certified.cert.der().clone()],
                tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(
                    certified.signing_key.serialize_der().into(),
                ),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (served, counted) = (answers.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, served, counted) =
                    (acceptor.clone(), served.clone(), counted.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&request).to_string();
                    let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                    *counted.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let answer = served
                        .lock()
                        .unwrap()
                        .get(&path)
                        .cloned()
                        .unwrap_or(Answer {
                            status: "404 Not Found",
                            headers: vec!["content-type: application/json".into()],
                            body: "{}".into(),
                            no_length: false,
                            delay: Duration::ZERO,
                        });
                    tokio::time::sleep(answer.delay).await;
                    let mut head = format!("HTTP/1.1 {}\r\nconnection: close\r\n", answer.status);
                    for header in &answer.headers {
                        head.push_str(header);
                        head.push_str("\r\n");
                    }
                    if !answer.no_length {
                        head.push_str(&format!("content-length: {}\r\n", answer.body.len()));
                    }
                    head.push_str("\r\n");
                    let _ = tls.write_all(head.as_bytes()).await;
                    let _ = tls.write_all(answer.body.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            port,
            pem: certified.cert.pem(),
            answers,
            hits,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://cimd.test:{}{path}", self.port)
    }

    fn serve(&self, path: &str, answer: Answer) {
        self.answers.lock().unwrap().insert(path.to_owned(), answer);
    }

    /// A valid document for `path` with the given Cache-Control.
    fn serve_client(&self, path: &str, cache_control: Option<&str>) -> String {
        let url = self.url(path);
        self.serve(
            path,
            json(
                format!(r#"{{"client_id":"{url}","redirect_uris":["http://127.0.0.1/cb"]}}"#),
                cache_control,
            ),
        );
        url
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// The resolver under test: trusts the host's certificate, admits 127.0.0.1 only, and
    /// resolves names through `names`.
    fn resolver(&self, clock: Arc<ManualClock>) -> CimdResolverBuilder {
        CimdResolver::builder()
            .root_certificates_pem(self.pem.as_bytes())
            .unwrap()
            .allow_address_range("127.0.0.1/32")
            .unwrap()
            .name_resolver(Arc::new(names()))
            .clock(clock)
            .cache_lifetimes(60, 300, 3600)
    }
}

/// Names the tests control: `cimd.test` is the loopback host; the others each resolve into one
/// special-use range.
struct Names(HashMap<&'static str, Vec<IpAddr>>);

fn names() -> Names {
    let table: &[(&str, &[&str])] = &[
        ("cimd.test", &["127.0.0.1"]),
        ("loopback2.test", &["127.0.0.2"]),
        ("loopback6.test", &["::1"]),
        ("private10.test", &["10.1.2.3"]),
        ("private172.test", &["172.16.5.4"]),
        ("private192.test", &["192.168.0.10"]),
        ("linklocal.test", &["169.254.169.254"]),
        ("cgnat.test", &["100.64.0.1"]),
        ("multicast.test", &["224.0.0.251"]),
        ("doc.test", &["192.0.2.10"]),
        ("unspecified.test", &["0.0.0.0"]),
        ("broadcast.test", &["255.255.255.255"]),
        ("mapped.test", &["::ffff:127.0.0.1"]),
        ("compat.test", &["::7f00:1"]),
        ("ula.test", &["fd00::1"]),
        ("linklocal6.test", &["fe80::1"]),
        ("doc6.test", &["2001:db8::1"]),
        ("nat64.test", &["64:ff9b::a00:1"]),
        ("mixed.test", &["127.0.0.1", "10.0.0.1"]),
    ];
    Names(
        table
            .iter()
            .map(|(name, addrs)| (*name, addrs.iter().map(|a| a.parse().unwrap()).collect()))
            .collect(),
    )
}

#[async_trait]
impl NameResolver for Names {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.0
            .get(host)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, host.to_owned()))
    }
}

fn fetch_error(error: &ClientMetadataError) -> &FetchError {
    match error {
        ClientMetadataError::Fetch(source) => source.downcast_ref::<FetchError>().unwrap(),
        other => panic!("expected a fetch error, got {other:?}"),
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_000_000))
}

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
async fn failures_and_invalid_documents_are_never_cached() {
    let host = Host::start().await;
    let resolver = host.resolver(clock()).build().unwrap();
    let url = host.url("/client.json");
    // Not there yet: each attempt fetches again (no negative caching).
    for attempt in 1..=2 {
        assert!(resolver.resolve(&url).await.is_err());
        assert_eq!(host.hits("/client.json"), attempt);
    }
    // Invalid (another client_id): refused, and not cached either.
    host.serve(
        "/client.json",
        json(
            r#"{"client_id":"https://cimd.test/other","redirect_uris":["http://127.0.0.1/cb"]}"#,
            Some("max-age=3600"),
        ),
    );
    for attempt in 3..=4 {
        let error = resolver.resolve(&url).await.unwrap_err();
        assert!(
            matches!(error, ClientMetadataError::InvalidDocument(ref d) if d.contains("does not equal")),
            "{error:?}"
        );
        assert_eq!(host.hits("/client.json"), attempt);
    }
    // Fixed: accepted at once.
    host.serve_client("/client.json", Some("max-age=3600"));
    resolver.resolve(&url).await.unwrap();
    assert_eq!(host.hits("/client.json"), 5);
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
