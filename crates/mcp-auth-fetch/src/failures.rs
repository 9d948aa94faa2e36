//! The negative cache: failed URLs, and hosts that keep failing, are remembered for a short time
//! so that repeating a request with a failing client id causes no new outbound request.
//!
//! Two tables, both bounded in entries and bytes with real eviction (quick_cache):
//!
//! - **Per URL**: any failure of the fetch itself (refused address, resolution, connect, TLS,
//!   timeout, a status other than 200, a content type other than JSON, an oversize body) is
//!   returned again, as it was, until the TTL passes.
//! - **Per host** (name and port): transport failures are counted in a window of one TTL; past
//!   the threshold the host is not contacted for one TTL and every URL on it fails at once. Only
//!   failures that say something about the host count: an answer about one path (404, a wrong
//!   content type, too large) does not, so that requests for made-up paths on a shared host
//!   (one serving many clients' documents) cannot black it out for everyone. The port is part
//!   of the key for the same reason: a closed port says nothing about port 443.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::Weighter;
use quick_cache::sync::{Cache, EntryAction, EntryResult};

use crate::fetch::FetchError;
use crate::limits::{FAILED_URL_BYTES, FAILING_HOST_BYTES};

/// The time source of the negative cache: a monotonic reading since an arbitrary origin.
/// Injectable so that tests (and callers with a clock of their own, like the metadata-document
/// resolver) can move time without sleeping.
pub trait FetchClock: Send + Sync {
    /// Time since this clock's origin; never decreases.
    fn now(&self) -> Duration;
}

/// The default [`FetchClock`]: [`Instant`], so that wall-clock jumps neither extend nor cut
/// short a remembered failure.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl FetchClock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A failed URL: the error to repeat, until when, and what it is charged.
#[derive(Clone)]
struct UrlFailure {
    error: FetchError,
    until: Duration,
    weight: u64,
}

/// The failures of one host within the current window.
#[derive(Clone)]
struct HostFailures {
    window_start: Duration,
    failures: u32,
    refused_until: Option<Duration>,
    /// The refused address, when the host resolved to one: repeated as such, so that a client
    /// whose URL names that host keeps getting the refusal that is its fault.
    refusal: Option<(String, IpAddr)>,
}

#[derive(Clone, Copy)]
struct UrlWeight;

impl Weighter<String, UrlFailure> for UrlWeight {
    fn weight(&self, _url: &String, failure: &UrlFailure) -> u64 {
        failure.weight
    }
}

#[derive(Clone, Copy)]
struct HostWeight;

impl Weighter<String, HostFailures> for HostWeight {
    fn weight(&self, host: &String, record: &HostFailures) -> u64 {
        let refusal = record.refusal.as_ref().map_or(0, |(name, _)| name.len());
        let bytes = host.len() + refusal + size_of::<HostFailures>();
        bytes.max(FAILING_HOST_BYTES) as u64
    }
}

/// What a remembered failure costs in memory, roughly: the URL (the key, and again inside a
/// transport error), the strings the error holds, and the entry.
fn url_failure_weight(url: &str, error: &FetchError) -> u64 {
    let strings = match error {
        FetchError::AddressRefused { host, .. } | FetchError::Resolve { host, .. } => host.len(),
        FetchError::ContentType(content_type) => content_type.len(),
        FetchError::Http(_) => url.len() + 256,
        _ => 0,
    };
    (url.len() + strings + size_of::<UrlFailure>()).max(FAILED_URL_BYTES) as u64
}

/// The negative cache settings, as given to the builder.
#[derive(Clone)]
pub(crate) struct FailureSettings {
    pub(crate) ttl: Duration,
    pub(crate) host_threshold: u32,
    pub(crate) max_urls: usize,
    pub(crate) max_hosts: usize,
    pub(crate) clock: Arc<dyn FetchClock>,
}

/// See the module documentation.
pub(crate) struct FailureMemory {
    ttl: Duration,
    host_threshold: u32,
    clock: Arc<dyn FetchClock>,
    urls: Cache<String, UrlFailure, UrlWeight>,
    hosts: Cache<String, HostFailures, HostWeight>,
}

impl FailureMemory {
    pub(crate) fn new(settings: FailureSettings) -> Self {
        let max_urls = settings.max_urls.max(1);
        let max_hosts = settings.max_hosts.max(1);
        Self {
            ttl: settings.ttl,
            host_threshold: settings.host_threshold,
            clock: settings.clock,
            urls: Cache::with_weighter(
                max_urls,
                (max_urls.saturating_mul(FAILED_URL_BYTES)) as u64,
                UrlWeight,
            ),
            hosts: Cache::with_weighter(
                max_hosts,
                (max_hosts.saturating_mul(FAILING_HOST_BYTES)) as u64,
                HostWeight,
            ),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The failure to return without fetching `url` on `host`, if one is remembered.
    pub(crate) fn check(&self, url: &str, host: &str) -> Option<FetchError> {
        if !self.enabled() {
            return None;
        }
        let now = self.clock.now();
        if let Some(failure) = self.urls.get(url) {
            if now < failure.until {
                return Some(failure.error);
            }
            self.urls.remove(url);
        }
        let record = self.hosts.get(host)?;
        match record.refused_until {
            Some(until) if now < until => Some(match record.refusal {
                Some((host, addr)) => FetchError::AddressRefused { host, addr },
                None => FetchError::HostUnavailable {
                    host: host.to_owned(),
                },
            }),
            _ => None,
        }
    }

    /// Remembers that fetching `url` on `host` failed with `error`.
    pub(crate) fn failed(&self, url: &str, host: &str, error: &FetchError) {
        if !self.enabled() || !error.is_remembered() {
            return;
        }
        let now = self.clock.now();
        self.urls.insert(
            url.to_owned(),
            UrlFailure {
                error: error.clone(),
                until: now.saturating_add(self.ttl),
                weight: url_failure_weight(url, error),
            },
        );
        if self.host_threshold == 0 || !error.is_host_failure() {
            return;
        }
        let refusal = match error {
            FetchError::AddressRefused { host, addr } => Some((host.clone(), *addr)),
            _ => None,
        };
        let count = |record: &mut HostFailures| {
            if now >= record.window_start.saturating_add(self.ttl) {
                *record = HostFailures::fresh(now);
            }
            // A refused address is a property of the name: one is enough.
            record.failures = match refusal {
                Some(_) => self.host_threshold,
                None => record.failures.saturating_add(1),
            };
            if refusal.is_some() {
                record.refusal.clone_from(&refusal);
            }
            if record.failures >= self.host_threshold {
                record.refused_until = Some(now.saturating_add(self.ttl));
            }
        };
        if let EntryResult::Vacant(guard) = self.hosts.entry(host, None, |_, record| {
            count(record);
            EntryAction::Retain(())
        }) {
            let mut record = HostFailures::fresh(now);
            count(&mut record);
            // Another task inserting first only loses one count; nothing to do about it.
            let _ = guard.insert(record);
        }
    }

    /// A fetch from `host` succeeded: the host works, its count starts over.
    pub(crate) fn succeeded(&self, host: &str) {
        if self.enabled() {
            self.hosts.remove(host);
        }
    }

    #[cfg(test)]
    pub(crate) fn remembered_urls(&self) -> usize {
        self.urls.len()
    }

    #[cfg(test)]
    pub(crate) fn counted_hosts(&self) -> usize {
        self.hosts.len()
    }
}

impl HostFailures {
    fn fresh(now: Duration) -> Self {
        Self {
            window_start: now,
            failures: 0,
            refused_until: None,
            refusal: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Manual(AtomicU64);

    impl FetchClock for Manual {
        fn now(&self) -> Duration {
            Duration::from_secs(self.0.load(Ordering::Relaxed))
        }
    }

    fn remembering(max_urls: usize, max_hosts: usize) -> (FailureMemory, Arc<Manual>) {
        let clock = Arc::new(Manual(AtomicU64::new(1000)));
        let memory = FailureMemory::new(FailureSettings {
            ttl: Duration::from_secs(30),
            host_threshold: 3,
            max_urls,
            max_hosts,
            clock: clock.clone(),
        });
        (memory, clock)
    }

    #[test]
    fn a_failed_url_is_remembered_for_the_ttl_only() {
        let (memory, clock) = remembering(16, 16);
        memory.failed("https://a.test/x", "a.test:443", &FetchError::Status(404));
        assert!(matches!(
            memory.check("https://a.test/x", "a.test:443"),
            Some(FetchError::Status(404))
        ));
        assert!(memory.check("https://a.test/y", "a.test:443").is_none());
        clock.0.fetch_add(29, Ordering::Relaxed);
        assert!(memory.check("https://a.test/x", "a.test:443").is_some());
        clock.0.fetch_add(1, Ordering::Relaxed);
        assert!(memory.check("https://a.test/x", "a.test:443").is_none());
    }

    #[test]
    fn answers_about_one_path_never_refuse_the_host() {
        let (memory, _) = remembering(16, 16);
        for (i, error) in [
            FetchError::Status(404),
            FetchError::ContentType("text/html".into()),
            FetchError::TooLarge(10),
            FetchError::Status(500),
        ]
        .iter()
        .enumerate()
        {
            memory.failed(&format!("https://a.test/{i}"), "a.test:443", error);
        }
        assert!(memory.check("https://a.test/new", "a.test:443").is_none());
    }

    #[test]
    fn a_host_is_refused_after_the_threshold_within_one_window() {
        let (memory, clock) = remembering(16, 16);
        let dead = || FetchError::Resolve {
            host: "a.test".into(),
            source: None,
        };
        memory.failed("https://a.test/1", "a.test:443", &dead());
        memory.failed("https://a.test/2", "a.test:443", &dead());
        // The window passes: the count starts over.
        clock.0.fetch_add(30, Ordering::Relaxed);
        memory.failed("https://a.test/3", "a.test:443", &dead());
        assert!(memory.check("https://a.test/new", "a.test:443").is_none());
        memory.failed("https://a.test/4", "a.test:443", &dead());
        memory.failed("https://a.test/5", "a.test:443", &dead());
        assert!(matches!(
            memory.check("https://a.test/new", "a.test:443"),
            Some(FetchError::HostUnavailable { ref host }) if host == "a.test:443"
        ));
        assert!(memory.check("https://a.test/new", "a.test:8443").is_none());
        clock.0.fetch_add(30, Ordering::Relaxed);
        assert!(memory.check("https://a.test/new", "a.test:443").is_none());
    }

    #[test]
    fn a_refused_address_refuses_its_host_at_once_as_a_refusal() {
        let (memory, _) = remembering(16, 16);
        let refused = FetchError::AddressRefused {
            host: "a.test".into(),
            addr: "10.0.0.1".parse().unwrap(),
        };
        memory.failed("https://a.test/1", "a.test:443", &refused);
        let again = memory.check("https://a.test/other", "a.test:443").unwrap();
        assert!(again.is_refusal(), "{again:?}");
    }

    #[test]
    fn a_success_clears_the_count_of_its_host() {
        let (memory, _) = remembering(16, 16);
        let dead = FetchError::Resolve {
            host: "a.test".into(),
            source: None,
        };
        memory.failed("https://a.test/1", "a.test:443", &dead);
        memory.failed("https://a.test/2", "a.test:443", &dead);
        memory.succeeded("a.test:443");
        memory.failed("https://a.test/3", "a.test:443", &dead);
        assert!(memory.check("https://a.test/new", "a.test:443").is_none());
    }

    #[test]
    fn busy_and_invalid_urls_are_not_remembered() {
        let (memory, _) = remembering(16, 16);
        memory.failed("https://a.test/1", "a.test:443", &FetchError::Busy);
        memory.failed("https://a.test/2", "a.test:443", &FetchError::InvalidUrl);
        assert_eq!(memory.remembered_urls(), 0);
    }

    #[test]
    fn both_tables_stay_within_their_entry_bounds() {
        let (memory, _) = remembering(64, 32);
        for i in 0..1000 {
            let host = format!("h{i}.test:443");
            let error = FetchError::Resolve {
                host: host.clone(),
                source: None,
            };
            memory.failed(&format!("https://{host}/x"), &host, &error);
        }
        assert!(
            memory.remembered_urls() <= 64,
            "{}",
            memory.remembered_urls()
        );
        assert!(memory.counted_hosts() <= 32, "{}", memory.counted_hosts());
        // A long URL is charged its size: it buys fewer entries, never more memory.
        let (memory, _) = remembering(64, 32);
        let long = "a".repeat(4 * FAILED_URL_BYTES);
        for i in 0..1000 {
            memory.failed(
                &format!("https://x.test/{i}/{long}"),
                "x.test:443",
                &FetchError::Status(404),
            );
        }
        assert!(
            memory.remembered_urls() <= 16,
            "{}",
            memory.remembered_urls()
        );
    }
}
