//! Private signing keys at rest: sealed with AES-256-GCM under a key derived from the
//! operator's secret, or, without one, stored as plain PKCS#8.
//!
//! A stored private key is text (every backend holds text): `pkcs8:` or `a256gcm:` followed by
//! base64url. The sealed form is the 96-bit random nonce followed by the ciphertext and tag,
//! with the key's `kid` as additional data, so a sealed key cannot be passed off as another.

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const PLAIN: &str = "pkcs8:";
const SEALED: &str = "a256gcm:";
const NONCE_LEN: usize = 12;
/// The shortest secret accepted: 256 bits, as `openssl rand -base64 32` gives (44 characters).
pub const MIN_SECRET_LEN: usize = 32;

/// The key that seals private signing keys at rest, derived (HKDF-SHA256, an info string of its
/// own) from the operator's secret, so that the same secret can later key other purposes without
/// two of them sharing a key.
pub struct SealingKey {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

/// Why a stored private key could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsealError {
    /// It is sealed and this instance has no secret key.
    #[error("the key is sealed: this instance needs the deployment's secret key")]
    NoSecretKey,
    /// It does not open with this secret key (another secret, or the record was altered).
    #[error("the key does not open with this secret key")]
    WrongSecretKey,
    /// It is neither form.
    #[error("the stored key is malformed")]
    Malformed,
}

impl SealingKey {
    /// The sealing key of the secret `secret` (at least [`MIN_SECRET_LEN`] bytes, surrounding
    /// whitespace ignored, so a file written by `openssl rand -base64 32` works as it is).
    pub fn from_secret(secret: &[u8]) -> Result<Self, String> {
        Self::for_purpose(secret, "access-token signing keys at rest")
    }

    /// The key for `purpose` derived from the operator's secret (HKDF-SHA256 with `purpose` as
    /// the info string): each purpose (signing keys at rest, sign-in cookies, upstream tokens
    /// at rest) gets a key of its own from the one secret, so no two share a key.
    pub fn for_purpose(secret: &[u8], purpose: &str) -> Result<Self, String> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the secret key has {} bytes; at least {MIN_SECRET_LEN} are required \
                 (for example `openssl rand -base64 32`)",
                secret.len()
            ));
        }
        let prk = Salt::new(HKDF_SHA256, b"mcp-auth secret key").extract(secret);
        let mut bytes = [0u8; 32];
        prk.expand(&[purpose.as_bytes()], &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut bytes))
            .map_err(|_| "key derivation failed".to_owned())?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| "key derivation failed".to_owned())?;
        Ok(Self { key })
    }

    /// A key of 256 random bits, for what only this process must read (a sign-in cookie
    /// when the operator gave no secret).
    pub fn random() -> Result<Self, String> {
        let bytes: [u8; 32] = rand_bytes()?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| "key generation failed".to_owned())?;
        Ok(Self { key })
    }

    /// `plain` sealed (AES-256-GCM, a fresh random nonce) with `context` as additional data,
    /// as base64url text: it opens only with this key and the same context.
    pub fn seal_text(&self, context: &str, plain: &[u8]) -> Result<String, &'static str> {
        Ok(URL_SAFE_NO_PAD.encode(self.seal_bytes(context.as_bytes(), plain)?))
    }

    /// Opens what [`seal_text`](Self::seal_text) sealed under `context`.
    pub fn open_text(&self, context: &str, text: &str) -> Result<Vec<u8>, UnsealError> {
        let sealed = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| UnsealError::Malformed)?;
        self.open_bytes(context.as_bytes(), &sealed)
    }

    fn seal(&self, kid: &str, pkcs8: &[u8]) -> Result<String, &'static str> {
        let sealed = self.seal_bytes(&aad(kid), pkcs8)?;
        Ok(format!("{SEALED}{}", URL_SAFE_NO_PAD.encode(sealed)))
    }

    fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, UnsealError> {
        self.open_bytes(&aad(kid), sealed)
    }

    /// The nonce, then the ciphertext and its tag.
    fn seal_bytes(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut in_out = plain.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .map_err(|_| "sealing failed")?;
        let mut sealed = nonce.as_ref().to_vec();
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    fn open_bytes(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, UnsealError> {
        if sealed.len() < NONCE_LEN {
            return Err(UnsealError::Malformed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| UnsealError::Malformed)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| UnsealError::WrongSecretKey)?;
        Ok(plain.to_vec())
    }
}

fn rand_bytes() -> Result<[u8; 32], String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness".to_owned())?;
    Ok(bytes)
}

fn aad(kid: &str) -> Vec<u8> {
    format!("mcp-auth signing key {kid}").into_bytes()
}

/// The stored form of `pkcs8`, the private key of `kid`: sealed when there is a sealing key.
pub(crate) fn store(
    sealing: Option<&SealingKey>,
    kid: &str,
    pkcs8: &[u8],
) -> Result<String, &'static str> {
    match sealing {
        Some(key) => key.seal(kid, pkcs8),
        None => Ok(format!("{PLAIN}{}", URL_SAFE_NO_PAD.encode(pkcs8))),
    }
}

/// The PKCS#8 private key of `kid` from its stored form. A plain key is read with or without
/// a sealing key (keys stored before the operator set one stay usable until they rotate out).
pub(crate) fn load(
    sealing: Option<&SealingKey>,
    kid: &str,
    stored: &str,
) -> Result<Vec<u8>, UnsealError> {
    let decode = |text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| UnsealError::Malformed)
    };
    if let Some(plain) = stored.strip_prefix(PLAIN) {
        return decode(plain);
    }
    let sealed = stored.strip_prefix(SEALED).ok_or(UnsealError::Malformed)?;
    let key = sealing.ok_or(UnsealError::NoSecretKey)?;
    key.open(kid, &decode(sealed)?)
}

/// Whether the stored form is sealed.
pub(crate) fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> SealingKey {
        SealingKey::from_secret(secret.as_bytes()).unwrap()
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_secret_and_its_kid() {
        let sealing = key("0123456789abcdef0123456789abcdef");
        let stored = store(Some(&sealing), "kid-1", b"private bytes").unwrap();
        assert!(is_sealed(&stored));
        assert!(!stored.contains("private"));
        assert_eq!(
            load(Some(&sealing), "kid-1", &stored).unwrap(),
            b"private bytes"
        );
        // Another kid: the additional data differs.
        assert_eq!(
            load(Some(&sealing), "kid-2", &stored),
            Err(UnsealError::WrongSecretKey)
        );
        // Another secret.
        let other = key("fedcba9876543210fedcba9876543210");
        assert_eq!(
            load(Some(&other), "kid-1", &stored),
            Err(UnsealError::WrongSecretKey)
        );
        // No secret at all.
        assert_eq!(load(None, "kid-1", &stored), Err(UnsealError::NoSecretKey));
        // One flipped character of the ciphertext.
        let mut altered = stored.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(
            load(Some(&sealing), "kid-1", &altered),
            Err(UnsealError::WrongSecretKey)
        );
    }

    #[test]
    fn two_seals_of_one_key_differ_and_plain_keys_stay_readable() {
        let sealing = key("0123456789abcdef0123456789abcdef\n");
        let first = store(Some(&sealing), "kid", b"k").unwrap();
        let second = store(Some(&sealing), "kid", b"k").unwrap();
        assert_ne!(first, second, "a fresh nonce per seal");
        let plain = store(None, "kid", b"k").unwrap();
        assert!(!is_sealed(&plain));
        assert_eq!(load(Some(&sealing), "kid", &plain).unwrap(), b"k");
        assert_eq!(load(None, "kid", &plain).unwrap(), b"k");
        assert_eq!(load(None, "kid", "rsa:abc"), Err(UnsealError::Malformed));
        assert_eq!(
            load(Some(&sealing), "kid", "a256gcm:AAAA"),
            Err(UnsealError::Malformed)
        );
    }

    #[test]
    fn purposes_get_keys_of_their_own_and_text_opens_only_in_its_context() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let cookies = SealingKey::for_purpose(secret, "sign-in cookies").unwrap();
        let sealed = cookies.seal_text("oidc", b"pending").unwrap();
        assert_eq!(cookies.open_text("oidc", &sealed).unwrap(), b"pending");
        assert_eq!(
            cookies.open_text("consent", &sealed),
            Err(UnsealError::WrongSecretKey)
        );
        let tokens = SealingKey::for_purpose(secret, "upstream tokens").unwrap();
        assert_eq!(
            tokens.open_text("oidc", &sealed),
            Err(UnsealError::WrongSecretKey)
        );
        let random = SealingKey::random().unwrap();
        assert_eq!(
            random.open_text("oidc", &sealed),
            Err(UnsealError::WrongSecretKey)
        );
        assert_eq!(cookies.open_text("oidc", "!!"), Err(UnsealError::Malformed));
    }

    #[test]
    fn short_secrets_are_refused_and_whitespace_is_ignored() {
        assert!(SealingKey::from_secret(b"too short").is_err());
        assert!(SealingKey::from_secret(&[b' '; 64]).is_err());
        let padded = key("  0123456789abcdef0123456789abcdef \n");
        let stored = store(Some(&padded), "kid", b"k").unwrap();
        let bare = key("0123456789abcdef0123456789abcdef");
        assert_eq!(load(Some(&bare), "kid", &stored).unwrap(), b"k");
        assert_eq!(format!("{bare:?}"), "SealingKey([redacted])");
    }
}
