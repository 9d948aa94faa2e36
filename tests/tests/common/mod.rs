//! Helpers shared by the multi-instance and outage tests: stores on the test servers and the
//! token-endpoint steps of a `StoreProvider`.

#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;

use mcp_auth_core::types::{AuthorizationCodeSecret, OAuthClientInformationFull, OAuthToken};
use mcp_auth_core::types::{RefreshTokenSecret, TokenErrorCode};
use mcp_auth_core::{OAuthAuthorizationServerProvider, Storage, StoreProvider, TokenError};
use mcp_auth_redis::RedisStore;
use mcp_auth_sqlx::PostgresStore;
use mcp_auth_tests::services;

pub(crate) type Provider = StoreProvider<Arc<dyn Storage>>;

/// A migrated store on the PostgreSQL database at `url`, with its own pool: what one server
/// instance of a multi-instance deployment has.
pub(crate) async fn postgres_store(url: &str) -> Arc<dyn Storage> {
    let store = PostgresStore::connect(url)
        .await
        .expect("connect to PostgreSQL");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

/// A store on the test Redis under `prefix`, with its own connection manager.
pub(crate) async fn redis_store(prefix: &str) -> Arc<dyn Storage> {
    let store = RedisStore::builder(services::redis_url())
        .key_prefix(prefix)
        .connect()
        .await
        .expect("connect to Redis");
    Arc::new(store)
}

/// Exchanges a code for tokens, as the token endpoint does.
pub(crate) async fn exchange(
    provider: &Provider,
    client: &OAuthClientInformationFull,
    code: &AuthorizationCodeSecret,
) -> Result<OAuthToken, TokenError> {
    match provider.load_authorization_code(client, code).await? {
        Some(loaded) => provider.exchange_authorization_code(client, loaded).await,
        None => Err(TokenError::code(TokenErrorCode::InvalidGrant)),
    }
}

/// Refreshes, as the token endpoint does.
pub(crate) async fn refresh(
    provider: &Provider,
    client: &OAuthClientInformationFull,
    token: &RefreshTokenSecret,
) -> Result<OAuthToken, TokenError> {
    match provider.load_refresh_token(client, token).await? {
        Some(loaded) => {
            let scopes = loaded.as_ref().scopes.clone();
            provider
                .exchange_refresh_token(client, loaded, scopes)
                .await
        }
        None => Err(TokenError::code(TokenErrorCode::InvalidGrant)),
    }
}
