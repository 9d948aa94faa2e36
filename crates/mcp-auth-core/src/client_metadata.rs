//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): the contract of
//! the collaborator that turns an https URL `client_id` into client information.
//!
//! Core defines only the contract so that it stays free of network I/O; the `mcp-auth-cimd`
//! crate implements it with a hardened https fetcher, document validation and a cache.
//! [`StoreProvider`](crate::StoreProvider) consults it through its builder for client ids that
//! are https URLs, and only for those: ids this server issues never start with `https://`
//! (see [`secrets::random_id`](crate::secrets::random_id)), so the two namespaces cannot collide.

use async_trait::async_trait;
use mcp_auth_types::OAuthClientInformationFull;

/// Why a Client ID Metadata Document was not accepted. The variants say what a log reader needs
/// to know; none of them is shown to the client beyond "unknown client".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientMetadataError {
    /// The `client_id` is not an acceptable metadata-document URL (not https, no path, a
    /// fragment, userinfo or dot segments).
    #[error("client_id is not a valid metadata document URL: {0}")]
    InvalidClientId(&'static str),
    /// The trust policy (allow and deny lists of hosts) refuses the client_id's host.
    #[error("the trust policy refuses client_id host {0}")]
    Untrusted(String),
    /// The document could not be fetched: a refused address, a timeout, a non-200 answer, a
    /// wrong content type or an oversize body.
    #[error("the client metadata document could not be fetched")]
    Fetch(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The document was fetched but breaks a rule of the specification.
    #[error("the client metadata document is invalid: {0}")]
    InvalidDocument(String),
    /// The resolver could not try now (its outbound fetches are all busy): the request should
    /// be retried, so it answers `temporarily_unavailable` rather than "unknown client".
    #[error("the client metadata document cannot be fetched right now")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Resolves a `client_id` that is an https URL to the client it names, by fetching and
/// validating its Client ID Metadata Document.
///
/// Contract: the returned client has `client_id` equal to the argument exactly, non-empty
/// `redirect_uris`, no `client_secret` and no shared-secret authentication method. The caller
/// never caches a refusal; an implementation should remember a failed fetch or an invalid
/// document for a short, bounded time (a negative cache), so that a request naming a failing
/// client id does not become one outbound fetch each, and a fixed document is picked up once
/// that time has passed.
#[doc(alias = "CIMD")]
#[async_trait]
pub trait ClientMetadataResolver: Send + Sync {
    /// Fetches (or serves from cache) and validates the document at `client_id`.
    async fn resolve(
        &self,
        client_id: &str,
    ) -> Result<OAuthClientInformationFull, ClientMetadataError>;
}

/// Whether `client_id` is in the metadata-document namespace (an https URL), ASCII
/// case-insensitively on the scheme.
pub fn is_metadata_document_client_id(client_id: &str) -> bool {
    client_id
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}
