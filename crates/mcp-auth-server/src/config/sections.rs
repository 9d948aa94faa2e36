//! Settings read as a group from flags and the file: Client ID Metadata Documents and the
//! resource-server-only mode.

use std::path::Path;

use mcp_auth_types::validate_issuer_url;

use super::{Args, ConfigError, FileSettings, invalid, pick, pick_paths};

/// `--authorization-server` and its root certificates: flag or variable, else the file.
pub(super) fn authorization_servers(
    args: &Args,
    file: &FileSettings,
    file_dir: Option<&Path>,
) -> Result<crate::resource_server::ExternalAuthorizationServers, ConfigError> {
    let issuers = pick(
        args.authorization_servers.clone(),
        file.authorization_servers.clone(),
    );
    for issuer in &issuers {
        validate_issuer_url(issuer)
            .map_err(|err| invalid("--authorization-server", format!("{issuer:?}: {err}")))?;
    }
    let mut root_certificates_pem = Vec::new();
    for path in pick_paths(
        args.authorization_server_root_certs.clone(),
        file.authorization_server_root_certs.clone(),
        file_dir,
    ) {
        let pem = std::fs::read(&path).map_err(|err| {
            invalid(
                "--authorization-server-root-cert",
                format!("{}: {err}", path.display()),
            )
        })?;
        root_certificates_pem.extend_from_slice(&pem);
        root_certificates_pem.push(b'\n');
    }
    let introspection = match (
        args.introspection_client_id
            .clone()
            .or_else(|| file.introspection_client_id.clone()),
        args.introspection_client_secret
            .clone()
            .or_else(|| file.introspection_client_secret.clone()),
    ) {
        (None, None) => None,
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            if issuers.len() != 1 {
                // One client credential for several issuers would show each one the tokens
                // (and the secret) meant for the others.
                return Err(invalid(
                    "--introspection-client-id",
                    "needs exactly one --authorization-server",
                ));
            }
            Some(crate::resource_server::IntrospectionClient::new(id, secret))
        }
        _ => {
            return Err(invalid(
                "--introspection-client-id",
                "needs a non-empty --introspection-client-secret, and the reverse",
            ));
        }
    };
    Ok(crate::resource_server::ExternalAuthorizationServers {
        issuers,
        root_certificates_pem,
        introspection,
    })
}

/// The Client ID Metadata Document settings: flag or environment variable, else the file.
pub(super) fn client_metadata(
    args: &Args,
    file: &FileSettings,
    file_dir: Option<&Path>,
) -> Result<crate::cimd::ClientMetadataConfig, ConfigError> {
    let disabled = if args.no_client_metadata_documents_given {
        args.no_client_metadata_documents
    } else {
        file.no_client_metadata_documents.unwrap_or(false)
    };
    let allow_address_ranges = pick(
        args.cimd_allow_addresses.clone(),
        file.cimd_allow_addresses.clone(),
    );
    let root_certs = pick_paths(
        args.cimd_root_certs.clone(),
        file.cimd_root_certs.clone(),
        file_dir,
    );
    let allow_hosts = pick(args.cimd_allow_hosts.clone(), file.cimd_allow_hosts.clone());
    let deny_hosts = pick(args.cimd_deny_hosts.clone(), file.cimd_deny_hosts.clone());
    let mut root_certificates_pem = Vec::new();
    for path in &root_certs {
        let pem = std::fs::read(path)
            .map_err(|err| invalid("--cimd-root-cert", format!("{}: {err}", path.display())))?;
        root_certificates_pem.extend_from_slice(&pem);
        root_certificates_pem.push(b'\n');
    }
    for range in &allow_address_ranges {
        range
            .parse::<mcp_auth_cimd::IpRange>()
            .map_err(|err| invalid("--cimd-allow-address", err.to_string()))?;
    }
    for (setting, hosts) in [
        ("--cimd-allow-host", &allow_hosts),
        ("--cimd-deny-host", &deny_hosts),
    ] {
        if let Some(host) = hosts.iter().find(|host| !is_host_pattern(host)) {
            return Err(invalid(
                setting,
                format!("{host:?} is not a host name or *.domain pattern"),
            ));
        }
    }
    Ok(crate::cimd::ClientMetadataConfig {
        enabled: !disabled,
        allow_address_ranges,
        root_certificates_pem,
        allow_hosts,
        deny_hosts,
    })
}

/// A client_id host as the trust policy compares it: a host name or address, or `*.` and a
/// domain; never a URL, a port or a path (which could never match).
fn is_host_pattern(pattern: &str) -> bool {
    if let Some(literal) = pattern.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
        return literal.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let host = pattern.strip_prefix("*.").unwrap_or(pattern);
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// `--upstream` and its headers, timeout and root certificates: flag or variable, else the
/// file. Upstream settings without `--upstream` would be silently ignored, so they are
/// refused.
pub(super) fn upstream(
    args: &Args,
    file: &FileSettings,
    file_dir: Option<&Path>,
) -> Result<Option<crate::UpstreamSettings>, ConfigError> {
    let url = args.upstream.clone().or_else(|| file.upstream.clone());
    let headers = pick(args.upstream_headers.clone(), file.upstream_headers.clone());
    let timeout = args.upstream_timeout.or(file.upstream_timeout);
    let root_certs = pick_paths(
        args.upstream_root_certs.clone(),
        file.upstream_root_certs.clone(),
        file_dir,
    );
    let Some(url) = url else {
        for (setting, given) in [
            ("--upstream-header", !headers.is_empty()),
            ("--upstream-timeout", timeout.is_some()),
            ("--upstream-root-cert", !root_certs.is_empty()),
        ] {
            if given {
                return Err(invalid(setting, "has no effect without --upstream"));
            }
        }
        return Ok(None);
    };
    let mut settings = crate::UpstreamSettings::new(url);
    for line in &headers {
        settings.headers.push(
            line.parse()
                .map_err(|err| invalid("--upstream-header", format!("{err}")))?,
        );
    }
    if let Some(timeout) = timeout {
        if !(1..=crate::MAX_UPSTREAM_TIMEOUT).contains(&timeout) {
            return Err(invalid(
                "--upstream-timeout",
                format!("between 1 and {} seconds", crate::MAX_UPSTREAM_TIMEOUT),
            ));
        }
        settings.timeout = timeout;
    }
    for path in root_certs {
        let pem = std::fs::read(&path)
            .map_err(|err| invalid("--upstream-root-cert", format!("{}: {err}", path.display())))?;
        settings.root_certificates_pem.extend_from_slice(&pem);
        settings.root_certificates_pem.push(b'\n');
    }
    // The URL and certificates are checked now, so that --check-config catches them.
    settings
        .proxy()
        .map_err(|err| invalid("--upstream", err.to_string()))?;
    Ok(Some(settings))
}

/// Per-tool scopes: `--tool-scope TOOL="A B"` (flag or variable), else the file's
/// `[tool_scopes]` table, else none.
pub(super) fn tool_scopes(
    args: &Args,
    file: &mut FileSettings,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, ConfigError> {
    if args.tool_scopes.is_empty() {
        return Ok(file
            .tool_scopes
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|(tool, scopes)| (tool, scopes.into_list()))
            .collect());
    }
    let mut table = std::collections::BTreeMap::new();
    for item in &args.tool_scopes {
        let (tool, scopes) = item
            .split_once('=')
            .ok_or_else(|| invalid("--tool-scope", format!("{item:?} is not TOOL=SCOPES")))?;
        let scopes = super::split_scopes(scopes.trim().trim_matches('"'));
        if tool.trim().is_empty() || scopes.is_empty() {
            return Err(invalid(
                "--tool-scope",
                format!("{item:?} needs a tool name and at least one scope"),
            ));
        }
        table
            .entry(tool.trim().to_owned())
            .or_insert_with(Vec::new)
            .extend(scopes);
    }
    Ok(table)
}
