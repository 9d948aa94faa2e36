#![doc = include_str!("../README.md")]

mod cache;
mod client_id;
mod document;
pub mod limits;
mod resolver;

pub use client_id::parse_client_id_url;
pub use document::DocumentError;
/// The fetcher lives in `mcp-auth-fetch`, shared with the `jwks_uri` fetches of `mcp-auth-jwt`.
pub use mcp_auth_fetch::{
    FetchError, IpRange, IpRangeError, NameResolver, StaticResolver, SystemResolver, is_special_use,
};
pub use resolver::{CimdConfigError, CimdResolver, CimdResolverBuilder, TrustPolicy};
