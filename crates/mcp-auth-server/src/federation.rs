//! Assembly of `--oidc-issuer`: the relying party, the key that seals its sign-in cookies,
//! and whether the page still offers the password form.

use mcp_auth_jwt::SealingKey;
use mcp_auth_oidc::OidcRelyingParty;
use mcp_auth_types::IssuerUrl;

use crate::app::ServerError;
use crate::config::Config;
use crate::sign_in::Federation;
use crate::store::DynStorage;
use crate::users::Users;

/// The HKDF purpose of the sign-in cookies' key, derived from `--secret-key-file`.
const COOKIE_KEY_PURPOSE: &str = "sign-in cookies";

/// Sign-in through the configured OpenID Provider, or `None` without `--oidc-issuer`.
///
/// The cookies that carry a sign-in across the provider's redirect are sealed with a key
/// derived from `--secret-key-file`; without one, with a random key of this process (a
/// sign-in started on one instance then finishes only on that one, and none survives a
/// restart). The password form stays on the page when there are local users: `--user`s, or
/// users in the store at start-up.
pub(crate) async fn federation(
    config: &Config,
    issuer: &IssuerUrl,
    storage: &DynStorage,
    users: &Users,
) -> Result<Option<Federation>, ServerError> {
    let Some(settings) = &config.oidc else {
        return Ok(None);
    };
    let callback = issuer.endpoint("/sign-in/oidc/callback");
    let relying_party = OidcRelyingParty::builder(
        &settings.issuer,
        &settings.client_id,
        settings.client_secret.clone(),
        callback.as_str(),
    )
    .scopes(settings.scopes.iter().cloned())
    .root_certificates_pem(&settings.root_certificates_pem)
    .build()
    .map_err(|err| ServerError::Oidc(err.to_string()))?;
    let cookies = match &config.access_tokens.secret_key_file {
        Some(path) => {
            let secret = tokio::fs::read(path).await.map_err(|err| {
                ServerError::Oidc(format!("--secret-key-file {}: {err}", path.display()))
            })?;
            SealingKey::for_purpose(&secret, COOKIE_KEY_PURPOSE).map_err(ServerError::Oidc)?
        }
        None => {
            tracing::warn!(
                "OpenID Connect sign-ins are sealed with a key of this process: set \
                 --secret-key-file when several instances serve one issuer"
            );
            SealingKey::random().map_err(ServerError::Oidc)?
        }
    };
    let stored_users = mcp_auth_core::AdminStore::list_users(storage.as_ref())
        .await
        .map(|list| !list.is_empty())
        .unwrap_or(true);
    let password_sign_in = !users.is_empty() || stored_users;
    // Discovered now, so that a wrong issuer shows in the log at start-up; a failure is
    // retried by the first sign-ins (at most once a minute), so the server starts anyway.
    let early = relying_party.clone();
    tokio::spawn(async move {
        if early.discover().await.is_ok() {
            tracing::info!(issuer = early.issuer(), "OpenID Provider discovered");
        }
    });
    tracing::info!(
        issuer = settings.issuer,
        callback = callback.as_str(),
        password_sign_in,
        "users sign in through the OpenID Provider"
    );
    Ok(Some(Federation::new(
        relying_party,
        settings.clone(),
        cookies,
        password_sign_in,
    )))
}
