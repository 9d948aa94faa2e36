#![doc = include_str!("../README.md")]

pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod context;
pub mod form;
pub mod introspect;
pub mod jwks;
pub mod limits;
pub mod metadata;
pub mod register;
pub mod response;
pub mod revoke;
pub mod scope;
pub mod token;

pub use bearer::{BearerAuth, BearerRejection, BearerRejectionKind};
pub use metadata::{
    MetadataHandler, ProtectedResourceMetadataHandler, authorization_server_metadata_paths,
    build_metadata, build_protected_resource_metadata, protected_resource_metadata_paths,
};
pub use register::RegistrationHandler;
pub use scope::{McpOperationScopes, OperationBody, ScopeImplication};

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod totality;
