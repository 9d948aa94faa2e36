//! Client ID Metadata Documents, on by default with the strict fetcher of `mcp-auth-cimd`:
//! public addresses only, https with the platform's roots, no redirects, 5 KB, every client_id
//! host trusted unless `--cimd-deny-host` (or `--cimd-allow-host`) says otherwise.

use mcp_auth_cimd::{CimdConfigError, CimdResolver, TrustPolicy};

/// How https URL client ids are resolved (`--no-client-metadata-documents`, `--cimd-*`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientMetadataConfig {
    /// Resolve and advertise metadata-document client ids (default `true`).
    pub enabled: bool,
    /// Special-use address ranges the fetcher may reach anyway (tests, private deployments).
    pub allow_address_ranges: Vec<String>,
    /// Extra PEM root certificates for metadata hosts.
    pub root_certificates_pem: Vec<u8>,
    /// When non-empty, only these client_id hosts (`*.example.com` patterns allowed).
    pub allow_hosts: Vec<String>,
    /// client_id hosts never fetched.
    pub deny_hosts: Vec<String>,
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

/// The resolver for `config`, or `None` when metadata documents are off.
pub(crate) fn resolver(
    config: &ClientMetadataConfig,
) -> Result<Option<CimdResolver>, CimdConfigError> {
    if !config.enabled {
        return Ok(None);
    }
    let mut trust = TrustPolicy::default().deny_hosts(config.deny_hosts.iter().cloned());
    if !config.allow_hosts.is_empty() {
        trust = trust.allow_hosts(config.allow_hosts.iter().cloned());
    }
    let mut builder = CimdResolver::builder().trust_policy(trust);
    if !config.root_certificates_pem.is_empty() {
        builder = builder.root_certificates_pem(&config.root_certificates_pem)?;
    }
    for range in &config.allow_address_ranges {
        tracing::warn!(
            range,
            "client metadata documents: special-use addresses allowed"
        );
        builder = builder.allow_address_range(range)?;
    }
    Ok(Some(builder.build()?))
}
