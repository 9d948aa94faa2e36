//! PKCE (RFC 7636) with the `S256` method only.
//!
//! OAuth 2.1 §4.1.1 and the MCP authorization spec require `S256`; `plain` protects nothing
//! against an attacker who can read the authorization request, so it is not offered.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::CodeVerifier;

/// Whether `value` has the RFC 7636 §4.1 syntax shared by verifiers and S256 challenges:
/// 43 to 128 characters from `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_valid_pkce_string(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The S256 challenge of a verifier: `BASE64URL(SHA256(ASCII(verifier)))` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &CodeVerifier) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose_secret().as_bytes()))
}

/// Verifies a code verifier against the stored S256 challenge (RFC 7636 §4.6), comparing in
/// constant time so that the comparison leaks nothing about the expected challenge.
pub fn verify_s256(verifier: &CodeVerifier, challenge: &str) -> bool {
    if !is_valid_pkce_string(verifier.expose_secret()) {
        return false;
    }
    let computed = s256_challenge(verifier);
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = CodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            s256_challenge(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verify_s256(
            &verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!verify_s256(
            &verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!verify_s256(&verifier, ""));
    }

    #[test]
    fn syntax_rules() {
        let cases = [
            ("a".repeat(42), false),
            ("a".repeat(43), true),
            ("a".repeat(128), true),
            ("a".repeat(129), false),
            (format!("{}+", "a".repeat(43)), false),
            (format!("{}=", "a".repeat(43)), false),
            (format!("{}-._~", "A9".repeat(20)), true),
            (format!("{}é", "a".repeat(43)), false),
        ];
        for (value, expected) in cases {
            assert_eq!(is_valid_pkce_string(&value), expected, "{value}");
        }
    }

    #[test]
    fn malformed_verifier_never_verifies() {
        // A verifier outside the RFC syntax is refused even if its hash happens to match.
        let short = CodeVerifier::new("short");
        let challenge = s256_challenge(&short);
        assert!(!verify_s256(&short, &challenge));
    }
}
