use super::*;
use crate::test_support::*;
use mcp_auth_core::{ClientRegistrationOptions, ProviderErrorKind};

/// A change to the valid request: `Some` replaces or adds a parameter, `None` removes it.
type Change<'a> = (&'a str, Option<&'a str>);

const VALID: [(&str, &str); 6] = [
    ("client_id", PUBLIC_CLIENT_ID),
    ("redirect_uri", REDIRECT_URI),
    ("response_type", "code"),
    ("code_challenge", PKCE_CHALLENGE),
    ("code_challenge_method", "S256"),
    ("state", "xyz"),
];

/// The valid request with `changes` applied: `Some` replaces or adds, `None` removes.
fn query(changes: &[Change<'_>]) -> String {
    let mut pairs: Vec<(&str, &str)> = VALID.to_vec();
    for (name, value) in changes {
        pairs.retain(|(n, _)| n != name);
        if let Some(value) = value {
            pairs.push((name, value));
        }
    }
    form(&pairs)
}

async fn get(env: &TestEnv, query: &str) -> Response<Bytes> {
    let handler = AuthorizationHandler::new(env.provider.clone(), env.ctx.clone());
    let uri = format!("https://auth.example.com/authorize?{query}");
    handler.handle(request(Method::GET, &uri, "")).await
}

/// Expects a direct `400` JSON error whose description contains `fragment`.
async fn check_direct(env: &TestEnv, query: &str, fragment: &str) {
    let response = get(env, query).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    assert!(header(&response, "location").is_none(), "{query}");
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(error_code(&response).as_deref(), Some("invalid_request"));
    let body = body_json(&response);
    let description = body["error_description"].as_str().unwrap_or("");
    assert!(description.contains(fragment), "{query}: {description}");
}

/// Expects a `302` to `redirect` carrying `error` = `code`, the state and `iss`.
async fn check_redirected(
    env: &TestEnv,
    query: &str,
    redirect: &str,
    code: &str,
    state: Option<&str>,
) {
    let response = get(env, query).await;
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "{query}: {:?}",
        body_json(&response)
    );
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let location = header(&response, "location").unwrap();
    assert!(location.starts_with(&format!("{redirect}?")), "{location}");
    let params = location_params(&response);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some(code),
        "{query}"
    );
    assert!(params.contains_key("error_description"), "{query}");
    assert_eq!(params.get("state").map(String::as_str), state, "{query}");
    assert_eq!(
        params.get("iss").map(String::as_str),
        Some(ISSUER),
        "{query}"
    );
    assert!(!params.contains_key("code"), "{query}");
}

async fn check_error(changes: &[Change<'_>], code: &str) {
    let env = TestEnv::new();
    check_redirected(&env, &query(changes), REDIRECT_URI, code, Some("xyz")).await;
}

#[tokio::test]
async fn a_valid_request_is_sent_to_the_provider_and_redirected() {
    let env = TestEnv::new();
    let response = get(&env, &query(&[("scope", Some("read profile"))])).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let params = location_params(&response);
    assert!(params["code"].starts_with("code_"));
    assert_eq!(params["state"], "xyz");
    assert_eq!(params["iss"], ISSUER);
    let seen = env.provider.last_authorize.lock().unwrap().clone().unwrap();
    assert_eq!(seen.state.as_deref(), Some("xyz"));
    assert_eq!(
        seen.scopes,
        Some(vec!["read".to_owned(), "profile".to_owned()])
    );
    assert_eq!(seen.code_challenge, PKCE_CHALLENGE);
    assert_eq!(seen.redirect_uri, REDIRECT_URI);
    assert!(seen.redirect_uri_provided_explicitly);
    // No `resource` in the request: bound to the configured resource server.
    assert_eq!(seen.resource.as_deref(), Some(RESOURCE));
}

/// RFC 6749 §3.3: a request without `scope` is given a pre-defined default — the client's
/// registered scopes, less the step-up ones and any no longer valid — rather than none.
#[tokio::test]
async fn a_request_without_scope_gets_the_registered_scopes_less_step_up_and_invalid_ones() {
    let cases: [(ClientRegistrationOptions, &[&str]); 2] = [
        (
            ClientRegistrationOptions::enabled(),
            &["read", "write", "profile"],
        ),
        (
            ClientRegistrationOptions::enabled()
                .valid_scopes(["read", "write"])
                .step_up_scopes(["write"]),
            &["read"],
        ),
    ];
    for (registration, expected) in cases {
        let settings = AuthSettings::builder(ISSUER)
            .resource_server_url(RESOURCE)
            .client_registration(registration)
            .build()
            .unwrap();
        let env = TestEnv::with_settings(settings);
        let response = get(&env, &query(&[])).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let seen = env.provider.last_authorize.lock().unwrap().clone().unwrap();
        let expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(seen.scopes, Some(expected));
    }
}

#[tokio::test]
async fn without_a_resource_server_an_unbound_request_stays_unbound() {
    let env = TestEnv::with_settings(
        mcp_auth_core::AuthSettings::builder(ISSUER)
            .build()
            .unwrap(),
    );
    let response = get(&env, &query(&[])).await;
    assert!(location_params(&response).contains_key("code"));
    let seen = env.provider.last_authorize.lock().unwrap().clone().unwrap();
    assert_eq!(seen.resource, None);
}

#[tokio::test]
async fn form_posts_are_accepted() {
    let env = TestEnv::new();
    let handler = AuthorizationHandler::new(env.provider.clone(), env.ctx.clone());
    let response = handler
        .handle(post_form(
            "https://auth.example.com/authorize",
            &query(&[]),
            &[],
        ))
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(location_params(&response).contains_key("code"));
    let mut json = post_form("https://auth.example.com/authorize", "{}", &[]);
    json.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    assert_eq!(handler.handle(json).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_omitted_redirect_uri_uses_the_only_registered_one() {
    let env = TestEnv::new();
    let response = get(&env, &query(&[("redirect_uri", None)])).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(
        header(&response, "location")
            .unwrap()
            .starts_with(REDIRECT_URI)
    );
    let seen = env.provider.last_authorize.lock().unwrap().clone().unwrap();
    assert!(!seen.redirect_uri_provided_explicitly);
}

#[tokio::test]
async fn untrusted_clients_and_redirect_uris_get_a_direct_error() {
    let env = TestEnv::new();
    #[rustfmt::skip]
    let cases: [(&[Change<'_>], &str); 6] = [
        (&[("client_id", None)], "client_id"),
        (&[("client_id", Some("nobody"))], "client"),
        (&[("redirect_uri", Some("https://attacker.example.com/callback"))], "not registered"),
        (&[("redirect_uri", Some("http://127.0.0.1:8000/evil"))], "not registered"),
        (&[("redirect_uri", Some("https://client.example.com/callback/"))], "not registered"),
        // A direct error wins even when other parameters are wrong too.
        (&[("client_id", Some("nobody")), ("response_type", Some("token"))], "client"),
    ];
    for (changes, fragment) in cases {
        check_direct(&env, &query(changes), fragment).await;
    }
    // Several registered URIs and none named: ambiguous.
    env.provider.update_client(PUBLIC_CLIENT_ID, |c| {
        c.metadata.redirect_uris = Some(vec![
            REDIRECT_URI.to_owned(),
            "https://client.example.com/other-callback".to_owned(),
        ]);
    });
    check_direct(&env, &query(&[("redirect_uri", None)]), "redirect_uri").await;
}

#[tokio::test]
async fn request_errors_are_redirected_with_state_and_iss() {
    let long = "a".repeat(129);
    #[rustfmt::skip]
    let cases: Vec<(Vec<Change<'_>>, &str)> = vec![
        (vec![("response_type", None)], "invalid_request"),
        (vec![("response_type", Some("token"))], "unsupported_response_type"),
        (vec![("code_challenge", None)], "invalid_request"),
        (vec![("code_challenge", None), ("code_challenge_method", None)], "invalid_request"),
        (vec![("code_challenge", Some("short"))], "invalid_request"),
        (vec![("code_challenge", Some(&long))], "invalid_request"),
        (vec![("code_challenge", Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"))], "invalid_request"),
        (vec![("code_challenge_method", None)], "invalid_request"),
        (vec![("code_challenge_method", Some("plain"))], "invalid_request"),
        (vec![("code_challenge_method", Some("s256"))], "invalid_request"),
        (vec![("scope", Some("invalid_scope_that_does_not_exist"))], "invalid_scope"),
        (vec![("scope", Some("read admin"))], "invalid_scope"),
        (vec![("resource", Some("https://other.example.com/mcp"))], "invalid_target"),
        (vec![("resource", Some("https://mcp.example.com/mcp#frag"))], "invalid_target"),
        (vec![("resource", Some("/mcp"))], "invalid_target"),
        (vec![("resource", Some("https://mcp.example.com/mcp-other"))], "invalid_target"),
    ];
    for (changes, code) in cases {
        check_error(&changes, code).await;
    }
}

#[tokio::test]
async fn the_pkce_description_names_the_parameter() {
    let env = TestEnv::new();
    let response = get(&env, &query(&[("code_challenge", None)])).await;
    assert!(location_params(&response)["error_description"].contains("code_challenge"));
}

#[tokio::test]
async fn a_missing_state_is_not_invented() {
    let env = TestEnv::new();
    let q = query(&[("state", None), ("response_type", Some("token"))]);
    check_redirected(&env, &q, REDIRECT_URI, "unsupported_response_type", None).await;
}

#[tokio::test]
async fn clients_not_registered_for_the_code_flow_are_unauthorized() {
    let env = TestEnv::new();
    set_grant_types(&env.provider, PUBLIC_CLIENT_ID, vec![GrantType::JwtBearer]);
    let q = query(&[]);
    check_redirected(&env, &q, REDIRECT_URI, "unauthorized_client", Some("xyz")).await;
}

#[tokio::test]
async fn resources_are_canonicalised_and_checked_against_the_served_ones() {
    let cases = [
        ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp"),
        ("HTTPS://MCP.EXAMPLE.COM/mcp", "https://mcp.example.com/mcp"),
        (
            "https://mcp.example.com/mcp/tools",
            "https://mcp.example.com/mcp/tools",
        ),
    ];
    for (raw, canonical) in cases {
        let env = TestEnv::new();
        let response = get(&env, &query(&[("resource", Some(raw))])).await;
        assert!(location_params(&response).contains_key("code"), "{raw}");
        let seen = env.provider.last_authorize.lock().unwrap().clone().unwrap();
        assert_eq!(seen.resource.as_deref(), Some(canonical));
    }
    // With no served resources configured, any absolute URI without fragment is accepted.
    let env = TestEnv::with_settings(
        mcp_auth_core::AuthSettings::builder(ISSUER)
            .build()
            .unwrap(),
    );
    let response = get(
        &env,
        &query(&[("resource", Some("https://anything.example/x"))]),
    )
    .await;
    assert!(location_params(&response).contains_key("code"));
    let q = query(&[("resource", Some("https://anything.example/x#f"))]);
    check_redirected(&env, &q, REDIRECT_URI, "invalid_target", Some("xyz")).await;
}

#[tokio::test]
async fn loopback_redirect_uris_match_on_any_port() {
    let env = TestEnv::new();
    for port in ["3000", "49152", "8080"] {
        let uri = format!("http://127.0.0.1:{port}/callback");
        let q = query(&[
            ("client_id", Some(LOOPBACK_CLIENT_ID)),
            ("redirect_uri", Some(&uri)),
        ]);
        let response = get(&env, &q).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{port}");
        assert!(
            header(&response, "location")
                .unwrap()
                .starts_with(&format!("{uri}?"))
        );
        // Errors go to the port the request named, too.
        let q = query(&[
            ("client_id", Some(LOOPBACK_CLIENT_ID)),
            ("redirect_uri", Some(&uri)),
            ("scope", Some("admin")),
        ]);
        check_redirected(&env, &q, &uri, "invalid_scope", Some("xyz")).await;
    }
    let cases = [
        "http://127.0.0.1:3000/other",
        "http://localhost:3000/callback",
        "https://127.0.0.1:3000/callback",
    ];
    for uri in cases {
        let q = query(&[
            ("client_id", Some(LOOPBACK_CLIENT_ID)),
            ("redirect_uri", Some(uri)),
        ]);
        check_direct(&env, &q, "not registered").await;
    }
}

#[tokio::test]
async fn a_parameter_sent_twice_is_invalid_request() {
    let env = TestEnv::new();
    // The client and redirect URI are unambiguous: the error is redirected.
    for name in ["scope", "response_type", "code_challenge", "resource"] {
        let q = format!("{}&{name}=a&{name}=b", query(&[]));
        check_redirected(&env, &q, REDIRECT_URI, "invalid_request", Some("xyz")).await;
    }
    // A repeated state is not echoed.
    let q = format!("{}&state=other", query(&[]));
    check_redirected(&env, &q, REDIRECT_URI, "invalid_request", None).await;
    // A repeated client or redirect URI cannot be trusted: direct.
    let q = format!("{}&client_id={POST_CLIENT_ID}", query(&[]));
    check_direct(&env, &q, "more than once").await;
    let q = format!(
        "{}&redirect_uri=https%3A%2F%2Fattacker.example%2F",
        query(&[])
    );
    check_direct(&env, &q, "more than once").await;
    let q = format!("{}&redirect_uri=", query(&[]));
    check_direct(&env, &q, "more than once").await;
    // An unknown client with a repeated parameter is still a direct error.
    let q = format!(
        "{}&scope=a&scope=b",
        query(&[("client_id", Some("nobody"))])
    );
    check_direct(&env, &q, "client").await;
}

#[tokio::test]
async fn provider_rejections_are_redirected() {
    let env = TestEnv::new();
    env.provider
        .reject_authorize(Some(AuthorizeErrorCode::AccessDenied));
    check_redirected(
        &env,
        &query(&[]),
        REDIRECT_URI,
        "access_denied",
        Some("xyz"),
    )
    .await;
    let response = get(&env, &query(&[])).await;
    assert_eq!(
        location_params(&response)["error_description"],
        "the test provider refused"
    );
}

#[tokio::test]
async fn provider_failures_are_redirected_without_their_cause() {
    for (kind, code) in [
        (ProviderErrorKind::Unavailable, "temporarily_unavailable"),
        (ProviderErrorKind::Internal, "server_error"),
    ] {
        let env = TestEnv::new();
        env.provider.fail_method("authorize", Some(kind));
        check_redirected(&env, &query(&[]), REDIRECT_URI, code, Some("xyz")).await;
        let response = get(&env, &query(&[])).await;
        assert!(!header(&response, "location").unwrap().contains("hunter2"));
        // Before the client is known, a failure can only be answered directly.
        env.provider.fail_with(Some(kind));
        let response = get(&env, &query(&[])).await;
        assert!(response.status().is_server_error(), "{kind:?}");
        assert!(header(&response, "location").is_none());
        assert!(!String::from_utf8_lossy(response.body()).contains(FAILURE_CAUSE));
    }
}

#[tokio::test]
async fn methods_and_sizes_are_checked_first() {
    let env = TestEnv::new();
    let handler = AuthorizationHandler::new(env.provider.clone(), env.ctx.clone());
    for method in [Method::PUT, Method::DELETE, Method::HEAD, Method::OPTIONS] {
        let response = handler
            .handle(request(method, "https://auth.example.com/authorize", ""))
            .await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&response, "allow"), Some("GET, POST"));
    }
    // The size is checked before anything else, whatever the method (the Python SDK's
    // oversized-body cases include POST and HEAD /authorize).
    let small = AuthorizationHandler::new(env.provider.clone(), env.ctx.clone().with_body_limit(8));
    for method in [Method::POST, Method::HEAD, Method::PUT, Method::GET] {
        let uri = "https://auth.example.com/authorize";
        let response = small.handle(request(method, uri, "x".repeat(9))).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}

#[tokio::test]
async fn iss_is_the_issuer_exactly_as_configured() {
    // RFC 9207 §2.4 compares issuers as strings: a trailing slash or a path stays as configured.
    for issuer in [
        "https://auth.example.com/tenant/",
        "https://auth.example.com/",
        "http://localhost:8080",
    ] {
        let settings = mcp_auth_core::AuthSettings::builder(issuer)
            .build()
            .unwrap();
        let env = TestEnv::with_settings(settings);
        let response = get(&env, &query(&[("scope", Some("admin"))])).await;
        assert_eq!(location_params(&response)["iss"], issuer);
        env.provider
            .reject_authorize(Some(AuthorizeErrorCode::AccessDenied));
        let response = get(&env, &query(&[])).await;
        assert_eq!(location_params(&response)["iss"], issuer);
    }
}

#[tokio::test]
async fn arbitrary_bytes_never_panic() {
    let env = TestEnv::new();
    let handler = AuthorizationHandler::new(env.provider.clone(), env.ctx.clone());
    let bodies: [&[u8]; 4] = [b"\xff\xfe", b"%%%&&&===", b"client_id=%FF", b"a=1&a"];
    for body in bodies {
        let response = handler
            .handle(request(
                Method::POST,
                "https://auth.example.com/authorize",
                Bytes::copy_from_slice(body),
            ))
            .await;
        assert!(response.status().is_client_error(), "{body:?}");
    }
}

#[test]
fn resource_validation() {
    let settings = settings();
    let cases = [
        (
            "https://mcp.example.com/mcp",
            Ok("https://mcp.example.com/mcp"),
        ),
        (
            "https://Mcp.Example.com/mcp/x",
            Ok("https://mcp.example.com/mcp/x"),
        ),
        (
            "https://mcp.example.com/mcp#f",
            Err(InvalidResource::Fragment),
        ),
        ("mcp.example.com/mcp", Err(InvalidResource::NotAbsolute)),
        (
            "https://mcp.example.com/other",
            Err(InvalidResource::NotServed),
        ),
    ];
    for (raw, expected) in cases {
        assert_eq!(
            validate_resource(raw, &settings),
            expected.map(str::to_owned),
            "{raw}"
        );
    }
}

#[tokio::test]
async fn a_state_over_4_kib_is_refused_redirected_when_the_client_is_valid_and_never_echoed() {
    use crate::limits::MAX_STATE_BYTES;
    let env = TestEnv::new();
    let at_limit = "s".repeat(MAX_STATE_BYTES);
    let response = get(&env, &query(&[("state", Some(&at_limit))])).await;
    assert_eq!(location_params(&response).get("state"), Some(&at_limit));
    assert!(location_params(&response).contains_key("code"));

    // RFC 6749 §4.1.2.1: client and redirect URI valid, so the error is redirected, without
    // the state, and the provider never sees the request.
    let env = TestEnv::new();
    let over = "s".repeat(MAX_STATE_BYTES + 1);
    check_redirected(
        &env,
        &query(&[("state", Some(&over))]),
        REDIRECT_URI,
        "invalid_request",
        None,
    )
    .await;
    assert!(env.provider.last_authorize.lock().unwrap().is_none());
    // An unknown client: a direct 400.
    check_direct(
        &env,
        &query(&[("state", Some(&over)), ("client_id", Some("unknown"))]),
        "client_id",
    )
    .await;
}

#[tokio::test]
async fn scope_and_resource_over_their_bounds_are_redirected_errors() {
    use mcp_auth_types::limits::{MAX_SCOPE_TOKEN_BYTES, MAX_SCOPE_TOKENS};
    let many = vec!["read"; MAX_SCOPE_TOKENS + 1].join(" ");
    let long_token = "r".repeat(MAX_SCOPE_TOKEN_BYTES + 1);
    let long_resource = format!("https://mcp.example.com/mcp/{}", "x".repeat(2048));
    #[rustfmt::skip]
    let cases: Vec<(Vec<Change<'_>>, &str)> = vec![
        (vec![("scope", Some(&many))], "invalid_scope"),
        (vec![("scope", Some(&long_token))], "invalid_scope"),
        (vec![("resource", Some(&long_resource))], "invalid_target"),
    ];
    for (changes, code) in cases {
        check_error(&changes, code).await;
    }
}

#[tokio::test]
async fn control_characters_in_any_parameter_are_a_direct_invalid_request() {
    let env = TestEnv::new();
    // Even with a valid client and redirect URI: the request cannot be trusted.
    for name in [
        "client_id",
        "redirect_uri",
        "state",
        "scope",
        "resource",
        "code_challenge",
        "response_type",
    ] {
        let value = format!(
            "{}\u{0}",
            VALID
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("read", |(_, v)| v)
        );
        check_direct(&env, &query(&[(name, Some(&value))]), name).await;
    }
    check_direct(&env, &query(&[("state", Some("a\u{7f}b"))]), "state").await;
    check_direct(&env, "client_id=public-client&x%00y=1", "control character").await;
    assert!(env.provider.last_authorize.lock().unwrap().is_none());
}

#[tokio::test]
async fn more_than_64_parameters_are_a_direct_invalid_request() {
    let env = TestEnv::new();
    let extra: String = (0..5000).map(|i| format!("&x{i}=1")).collect();
    check_direct(&env, &format!("{}{extra}", query(&[])), "parameters").await;
}
