//! Compact JWS parsing (RFC 7515 §7.1), the algorithm allow-list, signature verification, and
//! the claim helpers both assertion kinds share.
//!
//! The header is parsed here rather than by `jsonwebtoken`, so that `alg: none`, an HMAC
//! algorithm or a `crit` parameter is refused by name before any key is looked at, and the
//! claims are checked here against the caller's clock (the provider's `Clock`) rather than the
//! system time `jsonwebtoken` reads. `jsonwebtoken` only verifies signatures.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use std::sync::Arc;

use crate::error::{Failure, Rejection};
use crate::jwks::{KeySet, PublicKey};
use crate::limits::MAX_JTI_LENGTH;
use crate::verify_pool::VerificationPool;

/// A signing algorithm on the allow-list: asymmetric only. `none` and every HMAC algorithm are
/// refused: with HMAC, a verifier holding only public keys could be made to accept a token
/// "signed" with the public key's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// Every accepted algorithm, as advertised in `token_endpoint_auth_signing_alg_values_supported`
/// (RFC 8414 §2).
pub const SUPPORTED_ALGORITHMS: [SigningAlgorithm; 5] = [
    SigningAlgorithm::RS256,
    SigningAlgorithm::PS256,
    SigningAlgorithm::ES256,
    SigningAlgorithm::ES384,
    SigningAlgorithm::EdDSA,
];

impl SigningAlgorithm {
    /// The JWA name (RFC 7518 §3.1, RFC 8037 §3.1).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The algorithm named `name`, if it is on the allow-list. Names are case-sensitive
    /// (RFC 7515 §4.1.1).
    pub fn parse(name: &str) -> Option<Self> {
        SUPPORTED_ALGORITHMS
            .into_iter()
            .find(|alg| alg.as_str() == name)
    }

    pub(crate) fn jsonwebtoken(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::PS256 => Algorithm::PS256,
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
            Self::EdDSA => Algorithm::EdDSA,
        }
    }
}

/// A parsed compact JWS whose signature is not yet verified.
pub(crate) struct UnverifiedJws<'a> {
    pub(crate) alg: SigningAlgorithm,
    pub(crate) typ: Option<String>,
    pub(crate) kid: Option<String>,
    pub(crate) claims: Map<String, Value>,
    signing_input: &'a str,
    signature: &'a str,
}

fn decode_object(part: &str) -> Result<Map<String, Value>, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed)
}

/// Parses a compact JWS and checks its header: the algorithm allow-list and no `crit`.
pub(crate) fn parse(token: &str) -> Result<UnverifiedJws<'_>, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let header_map = decode_object(header)?;
    let alg = header_map
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Rejection::Malformed)?;
    let alg = SigningAlgorithm::parse(alg).ok_or(Rejection::Algorithm)?;
    if header_map.contains_key("crit") {
        return Err(Rejection::Critical);
    }
    let text = |name: &str| {
        header_map
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let claims = decode_object(payload)?;
    if signature.is_empty() {
        return Err(Rejection::Signature);
    }
    Ok(UnverifiedJws {
        alg,
        typ: text("typ"),
        kid: text("kid"),
        claims,
        signing_input: &token[..header.len() + 1 + payload.len()],
        signature,
    })
}

/// What a signature check needs, owned, so that it can run on the blocking pool.
struct SignatureCheck {
    signing_input: String,
    signature: String,
    alg: SigningAlgorithm,
    keys: Arc<KeySet>,
    candidates: Vec<usize>,
}

impl SignatureCheck {
    fn run(self) -> Result<(), Rejection> {
        let verified = self
            .candidates
            .iter()
            .filter_map(|index| self.keys.key(*index))
            .any(|key| {
                jsonwebtoken::crypto::verify(
                    &self.signature,
                    self.signing_input.as_bytes(),
                    key.decoding_key(),
                    self.alg.jsonwebtoken(),
                )
                .unwrap_or(false)
            });
        if verified {
            Ok(())
        } else {
            Err(Rejection::Signature)
        }
    }
}

/// RFC 7515 §4.1.9: `typ` is a media type whose `application/` prefix may be omitted, and media
/// types compare case-insensitively.
pub(crate) fn typ_is(typ: Option<&str>, expected: &str) -> bool {
    typ.is_some_and(|typ| {
        let typ = typ.trim();
        let bare = typ
            .get(..12)
            .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
            .map_or(typ, |_| &typ[12..]);
        bare.eq_ignore_ascii_case(expected)
    })
}

impl UnverifiedJws<'_> {
    /// The keys of an operator-configured (trusted issuer's) set that may have signed: the one
    /// with the header's `kid`, or, when the header has none, each key usable with the
    /// algorithm. Indices into `keys`.
    pub(crate) fn issuer_candidates(&self, keys: &KeySet) -> Result<Vec<usize>, Rejection> {
        let mut candidates: Vec<(usize, &PublicKey)> = match &self.kid {
            Some(kid) => keys
                .iter()
                .enumerate()
                .filter(|(_, key)| key.kid() == Some(kid.as_str()))
                .collect(),
            None => keys.iter().enumerate().collect(),
        };
        if candidates.is_empty() {
            // RFC 7517 §4.5 leaves `kid` optional in a JWK: a key published without one may
            // still be the signer (the signature decides).
            candidates = keys
                .iter()
                .enumerate()
                .filter(|(_, key)| key.kid().is_none())
                .collect();
        }
        if candidates.is_empty() {
            return Err(Rejection::UnknownKey);
        }
        let usable: Vec<usize> = candidates
            .into_iter()
            .filter(|(_, key)| key.usable_with(self.alg))
            .map(|(index, _)| index)
            .collect();
        if usable.is_empty() {
            return Err(Rejection::NoUsableKey);
        }
        Ok(usable)
    }

    /// The one key of a client's set that may have signed (see [`KeySet::client_key`]).
    pub(crate) fn client_candidate(&self, keys: &KeySet) -> Result<usize, Rejection> {
        let index = keys.client_key(self.kid.as_deref())?;
        match keys.key(index) {
            Some(key) if key.usable_with(self.alg) => Ok(index),
            _ => Err(Rejection::NoUsableKey),
        }
    }

    /// Verifies the signature with the `candidates` of `keys` on `pool`: off the async workers
    /// and bounded in concurrency (see [`VerificationPool`]).
    pub(crate) async fn verify(
        &self,
        keys: Arc<KeySet>,
        candidates: Vec<usize>,
        pool: &VerificationPool,
    ) -> Result<(), Failure> {
        let check = SignatureCheck {
            signing_input: self.signing_input.to_owned(),
            signature: self.signature.to_owned(),
            alg: self.alg,
            keys,
            candidates,
        };
        pool.run(move || check.run())
            .await?
            .map_err(Failure::Rejected)
    }

    /// A required, non-empty string claim.
    pub(crate) fn string(&self, claim: &'static str) -> Result<&str, Rejection> {
        self.optional_string(claim)?
            .ok_or(Rejection::Missing { claim })
    }

    /// An optional string claim; present but not a non-empty string is malformed.
    pub(crate) fn optional_string(&self, claim: &'static str) -> Result<Option<&str>, Rejection> {
        match self.claims.get(claim) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) if !value.is_empty() => Ok(Some(value)),
            Some(_) => Err(Rejection::Missing { claim }),
        }
    }

    /// A NumericDate claim (RFC 7519 §2), in whole seconds.
    pub(crate) fn date(&self, claim: &'static str) -> Result<Option<i64>, Rejection> {
        match self.claims.get(claim) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => number
                .as_i64()
                .or_else(|| number.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or(Rejection::Missing { claim }),
            Some(_) => Err(Rejection::Missing { claim }),
        }
    }

    /// The single audience: `aud` as a string or a one-element array (RFC 7519 §4.1.3).
    /// A longer array is refused: a token meant for several parties could be replayed by one
    /// to another (draft-ietf-oauth-rfc7523bis §4).
    pub(crate) fn single_audience(&self) -> Option<&str> {
        match self.claims.get("aud")? {
            Value::String(aud) => Some(aud),
            Value::Array(values) => match values.as_slice() {
                [Value::String(aud)] => Some(aud),
                _ => None,
            },
            _ => None,
        }
    }

    /// Checks `exp` and `iat` (both required), `nbf` (honoured) against `now`, each with
    /// `leeway` seconds of tolerance, and that `exp` − `iat` is at most `max_lifetime`
    /// seconds. Returns `exp`.
    pub(crate) fn check_times(
        &self,
        now: i64,
        leeway: i64,
        max_lifetime: u64,
    ) -> Result<i64, Rejection> {
        let exp = self
            .date("exp")?
            .ok_or(Rejection::Missing { claim: "exp" })?;
        if exp.saturating_add(leeway) <= now {
            return Err(Rejection::Expired);
        }
        let iat = self
            .date("iat")?
            .ok_or(Rejection::Missing { claim: "iat" })?;
        if iat > now.saturating_add(leeway) {
            return Err(Rejection::IssuedInFuture);
        }
        if exp.saturating_sub(iat) > i64::try_from(max_lifetime).unwrap_or(i64::MAX) {
            return Err(Rejection::LifetimeTooLong { max: max_lifetime });
        }
        if self
            .date("nbf")?
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(Rejection::NotYetValid);
        }
        Ok(exp)
    }

    /// `jti`: required, at most [`MAX_JTI_LENGTH`] characters.
    pub(crate) fn jti(&self) -> Result<&str, Rejection> {
        let jti = self.string("jti")?;
        if jti.chars().count() > MAX_JTI_LENGTH {
            return Err(Rejection::JtiTooLong);
        }
        Ok(jti)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_comparison_follows_rfc7515() {
        let cases = [
            (Some("oauth-id-jag+jwt"), true),
            (Some("OAuth-ID-JAG+JWT"), true),
            (Some("application/oauth-id-jag+jwt"), true),
            (Some("JWT"), false),
            (Some("application/"), false),
            (Some("oauth-id-jag+jwt+x"), false),
            (None, false),
        ];
        for (typ, expected) in cases {
            assert_eq!(typ_is(typ, "oauth-id-jag+jwt"), expected, "{typ:?}");
        }
    }

    #[test]
    fn only_asymmetric_algorithms_parse() {
        for name in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
            assert_eq!(
                SigningAlgorithm::parse(name).map(|a| a.as_str()),
                Some(name)
            );
        }
        for name in [
            "none", "None", "HS256", "HS384", "HS512", "rs256", "RS512", "",
        ] {
            assert!(SigningAlgorithm::parse(name).is_none(), "{name}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        let cases = [
            String::new(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!("{header}.{payload}."),
            format!("{header}.!!.sig"),
            format!("{}.{payload}.sig", URL_SAFE_NO_PAD.encode(b"[]")),
            format!("{}.{payload}.sig", URL_SAFE_NO_PAD.encode(br#"{"alg":7}"#)),
        ];
        for case in cases {
            assert!(parse(&case).is_err(), "{case}");
        }
    }
}
