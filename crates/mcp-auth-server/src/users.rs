//! Sign-in users: argon2id hashes made at start-up, verified off the async runtime.
//!
//! argon2 needs 19 MiB of working memory per hash. Left to the allocator, that block outlives
//! the hash: glibc raises its mmap threshold to the size of the first large block freed, so
//! every later 19 MiB block comes from the heap and stays there, and the idle server kept
//! ~21 MiB of its ~33 MiB RSS from hashing the `--user` passwords. [`argon2id`] hands argon2
//! a block of its own, reserved large enough that every allocator maps it afresh and returns
//! it to the operating system when it is dropped (see
//! [`ARGON2_RETURNED_MEMORY_BYTES`](crate::limits::ARGON2_RETURNED_MEMORY_BYTES)).

use std::collections::HashMap;
use std::sync::Arc;

use std::time::Duration;

use argon2::password_hash::phc::{Output, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, PasswordHash, Version};
use mcp_auth_core::secrets::{constant_time_eq, random_secret};
use tokio::sync::Semaphore;

use crate::config::UserCredentials;
use crate::config::UserSecret;
use crate::limits::{ARGON2_RETURNED_MEMORY_BYTES, MAX_PHC_MEMORY_KIB, MAX_PHC_PASSES};

/// Why the users could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// argon2 refused to hash (it does so only for out-of-range parameters), or its working
    /// memory could not be allocated.
    #[error("cannot hash the password of user {name:?}: {reason}")]
    Hash {
        /// The user.
        name: String,
        /// argon2's message.
        reason: String,
    },
}

/// Length of the argon2id output of the hashes made here (argon2's default, 256 bits).
const DIGEST_LEN: usize = 32;

/// One password's argon2id digest: its parameters, salt and output. Made here at start-up
/// from a `--user NAME:PASSWORD` (the crate's default parameters, OWASP's: 19 MiB, 2 passes,
/// 1 lane, and a fresh salt), or read from a `--user NAME:PHC` argon2id PHC string, so that
/// no clear password needs to appear in a process list.
struct Digest {
    params: Params,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Digest {
    /// Hashes `password` with a fresh salt and the default parameters.
    fn new(password: &[u8]) -> Result<Self, String> {
        let salt = random_secret().into_bytes();
        let params = Params::default();
        let hash = argon2id(&params, password, &salt, DIGEST_LEN)?;
        Ok(Self { params, salt, hash })
    }

    /// Reads an argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), refusing other
    /// algorithms and versions, and parameters beyond [`MAX_PHC_MEMORY_KIB`] and
    /// [`MAX_PHC_PASSES`]: a check must stay within the bounds the sign-in budgets assume.
    fn from_phc(phc: &str) -> Result<Self, String> {
        let parsed = PasswordHash::new(phc).map_err(|err| format!("not a PHC string: {err}"))?;
        if parsed.algorithm != ARGON2ID_IDENT {
            return Err(format!(
                "{} hashes are not accepted, only argon2id",
                parsed.algorithm
            ));
        }
        if parsed
            .version
            .is_some_and(|version| version != u32::from(Version::V0x13))
        {
            return Err("only argon2 version 19 (0x13) is accepted".to_owned());
        }
        let params = Params::try_from(&parsed).map_err(|err| err.to_string())?;
        if params.m_cost() > MAX_PHC_MEMORY_KIB || params.t_cost() > MAX_PHC_PASSES {
            return Err(format!(
                "parameters beyond the bounds (m ≤ {MAX_PHC_MEMORY_KIB} KiB, t ≤ {MAX_PHC_PASSES})"
            ));
        }
        let (Some(salt), Some(hash)) = (parsed.salt, parsed.hash) else {
            return Err("the PHC string has no salt or no hash".to_owned());
        };
        Ok(Self {
            params,
            salt: salt.as_ref().to_vec(),
            hash: hash.as_bytes().to_vec(),
        })
    }

    /// Whether `password` hashes to this digest; the comparison takes constant time.
    fn matches(&self, password: &[u8]) -> bool {
        argon2id(&self.params, password, &self.salt, self.hash.len())
            .is_ok_and(|hash| constant_time_eq(&hash, &self.hash))
    }
}

/// An argon2id PHC string for `password` with a fresh salt and the default parameters: what
/// `--hash-password` prints for `--user NAME:PHC`.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    let salt = random_secret().into_bytes();
    let params = Params::default();
    let hash = argon2id(&params, password, &salt, DIGEST_LEN)?;
    let encoded = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|err: argon2::password_hash::Error| err.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|err| err.to_string())?),
        hash: Some(Output::new(&hash).map_err(|err| err.to_string())?),
    };
    Ok(encoded.to_string())
}

/// argon2id of `password` with `salt` and `params`, `len` bytes long, in working memory that
/// is returned to the operating system when the hash is done.
///
/// The block is reserved with at least [`ARGON2_RETURNED_MEMORY_BYTES`] of capacity, above the
/// largest mmap threshold glibc ever sets, so it is always a fresh mapping that `free` unmaps;
/// only the blocks argon2 uses are ever touched, so the rest costs address space, not memory.
fn argon2id(params: &Params, password: &[u8], salt: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let blocks = params.block_count();
    let reserved = blocks.max(ARGON2_RETURNED_MEMORY_BYTES.div_ceil(Block::SIZE));
    let mut memory: Vec<Block> = Vec::new();
    memory
        .try_reserve_exact(reserved)
        .map_err(|err| err.to_string())?;
    memory.resize(blocks, Block::default());
    let mut hash = vec![0; len];
    argon2
        .hash_password_into_with_memory(password, salt, &mut hash, &mut memory[..])
        .map_err(|err| err.to_string())?;
    Ok(hash)
}

/// The sign-in users, each known only by an argon2id digest (OWASP default parameters:
/// 19 MiB, 2 passes). The clear-text passwords are gone once [`Users::hash`] returns.
pub(crate) struct Users {
    hashes: HashMap<String, Digest>,
    /// Password checks running at once ([`Limits::password_hashing_concurrency`]): each costs
    /// ~20 ms of CPU and 19 MiB, so unbounded concurrent guesses would take the memory of the
    /// host (48 at once once took RSS from 0.3 to 1.9 GiB).
    ///
    /// [`Limits::password_hashing_concurrency`]: crate::limits::Limits::password_hashing_concurrency
    checks: Arc<Semaphore>,
    /// How long a check waits for a free slot before the sign-in answers 503.
    check_wait: Duration,
    /// The digest an unknown user name is checked against, so that a wrong name costs as much
    /// time as a wrong password and timing does not reveal which names exist.
    dummy: Digest,
    /// Users kept in the store (`mcp-auth-server user add`), asked for names that no `--user`
    /// gives.
    store: Option<Arc<dyn mcp_auth_core::AdminStore>>,
}

/// Names only: digests are not secret in the RFC sense, but there is no reason to print them.
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
        let failed = |name: &str| {
            let name = name.to_owned();
            move |reason| UsersError::Hash { name, reason }
        };
        let mut hashes = HashMap::with_capacity(credentials.len());
        for user in credentials {
            let digest = match user.secret() {
                UserSecret::Password(password) => Digest::new(password.as_bytes()),
                UserSecret::Phc(phc) => Digest::from_phc(phc),
            }
            .map_err(failed(&user.name))?;
            hashes.insert(user.name.clone(), digest);
        }
        let dummy = Digest::new(random_secret().as_bytes()).map_err(failed("(dummy)"))?;
        Ok(Self {
            hashes,
            dummy,
            checks: Arc::new(Semaphore::new(concurrency.max(1))),
            check_wait,
            store: None,
        })
    }

    /// Also signs in the users kept in `store`; a `--user` of the same name wins.
    pub(crate) fn with_store(mut self, store: Arc<dyn mcp_auth_core::AdminStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// How many users can sign in.
    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether nobody can sign in.
    pub(crate) fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `password` is `name`'s: a `--user`'s, else one kept in the store. Runs argon2
    /// on the blocking pool (it takes tens of milliseconds of CPU) and always runs it once, for
    /// unknown names too, so that timing does not tell which names exist; `Err(Busy)` when no
    /// check slot freed up in time, `Err(Unavailable)` when the store cannot answer.
    pub(crate) async fn verify(
        self: &Arc<Self>,
        name: String,
        password: String,
    ) -> Result<bool, VerifyError> {
        // The store is asked for every name, `--user`s included, so that the round trip does
        // not tell which names are `--user`s.
        let stored = match &self.store {
            Some(store) => match store.get_user(&name).await {
                // A stored hash that does not parse (written by hand) signs nobody in.
                Ok(user) => user.and_then(|user| Digest::from_phc(&user.password_hash).ok()),
                Err(err) => {
                    tracing::error!(error = %mcp_auth_core::ErrorChain(&err), "cannot read a sign-in user");
                    return Err(VerifyError::Unavailable);
                }
            },
            None => None,
        };
        let permit =
            tokio::time::timeout(self.check_wait, Arc::clone(&self.checks).acquire_owned())
                .await
                .map_err(|_| VerifyError::Busy)?
                .map_err(|_| VerifyError::Busy)?;
        let users = Arc::clone(self);
        let verified = tokio::task::spawn_blocking(move || {
            // Held until argon2 returns, even if the request that asked is gone.
            let _permit = permit;
            let (digest, known) = match (users.hashes.get(&name), &stored) {
                (Some(digest), _) => (digest, true),
                (None, Some(digest)) => (digest, true),
                (None, None) => (&users.dummy, false),
            };
            let matches = digest.matches(password.as_bytes());
            known && matches
        })
        .await;
        // A panic inside argon2 would be a bug; refusing the sign-in is the safe answer.
        Ok(verified.unwrap_or(false))
    }
}

/// Why a password could not be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VerifyError {
    /// Every password-check slot stayed taken for the whole wait: 503 with `Retry-After`.
    Busy,
    /// The store holding the user could not be read: 503.
    Unavailable,
}

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

    #[test]
    fn digests_are_argon2id_with_default_parameters_and_a_fresh_salt() {
        let digest = Digest::new(b"correct horse").unwrap();
        let mut expected = [0; DIGEST_LEN];
        Argon2::default()
            .hash_password_into(b"correct horse", &digest.salt, &mut expected)
            .unwrap();
        assert_eq!(digest.hash, expected);
        assert!(digest.matches(b"correct horse"));
        assert!(!digest.matches(b"correct horse "));
        assert_ne!(Digest::new(b"correct horse").unwrap().salt, digest.salt);
    }

    #[tokio::test]
    async fn a_phc_hash_stands_for_the_password_and_only_argon2id_within_bounds_is_read() {
        use argon2::PasswordVerifier;
        let phc = hash_password(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        // An independent check: the argon2 crate's own verifier accepts what we print.
        Argon2::default()
            .verify_password(b"correct horse", &PasswordHash::new(&phc).unwrap())
            .unwrap();
        let users = Arc::new(
            Users::hash(
                vec![UserCredentials::parse(&format!("alice:{phc}")).unwrap()],
                1,
                Duration::from_secs(10),
            )
            .unwrap(),
        );
        assert_eq!(
            users.verify("alice".into(), "correct horse".into()).await,
            Ok(true)
        );
        assert_eq!(users.verify("alice".into(), phc.clone()).await, Ok(false));
        // A hash made elsewhere with other (bounded) parameters.
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 3, 1, None).unwrap(),
        );
        let made_elsewhere =
            argon2::PasswordHasher::hash_password_with_salt(&other, b"pw", b"saltsaltsalt")
                .unwrap()
                .to_string();
        assert!(Digest::from_phc(&made_elsewhere).unwrap().matches(b"pw"));
        for refused in [
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
            "$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
            "$argon2id$v=19$m=19456,t=50,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
            "$argon2id$v=19$m=19456,t=2,p=1".to_owned(),
        ] {
            assert!(Digest::from_phc(&refused).is_err(), "{refused}");
        }
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
        assert_eq!(
            users.verify("alice".into(), "pw".into()).await,
            Err(VerifyError::Busy)
        );
        drop(held);
        assert_eq!(users.verify("alice".into(), "pw".into()).await, Ok(true));
    }
}
