#![doc = include_str!("../README.md")]
//!
//! **Architecture Invariant:** the gateway decides nothing about OAuth. It trusts the
//! [`Authenticated`](mcp_auth_axum::Authenticated) token the bearer layer left in the request,
//! forwards no credential the client sent, and fails closed: a request without a verified
//! token, or with an identity it cannot write, is never forwarded.

mod failure;
mod headers;
pub mod limits;
mod proxy;

pub use headers::{
    CLIENT_ID_HEADER, IDENTITY_HEADER_PREFIX, SCOPES_HEADER, SUBJECT_HEADER, UpstreamHeader,
    UpstreamHeaderError,
};
pub use proxy::{
    PrincipalCredential, UPSTREAM_TOKEN_HEADER, UpstreamConfigError, UpstreamProxy,
    UpstreamProxyBuilder,
};
