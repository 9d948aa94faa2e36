//! Sign-in through an OpenID Provider, in the headless Chromium.
//!
//! The server runs with the demo user and `--oidc-issuer` pointing at the in-process stand-in
//! provider (`server_memory/oidc/provider.rs`) in its login-page mode, so the browser walks the
//! chain a person does: our sign-in page offering both the password form and "Sign in with
//! Acme SSO" (`target/artifacts/oidc-sign-in.png`), the link, the provider's own login page
//! (`oidc-provider-login.png`), back to our consent page (`oidc-consent.png`), and Approve or
//! Deny, landing on the client's redirect URI.
//!
//! The provider is https with a self-signed certificate. Chromium accepts it through
//! `--ignore-certificate-errors-spki-list` naming that certificate's key alone, for this
//! browser session only: every other certificate is still checked (no
//! `--ignore-certificate-errors`, no WebDriver `acceptInsecureCerts`).

// The browser signs in through the provider's login page; the provider's other answers and
// inspection methods are server_memory's.
#[allow(dead_code)]
#[path = "../server_memory/oidc/provider.rs"]
mod provider;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fantoccini::{Client, Locator};
use provider::{
    Answer, CLIENT_ID, CLIENT_SECRET, ClientAuth, LOGIN_PASSWORD, LOGIN_USER, Provider,
};
use tokio_rustls::rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256;
use url::Url;

use crate::browser::{PAGE_TIMEOUT, find, save_screenshot, with_browser_args};
use crate::{CLIENT_NAME, Flow, SCOPES, assert_scopes};

/// The provider's name on our sign-in page (`--oidc-name`).
const OIDC_NAME: &str = "Acme SSO";
/// The subject the provider's user becomes here: `oidc:` and the ID token's `sub`.
const FEDERATED_USER: &str = "oidc:u-1001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_oidc_provider_login_then_approve_lands_with_code_state_and_iss() {
    let (flow, provider) = start().await;
    let trust = [trust_only(&provider.pem)];
    with_browser_args(&trust, move |browser| async move {
        browser
            .goto(&flow.authorize_url)
            .await
            .expect("open /authorize");
        flow.expect_sign_in_page(&browser).await;
        let sso = expect_sso_link(&browser).await;
        save_screenshot(&browser, "oidc-sign-in.png").await;

        sso.click().await.expect("click the Sign in with link");
        expect_provider_login_page(&browser, &provider).await;
        save_screenshot(&browser, "oidc-provider-login.png").await;
        let sent = provider.authorizations();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let callback_url = format!("{}/sign-in/oidc/callback", flow.server.issuer);
        assert_eq!(sent[0]["redirect_uri"], callback_url);
        assert_eq!(sent[0]["client_id"], CLIENT_ID);

        sign_in_at_provider(&browser, LOGIN_USER, LOGIN_PASSWORD).await;
        expect_consent_page(&flow, &browser).await;
        assert_eq!(provider.token_outcomes(), vec![Ok(())]);
        save_screenshot(&browser, "oidc-consent.png").await;

        find(&browser, "button[name=decision][value=approve]")
            .await
            .click()
            .await
            .expect("click Approve");
        let params = flow.wait_for_callback(&browser).await;
        assert_eq!(params.get("state"), Some(&flow.state), "{params:?}");
        assert_eq!(params.get("iss"), Some(&flow.server.issuer), "{params:?}");
        assert!(!params.contains_key("error"), "{params:?}");
        let code = params.get("code").expect("a code in the redirect");

        let token = flow.exchange(code).await;
        assert_eq!(token["token_type"].as_str(), Some("Bearer"), "{token}");
        assert_scopes(&token, &SCOPES);
        flow.expect_accepted_at_mcp(token["access_token"].as_str().expect("access_token"))
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_oidc_deny_on_the_consent_page_lands_with_access_denied() {
    let (flow, provider) = start().await;
    let trust = [trust_only(&provider.pem)];
    with_browser_args(&trust, move |browser| async move {
        browser
            .goto(&flow.authorize_url)
            .await
            .expect("open /authorize");
        flow.expect_sign_in_page(&browser).await;
        expect_sso_link(&browser)
            .await
            .click()
            .await
            .expect("click the Sign in with link");
        expect_provider_login_page(&browser, &provider).await;

        // A wrong password keeps the browser at the provider, with its error, and sends
        // nothing back to us.
        sign_in_at_provider(&browser, LOGIN_USER, "not the password").await;
        let alert = browser
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css("[role=alert]"))
            .await
            .expect("the provider's error after a wrong password");
        let message = alert.text().await.expect("error text");
        assert!(message.contains("Wrong user name or password"), "{message}");
        expect_provider_login_page(&browser, &provider).await;
        assert!(provider.token_outcomes().is_empty(), "a code was redeemed");

        sign_in_at_provider(&browser, LOGIN_USER, LOGIN_PASSWORD).await;
        expect_consent_page(&flow, &browser).await;
        find(&browser, "button[name=decision][value=deny]")
            .await
            .click()
            .await
            .expect("click Deny");
        let params = flow.wait_for_callback(&browser).await;
        assert_eq!(
            params.get("error").map(String::as_str),
            Some("access_denied"),
            "{params:?}"
        );
        assert_eq!(params.get("state"), Some(&flow.state), "{params:?}");
        assert_eq!(params.get("iss"), Some(&flow.server.issuer), "{params:?}");
        assert!(!params.contains_key("code"), "{params:?}");
    })
    .await;
}

/// The provider, in login-page mode, and the server and a client's authorization request,
/// the server signing users in there as well as with the demo user's password.
async fn start() -> (Flow, Provider) {
    let provider = Provider::start(ClientAuth::Basic).await;
    provider.answer(Answer::LoginPage);
    let root_cert = provider.pem_file.display().to_string();
    let flow = Flow::start_with(&[
        "--oidc-issuer",
        &provider.issuer,
        "--oidc-client-id",
        CLIENT_ID,
        "--oidc-client-secret",
        CLIENT_SECRET,
        "--oidc-root-cert",
        &root_cert,
        "--oidc-name",
        OIDC_NAME,
    ])
    .await;
    (flow, provider)
}

/// The "Sign in with" link on our sign-in page, which starts the federated sign-in for this
/// request.
async fn expect_sso_link(browser: &Client) -> fantoccini::elements::Element {
    let link = find(browser, "a.sso").await;
    let text = link.text().await.expect("link text");
    assert_eq!(text, format!("Sign in with {OIDC_NAME}"));
    let href = link.attr("href").await.expect("href").expect("an href");
    let url = browser.current_url().await.expect("url");
    let request_id = url
        .query_pairs()
        .find(|(name, _)| name == "request_id")
        .map(|(_, value)| value.into_owned())
        .expect("a request_id");
    assert_eq!(
        href,
        format!("/sign-in/oidc?request_id={request_id}"),
        "the link starts this request's sign-in"
    );
    link
}

/// The browser shows the provider's login page, at the provider (so Chromium took its
/// certificate), with nothing of ours on it.
async fn expect_provider_login_page(browser: &Client, provider: &Provider) {
    let url = wait_for_url(browser, &format!("{}/", provider.issuer)).await;
    assert!(
        ["/authorize", "/login"].contains(&url.path()),
        "not the login page: {url}"
    );
    browser
        .wait()
        .at_most(PAGE_TIMEOUT)
        .for_element(Locator::XPath("//h1[. = 'Acme identity provider']"))
        .await
        .expect("the provider's login page");
    let forms = browser.find_all(Locator::Css("form")).await.expect("forms");
    assert_eq!(forms.len(), 1, "exactly one form");
    for selector in [
        "form[method=post][action='/login']",
        "input[type=hidden][name=login_id]",
        "input[name=username]",
        "input[name=password][type=password]",
        "button[type=submit]",
    ] {
        find(browser, selector).await;
    }
}

/// Types `username` and `password` into the provider's form and submits it.
async fn sign_in_at_provider(browser: &Client, username: &str, password: &str) {
    for (name, value) in [("username", username), ("password", password)] {
        let input = find(browser, &format!("input[name={name}]")).await;
        input.clear().await.expect("clear");
        input.send_keys(value).await.expect("type");
    }
    find(browser, "button[type=submit]")
        .await
        .click()
        .await
        .expect("click Sign in");
}

/// The browser is back on our server, on the consent page: it names the federated user and
/// the provider, the client, where the answer goes and every requested scope, and offers only
/// Approve and Deny (no password form, no link to sign in again).
async fn expect_consent_page(flow: &Flow, browser: &Client) {
    let url = wait_for_url(
        browser,
        &format!("{}/sign-in/oidc/callback?", flow.server.issuer),
    )
    .await;
    let signed_in = browser
        .wait()
        .at_most(PAGE_TIMEOUT)
        .for_element(Locator::XPath("//p[starts-with(., 'Signed in as')]"))
        .await
        .unwrap_or_else(|err| panic!("no consent page at {url}: {err}"));
    let line = signed_in.text().await.expect("text");
    assert_eq!(
        line,
        format!("Signed in as {FEDERATED_USER} through {OIDC_NAME}.")
    );

    let forms = browser.find_all(Locator::Css("form")).await.expect("forms");
    assert_eq!(forms.len(), 1, "exactly one form");
    for selector in [
        "form[method=post][action='/sign-in/oidc/consent']",
        "input[type=hidden][name=csrf_token]",
        "input[type=hidden][name=request_id]",
        "button[name=decision][value=approve]",
        "button[name=decision][value=deny]",
    ] {
        find(browser, selector).await;
    }
    for absent in ["input[name=password]", "a.sso"] {
        let found = browser.find_all(Locator::Css(absent)).await.expect("find");
        assert!(found.is_empty(), "{absent} on the consent page");
    }

    let text = find(browser, "body").await.text().await.expect("page text");
    assert!(text.contains(CLIENT_NAME), "no client name in {text:?}");
    let host = Url::parse(&flow.callback.redirect_uri)
        .expect("redirect URI")
        .host_str()
        .expect("host")
        .to_owned();
    assert!(text.contains(&host), "no redirect host {host} in {text:?}");
    for scope in SCOPES {
        assert!(text.contains(scope), "no scope {scope} in {text:?}");
    }
    assert!(
        flow.callback.hits().is_empty(),
        "the client heard something"
    );
}

/// Waits until the browser's URL starts with `prefix` and returns it.
async fn wait_for_url(browser: &Client, prefix: &str) -> Url {
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        let url = browser.current_url().await.expect("url");
        if url.as_str().starts_with(prefix) {
            return url;
        }
        assert!(
            Instant::now() < deadline,
            "the browser did not reach {prefix} (it is on {url})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Chromium's switch that accepts the certificate in `pem` (self-signed, so otherwise an
/// "unknown issuer" interstitial) by its key alone: Chromium ignores certificate errors only
/// for a chain with a key whose SHA-256 SPKI fingerprint is listed, and only with a
/// `--user-data-dir`, which the harness always gives.
fn trust_only(pem: &str) -> String {
    format!("--ignore-certificate-errors-spki-list={}", spki_sha256(pem))
}

/// The base64 SHA-256 of a PEM certificate's DER `SubjectPublicKeyInfo` (RFC 5280 §4.1), the
/// fingerprint form Chromium's switch takes.
fn spki_sha256(pem: &str) -> String {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).expect("base64 in the PEM");
    let (_, certificate, _, _) = der_element(&der);
    let (_, mut fields, _, _) = der_element(certificate);
    // TBSCertificate: version ([0], absent in v1), serialNumber, signature, issuer, validity,
    // subject, then subjectPublicKeyInfo.
    if fields.first() == Some(&0xa0) {
        fields = der_element(fields).2;
    }
    for _ in 0..5 {
        fields = der_element(fields).2;
    }
    let (tag, _, _, spki) = der_element(fields);
    assert_eq!(tag, 0x30, "subjectPublicKeyInfo is a SEQUENCE");
    // rustls's aws-lc-rs SHA-256, already in the tree, rather than another hash crate.
    let sha256 = TLS13_AES_128_GCM_SHA256
        .tls13()
        .expect("a TLS 1.3 suite")
        .common
        .hash_provider;
    STANDARD.encode(sha256.hash(spki).as_ref())
}

/// The DER element at the start of `der`: its tag, its contents, what follows it, and the
/// whole element (tag, length and contents).
fn der_element(der: &[u8]) -> (u8, &[u8], &[u8], &[u8]) {
    let (&tag, rest) = der.split_first().expect("a DER tag");
    let (&first, rest) = rest.split_first().expect("a DER length");
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        assert!(
            (1..=4).contains(&count) && count <= rest.len(),
            "a DER length"
        );
        let (bytes, rest) = rest.split_at(count);
        let length = bytes
            .iter()
            .fold(0usize, |length, &byte| length << 8 | usize::from(byte));
        (length, rest)
    };
    assert!(length <= rest.len(), "a truncated DER element");
    let header = der.len() - rest.len();
    (
        tag,
        &rest[..length],
        &rest[length..],
        &der[..header + length],
    )
}
