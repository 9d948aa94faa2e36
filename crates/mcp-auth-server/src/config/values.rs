//! The values of single settings that need parsing: users, trusted identity providers, URLs.

use mcp_auth_types::validate_issuer_url;

use super::{ConfigError, invalid};

/// A sign-in user from `--user NAME:PASSWORD` or `--user NAME:PHC`. The password is hashed at
/// start-up and this value dropped; it is never logged (`Debug` redacts it) and has no
/// `Display`.
#[derive(Clone)]
pub struct UserCredentials {
    /// The user name, which becomes the token's subject.
    pub name: String,
    secret: UserSecret,
}

/// How a user's password is given.
#[derive(Clone)]
#[non_exhaustive]
pub enum UserSecret {
    /// In clear, hashed at start-up.
    Password(String),
    /// As an argon2id PHC string (`$argon2id$…`, from `mcp-auth-server --hash-password`), so
    /// that no clear password appears in a process list or a configuration file.
    Phc(String),
}

impl UserCredentials {
    /// Parses `NAME:PASSWORD` or `NAME:PHC` (split at the first colon; a password may contain
    /// colons). A value starting with `$argon2` is taken as a PHC string, read at start-up.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let Some((name, password)) = value.split_once(':') else {
            return Err(invalid("--user", "expected NAME:PASSWORD or NAME:PHC"));
        };
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(invalid("--user", "the user name must be non-empty text"));
        }
        if password.is_empty() {
            return Err(invalid(
                "--user",
                format!("user {name:?} has an empty password"),
            ));
        }
        let secret = if password.starts_with("$argon2") {
            UserSecret::Phc(password.to_owned())
        } else {
            UserSecret::Password(password.to_owned())
        };
        Ok(Self {
            name: name.to_owned(),
            secret,
        })
    }

    /// The password or its hash, read once at start-up.
    pub fn secret(&self) -> &UserSecret {
        &self.secret
    }
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// An enterprise IdP whose identity assertion grants (ID-JAGs) are trusted
/// (`--trusted-idp ISSUER=JWKS`): its presence enables and advertises the SEP-990 jwt-bearer
/// grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIdp {
    /// The IdP's issuer identifier, compared exactly with an ID-JAG's `iss`.
    pub issuer: String,
    /// Its signing keys: a JWKS file path, or an https URL.
    pub jwks: String,
}

impl TrustedIdp {
    /// Parses `ISSUER=JWKS`. An issuer has no query (RFC 8414 §2), so the first `=` separates.
    /// JWKS is an https URL (fetched with a timeout and a size cap, cached) or a file path;
    /// plain http is refused, since whoever can alter the key set can mint ID-JAGs.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let Some((issuer, jwks)) = value.split_once('=') else {
            return Err(invalid("--trusted-idp", "expected ISSUER=JWKS"));
        };
        validate_issuer_url(issuer)
            .map_err(|err| invalid("--trusted-idp", format!("issuer {issuer:?}: {err}")))?;
        if jwks.is_empty() || (jwks.contains("://") && !is_jwks_url(jwks)) {
            return Err(invalid(
                "--trusted-idp",
                format!("JWKS {jwks:?} must be a file path or an https URL without a fragment"),
            ));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            jwks: jwks.to_owned(),
        })
    }
}

/// The rule for issuers, minus the ban on a query: https, no fragment.
fn is_jwks_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    parsed.scheme() == "https"
        && parsed.has_host()
        && parsed.fragment().is_none()
        && !url.contains('#')
}
