//! Sign-in users: argon2id hashes made at start-up, verified off the async runtime.

use std::collections::HashMap;
use std::sync::Arc;

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use mcp_auth_core::secrets::random_secret;
use tokio::sync::Semaphore;

use crate::config::UserCredentials;

/// Why the users could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// argon2 refused to hash (it does so only for out-of-range parameters).
    #[error("cannot hash the password of user {name:?}: {reason}")]
    Hash {
        /// The user.
        name: String,
        /// argon2's message.
        reason: String,
    },
}

/// The sign-in users, each known only by an argon2id hash (PHC string, OWASP default
/// parameters: 19 MiB, 2 passes). The clear-text passwords are gone once [`Users::hash`]
/// returns.
pub(crate) struct Users {
    hashes: HashMap<String, PasswordHash>,
    /// Password checks running at once ([`Limits::password_hashing_concurrency`]): each costs
    /// ~20 ms of CPU and 19 MiB, so unbounded concurrent guesses would take the memory of the
    /// host (48 at once once took RSS from 0.3 to 1.9 GiB).
    ///
    /// [`Limits::password_hashing_concurrency`]: crate::limits::Limits::password_hashing_concurrency
    checks: Arc<Semaphore>,
    /// How long a check waits for a free slot before the sign-in answers 503.
    check_wait: Duration,
    /// The hash an unknown user name is checked against, so that a wrong name costs as much
    /// time as a wrong password and timing does not reveal which names exist.
    dummy: PasswordHash,
}

/// Names only: hashes are not secret in the RFC sense, but there is no reason to print them.
impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("names", &self.hashes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Users {
    /// Hashes every user's password (argon2id, a fresh random salt each), consuming the
    /// clear text.
    /// `concurrency` checks run at once; a check waits at most `check_wait` for its turn.
    pub(crate) fn hash(
        credentials: Vec<UserCredentials>,
        concurrency: usize,
        check_wait: Duration,
    ) -> Result<Self, UsersError> {
        let argon2 = Argon2::default();
        let hash = |name: &str, password: &str| {
            argon2
                .hash_password(password.as_bytes())
                .map_err(|err| UsersError::Hash {
                    name: name.to_owned(),
                    reason: err.to_string(),
                })
        };
        let mut hashes = HashMap::with_capacity(credentials.len());
        for user in credentials {
            let phc = hash(&user.name, user.expose_password())?;
            hashes.insert(user.name.clone(), phc);
        }
        let dummy = hash("(dummy)", &random_secret())?;
        Ok(Self {
            hashes,
            dummy,
            checks: Arc::new(Semaphore::new(concurrency.max(1))),
            check_wait,
        })
    }

    /// How many users can sign in.
    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether nobody can sign in.
    pub(crate) fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `password` is `name`'s. Runs argon2 on the blocking pool (it takes tens of
    /// milliseconds of CPU) and always runs it once, for unknown names too; `Err(Busy)` when
    /// no check slot freed up in time.
    pub(crate) async fn verify(
        self: &Arc<Self>,
        name: String,
        password: String,
    ) -> Result<bool, Busy> {
        let permit =
            tokio::time::timeout(self.check_wait, Arc::clone(&self.checks).acquire_owned())
                .await
                .map_err(|_| Busy)?
                .map_err(|_| Busy)?;
        let users = Arc::clone(self);
        let verified = tokio::task::spawn_blocking(move || {
            // Held until argon2 returns, even if the request that asked is gone.
            let _permit = permit;
            let (hash, known) = match users.hashes.get(&name) {
                Some(hash) => (hash, true),
                None => (&users.dummy, false),
            };
            let matches = Argon2::default()
                .verify_password(password.as_bytes(), hash)
                .is_ok();
            known && matches
        })
        .await;
        // A panic inside argon2 would be a bug; refusing the sign-in is the safe answer.
        Ok(verified.unwrap_or(false))
    }
}

/// Every password-check slot stayed taken for the whole wait: the sign-in answers 503 with
/// `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_only_the_right_password_of_a_known_user() {
        let users = Arc::new(
            Users::hash(
                vec![
                    UserCredentials::parse("alice:correct horse").unwrap(),
                    UserCredentials::parse("bob:b").unwrap(),
                ],
                2,
                Duration::from_secs(10),
            )
            .unwrap(),
        );
        assert_eq!(users.len(), 2);
        assert_eq!(
            users.verify("alice".into(), "correct horse".into()).await,
            Ok(true)
        );
        assert_eq!(users.verify("alice".into(), "b".into()).await, Ok(false));
        assert_eq!(
            users.verify("bob".into(), "correct horse".into()).await,
            Ok(false)
        );
        assert_eq!(users.verify("carol".into(), "".into()).await, Ok(false));
        assert!(!format!("{users:?}").contains("argon2"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_checks_beyond_the_bound_wait_then_answer_busy() {
        let users = Arc::new(
            Users::hash(
                vec![UserCredentials::parse("alice:pw").unwrap()],
                1,
                Duration::from_millis(1),
            )
            .unwrap(),
        );
        // Hold the only slot, as a check in progress would.
        let held = Arc::clone(&users.checks).acquire_owned().await.unwrap();
        assert_eq!(users.verify("alice".into(), "pw".into()).await, Err(Busy));
        drop(held);
        assert_eq!(users.verify("alice".into(), "pw".into()).await, Ok(true));
    }
}
