//! [`JwtAccessTokenSigner`]: RFC 9068 access tokens signed with keys kept in the deployment's
//! store, rotated on a schedule and published as a JWK Set.

mod key;
mod rotation;
mod sealing;
#[cfg(test)]
mod tests;
mod trust;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth_core::{
    AccessTokenClaims, AccessTokenSigner, Clock, ProviderError, SigningKeyRecord, SigningKeyStore,
    StorageError, SystemClock,
};
use serde::Serialize;

use self::key::PrivateKey;
use self::rotation::Schedule;
pub use self::sealing::{MIN_SECRET_LEN, SealingKey, UnsealError};
use self::trust::{Distrust, TrustedKey};
use crate::{ACCESS_TOKEN_TYP, SigningAlgorithm};

/// Default [`rotation_period`](JwtAccessTokenSignerBuilder::rotation_period): 30 days.
pub const DEFAULT_ROTATION_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default [`publish_ahead`](JwtAccessTokenSignerBuilder::publish_ahead): one hour, far more
/// than resource servers cache a key set (the key set is served with `max-age=300`).
pub const DEFAULT_PUBLISH_AHEAD: Duration = Duration::from_secs(3600);
/// How often a deployment should call [`JwtAccessTokenSigner::refresh`]: well inside
/// [`DEFAULT_PUBLISH_AHEAD`], so every instance sees a new key long before it signs.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Why the signing keys could not be loaded or rotated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningKeyError {
    /// The store failed.
    #[error("signing-key storage failed")]
    Storage(#[from] StorageError),
    /// A stored private key cannot be used by this instance.
    #[error("signing key {kid} cannot be read: {reason}")]
    Unreadable {
        /// The key.
        kid: String,
        /// Why.
        reason: String,
    },
    /// The configuration is invalid, or the crypto backend failed.
    #[error("{0}")]
    Config(String),
}

/// Signs RFC 9068 access tokens for a [`StoreProvider`](mcp_auth_core::StoreProvider)
/// (`StoreProviderBuilder::access_token_signer`), with keys it keeps in the deployment's store.
///
/// - On [`load`](JwtAccessTokenSignerBuilder::load) it reads the keys, creating the first if
///   there is none. Instances sharing the store sign with the same keys: rotations are
///   inserts of a numbered generation, which exactly one instance wins.
/// - [`refresh`](Self::refresh) (every [`REFRESH_INTERVAL`]) re-reads the keys, stores the
///   next generation when it is due — `publish_ahead` before it starts signing, so resource
///   servers see it in the key set before they see a token it signed — and deletes keys whose
///   last token has expired. Which key signs is decided at each signature from the keys'
///   start times, so instances switch together whenever they last refreshed.
/// - With a [`SealingKey`], private keys are stored sealed (AES-256-GCM, the key id as
///   additional data); without one, as plain PKCS#8 (protect the store).
/// - A token carries `typ: at+jwt` and `kid`, and claims `iss`, `sub`, `aud`, `client_id`,
///   `scope`, `iat`, `exp`, `jti` (RFC 9068 §2.2).
pub struct JwtAccessTokenSigner {
    store: Arc<dyn SigningKeyStore>,
    schedule: Schedule,
    sealing: Option<SealingKey>,
    default_audience: String,
    clock: Arc<dyn Clock>,
    ring: RwLock<Arc<KeyRing>>,
    /// One refresh at a time in this process (instances race safely through the store).
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for JwtAccessTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAccessTokenSigner")
            .field("schedule", &self.schedule)
            .field("sealed", &self.sealing.is_some())
            .field("default_audience", &self.default_audience)
            .finish_non_exhaustive()
    }
}

/// The keys as last read: what signs, and what is published.
#[derive(Debug, Default)]
struct KeyRing {
    keys: Vec<RingKey>,
    key_set: Arc<str>,
}

impl KeyRing {
    /// The ring of `keys`: each published as derived from its private key (never as stored).
    fn of(keys: Vec<TrustedKey>) -> Self {
        let mut published = Vec::with_capacity(keys.len());
        let mut ring = Vec::with_capacity(keys.len());
        for key in keys {
            let TrustedKey {
                record,
                algorithm,
                private,
            } = key;
            published.push(serde_json::Value::Object(
                private.public_jwk(algorithm, &record.kid),
            ));
            let header = serde_json::json!({
                "alg": algorithm.as_str(), "typ": ACCESS_TOKEN_TYP, "kid": record.kid,
            });
            ring.push(RingKey {
                generation: record.generation,
                kid: record.kid,
                activates_at: record.activates_at,
                header: URL_SAFE_NO_PAD.encode(header.to_string()),
                private,
            });
        }
        Self {
            keys: ring,
            key_set: Arc::from(serde_json::json!({ "keys": published }).to_string()),
        }
    }

    /// The key that signs at `now`: the newest one whose time has come.
    fn signing(&self, now: i64) -> Option<&RingKey> {
        self.keys.iter().rev().find(|key| key.activates_at <= now)
    }
}

#[derive(Debug)]
struct RingKey {
    generation: i64,
    kid: String,
    activates_at: i64,
    /// The encoded protected header, `{"alg","typ","kid"}`: the same for every token.
    header: String,
    private: PrivateKey,
}

/// Builder for [`JwtAccessTokenSigner`].
#[must_use]
pub struct JwtAccessTokenSignerBuilder {
    store: Arc<dyn SigningKeyStore>,
    default_audience: String,
    algorithm: SigningAlgorithm,
    rotation_period: Duration,
    publish_ahead: Duration,
    token_lifetime: Duration,
    sealing: Option<SealingKey>,
    clock: Arc<dyn Clock>,
}

impl JwtAccessTokenSigner {
    /// Starts building a signer over `store` (the deployment's store, so that instances share
    /// keys). `default_audience` is the `aud` of tokens whose request named no resource: this
    /// server's own resource.
    pub fn builder(
        store: Arc<dyn SigningKeyStore>,
        default_audience: impl Into<String>,
    ) -> JwtAccessTokenSignerBuilder {
        JwtAccessTokenSignerBuilder {
            store,
            default_audience: default_audience.into(),
            algorithm: SigningAlgorithm::ES256,
            rotation_period: DEFAULT_ROTATION_PERIOD,
            publish_ahead: DEFAULT_PUBLISH_AHEAD,
            token_lifetime: Duration::from_secs(3600),
            sealing: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Re-reads the keys, stores the next one when it is due, deletes keys no live token
    /// needs, and makes what it read the signing and published keys. On a storage failure the
    /// keys last read stay in use (they remain valid: a successor is published an hour ahead).
    pub async fn refresh(&self) -> Result<(), SigningKeyError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let now = self.clock.now();
        let mut keys = self.store.signing_keys().await?;
        let mut trusted = self.trusted(&keys)?;
        let newest = trusted.last().map(|key| &key.record);
        if let Some(activates_at) = rotation::due_key(newest, &self.schedule, now) {
            // Numbered after every stored key, trusted or not: generations are unique.
            let generation = keys
                .last()
                .map_or(1, |newest| newest.generation.saturating_add(1));
            self.create_key(generation, activates_at, now).await?;
            keys = self.store.signing_keys().await?;
            trusted = self.trusted(&keys)?;
        }
        // Over every stored key, trusted or not: an instance must never delete a key that
        // another (with the secret this one lacks, or before it was set) still signs with.
        if let Some(oldest) = rotation::oldest_needed(&keys, &self.schedule, now)
            && keys.first().is_some_and(|key| key.generation < oldest)
        {
            self.store.delete_signing_keys_before(oldest).await?;
            trusted.retain(|key| key.record.generation >= oldest);
        }
        let ring = KeyRing::of(trusted);
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
        Ok(())
    }

    /// The keys of `keys` this instance uses (see the `trust` module), logging the others.
    /// Fails when the newest stored key cannot be read here: signing with an older one, or
    /// creating another, would split the deployment.
    fn trusted(&self, keys: &[SigningKeyRecord]) -> Result<Vec<TrustedKey>, SigningKeyError> {
        let mut trusted = Vec::with_capacity(keys.len());
        for (index, record) in keys.iter().enumerate() {
            match trust::trust(record, self.sealing.as_ref()) {
                Ok(key) => trusted.push(key),
                Err(Distrust::Unsealed) => tracing::warn!(
                    kid = %record.kid,
                    "ignoring an unsealed access-token signing key: the deployment has a secret key"
                ),
                Err(Distrust::Unreadable(reason)) if index + 1 == keys.len() => {
                    return Err(SigningKeyError::Unreadable {
                        kid: record.kid.clone(),
                        reason,
                    });
                }
                Err(Distrust::Unreadable(reason)) => tracing::error!(
                    kid = %record.kid,
                    %reason,
                    "ignoring an access-token signing key that cannot be read here"
                ),
            }
        }
        Ok(trusted)
    }

    /// Generates and stores generation `generation`; losing the race to another instance is
    /// not an error (its key is read next).
    async fn create_key(
        &self,
        generation: i64,
        activates_at: i64,
        now: i64,
    ) -> Result<(), SigningKeyError> {
        let algorithm = self.schedule.algorithm;
        let (private, pkcs8) = PrivateKey::generate(algorithm)
            .map_err(|reason| SigningKeyError::Config(reason.to_owned()))?;
        let kid = private.thumbprint();
        let public_jwk = serde_json::Value::Object(private.public_jwk(algorithm, &kid)).to_string();
        let stored = sealing::store(self.sealing.as_ref(), &kid, &pkcs8)
            .map_err(|reason| SigningKeyError::Config(reason.to_owned()))?;
        let record = SigningKeyRecord::new(
            generation,
            kid.clone(),
            algorithm.as_str().to_owned(),
            public_jwk,
            stored,
            now,
            activates_at,
        );
        if self.store.insert_signing_key(&record).await? {
            tracing::info!(
                kid,
                generation,
                activates_at,
                "stored a new access-token signing key"
            );
        }
        Ok(())
    }

    fn ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The generation and `kid` of the key that signs now.
    pub fn signing_kid(&self) -> Option<(i64, String)> {
        let now = self.clock.now();
        let ring = self.ring();
        let key = ring.signing(now)?;
        Some((key.generation, key.kid.clone()))
    }
}

/// The claims of RFC 9068 §2.2, in the order they are written.
#[derive(Serialize)]
struct Payload<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    iat: i64,
    exp: i64,
    jti: &'a str,
}

impl AccessTokenSigner for JwtAccessTokenSigner {
    fn sign(&self, claims: &AccessTokenClaims<'_>) -> Result<String, ProviderError> {
        let now = self.clock.now();
        let ring = self.ring();
        let key = ring
            .signing(now)
            .ok_or_else(|| ProviderError::unavailable("no access-token signing key is loaded"))?;
        let private = &key.private;
        let payload = Payload {
            iss: claims.issuer,
            sub: claims.subject,
            aud: claims.audience.unwrap_or(&self.default_audience),
            client_id: claims.client_id,
            scope: (!claims.scopes.is_empty()).then(|| claims.scopes.join(" ")),
            iat: claims.issued_at,
            exp: claims.expires_at,
            jti: claims.jwt_id,
        };
        let payload = serde_json::to_vec(&payload).map_err(ProviderError::internal)?;
        let mut token = String::with_capacity(key.header.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&key.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = private
            .sign(token.as_bytes())
            .map_err(ProviderError::internal)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    fn key_set(&self) -> Arc<str> {
        Arc::clone(&self.ring().key_set)
    }
}

impl std::fmt::Debug for JwtAccessTokenSignerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAccessTokenSignerBuilder")
            .field("algorithm", &self.algorithm)
            .field("rotation_period", &self.rotation_period)
            .field("sealed", &self.sealing.is_some())
            .finish_non_exhaustive()
    }
}

impl JwtAccessTokenSignerBuilder {
    /// The algorithm new keys use (default ES256). Changing it rotates to a key of the new
    /// algorithm, published ahead like any other.
    pub fn algorithm(mut self, algorithm: SigningAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// How long a key signs before the next one takes over (default 30 days; at least an
    /// hour and more than `publish_ahead`).
    pub fn rotation_period(mut self, period: Duration) -> Self {
        self.rotation_period = period;
        self
    }

    /// How long a key is published before it signs (default one hour).
    pub fn publish_ahead(mut self, ahead: Duration) -> Self {
        self.publish_ahead = ahead;
        self
    }

    /// The longest lifetime of a token this server issues (its access-token TTL): a retired key
    /// stays published for that long after its successor took over.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Seals private keys at rest with `key`.
    pub fn sealing_key(mut self, key: SealingKey) -> Self {
        self.sealing = Some(key);
        self
    }

    /// The time source.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the settings, reads the keys (creating the first when there is none) and
    /// returns the signer. Fails when the signing key cannot be read by this instance — sealed
    /// with another secret, or sealed while this instance has none — rather than start a server
    /// that cannot issue tokens.
    pub async fn load(self) -> Result<Arc<JwtAccessTokenSigner>, SigningKeyError> {
        let secs = |duration: Duration| i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 4);
        let schedule = Schedule {
            algorithm: self.algorithm,
            rotation_period: secs(self.rotation_period),
            publish_ahead: secs(self.publish_ahead),
            token_lifetime: secs(self.token_lifetime),
        };
        if schedule.rotation_period <= schedule.publish_ahead || schedule.token_lifetime < 1 {
            return Err(SigningKeyError::Config(
                "the rotation period must be longer than the time keys are published ahead, \
                 and the token lifetime positive"
                    .to_owned(),
            ));
        }
        let signer = Arc::new(JwtAccessTokenSigner {
            store: self.store,
            schedule,
            sealing: self.sealing,
            default_audience: self.default_audience,
            clock: self.clock,
            ring: RwLock::new(Arc::default()),
            refreshing: tokio::sync::Mutex::new(()),
        });
        // Fails when the newest stored key cannot be read here (see `trusted`); otherwise a
        // key that signs now is in the ring (created if there was none this instance trusts).
        signer.refresh().await?;
        Ok(signer)
    }
}
