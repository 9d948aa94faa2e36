//! The sign-in hook: how a sign-in page finishes (or refuses) a pending authorization.

use mcp_auth_types::{
    AuthorizationCodeSecret, AuthorizationParams, AuthorizeErrorCode, OAuthClientInformationFull,
    construct_redirect_uri,
};

use super::{StoreProvider, secs};
use crate::error::{AuthorizeError, ProviderError};
use crate::provider::OAuthAuthorizationServerProvider;
use crate::secrets::{SecretHash, random_secret, time_ordered_id};
use crate::storage::{AuthorizationRequestRecord, CodeRecord, Storage, UpstreamTokenRecord};

/// An authorization request waiting for the user, as the sign-in page shows it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PendingAuthorization {
    /// The client asking for access.
    pub client: OAuthClientInformationFull,
    /// The validated request (scopes, redirect URI, resource, state).
    pub params: AuthorizationParams,
    /// When the request expires, seconds since the epoch.
    pub expires_at: i64,
}

impl<S: Storage> StoreProvider<S> {
    /// The pending request named by the sign-in URL's `request_id`, or `None` when it is
    /// unknown, expired or already finished.
    pub async fn pending_authorization(
        &self,
        request_id: &str,
    ) -> Result<Option<PendingAuthorization>, ProviderError> {
        let hash = SecretHash::of(request_id);
        let Some(record) = self
            .storage
            .get_authorization_request(&hash, self.now())
            .await?
        else {
            return Ok(None);
        };
        // Through `get_client`, so that a metadata-document client is resolved (usually from
        // the resolver's cache) rather than looked up in storage, where it never is.
        let Some(client) = self.get_client(&record.client_id).await? else {
            return Ok(None);
        };
        Ok(Some(PendingAuthorization {
            client,
            params: record.params,
            expires_at: record.expires_at,
        }))
    }

    /// Finishes a pending request for the signed-in `subject`: issues a single-use code and
    /// returns the redirect URI carrying `code`, `state` and `iss` (RFC 9207). The request is
    /// consumed atomically, so a double submission yields one code.
    ///
    /// An unknown or expired request is `invalid_request`; there is nowhere safe to redirect it,
    /// so the sign-in page shows the error itself.
    pub async fn complete_authorization(
        &self,
        request_id: &str,
        subject: &str,
    ) -> Result<String, AuthorizeError> {
        self.issue_code(request_id, subject, None).await
    }

    /// [`complete_authorization`](Self::complete_authorization), and with `upstream` (sealed
    /// upstream tokens) their record under the new grant, stored before the code: once the
    /// client holds a code, the grant's record is there for every token the code yields.
    pub(super) async fn issue_code(
        &self,
        request_id: &str,
        subject: &str,
        upstream: Option<String>,
    ) -> Result<String, AuthorizeError> {
        let request = self.take_request(request_id).await?;
        let grant_id = time_ordered_id();
        if let Some(sealed) = upstream {
            let record =
                UpstreamTokenRecord::new(grant_id.clone(), sealed, self.upstream_tokens_end());
            self.storage.put_upstream_tokens(&record).await?;
        }
        let code = random_secret();
        let params = request.params;
        let record = CodeRecord {
            code_hash: SecretHash::of(&code),
            grant_id,
            client_id: request.client_id,
            scopes: params.scopes.clone().unwrap_or_default(),
            expires_at: self.now() + secs(self.config.code_ttl),
            code_challenge: params.code_challenge,
            redirect_uri: params.redirect_uri.clone(),
            redirect_uri_provided_explicitly: params.redirect_uri_provided_explicitly,
            resource: params.resource,
            subject: Some(subject.to_owned()),
        };
        self.storage.insert_code(&record).await?;
        crate::audit_event!(
            crate::audit::CODE_ISSUED,
            client_id = %record.client_id,
            subject,
            grant_id = %record.grant_id,
            scope = %record.scopes.join(" "),
            resource = record.resource.as_deref().unwrap_or(""),
        );
        let code = AuthorizationCodeSecret::new(code);
        Ok(construct_redirect_uri(
            &params.redirect_uri,
            &[
                ("code", Some(code.expose_secret())),
                ("state", params.state.as_deref()),
                ("iss", Some(self.config.issuer.as_str())),
            ],
        ))
    }

    /// Refuses a pending request (the user clicked "deny"): returns the redirect URI carrying
    /// `error=access_denied`, `state` and `iss`.
    pub async fn deny_authorization(&self, request_id: &str) -> Result<String, AuthorizeError> {
        let request = self.take_request(request_id).await?;
        crate::audit_event!(crate::audit::CONSENT_DENIED, client_id = %request.client_id);
        Ok(construct_redirect_uri(
            &request.params.redirect_uri,
            &[
                ("error", Some(AuthorizeErrorCode::AccessDenied.as_str())),
                (
                    "error_description",
                    Some("the resource owner denied the request"),
                ),
                ("state", request.params.state.as_deref()),
                ("iss", Some(self.config.issuer.as_str())),
            ],
        ))
    }

    async fn take_request(
        &self,
        request_id: &str,
    ) -> Result<AuthorizationRequestRecord, AuthorizeError> {
        self.storage
            .take_authorization_request(&SecretHash::of(request_id), self.now())
            .await?
            .ok_or_else(|| {
                AuthorizeError::new(
                    AuthorizeErrorCode::InvalidRequest,
                    "the authorization request is unknown or has expired; start again",
                )
            })
    }
}
