#![doc = include_str!("../README.md")]

mod adapter;
mod auth;
mod bearer;
mod drain;
pub mod limits;
mod operation;
mod resource;
mod session;

pub use auth::{McpAuth, McpAuthBuilder};
pub use bearer::{
    Authenticated, DynTokenVerifier, MissingAuthentication, RequireBearer, RequireBearerFuture,
    RequireBearerLayer,
};
pub use operation::{McpScopes, McpScopesLayer};
pub use resource::{McpResource, McpResourceBuilder};
pub use session::{MCP_SESSION_ID, SessionBinding, SessionBindingLayer};

/// Re-exports of the layers below, so that one dependency is enough.
pub use mcp_auth_core as core;
pub use mcp_auth_handlers as handlers;
pub use mcp_auth_types as types;

#[cfg(test)]
mod tests;
