//! JWT access tokens (`--access-token-format jwt`): the signer over the store's signing keys,
//! and the task that keeps them rotated.

use std::sync::Arc;
use std::time::Duration;

use mcp_auth_core::{ErrorChain, SigningKeyStore};
use mcp_auth_jwt::{JwtAccessTokenSigner, REFRESH_INTERVAL, SealingKey, SigningKeyError};
use tokio_util::sync::CancellationToken;

use crate::config::{AccessTokenFormat, Config};
use crate::store::DynStorage;

/// Why JWT access tokens could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The secret key file could not be read.
    #[error("--secret-key-file {path}: {reason}")]
    SecretKey {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The signing keys could not be loaded or created.
    #[error("access-token signing keys: {0}")]
    Keys(#[from] SigningKeyError),
}

/// The signer of this server's JWT access tokens, its keys loaded (the first one created) from
/// `storage`; `None` for opaque tokens. `audience` is the `aud` of tokens requested without a
/// resource: this server's own.
pub(crate) async fn access_token_signer(
    config: &Config,
    storage: &DynStorage,
    audience: &str,
) -> Result<Option<Arc<JwtAccessTokenSigner>>, SigningError> {
    let settings = &config.access_tokens;
    if settings.format != AccessTokenFormat::Jwt {
        return Ok(None);
    }
    let store: Arc<dyn SigningKeyStore> = Arc::clone(storage) as Arc<dyn SigningKeyStore>;
    let mut builder = JwtAccessTokenSigner::builder(store, audience)
        .algorithm(settings.signing_alg)
        .rotation_period(Duration::from_secs(settings.rotation_days * 24 * 3600))
        .token_lifetime(Duration::from_secs(config.access_token_ttl));
    match &settings.secret_key_file {
        Some(path) => {
            let failure = |reason: String| SigningError::SecretKey {
                path: path.display().to_string(),
                reason,
            };
            let secret = tokio::fs::read(path)
                .await
                .map_err(|err| failure(err.to_string()))?;
            builder = builder.sealing_key(SealingKey::from_secret(&secret).map_err(failure)?);
        }
        None => tracing::warn!(
            "JWT signing keys are stored unsealed: set --secret-key-file to seal them in the store"
        ),
    }
    let signer = builder.load().await?;
    if let Some((generation, kid)) = signer.signing_kid() {
        tracing::info!(
            kid,
            generation,
            alg = settings.signing_alg.as_str(),
            "signing JWT access tokens"
        );
    }
    Ok(Some(signer))
}

/// Re-reads, rotates and retires the signing keys every [`REFRESH_INTERVAL`] until `cancel`.
/// A failed refresh keeps the keys last read (the next key is published an hour before it
/// signs, far longer than a few failed refreshes).
pub(crate) async fn refresh_periodically(
    signer: Option<Arc<JwtAccessTokenSigner>>,
    cancel: CancellationToken,
) {
    let Some(signer) = signer else { return };
    let mut interval = tokio::time::interval(REFRESH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate, and the keys were just loaded.
    interval.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = interval.tick() => {}
        }
        if let Err(err) = signer.refresh().await {
            tracing::warn!(error = %ErrorChain(&err), "refreshing the access-token signing keys failed");
        }
    }
}
