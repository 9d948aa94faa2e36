//! What access tokens look like: opaque, or RFC 9068 JWTs with the signing-key settings.

use std::path::{Path, PathBuf};

use mcp_auth_jwt::SigningAlgorithm;

use super::{Args, ConfigError, FileSettings, invalid};

/// `--access-token-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AccessTokenFormat {
    /// 256 random bits; only this server (and instances sharing its store) can check them, or
    /// resource servers through `/introspect`.
    #[default]
    Opaque,
    /// RFC 9068 JWTs signed with a key kept in the store and published at
    /// `/.well-known/jwks.json`; still stored, so revocation and introspection work as for
    /// opaque tokens.
    Jwt,
}

/// Default days a signing key signs.
pub const DEFAULT_SIGNING_KEY_ROTATION_DAYS: u64 = 30;

/// The access-token settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenSettings {
    /// Opaque or JWT.
    pub format: AccessTokenFormat,
    /// The algorithm of new signing keys (JWT only).
    pub signing_alg: SigningAlgorithm,
    /// Days a signing key signs before the next one takes over (JWT only).
    pub rotation_days: u64,
    /// The deployment's secret, which seals private signing keys in the store; read at start.
    pub secret_key_file: Option<PathBuf>,
}

impl Default for AccessTokenSettings {
    fn default() -> Self {
        Self {
            format: AccessTokenFormat::Opaque,
            signing_alg: SigningAlgorithm::ES256,
            rotation_days: DEFAULT_SIGNING_KEY_ROTATION_DAYS,
            secret_key_file: None,
        }
    }
}

/// `--access-token-format` and the signing-key flags: flag or variable, else the file. Signing
/// settings without JWT access tokens would be silently ignored, so they are refused; the
/// secret key also seals the OpenID Connect sign-in cookies (`oidc`).
pub(super) fn access_tokens(
    args: &Args,
    file: &FileSettings,
    file_dir: Option<&Path>,
    oidc: bool,
) -> Result<AccessTokenSettings, ConfigError> {
    let format = args
        .access_token_format
        .or(file.access_token_format)
        .unwrap_or_default();
    let signing_alg = args
        .signing_alg
        .clone()
        .or_else(|| file.signing_alg.clone());
    let rotation_days = args
        .signing_key_rotation_days
        .or(file.signing_key_rotation_days);
    let secret_key_file = args.secret_key_file.clone().or_else(|| {
        file.secret_key_file.clone().map(|path| match file_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        })
    });
    if format == AccessTokenFormat::Opaque {
        for (setting, given) in [
            ("--signing-alg", signing_alg.is_some()),
            ("--signing-key-rotation-days", rotation_days.is_some()),
            ("--secret-key-file", secret_key_file.is_some() && !oidc),
        ] {
            if given {
                return Err(invalid(
                    setting,
                    "has no effect without --access-token-format jwt (or --oidc-issuer for the \
                     secret key)",
                ));
            }
        }
    }
    let signing_alg = match signing_alg {
        None => SigningAlgorithm::ES256,
        Some(name) => SigningAlgorithm::parse(&name).ok_or_else(|| {
            invalid(
                "--signing-alg",
                format!("{name:?} is not one of ES256, EdDSA, RS256, PS256, ES384"),
            )
        })?,
    };
    let rotation_days = rotation_days.unwrap_or(DEFAULT_SIGNING_KEY_ROTATION_DAYS);
    if !(1..=365).contains(&rotation_days) {
        return Err(invalid(
            "--signing-key-rotation-days",
            "between 1 and 365 days",
        ));
    }
    Ok(AccessTokenSettings {
        format,
        signing_alg,
        rotation_days,
        secret_key_file,
    })
}
