//! Client ID Metadata Documents, on by default with the strict fetcher of `mcp-auth-cimd`:
//! public addresses only, https with the platform's roots, no redirects, 5 KB, every client_id
//! host trusted unless `--cimd-deny-host` (or `--cimd-allow-host`) says otherwise.
//!
//! With them comes `private_key_jwt`: a metadata document cannot hold a secret, so a
//! confidential client proves itself with a key its document publishes (`jwks` or
//! `jwks_uri`). The `jwks_uri` is fetched by the same kind of vetted fetcher, with the same
//! address allow-list and root certificates: both are URLs a client chose.

use std::sync::Arc;

use mcp_auth_cimd::{CimdConfigError, CimdResolver, TrustPolicy};
use mcp_auth_jwt::{PrivateKeyJwtVerifier, VettedFetcher};

/// Outbound fetches in flight for metadata documents, and as many again for client
/// `jwks_uri`s: 16 at most in all, the fetcher's own default, split so that a flood of one
/// kind cannot starve the other.
const FETCHES_PER_KIND: usize = 8;

/// How https URL client ids are resolved (`--no-client-metadata-documents`, `--cimd-*`).
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientMetadataConfig {
    /// Resolve and advertise metadata-document client ids (default `true`).
    pub enabled: bool,
    /// Special-use address ranges the fetchers of metadata documents and of their clients'
    /// `jwks_uri` may reach anyway (tests, private deployments).
    pub allow_address_ranges: Vec<String>,
    /// Extra PEM root certificates for metadata and `jwks_uri` hosts.
    pub root_certificates_pem: Vec<u8>,
    /// When non-empty, only these client_id hosts (`*.example.com` patterns allowed).
    pub allow_hosts: Vec<String>,
    /// client_id hosts never fetched.
    pub deny_hosts: Vec<String>,
}

/// The root certificates appear as their size, not as a list of bytes.
impl std::fmt::Debug for ClientMetadataConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientMetadataConfig")
            .field("enabled", &self.enabled)
            .field("allow_address_ranges", &self.allow_address_ranges)
            .field(
                "root_certificates_pem",
                &format_args!("<{} bytes>", self.root_certificates_pem.len()),
            )
            .field("allow_hosts", &self.allow_hosts)
            .field("deny_hosts", &self.deny_hosts)
            .finish()
    }
}

impl Default for ClientMetadataConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_address_ranges: Vec::new(),
            root_certificates_pem: Vec::new(),
            allow_hosts: Vec::new(),
            deny_hosts: Vec::new(),
        }
    }
}

/// What metadata documents need: the resolver, and the verifier of their clients' assertions.
pub(crate) struct ClientMetadata {
    /// Resolves https URL client ids, accepting `private_key_jwt` documents.
    pub(crate) resolver: CimdResolver,
    /// Verifies `private_key_jwt` assertions, fetching `jwks_uri` through a vetted fetcher.
    pub(crate) verifier: PrivateKeyJwtVerifier,
}

/// The resolver and verifier for `config`, or `None` when metadata documents are off.
pub(crate) fn client_metadata(
    config: &ClientMetadataConfig,
) -> Result<Option<ClientMetadata>, CimdConfigError> {
    if !config.enabled {
        return Ok(None);
    }
    let mut trust = TrustPolicy::default().deny_hosts(config.deny_hosts.iter().cloned());
    if !config.allow_hosts.is_empty() {
        trust = trust.allow_hosts(config.allow_hosts.iter().cloned());
    }
    let mut builder = CimdResolver::builder()
        .trust_policy(trust)
        .private_key_jwt(true)
        .max_concurrent_fetches(FETCHES_PER_KIND);
    // Client key sets are bigger than metadata documents (an RSA JWK alone is ~0.5 KB); the
    // download stops at the largest key set a client may have, so an oversized one costs no
    // more than that.
    let mut keys = VettedFetcher::builder()
        .max_concurrent_fetches(FETCHES_PER_KIND)
        .max_body_bytes(mcp_auth_jwt::limits::MAX_KEY_SET_BYTES);
    if !config.root_certificates_pem.is_empty() {
        builder = builder.root_certificates_pem(&config.root_certificates_pem)?;
        keys = keys.root_certificates_pem(&config.root_certificates_pem)?;
    }
    for range in &config.allow_address_ranges {
        tracing::warn!(
            range,
            "client metadata documents and jwks_uri: special-use addresses allowed"
        );
        builder = builder.allow_address_range(range)?;
        keys = keys.allow_address_range(range)?;
    }
    Ok(Some(ClientMetadata {
        resolver: builder.build()?,
        verifier: PrivateKeyJwtVerifier::with_fetcher(Arc::new(keys.build()?)),
    }))
}
