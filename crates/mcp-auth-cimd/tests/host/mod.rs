//! The loopback https metadata host of the tests (self-signed certificate trusted through
//! configuration, loopback admitted through the allow-list option), and a name resolver the
//! tests control.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_auth_cimd::{CimdResolver, CimdResolverBuilder, FetchError, StaticResolver};
use mcp_auth_core::{ClientMetadataError, ManualClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One canned answer of the host.
#[derive(Clone)]
pub struct Answer {
    pub status: &'static str,
    pub headers: Vec<String>,
    pub body: String,
    /// Leave out Content-Length (the body ends when the connection closes).
    pub no_length: bool,
    pub delay: Duration,
}

pub fn json(body: impl Into<String>, cache_control: Option<&str>) -> Answer {
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
pub struct Host {
    pub port: u16,
    pub pem: String,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    flight: Arc<InFlight>,
}

/// Requests received and not yet answered, now and at most.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Host {
    pub async fn start() -> Self {
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
        let flight = Arc::new(InFlight::default());
        let (served, counted, flying) = (answers.clone(), hits.clone(), flight.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, served, counted, flying) = (
                    acceptor.clone(),
                    served.clone(),
                    counted.clone(),
                    flying.clone(),
                );
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
                    let now = flying.now.fetch_add(1, Ordering::SeqCst) + 1;
                    flying.max.fetch_max(now, Ordering::SeqCst);
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
                    // Counted done before the client can read the end of the answer, so that
                    // `now` never lags behind the fetcher's own count.
                    flying.now.fetch_sub(1, Ordering::SeqCst);
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            port,
            pem: certified.cert.pem(),
            answers,
            hits,
            flight,
        }
    }

    /// Requests received and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.flight.now.load(Ordering::SeqCst)
    }

    /// The most requests that were ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.flight.max.load(Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://cimd.test:{}{path}", self.port)
    }

    pub fn serve(&self, path: &str, answer: Answer) {
        self.answers.lock().unwrap().insert(path.to_owned(), answer);
    }

    /// A valid document for `path` with the given Cache-Control.
    pub fn serve_client(&self, path: &str, cache_control: Option<&str>) -> String {
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

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// The resolver under test: trusts the host's certificate, admits 127.0.0.1 only, and
    /// resolves names through `names`.
    pub fn resolver(&self, clock: Arc<ManualClock>) -> CimdResolverBuilder {
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
pub fn names() -> StaticResolver {
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
    StaticResolver::new(
        table
            .iter()
            .map(|(name, addrs)| (*name, addrs.iter().map(|a| a.parse().unwrap()).collect())),
    )
}

pub fn fetch_error(error: &ClientMetadataError) -> &FetchError {
    match error {
        ClientMetadataError::Fetch(source) | ClientMetadataError::Unavailable(source) => {
            source.downcast_ref::<FetchError>().unwrap()
        }
        other => panic!("expected a fetch error, got {other:?}"),
    }
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_000_000))
}

/// Waits for `condition`; a condition that never comes fails the test after a generous bound
/// instead of hanging it.
pub async fn until(mut condition: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the awaited condition never held");
}
