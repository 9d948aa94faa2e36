#![doc = include_str!("../README.md")]

mod admin;
mod error;
mod keys;
mod rate_limit;
mod records;
mod signing_keys;
mod store;
mod tokens;
mod upstream_tokens;

pub use store::{RedisStore, RedisStoreBuilder};

/// Re-export of the Redis client, so that a caller building its own connection manager for
/// [`RedisStore::from_manager`] uses the same version.
pub use redis;
