//! The administration commands of the binary (`user`, `client`, `grant`): they open the
//! configured `--store`, act through a provider (so revocations follow the same rules, and
//! reach the audit log, as the server's own) and print what they did.

use std::io::Write;
use std::sync::Arc;

use mcp_auth_core::{StoreProvider, UserRecord, audit};

use crate::config::{AdminCommand, ClientCommand, Config, GrantCommand, UserCommand};
use crate::store::{self, DynStorage, StoreError};

/// The longest user name (the sign-in form refuses longer ones).
pub(crate) const MAX_USER_NAME_BYTES: usize = 256;

/// Why a command failed. The exit status is 1 for [`Missing`](Self::Missing) and 2 otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store failed during the command.
    #[error("the store failed: {0}")]
    Storage(#[from] mcp_auth_core::StorageError),
    /// The provider failed during the command.
    #[error("the store failed: {0}")]
    Provider(#[from] mcp_auth_core::ProviderError),
    /// The provider could not be set up from the settings.
    #[error("invalid settings: {0}")]
    Settings(#[from] mcp_auth_core::ConfigError),
    /// What the command names does not exist (or already exists, for `user add`).
    #[error("{0}")]
    Missing(String),
    /// The input was refused.
    #[error("{0}")]
    Invalid(String),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// A user name an administrator may give: non-empty text of at most
/// [`MAX_USER_NAME_BYTES`], without control characters or `:` (which `--user NAME:…` splits
/// at), so that the same names work in both places.
pub(crate) fn check_user_name(name: &str) -> Result<(), AdminError> {
    if name.is_empty()
        || name.len() > MAX_USER_NAME_BYTES
        || name.contains(':')
        || name.chars().any(char::is_control)
    {
        return Err(AdminError::Invalid(format!(
            "{name:?} is not a user name: 1 to {MAX_USER_NAME_BYTES} bytes of text, no ':'"
        )));
    }
    Ok(())
}

/// Runs `command` against the store `config` names, reading a password with `password` when
/// the command needs one, and writing its report to `out`.
pub async fn run(
    config: &Config,
    command: &AdminCommand,
    password: impl FnOnce() -> Result<String, String>,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if config.store == crate::config::StoreUrl::Memory {
        return Err(AdminError::Invalid(
            "--store memory keeps nothing between processes: give the server's --store".to_owned(),
        ));
    }
    let storage = store::open(&config.store).await?;
    let provider = provider(config, Arc::clone(&storage))?;
    match command {
        AdminCommand::User(command) => user(&storage, &provider, command, password, out).await,
        AdminCommand::Client(command) => client(&storage, &provider, command, out).await,
        AdminCommand::Grant(command) => grant(&provider, command, out).await,
    }
}

/// A provider over `storage` with the server's lifetimes, so that a revocation stays marked
/// as long as the server would keep it.
fn provider(config: &Config, storage: DynStorage) -> Result<StoreProvider<DynStorage>, AdminError> {
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.bind));
    Ok(StoreProvider::builder(storage, issuer)
        .access_token_ttl(config.access_token_ttl)
        .grant_lifetime(Some(config.grant_lifetime_days * 24 * 3600))
        .build()?)
}

fn now() -> i64 {
    mcp_auth_core::Clock::now(&mcp_auth_core::SystemClock)
}

async fn user(
    storage: &DynStorage,
    provider: &StoreProvider<DynStorage>,
    command: &UserCommand,
    password: impl FnOnce() -> Result<String, String>,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match command {
        UserCommand::Add { name } => {
            check_user_name(name)?;
            if storage.get_user(name).await?.is_some() {
                return Err(AdminError::Missing(format!("user {name:?} exists")));
            }
            let hash = hash(password)?;
            if !storage
                .insert_user(&UserRecord::new(name, hash, now()))
                .await?
            {
                return Err(AdminError::Missing(format!("user {name:?} exists")));
            }
            mcp_auth_core::audit_event!(audit::USER_ADDED, user = %name, by = "administrator");
            writeln!(out, "added user {name}")?;
        }
        UserCommand::Passwd { name } => {
            check_user_name(name)?;
            if storage.get_user(name).await?.is_none() {
                return Err(AdminError::Missing(format!(
                    "no user {name:?} in the store"
                )));
            }
            let hash = hash(password)?;
            if !storage.set_user_password(name, &hash).await? {
                return Err(AdminError::Missing(format!(
                    "no user {name:?} in the store"
                )));
            }
            mcp_auth_core::audit_event!(
                audit::USER_PASSWORD_CHANGED,
                user = %name,
                by = "administrator"
            );
            writeln!(out, "changed the password of {name}")?;
        }
        UserCommand::List => {
            for user in storage.list_users().await? {
                writeln!(out, "{}\tadded {}", user.name, timestamp(user.created_at))?;
            }
        }
        UserCommand::Remove { name } => {
            let removed = storage.delete_user(name).await?;
            // Its grants go whether or not it was in the store: a `--user` of that name may
            // have had them.
            let revoked = provider.revoke_grants(Some(name), None).await?;
            if !removed {
                return Err(AdminError::Missing(format!(
                    "no user {name:?} in the store ({} grants revoked)",
                    revoked.len()
                )));
            }
            mcp_auth_core::audit_event!(
                audit::USER_REMOVED,
                user = %name,
                grants_revoked = revoked.len(),
                by = "administrator",
            );
            writeln!(out, "removed user {name}; revoked {} grants", revoked.len())?;
        }
    }
    Ok(())
}

/// The argon2id PHC string of the password `password` reads.
fn hash(password: impl FnOnce() -> Result<String, String>) -> Result<String, AdminError> {
    let password = password().map_err(AdminError::Invalid)?;
    if password.is_empty() {
        return Err(AdminError::Invalid("the password is empty".to_owned()));
    }
    crate::users::hash_password(password.as_bytes()).map_err(AdminError::Invalid)
}

async fn client(
    storage: &DynStorage,
    provider: &StoreProvider<DynStorage>,
    command: &ClientCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match command {
        ClientCommand::List => {
            for client in storage.list_clients().await? {
                let info = &client.info;
                let method = info
                    .metadata
                    .token_endpoint_auth_method
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |method| format!("{method:?}"));
                let name = info.metadata.client_name.as_deref().unwrap_or("-");
                writeln!(out, "{}\t{}\t{:?}", info.client_id, method, name)?;
            }
        }
        ClientCommand::Show { client_id } => {
            let client = storage
                .get_client(client_id)
                .await?
                .ok_or_else(|| AdminError::Missing(format!("no client {client_id:?}")))?;
            let mut shown = serde_json::to_value(&client.info)
                .map_err(|err| AdminError::Invalid(err.to_string()))?;
            shown["confidential"] = serde_json::Value::Bool(client.secret_hash.is_some());
            let text = serde_json::to_string_pretty(&shown)
                .map_err(|err| AdminError::Invalid(err.to_string()))?;
            writeln!(out, "{text}")?;
        }
        ClientCommand::Remove { client_id } => {
            let Some(grants) = provider.remove_client(client_id).await? else {
                return Err(AdminError::Missing(format!("no client {client_id:?}")));
            };
            writeln!(out, "removed client {client_id}; revoked {grants} grants")?;
        }
    }
    Ok(())
}

async fn grant(
    provider: &StoreProvider<DynStorage>,
    command: &GrantCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match command {
        GrantCommand::List { user, client } => {
            for grant in provider.grants(user.as_deref(), client.as_deref()).await? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\texpires {}",
                    grant.grant_id,
                    grant.client_id,
                    grant.subject.as_deref().unwrap_or("-"),
                    grant.scopes.join(" "),
                    timestamp(grant.expires_at)
                )?;
            }
        }
        GrantCommand::Revoke {
            grant_id,
            user,
            client,
        } => match (grant_id, user, client) {
            (Some(grant_id), None, None) => {
                if !provider.revoke_grant_by_id(grant_id).await? {
                    return Err(AdminError::Missing(format!("no live grant {grant_id:?}")));
                }
                writeln!(out, "revoked grant {grant_id}")?;
            }
            (None, user, client) if user.is_some() || client.is_some() => {
                let revoked = provider
                    .revoke_grants(user.as_deref(), client.as_deref())
                    .await?;
                writeln!(out, "revoked {} grants", revoked.len())?;
            }
            _ => {
                return Err(AdminError::Invalid(
                    "name a GRANT_ID, or --user and/or --client".to_owned(),
                ));
            }
        },
    }
    Ok(())
}

/// Seconds since the epoch as an RFC 3339 UTC time.
fn timestamp(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}
