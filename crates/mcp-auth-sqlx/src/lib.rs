#![doc = include_str!("../README.md")]

mod admin;
mod codec;
mod detach;
mod dialect;
mod error;
mod grant;
mod postgres;
mod shared;
mod signing_key;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Re-export of sqlx, so that a caller building its own pool for `from_pool` uses the same
/// version.
pub use sqlx;
