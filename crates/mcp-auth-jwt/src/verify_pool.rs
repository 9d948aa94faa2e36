//! Signature verification off the async workers, bounded: every verification runs as blocking
//! work while holding one of a fixed number of permits (one per core, shared by the whole
//! process), and waits at most [`VERIFICATION_WAIT`] for a permit.
//!
//! On a multi-threaded runtime the work runs in place ([`tokio::task::block_in_place`]): the
//! worker hands its other tasks to another thread and verifies on the thread that already holds
//! the token, so a verification costs no cross-thread hand-off (the hand-off to the blocking
//! pool was a third of an uncached ES256 verification). On a current-thread runtime, where that
//! is impossible, it runs on tokio's blocking pool.
//!
//! An RSA or ECDSA verification costs tens of microseconds; run on an async worker, a flood of
//! them (or a key set that made each request try many keys) would stall every other request on
//! that worker. A verification that starts keeps its permit until it ends, even if the request
//! that asked for it is dropped, so the bound holds under cancellation too.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::VerificationUnavailable;
use crate::limits::{VERIFICATION_WAIT, max_concurrent_verifications};

/// A bounded pool of verification slots.
pub(crate) struct VerificationPool {
    permits: Arc<Semaphore>,
    wait: Duration,
}

static GLOBAL: LazyLock<VerificationPool> =
    LazyLock::new(|| VerificationPool::new(max_concurrent_verifications(), VERIFICATION_WAIT));

impl VerificationPool {
    pub(crate) fn new(permits: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits)),
            wait,
        }
    }

    /// The process-wide pool every validator and verifier of this crate shares.
    pub(crate) fn global() -> &'static Self {
        &GLOBAL
    }

    /// Runs `work` on the blocking pool once a permit is free; fails if none frees up within
    /// the wait, or if `work` panics.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, VerificationUnavailable>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| VerificationUnavailable::Saturated(self.wait))?
            .map_err(|_| VerificationUnavailable::Saturated(self.wait))?;
        let mut work = Some(work);
        if tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread
        {
            // `block_in_place` still refuses a thread that is no worker of that runtime (a
            // current-thread runtime that entered a multi-threaded one's handle): its panic
            // comes before the work is taken, and the work then goes to the blocking pool. A
            // panic of the work itself stays a failed verification, as a panicking blocking
            // task's is, not a panic of the request that asked for it.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                tokio::task::block_in_place(|| work.take().map(|work| work()))
            }));
            match outcome {
                Ok(Some(result)) => return Ok(result),
                Ok(None) => return Err(VerificationUnavailable::Panicked),
                Err(_) if work.is_none() => return Err(VerificationUnavailable::Panicked),
                Err(_) => {}
            }
        }
        let Some(work) = work else {
            return Err(VerificationUnavailable::Panicked);
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(VerificationUnavailable::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_multi_threaded_runtime_work_runs_in_place_and_a_panic_is_a_failure() {
        let pool = VerificationPool::new(1, Duration::from_secs(60));
        let caller = std::thread::current().id();
        let worker = pool.run(|| std::thread::current().id()).await.unwrap();
        assert_eq!(worker, caller, "no hand-off to another thread");
        let panicked = pool.run(|| panic!("a verifier bug")).await;
        assert!(matches!(panicked, Err(VerificationUnavailable::Panicked)));
        // The permit came back despite the panic.
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }

    #[test]
    fn a_thread_that_is_no_worker_of_the_entered_runtime_falls_back_to_the_blocking_pool() {
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let pool = VerificationPool::new(1, Duration::from_secs(5));
        let caller = std::thread::current().id();
        let (value, thread) = current
            .block_on(async {
                let _entered = multi.handle().enter();
                pool.run(|| (7, std::thread::current().id())).await
            })
            .unwrap();
        assert_eq!(value, 7);
        assert_ne!(thread, caller, "ran on the blocking pool, not in place");
    }

    #[tokio::test]
    async fn on_a_current_thread_runtime_work_runs_off_the_calling_thread() {
        let pool = VerificationPool::new(1, Duration::from_secs(60));
        let caller = std::thread::current().id();
        let worker = pool.run(|| std::thread::current().id()).await.unwrap();
        assert_ne!(worker, caller);
    }

    #[tokio::test]
    async fn a_saturated_pool_fails_as_temporarily_unavailable_instead_of_queueing() {
        let pool = VerificationPool::new(1, Duration::from_millis(10));
        let held = Arc::clone(&pool.permits).acquire_owned().await.unwrap();
        let result = pool.run(|| ()).await;
        assert!(
            matches!(result, Err(VerificationUnavailable::Saturated(_))),
            "{result:?}"
        );
        drop(held);
        pool.run(|| ()).await.unwrap();
    }

    #[test]
    fn saturation_is_temporarily_unavailable_and_a_failed_task_a_server_error() {
        use mcp_auth_core::{ProviderError, ProviderErrorKind};
        let saturated = ProviderError::from(VerificationUnavailable::Saturated(VERIFICATION_WAIT));
        assert_eq!(saturated.kind(), ProviderErrorKind::Unavailable);
    }

    #[tokio::test]
    async fn a_started_verification_keeps_its_permit_when_its_request_is_dropped() {
        let pool = Arc::new(VerificationPool::new(1, Duration::from_millis(10)));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let running = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        running.abort();
        assert!(matches!(
            pool.run(|| ()).await,
            Err(VerificationUnavailable::Saturated(_))
        ));
        release_tx.send(()).unwrap();
        // Once the verification ends its permit returns.
        let pool_again = Arc::clone(&pool);
        let mut result = pool_again.run(|| ()).await;
        while result.is_err() {
            tokio::task::yield_now().await;
            result = pool_again.run(|| ()).await;
        }
    }
}
