//! Open vocabularies: registered values as variants, anything else kept verbatim in `Other`.
//!
//! OAuth documents are extended all the time; a value this crate does not know must round-trip
//! unchanged instead of failing the whole document it appears in.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this crate does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The wire form.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(value) => value,
                }
            }

            /// Parses a wire value; unknown values become `Other`.
            pub fn parse(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Ok(Self::parse(&value))
            }
        }
    };
}

open_enum!(
    /// A token-endpoint client authentication method (RFC 7591 §2, RFC 7523 §2.2).
    TokenEndpointAuthMethod {
        /// A public client: no authentication.
        None => "none",
        /// The secret in the form body (RFC 6749 §2.3.1).
        ClientSecretPost => "client_secret_post",
        /// The secret in HTTP Basic authentication (RFC 6749 §2.3.1).
        ClientSecretBasic => "client_secret_basic",
        /// A JWT signed with the client's private key (RFC 7523 §2.2).
        PrivateKeyJwt => "private_key_jwt",
    }
);

open_enum!(
    /// An OAuth grant type (RFC 6749 §4, RFC 7523 §2.1).
    GrantType {
        /// RFC 6749 §4.1.
        AuthorizationCode => "authorization_code",
        /// RFC 6749 §6.
        RefreshToken => "refresh_token",
        /// RFC 6749 §4.4.
        ClientCredentials => "client_credentials",
        /// RFC 7523 §2.1, used by SEP-990 to present an ID-JAG.
        JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
    }
);

open_enum!(
    /// An authorization-endpoint response type (RFC 6749 §3.1.1).
    ResponseType {
        /// The authorization code flow.
        Code => "code",
    }
);

open_enum!(
    /// A PKCE code challenge method (RFC 7636 §4.2).
    CodeChallengeMethod {
        /// The SHA-256 of the verifier, the only method MCP allows.
        S256 => "S256",
        /// The verifier itself; never accepted here, named so that it parses to a variant.
        Plain => "plain",
    }
);

impl TokenEndpointAuthMethod {
    /// Whether this method proves possession of a shared secret.
    pub fn uses_shared_secret(&self) -> bool {
        matches!(self, Self::ClientSecretPost | Self::ClientSecretBasic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_round_trip() {
        let method: TokenEndpointAuthMethod = serde_json::from_str("\"tls_client_auth\"").unwrap();
        assert_eq!(
            method,
            TokenEndpointAuthMethod::Other("tls_client_auth".into())
        );
        assert_eq!(
            serde_json::to_string(&method).unwrap(),
            "\"tls_client_auth\""
        );
    }

    #[test]
    fn known_values_parse_to_variants() {
        assert_eq!(
            GrantType::parse("urn:ietf:params:oauth:grant-type:jwt-bearer"),
            GrantType::JwtBearer
        );
        assert_eq!(
            TokenEndpointAuthMethod::parse("none"),
            TokenEndpointAuthMethod::None
        );
        assert_eq!(ResponseType::Code.as_str(), "code");
    }
}
