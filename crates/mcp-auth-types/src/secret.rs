//! Newtypes for raw credentials.
//!
//! Every credential that would let its holder act as someone — a client secret, a token, an
//! authorization code, a PKCE verifier, a signed assertion — travels in one of these types. They
//! redact themselves in `Debug`, implement neither `Display` nor `PartialEq` (so a secret can be
//! neither logged by accident nor compared in variable time), and give up their value only
//! through the explicit, greppable [`expose_secret`](ClientSecret::expose_secret).

use serde::{Deserialize, Serialize};

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a raw credential.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The raw credential. Every call site is a place where a secret leaves its
            /// wrapper; keep them few and never log the result.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }

            /// Consumes the wrapper and returns the raw credential.
            pub fn into_secret(self) -> String {
                self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// A client's shared secret (RFC 6749 §2.3.1).
    ClientSecret
);

/// A raw access token (RFC 6749 §1.4).
///
/// Unlike the other secrets it holds its value as an `Arc<str>`: a resource server builds one
/// for every protected request, from the bytes of the `Authorization` header, and the
/// verifier's answer ([`AccessToken`](crate::AccessToken)) carries a clone of it. A clone
/// shares the one copy the request made instead of copying the credential again. Sharing
/// changes nothing about who holds the credential: every clone was handed out by the request
/// that presented it, and caches and stores never keep one.
#[doc(alias = "access_token")]
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccessTokenSecret(std::sync::Arc<str>);

impl AccessTokenSecret {
    /// Wraps a raw credential: one allocation and one copy of it, whatever the argument's
    /// type (`&str`, `String`, …).
    pub fn new(value: impl AsRef<str>) -> Self {
        Self(std::sync::Arc::from(value.as_ref()))
    }

    /// The raw credential. Every call site is a place where a secret leaves its wrapper; keep
    /// them few and never log the result.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Consumes the wrapper and returns the raw credential (a copy: clones may share it).
    pub fn into_secret(self) -> String {
        String::from(&*self.0)
    }
}

impl std::fmt::Debug for AccessTokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessTokenSecret([redacted])")
    }
}

secret_type!(
    /// A raw refresh token (RFC 6749 §1.5).
    #[doc(alias = "refresh_token")]
    RefreshTokenSecret
);
secret_type!(
    /// A raw authorization code (RFC 6749 §1.3.1).
    #[doc(alias = "code")]
    AuthorizationCodeSecret
);
secret_type!(
    /// A PKCE code verifier (RFC 7636 §4.1).
    #[doc(alias = "code_verifier")]
    CodeVerifier
);
secret_type!(
    /// A signed JWT presented as an authorization grant or client assertion (RFC 7523), such as a
    /// SEP-990 ID-JAG. Anyone holding it can replay it until it expires, so it is a credential.
    #[doc(alias = "assertion")]
    Assertion
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_secret() {
        let rendered = format!(
            "{:?} {:?} {:?} {:?} {:?} {:?}",
            ClientSecret::new("s3cret-a"),
            AccessTokenSecret::new("s3cret-b"),
            RefreshTokenSecret::new("s3cret-c"),
            AuthorizationCodeSecret::new("s3cret-d"),
            CodeVerifier::new("s3cret-e"),
            Assertion::new("s3cret-f"),
        );
        assert!(!rendered.contains("s3cret"), "{rendered}");
        assert!(rendered.contains("ClientSecret([redacted])"));
    }

    #[test]
    fn access_token_clones_share_one_copy() {
        let token = AccessTokenSecret::new(String::from("s3cret"));
        let clone = token.clone();
        assert!(std::ptr::eq(token.expose_secret(), clone.expose_secret()));
        assert_eq!(clone.into_secret(), "s3cret");
    }

    #[test]
    fn secrets_serialise_as_plain_strings() {
        let json = serde_json::to_string(&AccessTokenSecret::new("abc")).unwrap();
        assert_eq!(json, "\"abc\"");
        let back: AccessTokenSecret = serde_json::from_str(&json).unwrap();
        assert_eq!(back.expose_secret(), "abc");
    }
}
