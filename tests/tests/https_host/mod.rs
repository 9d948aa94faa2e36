//! A loopback https host for the tests of client-chosen URLs (metadata documents, `jwks_uri`):
//! a self-signed certificate for `127.0.0.1`, `localhost` and `keys.test` (trusted through
//! configuration), JSON documents per path, and a request count per path. [`self_signed`] is
//! that certificate and its TLS acceptor alone, for other loopback https servers (the gateway
//! tests' https upstream).

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed certificate and a TLS acceptor that presents it.
pub(crate) struct SelfSigned {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    /// The certificate, PEM.
    pub(crate) pem: String,
    /// The certificate, written to a file (for the server's `--*-root-cert` flags).
    pub(crate) pem_file: PathBuf,
}

/// A self-signed certificate for `names` (an IP address becomes an IP SAN), on aws-lc-rs.
pub(crate) fn self_signed(names: &[&str]) -> SelfSigned {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
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
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(dir).unwrap();
    let pem_file = dir.join(format!("https-host-{:016x}.pem", rand::random::<u64>()));
    std::fs::write(&pem_file, certified.cert.pem()).unwrap();
    SelfSigned {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        pem: certified.cert.pem(),
        pem_file,
    }
}

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A TCP listener that completes the TLS handshake before axum sees a connection (for an axum
/// app over https: `axum::serve(TlsListener { tcp, acceptor }, app)`). A failed or stalled
/// handshake (a client that does not trust the certificate) drops that connection only.
pub(crate) struct TlsListener {
    pub(crate) tcp: tokio::net::TcpListener,
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, peer)) = self.tcp.accept().await else {
                // Out of file descriptors, say: wait rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let handshake = self.acceptor.accept(stream);
            if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The host; it serves until the test's runtime ends.
pub(crate) struct HttpsHost {
    /// The port on 127.0.0.1.
    pub(crate) port: u16,
    /// The certificate, PEM.
    pub(crate) pem: String,
    /// The certificate, written to a file (for `--cimd-root-cert`).
    pub(crate) pem_file: PathBuf,
    documents: Arc<Mutex<HashMap<String, String>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl HttpsHost {
    pub(crate) async fn start() -> Self {
        let SelfSigned {
            acceptor,
            pem,
            pem_file,
        } = self_signed(&["127.0.0.1", "localhost", "keys.test"]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let documents: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (served, counted) = (documents.clone(), hits.clone());
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
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024
                    {
                        match tls.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    *counted.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let body = served.lock().unwrap().get(&path).cloned();
                    let response = match body {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=300\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned(),
                    };
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            port,
            pem,
            pem_file,
            documents,
            hits,
        }
    }

    /// `https://<host>:<port><path>`.
    pub(crate) fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }

    /// Serves `document` at `path`.
    pub(crate) fn serve(&self, path: &str, document: &Value) {
        self.documents
            .lock()
            .unwrap()
            .insert(path.to_owned(), document.to_string());
    }

    /// Requests answered for `path`.
    pub(crate) fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}
