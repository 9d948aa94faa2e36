//! Bounds on client metadata (RFC 7591 §2), shared by dynamic registration (`/register`) and
//! Client ID Metadata Documents, so that no client can make the server store, cache or parse
//! more than a small, known amount per client.
//!
//! RFC 7591 §2 sets no limits, but §3.2.2 lets the server refuse any value with
//! `invalid_client_metadata` (`invalid_redirect_uri` for redirect URIs). Every value below is
//! generous for a real client — an MCP client registers one to a few loopback or https
//! callbacks, a name and perhaps a logo — and small enough that a registration record stays in
//! the low tens of KiB even when every member is at its bound.
//!
//! **Unknown members** are not bounded here because they are never kept: [`OAuthClientMetadata`]
//! has no catch-all member, so serde drops every member it does not know while parsing (RFC 7591
//! §2: the server "MUST ignore any client metadata sent by the client that it does not
//! understand"). The stored record, the cached record and the registration response hold only
//! the members listed on the type, each bounded below. The request body limit bounds what
//! parsing the dropped members costs. Dropping rather than refusing keeps clients that send
//! extension metadata (`software_statement`, OIDC members) working.

use crate::{GrantType, OAuthClientMetadata, RegistrationErrorCode, ResponseType};

/// At most this many `redirect_uris`: a native client needs one loopback URI (any port matches,
/// RFC 8252 §7.3), a web client one per deployment; 20 leaves ample room.
pub const MAX_REDIRECT_URIS: usize = 20;

/// At most this many bytes in any URI member (`redirect_uris` entries, `client_uri`, `logo_uri`,
/// `tos_uri`, `policy_uri`, `jwks_uri`): 2 KiB is the longest URL every common browser and
/// proxy handles, and far longer than any real callback or home page.
pub const MAX_URI_BYTES: usize = 2 * 1024;

/// At most this many `contacts`: a team alias or a few people.
pub const MAX_CONTACTS: usize = 10;

/// At most this many characters (Unicode scalar values) in a human-readable string:
/// `client_name`, each of `contacts`, `software_id`, `software_version`. Long enough for any
/// product name or e-mail address, short enough to show on a consent page.
pub const MAX_HUMAN_STRING_CHARS: usize = 200;

/// At most this many bytes in a value of an open vocabulary (`grant_types`, `response_types`,
/// `token_endpoint_auth_method`, `application_type`): the longest registered grant type URN
/// is under 60 bytes, so 256 only refuses junk, which would otherwise be stored in the `Other`
/// variant.
pub const MAX_VOCABULARY_BYTES: usize = 256;

/// At most this many entries in `grant_types` and in `response_types`: the server knows four
/// grant types and one response type; 8 leaves room for harmless extensions.
pub const MAX_GRANT_TYPES: usize = 8;

/// See [`MAX_GRANT_TYPES`].
pub const MAX_RESPONSE_TYPES: usize = 8;

/// At most this many scope-tokens in `scope` (and in a `scope` request parameter): MCP servers
/// define a handful of scopes; 64 is an order of magnitude more.
pub const MAX_SCOPE_TOKENS: usize = 64;

/// At most this many bytes in one scope-token (scope-tokens are ASCII, RFC 6749 §3.3, so
/// bytes are characters). Names like `mcp:tools:read` are far shorter.
pub const MAX_SCOPE_TOKEN_BYTES: usize = 128;

/// At most this many bytes in a whole `scope` string: every token at its bound, each with a
/// separating space. Bounding the string too means padding with spaces cannot make it longer.
pub const MAX_SCOPE_BYTES: usize = MAX_SCOPE_TOKENS * (MAX_SCOPE_TOKEN_BYTES + 1);

/// At most this many keys in an inline `jwks`: a client rotating keys needs two or three. Every
/// key may be tried on every assertion that names none, so the count bounds that work too.
pub const MAX_JWKS_KEYS: usize = 10;

/// At most this many bytes in an inline `jwks`, serialised: ten 4096-bit RSA keys with their
/// members fit in about 8 KiB.
pub const MAX_JWKS_BYTES: usize = 16 * 1024;

/// Whether `value` holds a control character: C0 (U+0000–U+001F, NUL included), DEL (U+007F)
/// or C1 (U+0080–U+009F) — Unicode general category `Cc`.
///
/// No identifier, URI, scope, state or human-readable string of OAuth has a use for one: URIs
/// and scope-tokens cannot contain them (RFC 3986 §2, RFC 6749 §3.3), `state` and codes are
/// `VSCHAR`s (RFC 6749 Appendix A), and in a name they serve only to forge log lines or
/// disguise text. PostgreSQL refuses NUL in `text` columns, so letting one through would turn
/// a malformed request into a storage failure.
pub fn contains_control_character(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// Why client metadata exceeds a bound of this module.
///
/// The `Display` text names the member and the bound, for `error_description`; it never quotes
/// the offending value, which may be large or hold control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataLimitError {
    /// A list member has more entries than allowed.
    #[error("{field} has {count} entries; at most {max} are accepted")]
    TooManyEntries {
        /// The member, e.g. `redirect_uris` or `jwks.keys`.
        field: &'static str,
        /// How many entries it has.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A value is longer than allowed.
    #[error("{field}{} is longer than {max} {unit}", Index(*index))]
    TooLong {
        /// The member.
        field: &'static str,
        /// The entry of a list member, counted from 0.
        index: Option<usize>,
        /// The bound.
        max: usize,
        /// What the bound counts: `bytes` or `characters`.
        unit: &'static str,
    },
    /// A value holds a control character ([`contains_control_character`]).
    #[error("{field}{} contains a control character", Index(*index))]
    ControlCharacter {
        /// The member.
        field: &'static str,
        /// The entry of a list member, counted from 0.
        index: Option<usize>,
    },
    /// A key set of more than one key has a key without a `kid`, so an assertion could not
    /// name the key that verifies it and every key would have to be tried.
    #[error(
        "jwks.keys[{index}] has no kid; every key needs one when the set has more than one key"
    )]
    KeyWithoutKid {
        /// The key, counted from 0.
        index: usize,
    },
}

/// `[i]` after a list member's name, nothing for a single value.
struct Index(Option<usize>);

impl std::fmt::Display for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(index) => write!(f, "[{index}]"),
            None => Ok(()),
        }
    }
}

impl MetadataLimitError {
    /// The member the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::TooManyEntries { field, .. }
            | Self::TooLong { field, .. }
            | Self::ControlCharacter { field, .. } => field,
            Self::KeyWithoutKid { .. } => "jwks",
        }
    }

    /// The RFC 7591 §3.2.2 code to refuse a registration with: `invalid_redirect_uri` for a
    /// redirect URI, `invalid_client_metadata` for everything else.
    pub fn code(&self) -> RegistrationErrorCode {
        if self.field() == "redirect_uris" {
            RegistrationErrorCode::InvalidRedirectUri
        } else {
            RegistrationErrorCode::InvalidClientMetadata
        }
    }
}

impl OAuthClientMetadata {
    /// Checks every member against the bounds of [`crate::limits`] and refuses control
    /// characters in every string, the key set's included. Call it before any other check and
    /// before storing: the registration endpoint does, and so should anything that accepts
    /// metadata from a client (a Client ID Metadata Document resolver).
    ///
    /// The work is linear in the size of the metadata and allocates nothing.
    pub fn check_limits(&self) -> Result<(), MetadataLimitError> {
        if let Some(uris) = &self.redirect_uris {
            list(
                "redirect_uris",
                uris.iter().map(String::as_str),
                uris.len(),
                MAX_REDIRECT_URIS,
                Bound::Bytes(MAX_URI_BYTES),
            )?;
        }
        for (field, value) in [
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("tos_uri", &self.tos_uri),
            ("policy_uri", &self.policy_uri),
            ("jwks_uri", &self.jwks_uri),
        ] {
            optional(field, value.as_deref(), Bound::Bytes(MAX_URI_BYTES))?;
        }
        for (field, value) in [
            ("client_name", &self.client_name),
            ("software_id", &self.software_id),
            ("software_version", &self.software_version),
        ] {
            optional(
                field,
                value.as_deref(),
                Bound::Chars(MAX_HUMAN_STRING_CHARS),
            )?;
        }
        if let Some(contacts) = &self.contacts {
            list(
                "contacts",
                contacts.iter().map(String::as_str),
                contacts.len(),
                MAX_CONTACTS,
                Bound::Chars(MAX_HUMAN_STRING_CHARS),
            )?;
        }
        optional(
            "application_type",
            self.application_type.as_deref(),
            Bound::Bytes(MAX_VOCABULARY_BYTES),
        )?;
        optional(
            "token_endpoint_auth_method",
            self.token_endpoint_auth_method.as_ref().map(|m| m.as_str()),
            Bound::Bytes(MAX_VOCABULARY_BYTES),
        )?;
        list(
            "grant_types",
            self.grant_types.iter().map(GrantType::as_str),
            self.grant_types.len(),
            MAX_GRANT_TYPES,
            Bound::Bytes(MAX_VOCABULARY_BYTES),
        )?;
        list(
            "response_types",
            self.response_types.iter().map(ResponseType::as_str),
            self.response_types.len(),
            MAX_RESPONSE_TYPES,
            Bound::Bytes(MAX_VOCABULARY_BYTES),
        )?;
        if let Some(scope) = &self.scope {
            check_scope("scope", scope)?;
        }
        if let Some(jwks) = &self.jwks {
            check_jwks(jwks)?;
        }
        Ok(())
    }
}

/// Checks a space-separated `scope` value: no control character, at most [`MAX_SCOPE_BYTES`]
/// bytes, [`MAX_SCOPE_TOKENS`] tokens and [`MAX_SCOPE_TOKEN_BYTES`] bytes per token. `field`
/// names the member or parameter in the error. Linear, allocation-free.
pub fn check_scope(field: &'static str, scope: &str) -> Result<(), MetadataLimitError> {
    one(field, None, scope, Bound::Bytes(MAX_SCOPE_BYTES))?;
    let mut count = 0;
    for token in scope.split(' ').filter(|token| !token.is_empty()) {
        count += 1;
        if count > MAX_SCOPE_TOKENS {
            return Err(MetadataLimitError::TooManyEntries {
                field,
                count: scope.split(' ').filter(|t| !t.is_empty()).count(),
                max: MAX_SCOPE_TOKENS,
            });
        }
        if token.len() > MAX_SCOPE_TOKEN_BYTES {
            return Err(MetadataLimitError::TooLong {
                field,
                index: Some(count - 1),
                max: MAX_SCOPE_TOKEN_BYTES,
                unit: "bytes",
            });
        }
    }
    Ok(())
}

/// How long a string may be.
#[derive(Clone, Copy)]
enum Bound {
    Bytes(usize),
    Chars(usize),
}

fn one(
    field: &'static str,
    index: Option<usize>,
    value: &str,
    bound: Bound,
) -> Result<(), MetadataLimitError> {
    let (too_long, max, unit) = match bound {
        Bound::Bytes(max) => (value.len() > max, max, "bytes"),
        // A string of at most `max` bytes has at most `max` characters: count only when needed.
        Bound::Chars(max) => (
            value.len() > max && value.chars().count() > max,
            max,
            "characters",
        ),
    };
    if too_long {
        return Err(MetadataLimitError::TooLong {
            field,
            index,
            max,
            unit,
        });
    }
    if contains_control_character(value) {
        return Err(MetadataLimitError::ControlCharacter { field, index });
    }
    Ok(())
}

fn optional(
    field: &'static str,
    value: Option<&str>,
    bound: Bound,
) -> Result<(), MetadataLimitError> {
    value.map_or(Ok(()), |value| one(field, None, value, bound))
}

fn list<'a>(
    field: &'static str,
    values: impl Iterator<Item = &'a str>,
    count: usize,
    max: usize,
    bound: Bound,
) -> Result<(), MetadataLimitError> {
    if count > max {
        return Err(MetadataLimitError::TooManyEntries { field, count, max });
    }
    for (index, value) in values.enumerate() {
        one(field, Some(index), value, bound)?;
    }
    Ok(())
}

/// An inline key set: at most [`MAX_JWKS_BYTES`] serialised, at most [`MAX_JWKS_KEYS`] keys,
/// a `kid` on every key when there is more than one, no control character in any string.
fn check_jwks(jwks: &serde_json::Value) -> Result<(), MetadataLimitError> {
    let mut size = ByteCount(0);
    // Serialising a `Value` into a counter cannot fail; were it to, the count is still a
    // lower bound, and the checks below still run.
    let _ = serde_json::to_writer(&mut size, jwks);
    if size.0 > MAX_JWKS_BYTES {
        return Err(MetadataLimitError::TooLong {
            field: "jwks",
            index: None,
            max: MAX_JWKS_BYTES,
            unit: "bytes",
        });
    }
    if !strings_are_clean(jwks) {
        return Err(MetadataLimitError::ControlCharacter {
            field: "jwks",
            index: None,
        });
    }
    let Some(keys) = jwks.get("keys").and_then(serde_json::Value::as_array) else {
        // Not a key set: whether that is acceptable is for the authentication-method checks.
        return Ok(());
    };
    if keys.len() > MAX_JWKS_KEYS {
        return Err(MetadataLimitError::TooManyEntries {
            field: "jwks.keys",
            count: keys.len(),
            max: MAX_JWKS_KEYS,
        });
    }
    if keys.len() > 1 {
        let named = |key: &serde_json::Value| {
            key.get("kid")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|kid| !kid.is_empty())
        };
        if let Some(index) = keys.iter().position(|key| !named(key)) {
            return Err(MetadataLimitError::KeyWithoutKid { index });
        }
    }
    Ok(())
}

/// Whether no string (member name or value) anywhere in `value` holds a control character.
/// Recursion is bounded by the nesting serde_json accepts when parsing (128 levels).
fn strings_are_clean(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => !contains_control_character(s),
        serde_json::Value::Array(items) => items.iter().all(strings_are_clean),
        serde_json::Value::Object(members) => members
            .iter()
            .all(|(name, value)| !contains_control_character(name) && strings_are_clean(value)),
        _ => true,
    }
}

/// A writer that only counts bytes.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
