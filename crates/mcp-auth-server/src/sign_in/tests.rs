use super::*;

#[test]
fn loopback_redirects_are_recognised() {
    for (uri, loopback) in [
        ("http://localhost:3000/cb", true),
        ("http://LOCALHOST./cb", true),
        ("http://app.localhost/cb", true),
        ("http://127.0.0.1:8080/cb", true),
        ("http://127.9.9.9/cb", true),
        ("http://[::1]:9/cb", true),
        ("https://localhost.example/cb", false),
        ("https://app.example/cb", false),
        ("com.example.app:/cb", false),
    ] {
        assert_eq!(is_loopback(&Url::parse(uri).unwrap()), loopback, "{uri}");
    }
}

#[test]
fn form_action_names_the_redirect_origin_or_scheme() {
    let source = |uri: &str| form_action_source(&Url::parse(uri).unwrap());
    assert_eq!(
        source("http://127.0.0.1:33418/callback?x=1").as_deref(),
        Some("http://127.0.0.1:33418")
    );
    assert_eq!(
        source("https://App.Example/cb").as_deref(),
        Some("https://app.example")
    );
    assert_eq!(
        source("com.example.app:/oauth2redirect").as_deref(),
        Some("com.example.app:")
    );
    assert_eq!(source("http://[::1]:8080/cb"), None);
}

#[test]
fn reads_the_csrf_cookie_among_others() {
    let mut headers = HeaderMap::new();
    headers.insert(
        COOKIE,
        HeaderValue::from_static("a=1; mcp_auth_csrf=tok; b=2"),
    );
    assert_eq!(csrf_cookie_value(&headers, CSRF_COOKIE), Some("tok"));
    assert_eq!(csrf_cookie_value(&headers, SECURE_CSRF_COOKIE), None);
    assert_eq!(csrf_cookie_value(&HeaderMap::new(), CSRF_COOKIE), None);
}

#[test]
fn a_csrf_token_is_valid_only_for_its_own_pending_request() {
    let token = bound_csrf_token("request-a");
    assert!(csrf_token_is_valid(&token, &token, "request-a"));
    assert!(!csrf_token_is_valid(&token, &token, "request-b"));
    assert!(!csrf_token_is_valid(&token, "other", "request-a"));
    assert!(!csrf_token_is_valid("", "", "request-a"));
    // A bare random value (no binding) is refused.
    assert!(!csrf_token_is_valid("abc", "abc", "request-a"));
}
