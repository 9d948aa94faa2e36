//! The one place randomness enters, and how credentials are hashed and compared.
//!
//! Tokens, codes and client secrets are 256-bit random values. Because they carry full entropy,
//! a single SHA-256 is enough to store them safely (a slow password hash buys nothing against a
//! 2^256 search) and keeps lookups at ~80 ns. Stored hashes are compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of entropy in every generated token, code and secret (256 bits; RFC 6749 §10.10
/// asks for at least 128, the Python SDK's docstring for at least 160).
pub const SECRET_BYTES: usize = 32;

/// A fresh random credential: 256 bits from the thread-local CSPRNG (ChaCha, seeded and
/// periodically reseeded from the OS), base64url without padding (43 characters).
pub fn random_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh random identifier that is not a credential (client ids): 128 bits in UUID v4
/// form. It never starts with `https://`, so it can never be mistaken for a Client ID
/// Metadata Document URL.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    uuid_text(bytes, 4)
}

/// A fresh grant id: a UUID v7 (RFC 9562 §5.7), the creation time in milliseconds since the
/// epoch in its first 48 bits and 74 random bits after it.
///
/// Why time first: every issuance indexes its grant by id (the grants table and the tokens'
/// grant columns), and ids that grow with time land on the last page of each index instead of
/// a random one. On SQLite that leaves one random page of the three an issuance wrote (the
/// grant's row and the token's `grant_id` entry now go to the last pages), which matters once
/// the file outgrows the page cache (crate `mcp-auth-sqlx`, README: −45 % of an issuance's
/// SQLite work in its model). A grant id is not a
/// credential, and the random part alone is beyond guessing; what the order reveals, when a
/// grant began, is what the grant's own records already hold.
pub fn time_ordered_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes[6..]);
    // The low 48 bits of the milliseconds, big-endian (they last until the year 10889).
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[10..]);
    uuid_text(bytes, 7)
}

/// `bytes` as a UUID of `version` (RFC 9562's variant), in its usual text form.
fn uuid_text(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut id = String::with_capacity(36);
    for (index, group) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]]
        .into_iter()
        .enumerate()
    {
        if index > 0 {
            id.push('-');
        }
        push_hex(&mut id, group);
    }
    id
}

/// Appends `bytes` as lower-case hex: ids and hashes are written on every issuance, where a
/// `format!` per byte was most of their cost.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// The SHA-256 of a credential: what storage keeps instead of the credential.
///
/// Equality is constant-time; there is deliberately no derived `PartialEq`.
#[derive(Clone, Copy)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hashes a raw credential.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A digest read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Lower-case hex, for storage keys and text columns.
    pub fn to_hex(&self) -> String {
        let mut hex = String::with_capacity(64);
        push_hex(&mut hex, &self.0);
        hex
    }

    /// Parses lower- or upper-case hex of exactly 64 digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Whether `secret` hashes to this value, compared in constant time.
    pub fn verify(&self, secret: &str) -> bool {
        self.ct_eq(&Self::of(secret))
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A prefix is enough to tell hashes apart in logs and reveals nothing usable.
        write!(f, "SecretHash({}…)", &self.to_hex()[..8])
    }
}

impl serde::Serialize for SecretHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for SecretHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(deserializer)?;
        Self::from_hex(&hex).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Constant-time equality of two byte strings (the length is not hidden).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_256_bits_and_differ() {
        let a = random_secret();
        let b = random_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn ids_are_uuid_shaped() {
        let id = random_id();
        assert_eq!(id.len(), 36);
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups.iter().all(|g| {
            g.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        }));
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]), "{id}");
        assert!(!id.starts_with("https://"));
        assert_ne!(id, random_id());
    }

    #[test]
    fn grant_ids_are_uuid_v7_and_grow_with_time() {
        let first = time_ordered_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = time_ordered_id();
        for id in [&first, &second] {
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "7", "{id}");
            assert!("89ab".contains(&id[19..20]), "{id}");
        }
        // The first 48 bits are now in milliseconds: within a minute of the clock.
        let millis = u64::from_str_radix(&first[..13].replace('-', ""), 16).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert!(
            now.abs_diff(u128::from(millis)) < 60_000,
            "{first} at {now}"
        );
        // Later ids sort after earlier ones, as text: what the stores' indexes see.
        assert!(first < second, "{first} {second}");
        // The rest is random.
        assert_ne!(first[15..], time_ordered_id()[15..]);
    }

    #[test]
    fn hash_round_trips_through_hex_and_verifies() {
        let hash = SecretHash::of("abc");
        assert_eq!(
            hash.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let back = SecretHash::from_hex(&hash.to_hex()).unwrap();
        assert!(back.ct_eq(&hash));
        assert!(hash.verify("abc"));
        assert!(!hash.verify("abd"));
        assert!(SecretHash::from_hex("zz").is_none());
        assert!(SecretHash::from_hex(&"g".repeat(64)).is_none());
        assert!(!format!("{hash:?}").contains(&hash.to_hex()));
    }
}
