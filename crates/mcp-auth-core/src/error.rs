//! Errors a provider returns to the handlers.
//!
//! A provider either rejects a request with a code its endpoint may send (carried to the client
//! with an optional description), or fails internally. An internal failure becomes a generic
//! `server_error` / `temporarily_unavailable` for the client; its cause goes to the logs only.

use std::error::Error as StdError;

use mcp_auth_types::{AuthorizeErrorCode, RegistrationErrorCode, TokenErrorCode};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of internal failure happened; decides between `temporarily_unavailable` (503) and
/// `server_error` (500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderErrorKind {
    /// A dependency (database, cache, network) is unreachable; retrying later may succeed.
    Unavailable,
    /// Anything else.
    Internal,
}

/// An internal failure of a provider or verifier. Never shown to the client.
#[derive(Debug, thiserror::Error)]
#[error("{}", match .kind { ProviderErrorKind::Unavailable => "a dependency of the provider is unavailable", ProviderErrorKind::Internal => "internal provider failure" })]
pub struct ProviderError {
    kind: ProviderErrorKind,
    #[source]
    source: BoxError,
}

impl ProviderError {
    /// A failure of kind `kind` caused by `source`.
    pub fn new(kind: ProviderErrorKind, source: impl Into<BoxError>) -> Self {
        Self {
            kind,
            source: source.into(),
        }
    }

    /// A dependency is unavailable.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::new(ProviderErrorKind::Unavailable, source)
    }

    /// Any other internal failure.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self::new(ProviderErrorKind::Internal, source)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ProviderErrorKind {
        self.kind
    }
}

macro_rules! endpoint_error {
    ($(#[$meta:meta])* $name:ident, $code:ty) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        #[non_exhaustive]
        pub enum $name {
            /// The request is refused with an error code the endpoint may send.
            #[error("request rejected with {code}")]
            Rejected {
                /// The error code.
                code: $code,
                /// Detail for the client developer; never a secret.
                description: Option<String>,
            },
            /// The provider failed; the client sees only a generic server error.
            #[error(transparent)]
            Provider(#[from] ProviderError),
        }

        impl $name {
            /// A rejection with a description.
            pub fn new(code: $code, description: impl Into<String>) -> Self {
                Self::Rejected { code, description: Some(description.into()) }
            }

            /// A rejection without a description.
            pub fn code(code: $code) -> Self {
                Self::Rejected { code, description: None }
            }
        }

        impl From<$crate::StorageError> for $name {
            fn from(error: $crate::StorageError) -> Self {
                Self::Provider(error.into())
            }
        }
    };
}

endpoint_error!(
    /// A failed authorization request (RFC 6749 §4.1.2.1).
    AuthorizeError,
    AuthorizeErrorCode
);
endpoint_error!(
    /// A failed token request (RFC 6749 §5.2).
    TokenError,
    TokenErrorCode
);
endpoint_error!(
    /// A failed client registration (RFC 7591 §3.2.2).
    RegistrationError,
    RegistrationErrorCode
);

/// What kind of storage failure happened; backends map their driver's errors onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// A uniqueness or state conflict: the key exists, or the record changed underneath.
    Conflict,
    /// The backend cannot be reached (connection refused, pool timeout, server shutting down).
    Unavailable,
    /// Anything else: corrupt data, a failed migration, a driver bug.
    Other,
}

/// A failure of a storage backend. Backends never see OAuth error codes; the provider maps this
/// to `server_error` or `temporarily_unavailable`.
#[derive(Debug, thiserror::Error)]
#[error("{}", match .kind { StorageErrorKind::Conflict => "storage conflict", StorageErrorKind::Unavailable => "storage unavailable", StorageErrorKind::Other => "storage failure" })]
pub struct StorageError {
    kind: StorageErrorKind,
    #[source]
    source: BoxError,
}

impl StorageError {
    /// A failure of kind `kind` caused by `source`.
    pub fn new(kind: StorageErrorKind, source: impl Into<BoxError>) -> Self {
        Self {
            kind,
            source: source.into(),
        }
    }

    /// A conflict.
    pub fn conflict(source: impl Into<BoxError>) -> Self {
        Self::new(StorageErrorKind::Conflict, source)
    }

    /// The backend is unreachable.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::new(StorageErrorKind::Unavailable, source)
    }

    /// Any other failure.
    pub fn other(source: impl Into<BoxError>) -> Self {
        Self::new(StorageErrorKind::Other, source)
    }

    /// The kind of failure.
    pub fn kind(&self) -> StorageErrorKind {
        self.kind
    }
}

impl From<StorageError> for ProviderError {
    fn from(error: StorageError) -> Self {
        let kind = match error.kind {
            StorageErrorKind::Unavailable => ProviderErrorKind::Unavailable,
            _ => ProviderErrorKind::Internal,
        };
        ProviderError::new(kind, error)
    }
}

/// An error and every cause in its [`source()`](StdError::source) chain, for logs: the
/// messages joined by `": "`, a cause whose message already ends the text before it (the
/// `"{context}: {source}"` pattern) not repeated, at most
/// [`MAX_ERROR_CHAIN_DEPTH`](crate::limits::MAX_ERROR_CHAIN_DEPTH) causes.
///
/// ```
/// # use mcp_auth_core::{ErrorChain, StorageError};
/// let err = StorageError::unavailable(std::io::Error::other("database is locked"));
/// assert_eq!(ErrorChain(&err).to_string(), "storage unavailable: database is locked");
/// // tracing::error!(error = %ErrorChain(&err), "cannot issue tokens");
/// ```
///
/// The errors of this workspace carry no secrets (credentials reach storage only as hashes,
/// store URLs are redacted before they reach an error), so the chain is safe to log.
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn StdError + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut previous = self.0.to_string();
        f.write_str(&previous)?;
        let mut cause = self.0.source();
        for _ in 0..crate::limits::MAX_ERROR_CHAIN_DEPTH {
            let Some(source) = cause else {
                return Ok(());
            };
            let message = source.to_string();
            if !previous.ends_with(&message) {
                write!(f, ": {message}")?;
            }
            previous = message;
            cause = source.source();
        }
        if cause.is_some() {
            f.write_str(": …")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Invalid configuration, found when settings are built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The issuer URL breaks RFC 8414 §2.
    #[error("invalid issuer URL: {0}")]
    Issuer(#[from] mcp_auth_types::IssuerUrlError),
    /// A URL setting is not an absolute http(s) URL without fragment.
    #[error("invalid {setting}: {reason}")]
    Url {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Default scopes must be among the valid scopes.
    #[error("default scope {0:?} is not among the valid scopes")]
    DefaultScopeNotValid(String),
    /// Step-up scopes must be among the valid scopes.
    #[error("step-up scope {0:?} is not among the valid scopes")]
    StepUpScopeNotValid(String),
    /// A lifetime is out of its allowed range.
    #[error("{setting} must be between {min} and {max} seconds, got {value}")]
    Lifetime {
        /// The setting.
        setting: &'static str,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
        /// The value given.
        value: u64,
    },
    /// Any other inconsistency.
    #[error("{0}")]
    Invalid(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_unavailability_stays_unavailable_for_the_provider() {
        let err: ProviderError = StorageError::unavailable("connection refused").into();
        assert_eq!(err.kind(), ProviderErrorKind::Unavailable);
        let err: ProviderError = StorageError::conflict("dup").into();
        assert_eq!(err.kind(), ProviderErrorKind::Internal);
        let token: TokenError = StorageError::other("x").into();
        assert!(matches!(token, TokenError::Provider(_)));
    }

    #[test]
    fn error_chain_prints_every_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open the store: {0}")]
        struct Quoting(#[source] std::io::Error);

        let io = || std::io::Error::other("database is locked");
        let cases: [(&(dyn StdError + 'static), &str); 3] = [
            (&io(), "database is locked"),
            (
                &StorageError::unavailable(io()),
                "storage unavailable: database is locked",
            ),
            (&Quoting(io()), "cannot open the store: database is locked"),
        ];
        for (err, expected) in cases {
            assert_eq!(ErrorChain(err).to_string(), expected);
        }
        let provider: ProviderError = StorageError::other(io()).into();
        let token = TokenError::from(provider);
        assert_eq!(
            ErrorChain(&token).to_string(),
            "internal provider failure: storage failure: database is locked"
        );
    }

    #[test]
    fn error_chain_stops_after_its_depth_limit() {
        #[derive(Debug)]
        struct Endless;
        impl std::fmt::Display for Endless {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("again")
            }
        }
        impl StdError for Endless {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&Endless)
            }
        }
        let text = ErrorChain(&Endless).to_string();
        assert!(text.ends_with(": …"), "{text}");
        assert!(text.len() < 16 * crate::limits::MAX_ERROR_CHAIN_DEPTH);
    }

    #[test]
    fn source_chain_is_kept_for_logs() {
        let err = ProviderError::internal("disk full");
        assert_eq!(err.to_string(), "internal provider failure");
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("disk full")
        );
    }
}
