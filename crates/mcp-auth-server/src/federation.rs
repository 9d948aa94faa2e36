//! Assembly of `--oidc-issuer`: the relying party, the key that seals its sign-in cookies,
//! and whether the page still offers the password form.

use std::sync::Arc;

use mcp_auth_jwt::SealingKey;
use mcp_auth_oidc::OidcRelyingParty;
use mcp_auth_types::IssuerUrl;

use crate::app::ServerError;
use crate::config::Config;
use crate::sign_in::{Federation, Provider};
use crate::store::DynStorage;
use crate::upstream_tokens::{TOKENS_KEY_PURPOSE, UpstreamTokenSource};
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
    provider: &Arc<Provider>,
) -> Result<(Option<Federation>, Option<Arc<UpstreamTokenSource>>), ServerError> {
    let Some(settings) = &config.oidc else {
        return Ok((None, None));
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
    let secret = match &config.access_tokens.secret_key_file {
        Some(path) => Some(tokio::fs::read(path).await.map_err(|err| {
            ServerError::Oidc(format!("--secret-key-file {}: {err}", path.display()))
        })?),
        None => None,
    };
    let cookies = match &secret {
        Some(secret) => {
            SealingKey::for_purpose(secret, COOKIE_KEY_PURPOSE).map_err(ServerError::Oidc)?
        }
        None => {
            tracing::warn!(
                "OpenID Connect sign-ins are sealed with a key of this process: set \
                 --secret-key-file when several instances serve one issuer"
            );
            SealingKey::random().map_err(ServerError::Oidc)?
        }
    };
    // The configuration refuses --oidc-keep-tokens without a secret key.
    let tokens = match (&secret, settings.keep_tokens) {
        (Some(secret), true) => Some(Arc::new(UpstreamTokenSource::new(
            Arc::clone(provider),
            relying_party.clone(),
            SealingKey::for_purpose(secret, TOKENS_KEY_PURPOSE).map_err(ServerError::Oidc)?,
        ))),
        (None, true) => {
            return Err(ServerError::Oidc(
                "--oidc-keep-tokens needs --secret-key-file".to_owned(),
            ));
        }
        (_, false) => None,
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
    let federation = Federation::new(
        relying_party,
        settings.clone(),
        cookies,
        password_sign_in,
        tokens.clone(),
        Arc::clone(storage),
    );
    Ok((Some(federation), tokens))
}
