//! One signing key in memory: generated or parsed from PKCS#8, its public JWK and RFC 7638
//! thumbprint, and the signature itself (aws-lc-rs, the backend the verifiers use).

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding,
    RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::SigningAlgorithm;

/// A private key ready to sign. Never printed: its `Debug` names the algorithm only.
pub(crate) enum PrivateKey {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Ecdsa(_) => "ECDSA",
            Self::Ed25519(_) => "Ed25519",
            Self::Rsa(..) => "RSA",
        };
        write!(f, "PrivateKey({kind}, [redacted])")
    }
}

fn ecdsa_curve(algorithm: SigningAlgorithm) -> Option<&'static EcdsaSigningAlgorithm> {
    match algorithm {
        SigningAlgorithm::ES256 => Some(&ECDSA_P256_SHA256_FIXED_SIGNING),
        SigningAlgorithm::ES384 => Some(&ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    }
}

fn rsa_encoding(algorithm: SigningAlgorithm) -> &'static dyn RsaEncoding {
    if algorithm == SigningAlgorithm::PS256 {
        &RSA_PSS_SHA256
    } else {
        &RSA_PKCS1_SHA256
    }
}

impl PrivateKey {
    /// A fresh key for `algorithm` (RSA keys are 2048 bits) and its PKCS#8 encoding.
    pub(crate) fn generate(algorithm: SigningAlgorithm) -> Result<(Self, Vec<u8>), &'static str> {
        const FAILED: &str = "key generation failed";
        let pkcs8 = match algorithm {
            SigningAlgorithm::EdDSA => Ed25519KeyPair::generate()
                .and_then(|pair| pair.to_pkcs8v1())
                .map_err(|_| FAILED)?
                .as_ref()
                .to_vec(),
            SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| FAILED)?;
                AsDer::<Pkcs8V1Der<'_>>::as_der(&pair)
                    .map_err(|_| FAILED)?
                    .as_ref()
                    .to_vec()
            }
            _ => {
                let curve = ecdsa_curve(algorithm).ok_or("unsupported algorithm")?;
                EcdsaKeyPair::generate(curve)
                    .and_then(|pair| pair.to_pkcs8v1())
                    .map_err(|_| FAILED)?
                    .as_ref()
                    .to_vec()
            }
        };
        Ok((Self::from_pkcs8(algorithm, &pkcs8)?, pkcs8))
    }

    /// The key in `pkcs8`, for `algorithm`.
    pub(crate) fn from_pkcs8(
        algorithm: SigningAlgorithm,
        pkcs8: &[u8],
    ) -> Result<Self, &'static str> {
        const REJECTED: &str = "not a PKCS#8 key of the stored algorithm";
        match algorithm {
            SigningAlgorithm::EdDSA => Ed25519KeyPair::from_pkcs8(pkcs8)
                .map(Self::Ed25519)
                .map_err(|_| REJECTED),
            SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => RsaKeyPair::from_pkcs8(pkcs8)
                .map(|pair| Self::Rsa(pair, rsa_encoding(algorithm)))
                .map_err(|_| REJECTED),
            _ => {
                let curve = ecdsa_curve(algorithm).ok_or("unsupported algorithm")?;
                EcdsaKeyPair::from_pkcs8(curve, pkcs8)
                    .map(Self::Ecdsa)
                    .map_err(|_| REJECTED)
            }
        }
    }

    /// The JWS signature of `message` (for ECDSA the fixed-width `r || s` of RFC 7518 §3.4).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, &'static str> {
        const FAILED: &str = "signing failed";
        match self {
            Self::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| FAILED),
            Self::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Self::Rsa(pair, encoding) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &SystemRandom::new(), message, &mut signature)
                    .map_err(|_| FAILED)?;
                Ok(signature)
            }
        }
    }

    /// The members of the public JWK that identify the key (RFC 7638 §3.2), by name.
    fn public_members(&self) -> Vec<(&'static str, String)> {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match self {
            Self::Ecdsa(pair) => {
                // An uncompressed point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                let (x, y) = point[1..].split_at((point.len() - 1) / 2);
                let crv = if x.len() == 32 { "P-256" } else { "P-384" };
                vec![
                    ("crv", crv.to_owned()),
                    ("kty", "EC".to_owned()),
                    ("x", b64(x)),
                    ("y", b64(y)),
                ]
            }
            Self::Ed25519(pair) => vec![
                ("crv", "Ed25519".to_owned()),
                ("kty", "OKP".to_owned()),
                ("x", b64(pair.public_key().as_ref())),
            ],
            Self::Rsa(pair, _) => {
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                vec![
                    ("e", b64(&components.e)),
                    ("kty", "RSA".to_owned()),
                    ("n", b64(&components.n)),
                ]
            }
        }
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url): the key's `kid`, the same for the same
    /// public key on every instance.
    pub(crate) fn thumbprint(&self) -> String {
        // The required members in lexicographic order, no whitespace (§3.3); the values are
        // base64url or fixed names, which JSON never escapes.
        let members: Vec<String> = self
            .public_members()
            .into_iter()
            .map(|(name, value)| format!("\"{name}\":\"{value}\""))
            .collect();
        let canonical = format!("{{{}}}", members.join(","));
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The public JWK as published: the key, `kid`, `alg` and `use: sig`.
    pub(crate) fn public_jwk(&self, algorithm: SigningAlgorithm, kid: &str) -> Map<String, Value> {
        let mut jwk: Map<String, Value> = self
            .public_members()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), Value::String(value)))
            .collect();
        jwk.insert("kid".to_owned(), json!(kid));
        jwk.insert("alg".to_owned(), json!(algorithm.as_str()));
        jwk.insert("use".to_owned(), json!("sig"));
        jwk
    }
}
