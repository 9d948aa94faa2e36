//! Single-flight: concurrent fetches of one URL share one outbound request and its result.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

/// The flights under way, by key. Bounded: past `max_pending` distinct keys, a new key is
/// refused (the caller answers busy) rather than growing the table with the request rate.
pub(crate) struct SingleFlight<T> {
    pending: Mutex<HashMap<String, Arc<OnceCell<T>>>>,
    max_pending: usize,
}

impl<T: Clone> SingleFlight<T> {
    pub(crate) fn new(max_pending: usize) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            max_pending,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OnceCell<T>>>> {
        // Every update is a single insert or remove: a panic elsewhere cannot leave the table
        // half-changed, so a poisoned lock is taken over.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The result of `work` for `key`, run once for every caller that arrives while it runs;
    /// `None` when `max_pending` other keys are already under way.
    ///
    /// Cancellation-safe: if the caller running `work` is dropped (its request went away), one
    /// of the callers waiting for the same key runs its own `work` (tokio's `OnceCell`), so no
    /// caller waits for a fetch that nobody performs. A finished flight leaves the table at
    /// once: later callers start a new one (the negative cache answers them if it failed).
    pub(crate) async fn run<F, Fut>(&self, key: &str, work: F) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let cell = {
            let mut pending = self.lock();
            match pending.get(key) {
                Some(cell) => Arc::clone(cell),
                None if pending.len() >= self.max_pending => return None,
                None => {
                    let cell = Arc::new(OnceCell::new());
                    pending.insert(key.to_owned(), Arc::clone(&cell));
                    cell
                }
            }
        };
        let leave = Leave {
            flight: self,
            key,
            cell: &cell,
        };
        let value = cell.get_or_init(work).await.clone();
        drop(leave);
        Some(value)
    }

    /// How many callers share the flight of `key` (tests wait for all of them to join).
    #[cfg(test)]
    pub(crate) fn sharing(&self, key: &str) -> usize {
        self.lock()
            .get(key)
            .map_or(0, |cell| Arc::strong_count(cell) - 1)
    }
}

/// Removes a caller's flight from the table when it is finished, or when its last caller goes
/// away unfinished; runs on completion and on cancellation alike.
struct Leave<'a, T> {
    flight: &'a SingleFlight<T>,
    key: &'a str,
    cell: &'a Arc<OnceCell<T>>,
}

impl<T> Drop for Leave<'_, T> {
    fn drop(&mut self) {
        let mut pending = self
            .flight
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let ours = pending
            .get(self.key)
            .is_some_and(|cell| Arc::ptr_eq(cell, self.cell));
        // Clones are only made under this lock, so the count is exact: the table's and ours
        // alone mean nobody else waits.
        if ours && (self.cell.initialized() || Arc::strong_count(self.cell) <= 2) {
            pending.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounds_tests::until;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_of_one_key_share_one_run() {
        let flight = Arc::new(SingleFlight::<usize>::new(16));
        let runs = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (flight, runs, release) = (flight.clone(), runs.clone(), release.clone());
            callers.spawn(async move {
                flight
                    .run("k", || async {
                        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                        release.notified().await;
                        run
                    })
                    .await
            });
        }
        until(|| flight.sharing("k") == 8).await;
        release.notify_waiters();
        while let Some(result) = callers.join_next().await {
            assert_eq!(result.unwrap(), Some(1));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flight.sharing("k"), 0, "a finished flight leaves the table");
    }

    #[tokio::test]
    async fn a_waiter_takes_over_when_the_running_caller_is_cancelled() {
        let flight = Arc::new(SingleFlight::<&'static str>::new(16));
        let started = Arc::new(AtomicUsize::new(0));
        let leader = {
            let (flight, started) = (flight.clone(), started.clone());
            tokio::spawn(async move {
                flight
                    .run("k", || async {
                        started.fetch_add(1, Ordering::SeqCst);
                        std::future::pending::<&'static str>().await
                    })
                    .await
            })
        };
        until(|| started.load(Ordering::SeqCst) == 1).await;
        let follower = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.run("k", || async { "follower" }).await })
        };
        until(|| flight.sharing("k") == 2).await;
        leader.abort();
        assert_eq!(follower.await.unwrap(), Some("follower"));
        assert_eq!(flight.sharing("k"), 0);
    }

    #[tokio::test]
    async fn a_cancelled_lone_caller_leaves_nothing_behind() {
        let flight = SingleFlight::<()>::new(16);
        let run = flight.run("k", std::future::pending);
        assert!(
            tokio::time::timeout(Duration::ZERO, run).await.is_err(),
            "never finishes"
        );
        assert_eq!(flight.sharing("k"), 0);
        assert!(flight.lock().is_empty());
    }

    #[tokio::test]
    async fn past_the_bound_a_new_key_is_refused() {
        let flight = Arc::new(SingleFlight::<()>::new(2));
        let mut held = Vec::new();
        for key in ["a", "b"] {
            let flight = flight.clone();
            held.push(tokio::spawn(async move {
                flight.run(key, std::future::pending).await
            }));
        }
        until(|| flight.sharing("a") == 1 && flight.sharing("b") == 1).await;
        assert_eq!(flight.run("c", || async {}).await, None);
        for task in held {
            task.abort();
        }
    }
}
