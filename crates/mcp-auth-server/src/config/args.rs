//! The command line and the TOML file, as parsed: every setting optional until
//! [`Config::resolve`](super::Config) applies precedence and defaults.

use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

use super::Scopes;

/// The command line. Every flag has an `MCP_AUTH_*` variable; repeatable flags take a
/// comma-separated list from their variable.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-auth-server",
    version,
    about = "An OAuth 2.1 authorization server with a protected MCP endpoint"
)]
pub(super) struct Args {
    /// Listen address [default: 127.0.0.1:8080]
    #[arg(long, env = "MCP_AUTH_BIND", value_name = "ADDR")]
    pub(super) bind: Option<String>,
    /// Issuer identifier, used byte for byte in metadata [default: http://<bind>]
    #[arg(long, env = "MCP_AUTH_ISSUER", value_name = "URL")]
    pub(super) issuer: Option<String>,
    /// memory | sqlite://PATH | postgres://... | redis://... [default: sqlite://mcp-auth.db]
    #[arg(
        long,
        env = "MCP_AUTH_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub(super) store: Option<String>,
    /// Valid scopes, space-separated; /mcp requires all of them [default: "mcp:tools"]
    #[arg(long, env = "MCP_AUTH_SCOPES", value_name = "\"A B\"")]
    pub(super) scopes: Option<String>,
    /// Scopes given to a client that registers without `scope` [default: the valid scopes]
    #[arg(long, env = "MCP_AUTH_DEFAULT_SCOPES", value_name = "\"A\"")]
    pub(super) default_scopes: Option<String>,
    /// A sign-in user (repeatable)
    #[arg(
        long = "user",
        env = "MCP_AUTH_USERS",
        value_name = "NAME:PASSWORD",
        hide_env_values = true
    )]
    pub(super) users: Vec<String>,
    /// A pre-registered client: RFC 7591 client information JSON (repeatable)
    #[arg(long = "client", env = "MCP_AUTH_CLIENTS", value_name = "FILE")]
    pub(super) clients: Vec<PathBuf>,
    /// Trust ID-JAGs from an enterprise IdP, whose keys are a JWKS file or https URL; enables
    /// the SEP-990 jwt-bearer grant (repeatable)
    #[arg(
        long = "trusted-idp",
        env = "MCP_AUTH_TRUSTED_IDPS",
        value_name = "ISSUER=JWKS"
    )]
    pub(super) trusted_idps: Vec<String>,
    /// Be a resource server only, for this authorization server's JWT access tokens
    /// (discovered from its metadata); no local /authorize, /token, /register or sign-in
    /// (repeatable)
    #[arg(
        long = "authorization-server",
        env = "MCP_AUTH_AUTHORIZATION_SERVERS",
        value_name = "ISSUER"
    )]
    pub(super) authorization_servers: Vec<String>,
    /// With --authorization-server: verify tokens at its introspection endpoint (RFC 7662) as
    /// this confidential client instead of as JWTs
    #[arg(
        long,
        env = "MCP_AUTH_INTROSPECTION_CLIENT_ID",
        value_name = "ID",
        requires = "introspection_client_secret"
    )]
    pub(super) introspection_client_id: Option<String>,
    /// The secret of --introspection-client-id
    #[arg(
        long,
        env = "MCP_AUTH_INTROSPECTION_CLIENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        requires = "introspection_client_id"
    )]
    pub(super) introspection_client_secret: Option<String>,
    /// Another resource this authorization server issues tokens for, e.g. an MCP server on
    /// another host that introspects them (repeatable)
    #[arg(
        long = "additional-resource",
        env = "MCP_AUTH_ADDITIONAL_RESOURCES",
        value_name = "URL"
    )]
    pub(super) additional_resources: Vec<String>,
    /// Extra PEM root certificates for the --authorization-server hosts (repeatable)
    #[arg(
        long = "authorization-server-root-cert",
        env = "MCP_AUTH_AUTHORIZATION_SERVER_ROOT_CERTS",
        value_name = "FILE"
    )]
    pub(super) authorization_server_root_certs: Vec<PathBuf>,
    /// Access-token lifetime [default: 3600]
    #[arg(long, env = "MCP_AUTH_ACCESS_TOKEN_TTL", value_name = "SECONDS")]
    pub(super) access_token_ttl: Option<u64>,
    /// Serve confirmed access tokens from memory for this long; another instance's revocation
    /// can lag by as much (0 disables) [default: 30 with SQLite, else 0]
    #[arg(long, env = "MCP_AUTH_ACCESS_TOKEN_CACHE_TTL", value_name = "SECONDS")]
    pub(super) access_token_cache_ttl: Option<u64>,
    /// Seconds after a refresh during which the refresh token it replaced still gets a pair
    /// (for clients that refresh from two processes at once; 0 to 300) [default: 0]
    #[arg(long, env = "MCP_AUTH_REFRESH_REUSE_INTERVAL", value_name = "SECONDS")]
    pub(super) refresh_reuse_interval: Option<u64>,
    /// Days after a sign-in when its grant ends, however often it is refreshed (1 to 400)
    /// [default: 90]
    #[arg(long, env = "MCP_AUTH_GRANT_LIFETIME_DAYS", value_name = "DAYS")]
    pub(super) grant_lifetime_days: Option<u64>,
    /// opaque: random strings checked against the store; jwt: RFC 9068 JWTs that resource
    /// servers elsewhere verify with the key set at /.well-known/jwks.json [default: opaque]
    #[arg(
        long,
        env = "MCP_AUTH_ACCESS_TOKEN_FORMAT",
        value_name = "FORMAT",
        value_enum
    )]
    pub(super) access_token_format: Option<super::AccessTokenFormat>,
    /// JWT access-token signing algorithm: ES256, EdDSA or RS256 (also PS256, ES384)
    /// [default: ES256]
    #[arg(long, env = "MCP_AUTH_SIGNING_ALG", value_name = "ALG")]
    pub(super) signing_alg: Option<String>,
    /// Days a JWT signing key signs before the next one takes over (1 to 365) [default: 30]
    #[arg(long, env = "MCP_AUTH_SIGNING_KEY_ROTATION_DAYS", value_name = "DAYS")]
    pub(super) signing_key_rotation_days: Option<u64>,
    /// A file holding the deployment's secret (at least 32 bytes, e.g. the output of
    /// `openssl rand -base64 32`): private signing keys are stored sealed with it
    #[arg(long, env = "MCP_AUTH_SECRET_KEY_FILE", value_name = "FILE")]
    pub(super) secret_key_file: Option<PathBuf>,
    /// Serve /mcp by proxying this streamable-HTTP MCP endpoint (http or https) instead of the
    /// demo tools; the upstream gets the verified identity, never the client's token
    #[arg(long, env = "MCP_AUTH_UPSTREAM", value_name = "URL")]
    pub(super) upstream: Option<String>,
    /// A header added to every upstream request, e.g. the upstream's own API key (repeatable;
    /// the variable takes one per line; values redacted in logs and --check-config)
    #[arg(
        long = "upstream-header",
        env = "MCP_AUTH_UPSTREAM_HEADERS",
        value_name = "\"NAME: VALUE\"",
        hide_env_values = true
    )]
    pub(super) upstream_headers: Vec<String>,
    /// Seconds to the upstream's response headers; an open SSE stream may outlive it (1 to
    /// 3600) [default: 30]
    #[arg(long, env = "MCP_AUTH_UPSTREAM_TIMEOUT", value_name = "SECONDS")]
    pub(super) upstream_timeout: Option<u64>,
    /// Extra PEM root certificates for an https upstream (repeatable)
    #[arg(
        long = "upstream-root-cert",
        env = "MCP_AUTH_UPSTREAM_ROOT_CERTS",
        value_name = "FILE"
    )]
    pub(super) upstream_root_certs: Vec<PathBuf>,
    /// Scopes a `tools/call` of TOOL needs besides --scopes, e.g. "deploy=mcp:admin"
    /// (repeatable; replaces the file's [tool_scopes]) [default: none]
    #[arg(
        long = "tool-scope",
        env = "MCP_AUTH_TOOL_SCOPES",
        value_name = "TOOL=\"A B\""
    )]
    pub(super) tool_scopes: Vec<String>,
    /// Sign users in through this OpenID Provider (discovery at
    /// URL/.well-known/openid-configuration); its callback is <issuer>/sign-in/oidc/callback
    #[arg(long, env = "MCP_AUTH_OIDC_ISSUER", value_name = "URL")]
    pub(super) oidc_issuer: Option<String>,
    /// This server's client id at the OpenID Provider
    #[arg(long, env = "MCP_AUTH_OIDC_CLIENT_ID", value_name = "ID")]
    pub(super) oidc_client_id: Option<String>,
    /// This server's client secret at the OpenID Provider
    #[arg(
        long,
        env = "MCP_AUTH_OIDC_CLIENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub(super) oidc_client_secret: Option<String>,
    /// Scopes asked of the provider [default: "openid email profile"]
    #[arg(long, env = "MCP_AUTH_OIDC_SCOPES", value_name = "\"A B\"")]
    pub(super) oidc_scopes: Option<String>,
    /// The ID-token claim that names the user (e.g. email, preferred_username) [default: sub]
    #[arg(long, env = "MCP_AUTH_OIDC_SUBJECT_CLAIM", value_name = "CLAIM")]
    pub(super) oidc_subject_claim: Option<String>,
    /// Only users whose verified email is in this domain (repeatable)
    #[arg(
        long = "oidc-allow-domain",
        env = "MCP_AUTH_OIDC_ALLOW_DOMAINS",
        value_name = "DOMAIN"
    )]
    pub(super) oidc_allow_domains: Vec<String>,
    /// The provider's name on the sign-in button [default: the issuer's host]
    #[arg(long, env = "MCP_AUTH_OIDC_NAME", value_name = "NAME")]
    pub(super) oidc_name: Option<String>,
    /// Extra PEM root certificates for the OpenID Provider (repeatable)
    #[arg(
        long = "oidc-root-cert",
        env = "MCP_AUTH_OIDC_ROOT_CERTS",
        value_name = "FILE"
    )]
    pub(super) oidc_root_certs: Vec<PathBuf>,
    /// Keep the provider's access and refresh tokens per grant, sealed with --secret-key-file
    /// (required), for tools that act on the user's behalf
    #[arg(long, env = "MCP_AUTH_OIDC_KEEP_TOKENS")]
    pub(super) oidc_keep_tokens: bool,
    /// In gateway mode, send the user's access token at the OpenID Provider to the upstream in
    /// X-MCP-Auth-Upstream-Token (needs --oidc-keep-tokens); never the client's own token
    #[arg(long, env = "MCP_AUTH_FORWARD_UPSTREAM_TOKEN")]
    pub(super) forward_upstream_token: bool,
    /// Do not resolve or advertise Client ID Metadata Documents (https URL client ids)
    #[arg(long, env = "MCP_AUTH_NO_CLIENT_METADATA_DOCUMENTS")]
    pub(super) no_client_metadata_documents: bool,
    /// Let the fetchers of metadata documents and client jwks_uri reach this special-use
    /// address range, e.g. 10.0.0.0/8 (tests and private deployments only; repeatable)
    #[arg(
        long = "cimd-allow-address",
        env = "MCP_AUTH_CIMD_ALLOW_ADDRESSES",
        value_name = "CIDR"
    )]
    pub(super) cimd_allow_addresses: Vec<String>,
    /// Extra PEM root certificates for metadata-document and jwks_uri hosts (repeatable)
    #[arg(
        long = "cimd-root-cert",
        env = "MCP_AUTH_CIMD_ROOT_CERTS",
        value_name = "FILE"
    )]
    pub(super) cimd_root_certs: Vec<PathBuf>,
    /// Fetch metadata documents only from these client_id hosts (`*.example.com` allowed;
    /// repeatable)
    #[arg(
        long = "cimd-allow-host",
        env = "MCP_AUTH_CIMD_ALLOW_HOSTS",
        value_name = "HOST"
    )]
    pub(super) cimd_allow_hosts: Vec<String>,
    /// Never fetch metadata documents from these client_id hosts (repeatable)
    #[arg(
        long = "cimd-deny-host",
        env = "MCP_AUTH_CIMD_DENY_HOSTS",
        value_name = "HOST"
    )]
    pub(super) cimd_deny_hosts: Vec<String>,
    /// Open connections at most [default: 4096]
    #[arg(long, env = "MCP_AUTH_MAX_CONNECTIONS", value_name = "N")]
    pub(super) max_connections: Option<usize>,
    /// A reverse proxy whose X-Forwarded-For / Forwarded headers name the client address
    /// that rate limits count (repeatable)
    #[arg(
        long = "trusted-proxy",
        env = "MCP_AUTH_TRUSTED_PROXIES",
        value_name = "CIDR"
    )]
    pub(super) trusted_proxies: Vec<String>,
    /// TOML file with the same settings (keys: bind, issuer, store, scopes, default_scopes,
    /// users, clients, trusted_idps, authorization_servers, authorization_server_root_certs,
    /// introspection_client_id, introspection_client_secret, additional_resources,
    /// access_token_ttl, access_token_cache_ttl, refresh_reuse_interval, grant_lifetime_days,
    /// access_token_format, signing_alg,
    /// signing_key_rotation_days, secret_key_file, upstream, upstream_headers,
    /// upstream_timeout, upstream_root_certs, oidc_issuer, oidc_client_id,
    /// oidc_client_secret, oidc_scopes, oidc_subject_claim, oidc_allow_domains, oidc_name,
    /// oidc_root_certs, oidc_keep_tokens, forward_upstream_token, no_client_metadata_documents,
    /// cimd_allow_addresses, cimd_root_certs, cimd_allow_hosts, cimd_deny_hosts,
    /// max_connections, trusted_proxies, metrics_bind, log_format; tables tool_scopes and
    /// limits)
    #[arg(long, env = "MCP_AUTH_CONFIG", value_name = "FILE")]
    pub(super) config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics, on a listener of its own (keep it on a
    /// private address) [default: off]
    #[arg(long, env = "MCP_AUTH_METRICS_BIND", value_name = "ADDR")]
    pub(super) metrics_bind: Option<String>,
    /// Log line format: text, or one JSON object per line [default: text]
    #[arg(long, env = "MCP_AUTH_LOG_FORMAT", value_name = "FORMAT", value_enum)]
    pub(super) log_format: Option<crate::LogFormat>,
    /// Validate the settings, print them (secrets redacted) and exit
    #[arg(long)]
    pub(super) check_config: bool,
    /// Read a password from stdin (not echoed on a terminal), print its argon2id PHC string
    /// for `--user NAME:PHC`, and exit
    #[arg(long)]
    pub(super) hash_password: bool,
    /// An administration command instead of serving
    #[command(subcommand)]
    pub(super) command: Option<super::AdminCommand>,
    /// Whether `--no-client-metadata-documents` came from the command line or environment
    /// (a flag is a plain `bool`, so its absence is read from clap's value source).
    #[arg(skip)]
    pub(super) no_client_metadata_documents_given: bool,
}

/// The TOML file: the same settings, named like the environment variables without the prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSettings {
    pub(super) bind: Option<String>,
    pub(super) issuer: Option<String>,
    pub(super) store: Option<String>,
    pub(super) scopes: Option<Scopes>,
    pub(super) default_scopes: Option<Scopes>,
    pub(super) tool_scopes: Option<std::collections::BTreeMap<String, Scopes>>,
    pub(super) users: Option<Vec<String>>,
    pub(super) clients: Option<Vec<PathBuf>>,
    pub(super) trusted_idps: Option<Vec<String>>,
    pub(super) authorization_servers: Option<Vec<String>>,
    pub(super) authorization_server_root_certs: Option<Vec<PathBuf>>,
    pub(super) introspection_client_id: Option<String>,
    pub(super) introspection_client_secret: Option<String>,
    pub(super) additional_resources: Option<Vec<String>>,
    pub(super) access_token_ttl: Option<u64>,
    pub(super) access_token_cache_ttl: Option<u64>,
    pub(super) refresh_reuse_interval: Option<u64>,
    pub(super) grant_lifetime_days: Option<u64>,
    pub(super) access_token_format: Option<super::AccessTokenFormat>,
    pub(super) signing_alg: Option<String>,
    pub(super) signing_key_rotation_days: Option<u64>,
    pub(super) secret_key_file: Option<PathBuf>,
    pub(super) upstream: Option<String>,
    pub(super) upstream_headers: Option<Vec<String>>,
    pub(super) upstream_timeout: Option<u64>,
    pub(super) upstream_root_certs: Option<Vec<PathBuf>>,
    pub(super) oidc_issuer: Option<String>,
    pub(super) oidc_client_id: Option<String>,
    pub(super) oidc_client_secret: Option<String>,
    pub(super) oidc_scopes: Option<String>,
    pub(super) oidc_subject_claim: Option<String>,
    pub(super) oidc_allow_domains: Option<Vec<String>>,
    pub(super) oidc_name: Option<String>,
    pub(super) oidc_root_certs: Option<Vec<PathBuf>>,
    pub(super) oidc_keep_tokens: Option<bool>,
    pub(super) forward_upstream_token: Option<bool>,
    pub(super) no_client_metadata_documents: Option<bool>,
    pub(super) cimd_allow_addresses: Option<Vec<String>>,
    pub(super) cimd_root_certs: Option<Vec<PathBuf>>,
    pub(super) cimd_allow_hosts: Option<Vec<String>>,
    pub(super) cimd_deny_hosts: Option<Vec<String>>,
    pub(super) max_connections: Option<usize>,
    pub(super) trusted_proxies: Option<Vec<String>>,
    pub(super) metrics_bind: Option<String>,
    pub(super) log_format: Option<crate::LogFormat>,
    pub(super) limits: Option<crate::limits::Limits>,
}
