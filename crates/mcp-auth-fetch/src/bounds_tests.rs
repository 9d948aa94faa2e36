//! The bounds on what callers can make the fetcher send, counted at a loopback host.
//!
//! The host is plain TCP: it counts the connections it accepts and holds each one open (until
//! released, or for a while) before closing it, so every fetch fails in the TLS handshake with
//! a transport error. That is enough to count outbound requests; the successful path (shared
//! bodies included) is tested over real https in `mcp-auth-cimd/tests/fetch.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::{FetchClock, FetchError, VettedFetcher, VettedFetcherBuilder};

/// How the host treats a connection before closing it.
#[derive(Clone, Copy)]
enum Hold {
    /// Until [`Host::release`]; at once after it.
    UntilReleased,
    /// For this long.
    For(Duration),
}

#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    open: AtomicUsize,
    max_open: AtomicUsize,
}

struct Host {
    port: u16,
    counts: Arc<Counts>,
    release: tokio::sync::watch::Sender<bool>,
}

impl Host {
    async fn start(hold: Hold) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Counts::default());
        let (release, released) = tokio::sync::watch::channel(false);
        let counted = counts.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.accepted.fetch_add(1, Ordering::SeqCst);
                let open = counted.open.fetch_add(1, Ordering::SeqCst) + 1;
                counted.max_open.fetch_max(open, Ordering::SeqCst);
                let (counted, mut released) = (counted.clone(), released.clone());
                tokio::spawn(async move {
                    match hold {
                        Hold::UntilReleased => {
                            let _ = released.wait_for(|released| *released).await;
                        }
                        Hold::For(duration) => tokio::time::sleep(duration).await,
                    }
                    // Counted closed before the client can notice, so `open` never lags.
                    counted.open.fetch_sub(1, Ordering::SeqCst);
                    drop(stream);
                });
            }
        });
        Self {
            port,
            counts,
            release,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    fn release(&self) {
        self.release.send_replace(true);
    }
}

struct ManualClock(AtomicU64);

impl FetchClock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

impl ManualClock {
    fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

fn fetcher() -> (VettedFetcherBuilder, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock(AtomicU64::new(1000)));
    let builder = VettedFetcher::builder()
        .allow_address_range("127.0.0.1/32")
        .unwrap()
        .failure_ttl(Duration::from_secs(30))
        .clock(clock.clone());
    (builder, clock)
}

/// Waits for `condition`; a condition that never comes (the behaviour under test is missing)
/// fails the test after a generous bound instead of hanging it.
pub(crate) async fn until(mut condition: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the awaited condition never held");
}

fn is_transport(result: &Result<crate::Fetched, FetchError>) -> bool {
    matches!(result, Err(FetchError::Http(_)))
}

#[tokio::test]
async fn concurrent_fetches_of_one_url_make_one_request_and_share_its_result() {
    let host = Host::start(Hold::UntilReleased).await;
    let fetcher = fetcher().0.build().unwrap();
    let url = host.url("/shared.json");
    let mut fetches = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (fetcher, url) = (fetcher.clone(), url.clone());
        fetches.spawn(async move { fetcher.fetch_json(&url).await });
    }
    until(|| host.accepted() == 1 && fetcher.guard().flights.sharing(&url) == 8).await;
    host.release();
    while let Some(result) = fetches.join_next().await {
        let result = result.unwrap();
        assert!(is_transport(&result), "{result:?}");
    }
    assert_eq!(host.accepted(), 1);
}

#[tokio::test]
async fn a_failed_url_is_not_requested_again_within_the_failure_ttl() {
    let host = Host::start(Hold::UntilReleased).await;
    host.release();
    let (builder, clock) = fetcher();
    let fetcher = builder.build().unwrap();
    let url = host.url("/failing.json");
    for _ in 0..10 {
        let result = fetcher.fetch_json(&url).await;
        assert!(is_transport(&result), "{result:?}");
    }
    assert_eq!(host.accepted(), 1, "the failure was remembered");
    clock.advance(29);
    assert!(is_transport(&fetcher.fetch_json(&url).await));
    assert_eq!(host.accepted(), 1, "still remembered just before the TTL");
    clock.advance(1);
    assert!(is_transport(&fetcher.fetch_json(&url).await));
    assert_eq!(
        host.accepted(),
        2,
        "requested again once the TTL has passed"
    );
}

#[tokio::test]
async fn a_host_failing_repeatedly_is_refused_without_connecting() {
    let host = Host::start(Hold::UntilReleased).await;
    host.release();
    let (builder, clock) = fetcher();
    let fetcher = builder.host_failure_threshold(3).build().unwrap();
    for path in ["/1", "/2", "/3"] {
        assert!(is_transport(&fetcher.fetch_json(&host.url(path)).await));
    }
    let refused = fetcher.fetch_json(&host.url("/new")).await;
    assert!(
        matches!(refused, Err(FetchError::HostUnavailable { ref host }) if host.starts_with("127.0.0.1:")),
        "{refused:?}"
    );
    assert!(
        !refused.unwrap_err().is_refusal(),
        "the host's fault, not the URL's"
    );
    assert_eq!(host.accepted(), 3, "no connection for a refused host");
    clock.advance(30);
    assert!(is_transport(&fetcher.fetch_json(&host.url("/new")).await));
    assert_eq!(
        host.accepted(),
        4,
        "contacted again once the TTL has passed"
    );
}

#[tokio::test]
async fn no_more_than_the_concurrency_limit_is_in_flight_at_the_host() {
    let host = Host::start(Hold::For(Duration::from_millis(150))).await;
    let fetcher = fetcher()
        .0
        .max_concurrent_fetches(2)
        .permit_wait(Duration::from_secs(60))
        .host_failure_threshold(0)
        .build()
        .unwrap();
    let mut fetches = tokio::task::JoinSet::new();
    for i in 0..5 {
        let (fetcher, url) = (fetcher.clone(), host.url(&format!("/{i}")));
        fetches.spawn(async move { fetcher.fetch_json(&url).await });
    }
    while let Some(result) = fetches.join_next().await {
        let result = result.unwrap();
        assert!(is_transport(&result), "{result:?}");
    }
    assert_eq!(host.accepted(), 5, "every fetch got its turn");
    let max_open = host.counts.max_open.load(Ordering::SeqCst);
    assert!(max_open <= 2, "{max_open} connections at once");
}

#[tokio::test]
async fn without_a_permit_in_time_a_fetch_is_busy_sends_nothing_and_is_not_remembered() {
    let host = Host::start(Hold::UntilReleased).await;
    let fetcher = fetcher()
        .0
        .max_concurrent_fetches(1)
        .permit_wait(Duration::ZERO)
        .build()
        .unwrap();
    let holder = {
        let (fetcher, url) = (fetcher.clone(), host.url("/slow"));
        tokio::spawn(async move { fetcher.fetch_json(&url).await })
    };
    until(|| host.accepted() == 1).await;
    let busy = fetcher.fetch_json(&host.url("/other")).await;
    assert!(matches!(busy, Err(FetchError::Busy)), "{busy:?}");
    assert!(busy.unwrap_err().is_busy());
    assert_eq!(host.accepted(), 1, "nothing was sent");
    host.release();
    assert!(is_transport(&holder.await.unwrap()));
    // Busy was the server's condition, not the URL's: the next attempt is sent.
    assert!(is_transport(&fetcher.fetch_json(&host.url("/other")).await));
    assert_eq!(host.accepted(), 2);
}

#[tokio::test]
async fn refused_and_invalid_urls_fail_before_any_request() {
    let host = Host::start(Hold::UntilReleased).await;
    let fetcher = VettedFetcher::builder().build().unwrap();
    for url in [
        host.url("/loopback"),
        format!("http://127.0.0.1:{}/plain", host.port),
        "not a url".to_owned(),
    ] {
        let error = fetcher.fetch_json(&url).await.unwrap_err();
        assert!(error.is_refusal(), "{url}: {error:?}");
    }
    assert_eq!(host.accepted(), 0);
}

#[test]
fn zero_concurrency_is_refused() {
    assert!(matches!(
        VettedFetcher::builder().max_concurrent_fetches(0).build(),
        Err(crate::FetchConfigError::NoConcurrency)
    ));
}
