#![doc = include_str!("../README.md")]

mod app;
mod cimd;
pub mod config;
pub mod limits;
mod listener;
mod mcp;
mod sign_in;
mod store;
mod throttle;
mod users;

pub use app::{PURGE_INTERVAL, ServerError, serve};
pub use cimd::ClientMetadataConfig;
pub use config::{Config, ConfigError, StoreUrl, TrustedIdp, UserCredentials};
pub use mcp::{EchoArgs, Tools};
pub use sign_in::{CSRF_COOKIE, SECURE_CSRF_COOKIE};
pub use store::StoreError;
pub use users::UsersError;
