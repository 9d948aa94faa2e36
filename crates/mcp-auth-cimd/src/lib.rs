#![doc = include_str!("../README.md")]

mod address;
mod client_id;
mod document;
mod fetch;
mod resolver;

pub use address::{IpRange, IpRangeError, is_special_use};
pub use client_id::parse_client_id_url;
pub use document::DocumentError;
pub use fetch::{FetchError, NameResolver, SystemResolver};
pub use resolver::{CimdConfigError, CimdResolver, CimdResolverBuilder, TrustPolicy};
