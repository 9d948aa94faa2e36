//! `--store`: which backend, and its URL with every secret redacted for logs.

use super::{ConfigError, DEFAULT_SQLITE_ACCESS_TOKEN_CACHE_TTL, invalid};

/// Where the server keeps clients, codes and tokens (`--store`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// In process; everything is lost on exit.
    Memory,
    /// A SQLite database, the URL as given (`sqlite://PATH`, `sqlite:PATH`).
    Sqlite(String),
    /// A PostgreSQL database (`postgres://` or `postgresql://`).
    Postgres(String),
    /// A Redis server (`redis://` or `rediss://`).
    Redis(String),
}

impl StoreUrl {
    /// The backend's name, as metrics label it.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
            Self::Redis(_) => "redis",
        }
    }

    /// The access-token cache a store gets unless configured: SQLite is a local file that one
    /// server process writes, so the cache sees every revocation at once (30 s only bounds the
    /// rare second process on the same file); Postgres and Redis exist to be shared by several
    /// instances, whose revocations a cache would see late, so it is theirs to opt into; the
    /// in-memory store needs none.
    pub fn default_access_token_cache_ttl(&self) -> u64 {
        match self {
            Self::Sqlite(_) => DEFAULT_SQLITE_ACCESS_TOKEN_CACHE_TTL,
            Self::Memory | Self::Postgres(_) | Self::Redis(_) => 0,
        }
    }

    /// Parses `--store`.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme);
        match scheme.map(str::to_ascii_lowercase).as_deref() {
            None if url == "memory" => Ok(Self::Memory),
            Some("sqlite") => Ok(Self::Sqlite(url.to_owned())),
            Some("postgres" | "postgresql") => Ok(Self::Postgres(url.to_owned())),
            Some("redis" | "rediss") => Ok(Self::Redis(url.to_owned())),
            _ => Err(invalid(
                "--store",
                "expected memory, sqlite://PATH, postgres://… or redis://…",
            )),
        }
    }

    /// The URL with any password replaced by `***`, for logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            Self::Memory => "memory".to_owned(),
            Self::Sqlite(url) => url.clone(),
            Self::Postgres(url) | Self::Redis(url) => match url::Url::parse(url) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        // Only fails for URLs that cannot have a password.
                        let _ = parsed.set_password(Some("***"));
                    }
                    // libpq and the Redis client also take credentials as query parameters
                    // (`?password=…`, `?sslpassword=…`): redact every parameter whose name
                    // says it holds a secret.
                    if parsed.query().is_some() {
                        let pairs: Vec<(String, String)> = parsed
                            .query_pairs()
                            .map(|(name, value)| {
                                let secret = is_secret_parameter(&name);
                                let value = if secret {
                                    "***".to_owned()
                                } else {
                                    value.into_owned()
                                };
                                (name.into_owned(), value)
                            })
                            .collect();
                        parsed.query_pairs_mut().clear().extend_pairs(pairs);
                    }
                    parsed.into()
                }
                Err(_) => "(unparsable URL)".to_owned(),
            },
        }
    }
}

/// Whether a store-URL query parameter carries a secret (`password`, `sslpassword`,
/// `auth_token`, `secret`, …).
fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "auth"]
        .iter()
        .any(|word| name.contains(word))
}

/// Redacted: a database URL may carry a password.
impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}
