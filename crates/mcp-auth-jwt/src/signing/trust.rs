//! Which stored keys this instance uses: only keys it can open, whose `kid` is the thumbprint
//! of what opened, and — when the deployment has a secret key — only sealed ones.
//!
//! The store is not trusted with what a key *is*: the published JWK is derived from the
//! opened private key, never read from the record, so a record written by someone without the
//! secret can neither put a public key in the key set nor make this server sign with a key of
//! theirs.

use mcp_auth_core::SigningKeyRecord;

use super::key::PrivateKey;
use super::sealing::{self, SealingKey};
use crate::SigningAlgorithm;

/// A stored key this instance may publish and sign with.
pub(super) struct TrustedKey {
    pub(super) record: SigningKeyRecord,
    pub(super) algorithm: SigningAlgorithm,
    pub(super) private: PrivateKey,
}

/// Why a stored key is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Distrust {
    /// It cannot be opened here, or does not hold what it says: a misconfiguration (another
    /// secret, no secret) or a record written by someone else. Fatal when it is the newest.
    Unreadable(String),
    /// An unsealed key while the deployment has a secret: ignored, and replaced by a sealed
    /// key (keys written before the secret was set, or by someone without it).
    Unsealed,
}

/// Opens `record` with `sealing`, and checks it.
pub(super) fn trust(
    record: &SigningKeyRecord,
    sealing: Option<&SealingKey>,
) -> Result<TrustedKey, Distrust> {
    if sealing.is_some() && !sealing::is_sealed(&record.private_key) {
        return Err(Distrust::Unsealed);
    }
    let algorithm = SigningAlgorithm::parse(&record.algorithm)
        .ok_or_else(|| Distrust::Unreadable("unknown algorithm".to_owned()))?;
    let pkcs8 = sealing::load(sealing, &record.kid, &record.private_key)
        .map_err(|error| Distrust::Unreadable(error.to_string()))?;
    let private = PrivateKey::from_pkcs8(algorithm, &pkcs8)
        .map_err(|reason| Distrust::Unreadable(reason.to_owned()))?;
    if private.thumbprint() != record.kid {
        return Err(Distrust::Unreadable(
            "its kid is not the thumbprint of its key".to_owned(),
        ));
    }
    Ok(TrustedKey {
        record: record.clone(),
        algorithm,
        private,
    })
}
