#![doc = include_str!("../README.md")]

mod access_log;
mod admin;
mod app;
mod cimd;
pub mod config;
mod federation;
mod gateway;
pub mod limits;
mod listener;
mod log_format;
mod log_writer;
mod mcp;
mod metrics;
mod resource_server;
mod sign_in;
mod signing;
mod sse_head;
mod store;
mod throttle;
mod upstream_tokens;
mod users;

pub use access_log::{
    ACCESS_LOG_TARGET, AccessLog, AccessLogFuture, AccessLogLayer, Observability,
    ObservabilityLayer, REQUEST_ID, RequestIds, with_observability,
};
pub use admin::{AdminError, run as run_admin};
pub use app::{PURGE_INTERVAL, ServerError, serve};
pub use cimd::ClientMetadataConfig;
pub use config::{Config, ConfigError, StoreUrl, TrustedIdp, UserCredentials, UserSecret};
pub use gateway::{DEFAULT_UPSTREAM_TIMEOUT, MAX_UPSTREAM_TIMEOUT, UpstreamSettings};
pub use log_format::LogFormat;
pub use log_writer::{LineWriter, LogGuard, LogWriter};
pub use mcp::{EchoArgs, Tools};
pub use resource_server::{ExternalAuthorizationServers, IntrospectionClient};
pub use sign_in::{CSRF_COOKIE, OIDC_COOKIE, SECURE_CSRF_COOKIE, SECURE_OIDC_COOKIE};
pub use signing::SigningError;
pub use sse_head::{HoldSseHead, HoldSseHeadLayer};
pub use store::StoreError;
pub use upstream_tokens::{UpstreamTokenError, UpstreamTokenSource};
pub use users::{UsersError, hash_password};
