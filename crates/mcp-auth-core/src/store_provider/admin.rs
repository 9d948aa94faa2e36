//! What an administrator does to grants and clients (the server's `grant` and `client`
//! commands): revocations that go through the provider, so that its caches and the audit log
//! see them like any other.

use super::StoreProvider;
use crate::audit;
use crate::error::ProviderError;
use crate::storage::{GrantRecord, Storage};

impl<S: Storage> StoreProvider<S> {
    /// The live grants of `subject` and/or `client_id` (`None`: any).
    pub async fn grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<Vec<GrantRecord>, ProviderError> {
        Ok(self
            .storage
            .list_grants(subject, client_id, self.now())
            .await?)
    }

    /// Revokes the grant `grant_id` (its code and every token); `false` when no live grant has
    /// that id.
    pub async fn revoke_grant_by_id(&self, grant_id: &str) -> Result<bool, ProviderError> {
        let live = self
            .grants(None, None)
            .await?
            .iter()
            .any(|grant| grant.grant_id == grant_id);
        if live {
            self.revoke_grant(grant_id).await?;
            crate::audit_event!(audit::GRANT_REVOKED, grant_id, by = "administrator");
        }
        Ok(live)
    }

    /// Revokes every live grant of `subject` and/or `client_id` (at least one must be given);
    /// returns the grants revoked.
    pub async fn revoke_grants(
        &self,
        subject: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<Vec<GrantRecord>, ProviderError> {
        if subject.is_none() && client_id.is_none() {
            return Ok(Vec::new());
        }
        let grants = self.grants(subject, client_id).await?;
        for grant in &grants {
            self.revoke_grant(&grant.grant_id).await?;
            crate::audit_event!(
                audit::GRANT_REVOKED,
                grant_id = %grant.grant_id,
                client_id = %grant.client_id,
                subject = grant.subject.as_deref().unwrap_or(""),
                by = "administrator",
            );
        }
        Ok(grants)
    }

    /// Deletes the client `client_id` and revokes its grants; returns how many grants it
    /// revoked, or `None` when there was no such client (its grants, if any, are revoked all
    /// the same).
    pub async fn remove_client(&self, client_id: &str) -> Result<Option<usize>, ProviderError> {
        let revoked = self.revoke_grants(None, Some(client_id)).await?.len();
        let removed = self.storage.delete_client(client_id).await?;
        self.clients.remove(client_id);
        if !removed {
            return Ok(None);
        }
        crate::audit_event!(audit::CLIENT_REMOVED, client_id, grants_revoked = revoked);
        Ok(Some(revoked))
    }
}
