//! `--oidc-*`: signing users in through an OpenID Provider. Flag or variable, else the file;
//! the settings come as a group, so a partial group is refused rather than ignored.

use std::path::Path;

use mcp_auth_types::ClientSecret;

use super::{Args, ConfigError, FileSettings, invalid, pick, pick_paths, split_scopes};

/// The OpenID Provider users sign in through.
#[derive(Clone)]
#[non_exhaustive]
pub struct OidcSettings {
    /// The provider's issuer identifier.
    pub issuer: String,
    /// This server's client id there.
    pub client_id: String,
    /// This server's client secret there.
    pub client_secret: ClientSecret,
    /// Scopes asked for (`openid` always among them).
    pub scopes: Vec<String>,
    /// The ID-token claim that names the user.
    pub subject_claim: String,
    /// Email domains allowed (lower case); empty: everyone the provider vouches for.
    pub allow_domains: Vec<String>,
    /// The provider's name on the sign-in button.
    pub name: String,
    /// Extra PEM roots for the provider, read at start.
    pub root_certificates_pem: Vec<u8>,
    /// Keep the provider's tokens per grant, sealed (`--oidc-keep-tokens`).
    pub keep_tokens: bool,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("subject_claim", &self.subject_claim)
            .field("allow_domains", &self.allow_domains)
            .field("name", &self.name)
            .field("keep_tokens", &self.keep_tokens)
            .finish_non_exhaustive()
    }
}

/// The default scopes asked of the provider.
pub const DEFAULT_OIDC_SCOPES: &str = "openid email profile";

pub(super) fn oidc(
    args: &Args,
    file: &FileSettings,
    file_dir: Option<&Path>,
) -> Result<Option<OidcSettings>, ConfigError> {
    let issuer = args
        .oidc_issuer
        .clone()
        .or_else(|| file.oidc_issuer.clone());
    let client_id = args
        .oidc_client_id
        .clone()
        .or_else(|| file.oidc_client_id.clone());
    let client_secret = args
        .oidc_client_secret
        .clone()
        .or_else(|| file.oidc_client_secret.clone());
    let scopes = args
        .oidc_scopes
        .clone()
        .or_else(|| file.oidc_scopes.clone());
    let subject_claim = args
        .oidc_subject_claim
        .clone()
        .or_else(|| file.oidc_subject_claim.clone());
    let allow_domains = pick(
        args.oidc_allow_domains.clone(),
        file.oidc_allow_domains.clone(),
    );
    let name = args.oidc_name.clone().or_else(|| file.oidc_name.clone());
    let root_certs = pick_paths(
        args.oidc_root_certs.clone(),
        file.oidc_root_certs.clone(),
        file_dir,
    );
    let keep_tokens = args.oidc_keep_tokens || file.oidc_keep_tokens.unwrap_or(false);
    let Some(issuer) = issuer else {
        for (setting, given) in [
            ("--oidc-client-id", client_id.is_some()),
            ("--oidc-client-secret", client_secret.is_some()),
            ("--oidc-scopes", scopes.is_some()),
            ("--oidc-subject-claim", subject_claim.is_some()),
            ("--oidc-allow-domain", !allow_domains.is_empty()),
            ("--oidc-name", name.is_some()),
            ("--oidc-root-cert", !root_certs.is_empty()),
            ("--oidc-keep-tokens", keep_tokens),
        ] {
            if given {
                return Err(invalid(setting, "has no effect without --oidc-issuer"));
            }
        }
        return Ok(None);
    };
    let parsed = url::Url::parse(&issuer)
        .ok()
        .filter(|url| url.scheme() == "https" && url.has_host());
    let Some(parsed) = parsed else {
        return Err(invalid(
            "--oidc-issuer",
            format!("{issuer:?} is not an https URL"),
        ));
    };
    let client_id = client_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| invalid("--oidc-client-id", "is required with --oidc-issuer"))?;
    let client_secret = client_secret
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| invalid("--oidc-client-secret", "is required with --oidc-issuer"))?;
    let scopes = split_scopes(scopes.as_deref().unwrap_or(DEFAULT_OIDC_SCOPES));
    let subject_claim = subject_claim.unwrap_or_else(|| "sub".to_owned());
    if subject_claim.is_empty() {
        return Err(invalid("--oidc-subject-claim", "must not be empty"));
    }
    let allow_domains = allow_domains
        .iter()
        .map(|domain| {
            let domain = domain.trim().trim_start_matches('@').to_ascii_lowercase();
            if domain.is_empty() || domain.contains(['@', '/', ' ']) || !domain.contains('.') {
                Err(invalid(
                    "--oidc-allow-domain",
                    format!("{domain:?} is not a domain"),
                ))
            } else {
                Ok(domain)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut root_certificates_pem = Vec::new();
    for path in root_certs {
        let pem = std::fs::read(&path)
            .map_err(|err| invalid("--oidc-root-cert", format!("{}: {err}", path.display())))?;
        root_certificates_pem.extend_from_slice(&pem);
        root_certificates_pem.push(b'\n');
    }
    Ok(Some(OidcSettings {
        name: name.unwrap_or_else(|| parsed.host_str().unwrap_or_default().to_owned()),
        issuer,
        client_id,
        client_secret: ClientSecret::new(client_secret),
        scopes,
        subject_claim,
        allow_domains,
        root_certificates_pem,
        keep_tokens,
    }))
}
