//! Signing helpers for tests: throw-away keys of every allowed algorithm, a JWKS of their
//! public halves, and compact JWS encoding with any header — including the forged ones a
//! validator must refuse (`alg: none`, HS256 keyed with a public key).
//!
//! Enabled by the `test-util` feature. Keys are generated in process (aws-lc-rs) and never
//! leave it.

#![allow(clippy::expect_used, clippy::missing_panics_doc)]

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::SigningAlgorithm;

/// A generated signing key and its public JWK.
#[derive(Clone)]
pub struct TestKey {
    alg: SigningAlgorithm,
    kid: String,
    key: EncodingKey,
    public_jwk: Value,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

impl TestKey {
    /// Generates a key for `alg` with key id `kid` (RSA keys are 2048 bits).
    pub fn generate(alg: SigningAlgorithm, kid: &str) -> Self {
        let key = match alg {
            SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .expect("RSA key generation");
                let der =
                    AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&pair).expect("PKCS#8");
                EncodingKey::from_rsa_pem(&pem("PRIVATE KEY", der.as_ref())).expect("RSA key")
            }
            SigningAlgorithm::ES256 | SigningAlgorithm::ES384 => {
                let curve = if alg == SigningAlgorithm::ES256 {
                    &ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pair = EcdsaKeyPair::generate(curve).expect("EC key generation");
                let der = pair.to_pkcs8v1().expect("PKCS#8");
                EncodingKey::from_ec_der(der.as_ref())
            }
            SigningAlgorithm::EdDSA => {
                let pair = Ed25519KeyPair::generate().expect("Ed25519 key generation");
                let der = pair.to_pkcs8v1().expect("PKCS#8");
                EncodingKey::from_ed_der(der.as_ref())
            }
        };
        let jwk = Jwk::from_encoding_key(&key, alg.jsonwebtoken()).expect("public JWK");
        let mut public_jwk = serde_json::to_value(jwk).expect("JWK serialises");
        public_jwk["kid"] = json!(kid);
        public_jwk["use"] = json!("sig");
        Self {
            alg,
            kid: kid.to_owned(),
            key,
            public_jwk,
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> SigningAlgorithm {
        self.alg
    }

    /// The public JWK, with `kid` and `use: sig`.
    pub fn public_jwk(&self) -> Value {
        self.public_jwk.clone()
    }

    /// A JWKS holding the public halves of `keys`.
    pub fn jwks(keys: &[&TestKey]) -> Value {
        json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
    }

    /// Signs `claims` with the header `{"alg", "kid", "typ"}` (`typ` omitted when `None`).
    pub fn sign(&self, typ: Option<&str>, claims: &Value) -> String {
        let mut header = json!({ "alg": self.alg.as_str(), "kid": self.kid });
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under `header` exactly as given (which may lie about `alg` or `kid`).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &self.key, alg(self.alg))
            .expect("signing");
        format!("{input}.{signature}")
    }
}

fn alg(alg: SigningAlgorithm) -> Algorithm {
    alg.jsonwebtoken()
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// An unsecured JWS (`alg: none`, empty signature; RFC 7515 Appendix A.5), as an attacker would
/// send it, with `header` completed by `"alg": "none"`.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    let mut header = header.clone();
    header["alg"] = json!("none");
    format!("{}.", signing_input(&header, claims))
}

/// An HS256 JWS keyed with `secret`: with `secret` the bytes of a public key, the classic
/// algorithm-confusion forgery.
pub fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let mut header = header.clone();
    header["alg"] = json!("HS256");
    let input = signing_input(&header, claims);
    let signature = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .expect("HMAC signing");
    format!("{input}.{signature}")
}
