//! A WebDriver harness for the browser tests: Debian's chromedriver on a free loopback port,
//! driving a headless Chromium with a fresh profile, through fantoccini.
//!
//! Missing binaries fail the test with the command that installs them; a browser test that
//! skips itself proves nothing.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "install with: apt-get install -y chromium chromium-driver";

/// How long a page may take to load, and to show what a test waits for.
pub(crate) const PAGE_TIMEOUT: Duration = Duration::from_secs(15);

/// The element matching the CSS `selector`, or a failed test naming it.
pub(crate) async fn find(browser: &Client, selector: &str) -> fantoccini::elements::Element {
    browser
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|err| panic!("no {selector} on the page: {err}"))
}

/// Saves the current page as `target/artifacts/<name>` under the workspace root, where CI
/// collects test artifacts.
pub(crate) async fn save_screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts directory");
    let path = dir.join(name);
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// Starts chromedriver and a fresh headless Chromium session, runs `test` with it, and ends
/// the session and chromedriver whether `test` passed or panicked. After a failure the
/// Chromium profile and chromedriver's log are kept (their path is printed).
pub(crate) async fn with_browser<F, Fut>(test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_browser_args(&[], test).await;
}

/// [`with_browser`], with `extra_args` added to Chromium's command line for this session only.
pub(crate) async fn with_browser_args<F, Fut>(extra_args: &[String], test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(Path::new(binary).exists(), "{binary} is missing: {INSTALL}");
    }
    let mut driver = Driver::start();
    let browser = driver.connect(extra_args).await;
    // On its own task, so that a failed assertion comes back here as a `JoinError` and the
    // browser is still closed.
    let outcome = tokio::spawn(test(browser.clone())).await;
    if let Err(err) = browser.close().await {
        eprintln!("closing the browser session failed: {err}");
    }
    if let Err(err) = outcome {
        driver.keep_files();
        drop(driver);
        std::panic::resume_unwind(err.into_panic());
    }
}

/// A chromedriver process on a free loopback port, killed on drop, with the Chromium profile
/// directory it uses.
struct Driver {
    process: Child,
    url: String,
    profile: PathBuf,
    log: PathBuf,
    keep: bool,
}

impl Driver {
    fn start() -> Self {
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("browser-{:016x}", rand::random::<u64>()));
        let profile = scratch.join("profile");
        std::fs::create_dir_all(&profile).expect("profile directory");
        let log = scratch.join("chromedriver.log");
        // A free port: bind one, release it, hand it to chromedriver. Another process could
        // take it in between; the readiness check below would then fail loudly.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {CHROMEDRIVER}: {err}: {INSTALL}"));
        Self {
            process,
            url: format!("http://127.0.0.1:{port}"),
            profile,
            log,
            keep: false,
        }
    }

    /// Keeps the profile and the log for a post-mortem.
    fn keep_files(&mut self) {
        self.keep = true;
        eprintln!("chromedriver log: {}", self.log.display());
    }

    /// Waits for chromedriver to answer, then opens a session with headless Chromium, started
    /// with `extra_args` besides the harness's own.
    async fn connect(&self, extra_args: &[String]) -> Client {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{}/status", self.url)).send().await;
            if let Ok(response) = ready
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == json!(true)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on {} (log: {})",
                self.url,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Containers often have a tiny /dev/shm, which crashes Chromium's renderers.
            "--disable-dev-shm-usage",
            "--window-size=1000,900",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("--user-data-dir={}", self.profile.display())])
        .chain(extra_args.iter().cloned())
        .collect::<Vec<_>>();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let browser = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start headless Chromium through chromedriver: {err} (log: {})",
                    self.log.display()
                )
            });
        browser
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                Some(Duration::from_secs(10)),
                Some(PAGE_TIMEOUT),
                Some(Duration::ZERO),
            ))
            .await
            .expect("timeouts");
        browser
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The session is closed before this (which ends Chromium); chromedriver itself holds
        // no state worth a graceful stop.
        let _ = self.process.kill();
        let _ = self.process.wait();
        if self.keep {
            return;
        }
        if let Some(scratch) = self.profile.parent() {
            let _ = std::fs::remove_dir_all(scratch);
        }
    }
}
