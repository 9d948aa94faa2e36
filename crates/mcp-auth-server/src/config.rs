//! Settings from flags, `MCP_AUTH_*` environment variables and a TOML file.
//!
//! Precedence, per setting: flag, then environment variable, then file, then default. clap
//! handles the first two (its `env` feature); the file fills what they leave unset. A
//! repeatable setting is replaced as a whole, never merged: `--user` on the command line
//! replaces every user of the file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use mcp_auth_types::{OAuthClientInformationFull, validate_issuer_url};
use serde::Deserialize;

/// Default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Default store: a SQLite file in the working directory, created on first start.
pub const DEFAULT_STORE: &str = "sqlite://mcp-auth.db";
/// Default valid (and required) scopes.
pub const DEFAULT_SCOPES: &str = "mcp:tools";
/// Default access-token lifetime in seconds.
pub const DEFAULT_ACCESS_TOKEN_TTL: u64 = 3600;
/// Default absolute grant lifetime in days: refresh tokens rotate for at most this long after
/// the sign-in (RFC 9700 §4.14.2), then the user signs in again.
pub const DEFAULT_GRANT_LIFETIME_DAYS: u64 = 90;
/// Default access-token cache lifetime on SQLite, in seconds (see
/// [`StoreUrl::default_access_token_cache_ttl`]).
pub const DEFAULT_SQLITE_ACCESS_TOKEN_CACHE_TTL: u64 = 30;

/// Scopes in the file: `"a b"` as on the command line, or `["a", "b"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Scopes {
    Joined(String),
    List(Vec<String>),
}

impl Scopes {
    fn into_list(self) -> Vec<String> {
        match self {
            Self::Joined(joined) => split_scopes(&joined),
            Self::List(list) => list
                .iter()
                .flat_map(|s| split_scopes(s))
                .collect::<Vec<_>>(),
        }
    }
}

fn split_scopes(joined: &str) -> Vec<String> {
    joined.split_whitespace().map(str::to_owned).collect()
}

/// Why the settings were refused. Each message names the setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The command line did not parse (also `--help` and `--version`, which clap prints).
    #[error(transparent)]
    Args(#[from] clap::Error),
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for these settings.
    #[error("config file {path}: {source}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A client file could not be read.
    #[error("cannot read client file {path}: {source}")]
    ReadClient {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A client file is not RFC 7591 client information.
    #[error("client file {path} is not RFC 7591 client information JSON: {source}")]
    ParseClient {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A setting has an invalid value.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The flag.
        setting: &'static str,
        /// Why.
        reason: String,
    },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// The server's validated settings.
///
/// Build it from a command line with [`Config::from_args`]; fields are public so that tests
/// and embedders can adjust them before [`serve`](crate::serve).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Listen address (`host:port`).
    pub bind: String,
    /// Issuer identifier; `None` means `http://<bound address>`.
    pub issuer: Option<String>,
    /// Storage backend.
    pub store: StoreUrl,
    /// Valid scopes; the MCP endpoint requires all of them.
    pub scopes: Vec<String>,
    /// Scopes given to a client that registers without `scope`.
    pub default_scopes: Vec<String>,
    /// Scopes a `tools/call` of each tool needs besides [`scopes`](Self::scopes)
    /// (`--tool-scope`, or the TOML table `[tool_scopes]`; default none, so that `--scopes`
    /// alone decides what is advertised and registered). They are valid scopes too, and
    /// every dynamic registration records them besides what the client asked for (or
    /// `default_scopes`), so that a client can request them when a 403 tells it to step up.
    /// An authorization still grants only what it requests.
    pub tool_scopes: std::collections::BTreeMap<String, Vec<String>>,
    /// Gateway mode (`--upstream`): `/mcp` proxies this MCP server instead of serving the demo
    /// tools.
    pub upstream: Option<crate::UpstreamSettings>,
    /// Sign-in through an OpenID Provider (`--oidc-issuer` and the settings with it).
    pub oidc: Option<OidcSettings>,
    /// In gateway mode, forward the user's provider access token (`--forward-upstream-token`).
    pub forward_upstream_token: bool,
    /// Sign-in users.
    pub users: Vec<UserCredentials>,
    /// Pre-registered clients.
    pub clients: Vec<OAuthClientInformationFull>,
    /// Trusted enterprise IdPs (`--trusted-idp`): the SEP-990 jwt-bearer grant.
    pub trusted_idps: Vec<TrustedIdp>,
    /// Resource-server-only mode (`--authorization-server`): when any issuer is named, no
    /// authorization server runs here.
    pub authorization_servers: crate::resource_server::ExternalAuthorizationServers,
    /// Other resources this authorization server issues tokens for (`--additional-resource`),
    /// canonical form not required.
    pub additional_resources: Vec<String>,
    /// Access-token lifetime in seconds.
    pub access_token_ttl: u64,
    /// How long confirmed access tokens are served from memory, in seconds (0: never).
    pub access_token_cache_ttl: u64,
    /// Opaque or JWT access tokens, and the signing keys of JWTs.
    pub access_tokens: AccessTokenSettings,
    /// Seconds after a rotation during which the rotated refresh token still gets a pair.
    pub refresh_reuse_interval: u64,
    /// Days a grant lives at most, however often it is refreshed.
    pub grant_lifetime_days: u64,
    /// Client ID Metadata Documents (on by default).
    pub client_metadata: crate::cimd::ClientMetadataConfig,
    /// Connection, timeout, rate and attempt bounds (`[limits]`; `--max-connections`).
    pub limits: crate::limits::Limits,
    /// Proxies whose forwarding headers name the client address (`--trusted-proxy`).
    pub trusted_proxies: Vec<mcp_auth_cimd::IpRange>,
    /// Where Prometheus metrics are served (`--metrics-bind`); `None`: no metrics.
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// The log line format (`--log-format`).
    pub log_format: crate::LogFormat,
    /// Only run this administration command (`user`, `client`, `grant`), do not serve.
    pub command: Option<AdminCommand>,
    /// Only validate and print the settings (`--check-config`), do not serve.
    pub check_config: bool,
    /// Only hash a password read from stdin and print it (`--hash-password`), do not serve.
    pub hash_password: bool,
}

impl Config {
    /// Every scope a client may request: [`scopes`](Self::scopes), then the per-tool scopes.
    pub fn valid_scopes(&self) -> Vec<String> {
        let mut valid = self.scopes.clone();
        for scope in self.tool_scopes.values().flatten() {
            if !valid.contains(scope) {
                valid.push(scope.clone());
            }
        }
        valid
    }

    /// Parses a command line (the first item is the program name), reading `MCP_AUTH_*`
    /// variables and the `--config` file for what it leaves unset.
    pub fn from_args<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Args::command().try_get_matches_from(args)?;
        let mut args = Args::from_arg_matches(&matches)?;
        // A repeatable setting from its environment variable arrives as one value: split it.
        let from_env = |id: &str| matches.value_source(id) == Some(ValueSource::EnvVariable);
        if from_env("users") {
            args.users = split_list(&args.users);
        }
        if from_env("trusted_idps") {
            args.trusted_idps = split_list(&args.trusted_idps);
        }
        if from_env("authorization_servers") {
            args.authorization_servers = split_list(&args.authorization_servers);
        }
        if from_env("additional_resources") {
            args.additional_resources = split_list(&args.additional_resources);
        }
        if from_env("oidc_allow_domains") {
            args.oidc_allow_domains = split_list(&args.oidc_allow_domains);
        }
        if from_env("tool_scopes") {
            args.tool_scopes = split_list(&args.tool_scopes);
        }
        // Header values may hold commas, so the variable takes one header per line.
        if from_env("upstream_headers") {
            args.upstream_headers = args
                .upstream_headers
                .iter()
                .flat_map(|value| value.lines())
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if from_env("trusted_proxies") {
            args.trusted_proxies = split_list(&args.trusted_proxies);
        }
        for (id, list) in [
            ("cimd_allow_addresses", &mut args.cimd_allow_addresses),
            ("cimd_allow_hosts", &mut args.cimd_allow_hosts),
            ("cimd_deny_hosts", &mut args.cimd_deny_hosts),
        ] {
            if from_env(id) {
                *list = split_list(list);
            }
        }
        let split_paths = |paths: &[PathBuf]| -> Vec<PathBuf> {
            paths
                .iter()
                .flat_map(|path| split_list(&[path.to_string_lossy().into_owned()]))
                .map(PathBuf::from)
                .collect()
        };
        if from_env("clients") {
            args.clients = split_paths(&args.clients);
        }
        if from_env("upstream_root_certs") {
            args.upstream_root_certs = split_paths(&args.upstream_root_certs);
        }
        if from_env("oidc_root_certs") {
            args.oidc_root_certs = split_paths(&args.oidc_root_certs);
        }
        if from_env("cimd_root_certs") {
            args.cimd_root_certs = split_paths(&args.cimd_root_certs);
        }
        if from_env("authorization_server_root_certs") {
            args.authorization_server_root_certs =
                split_paths(&args.authorization_server_root_certs);
        }
        args.no_client_metadata_documents_given = matches!(
            matches.value_source("no_client_metadata_documents"),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        let (file, file_dir) = match &args.config {
            Some(path) => (read_file(path)?, path.parent().map(Path::to_path_buf)),
            None => (FileSettings::default(), None),
        };
        Self::resolve(args, file, file_dir.as_deref())
    }

    fn resolve(
        args: Args,
        mut file: FileSettings,
        file_dir: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let client_metadata = client_metadata(&args, &file, file_dir)?;
        let authorization_servers = authorization_servers(&args, &file, file_dir)?;
        let oidc = oidc::oidc(&args, &file, file_dir)?;
        let access_tokens = access_tokens::access_tokens(&args, &file, file_dir, oidc.is_some())?;
        let upstream = upstream(&args, &file, file_dir)?;
        let tool_scopes = tool_scopes(&args, &mut file)?;
        let bind = args
            .bind
            .or(file.bind)
            .unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let issuer = args.issuer.or(file.issuer);
        if let Some(issuer) = &issuer {
            validate_issuer_url(issuer).map_err(|err| invalid("--issuer", err.to_string()))?;
        }
        let store = StoreUrl::parse(
            args.store
                .or(file.store)
                .as_deref()
                .unwrap_or(DEFAULT_STORE),
        )?;
        let scopes = match args.scopes {
            Some(joined) => split_scopes(&joined),
            None => file
                .scopes
                .map_or_else(|| split_scopes(DEFAULT_SCOPES), Scopes::into_list),
        };
        if scopes.is_empty() {
            return Err(invalid("--scopes", "at least one scope is required"));
        }
        let default_scopes = match args.default_scopes {
            Some(joined) => split_scopes(&joined),
            None => file
                .default_scopes
                .map_or_else(|| scopes.clone(), Scopes::into_list),
        };
        if let Some(scope) = default_scopes.iter().find(|s| !scopes.contains(s)) {
            return Err(invalid(
                "--default-scopes",
                format!("{scope:?} is not one of --scopes"),
            ));
        }
        let users = pick(args.users, file.users)
            .iter()
            .map(|value| UserCredentials::parse(value))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, user) in users.iter().enumerate() {
            if users[..i].iter().any(|other| other.name == user.name) {
                return Err(invalid(
                    "--user",
                    format!("user {:?} is given twice", user.name),
                ));
            }
        }
        // Client files named in the config file are relative to it; the others to the
        // working directory.
        let client_paths = pick_paths(args.clients, file.clients, file_dir);
        let clients = client_paths
            .iter()
            .map(|path| read_client(path))
            .collect::<Result<Vec<_>, _>>()?;
        let trusted_idps = pick(args.trusted_idps, file.trusted_idps)
            .iter()
            .map(|value| TrustedIdp::parse(value))
            .collect::<Result<Vec<_>, _>>()?;
        let additional_resources = pick(args.additional_resources, file.additional_resources);
        for resource in &additional_resources {
            if !mcp_auth_types::is_resource_indicator(resource) {
                return Err(invalid(
                    "--additional-resource",
                    format!("{resource:?} is not an absolute http(s) URL without a fragment"),
                ));
            }
        }
        if !authorization_servers.issuers.is_empty() {
            // A resource server only signs nobody in and issues nothing: settings for the
            // authorization server would be silently ignored, so they are refused.
            for (setting, given) in [
                ("--user", !users.is_empty()),
                ("--client", !clients.is_empty()),
                ("--trusted-idp", !trusted_idps.is_empty()),
                ("--oidc-issuer", oidc.is_some()),
                ("--additional-resource", !additional_resources.is_empty()),
                (
                    "--access-token-format",
                    access_tokens.format != AccessTokenFormat::Opaque,
                ),
            ] {
                if given {
                    return Err(invalid(
                        setting,
                        "has no effect with --authorization-server (a resource server only)",
                    ));
                }
            }
        }
        let access_token_ttl = args
            .access_token_ttl
            .or(file.access_token_ttl)
            .unwrap_or(DEFAULT_ACCESS_TOKEN_TTL);
        let access_token_cache_ttl = args
            .access_token_cache_ttl
            .or(file.access_token_cache_ttl)
            .unwrap_or_else(|| store.default_access_token_cache_ttl());
        if access_token_cache_ttl > mcp_auth_core::MAX_ACCESS_TOKEN_CACHE_TTL {
            return Err(invalid(
                "--access-token-cache-ttl",
                format!(
                    "at most {} seconds",
                    mcp_auth_core::MAX_ACCESS_TOKEN_CACHE_TTL
                ),
            ));
        }
        let refresh_reuse_interval = args
            .refresh_reuse_interval
            .or(file.refresh_reuse_interval)
            .unwrap_or(0);
        if refresh_reuse_interval > mcp_auth_core::MAX_REFRESH_REUSE_INTERVAL {
            return Err(invalid(
                "--refresh-reuse-interval",
                format!(
                    "at most {} seconds",
                    mcp_auth_core::MAX_REFRESH_REUSE_INTERVAL
                ),
            ));
        }
        let grant_lifetime_days = args
            .grant_lifetime_days
            .or(file.grant_lifetime_days)
            .unwrap_or(DEFAULT_GRANT_LIFETIME_DAYS);
        if !(1..=400).contains(&grant_lifetime_days) {
            return Err(invalid("--grant-lifetime-days", "between 1 and 400 days"));
        }
        let mut limits = file.limits.unwrap_or_default();
        if let Some(max) = args.max_connections.or(file.max_connections) {
            limits.max_connections = max;
        }
        limits
            .validate()
            .map_err(|reason| invalid("[limits]", reason))?;
        let forward_upstream_token =
            args.forward_upstream_token || file.forward_upstream_token.unwrap_or(false);
        if forward_upstream_token
            && (upstream.is_none() || !oidc.as_ref().is_some_and(|oidc| oidc.keep_tokens))
        {
            return Err(invalid(
                "--forward-upstream-token",
                "needs --upstream and --oidc-keep-tokens",
            ));
        }
        if oidc.as_ref().is_some_and(|oidc| oidc.keep_tokens)
            && access_tokens.secret_key_file.is_none()
        {
            // The provider's tokens are stored sealed, or not at all.
            return Err(invalid(
                "--oidc-keep-tokens",
                "needs --secret-key-file: the provider's tokens are stored sealed with it",
            ));
        }
        if let Some(upstream) = &upstream
            && upstream.timeout > limits.request_timeout
        {
            // The request timeout bounds the time to every response's headers, /mcp's too.
            return Err(invalid(
                "--upstream-timeout",
                format!(
                    "at most [limits] request_timeout ({} s), which bounds every response",
                    limits.request_timeout
                ),
            ));
        }
        let trusted_proxies = pick(args.trusted_proxies, file.trusted_proxies)
            .iter()
            .map(|range| {
                range
                    .parse::<mcp_auth_cimd::IpRange>()
                    .map_err(|err| invalid("--trusted-proxy", err.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            limits,
            trusted_proxies,
            client_metadata,
            metrics_bind: match args.metrics_bind.or(file.metrics_bind) {
                Some(addr) => Some(addr.parse().map_err(|_| {
                    invalid(
                        "--metrics-bind",
                        format!("{addr:?} is not an IP address and port"),
                    )
                })?),
                None => None,
            },
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            command: args.command,
            check_config: args.check_config,
            hash_password: args.hash_password,
            bind,
            issuer,
            store,
            scopes,
            default_scopes,
            tool_scopes,
            upstream,
            oidc,
            forward_upstream_token,
            users,
            clients,
            trusted_idps,
            authorization_servers,
            additional_resources,
            access_token_ttl,
            access_token_cache_ttl,
            access_tokens,
            refresh_reuse_interval,
            grant_lifetime_days,
        })
    }
}

/// Paths from the command line (or environment) if given, relative to the working directory;
/// else the file's, relative to the file.
fn pick_paths(
    args: Vec<PathBuf>,
    file: Option<Vec<PathBuf>>,
    file_dir: Option<&Path>,
) -> Vec<PathBuf> {
    if !args.is_empty() {
        return args;
    }
    file.unwrap_or_default()
        .into_iter()
        .map(|path| match file_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        })
        .collect()
}

/// Command line (or environment) if given, else the file.
fn pick(args: Vec<String>, file: Option<Vec<String>>) -> Vec<String> {
    if args.is_empty() {
        file.unwrap_or_default()
    } else {
        args
    }
}

fn split_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

fn read_client(path: &Path) -> Result<OAuthClientInformationFull, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadClient {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ConfigError::ParseClient {
        path: path.to_owned(),
        source,
    })
}

mod access_tokens;
mod args;
mod commands;
mod oidc;
mod sections;
mod store_url;
#[cfg(test)]
mod tests;
mod values;

pub use access_tokens::{
    AccessTokenFormat, AccessTokenSettings, DEFAULT_SIGNING_KEY_ROTATION_DAYS,
};
use args::{Args, FileSettings};
pub use commands::{AdminCommand, ClientCommand, GrantCommand, UserCommand};
pub use oidc::{DEFAULT_OIDC_SCOPES, OidcSettings};
use sections::{authorization_servers, client_metadata, tool_scopes, upstream};
pub use store_url::StoreUrl;
pub use values::{TrustedIdp, UserCredentials, UserSecret};
