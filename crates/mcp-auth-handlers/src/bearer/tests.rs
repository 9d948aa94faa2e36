use std::collections::HashMap;

use async_trait::async_trait;
use mcp_auth_core::{ManualClock, ProviderErrorKind};

use super::*;
use crate::test_support::{FAILURE_CAUSE, RESOURCE, T0, TestEnv, body_json, header};

const METADATA: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

/// A verifier over fixed tokens, or one that always fails. It answers without waiting too,
/// unless `waits` is set.
#[derive(Debug, Clone, Default)]
struct StaticVerifier {
    tokens: HashMap<String, AccessToken>,
    failure: Option<ProviderErrorKind>,
    waits: bool,
}

impl StaticVerifier {
    fn lookup(&self, token: &AccessTokenSecret) -> Result<Option<AccessToken>, ProviderError> {
        if let Some(kind) = self.failure {
            return Err(ProviderError::new(kind, FAILURE_CAUSE));
        }
        Ok(self.tokens.get(token.expose_secret()).cloned())
    }
}

#[async_trait]
impl TokenVerifier for StaticVerifier {
    async fn verify_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<AccessToken>, ProviderError> {
        self.lookup(token)
    }

    fn verify_token_now(
        &self,
        token: &AccessTokenSecret,
    ) -> Option<Result<Option<AccessToken>, ProviderError>> {
        (!self.waits).then(|| self.lookup(token))
    }
}

fn token(
    value: &str,
    scopes: &[&str],
    expires_at: Option<i64>,
    resource: Option<&str>,
) -> AccessToken {
    let mut token = AccessToken::new(
        AccessTokenSecret::new(value),
        "test_client",
        scopes.iter().map(|s| (*s).to_owned()).collect(),
    );
    token.expires_at = expires_at;
    token.resource = resource.map(str::to_owned);
    token
}

fn verifier() -> StaticVerifier {
    let future = Some(T0 + 3600);
    let tokens = [
        token("valid", &["read", "write"], future, Some(RESOURCE)),
        token("expired", &["read"], Some(T0 - 3600), Some(RESOURCE)),
        token("expires-now", &["read"], Some(T0), Some(RESOURCE)),
        token("expires-next", &["read"], Some(T0 + 1), Some(RESOURCE)),
        token("no-expiry", &["read", "write"], None, Some(RESOURCE)),
        token("noscope", &["other:thing"], future, Some(RESOURCE)),
        token(
            "wrong-aud",
            &["read"],
            future,
            Some("https://other.example/mcp"),
        ),
        token(
            "sibling-aud",
            &["read"],
            future,
            Some("https://mcp.example.com/mcp2"),
        ),
        token(
            "origin-aud",
            &["read"],
            future,
            Some("https://mcp.example.com"),
        ),
        token(
            "sub-aud",
            &["read"],
            future,
            Some("https://mcp.example.com/mcp/x"),
        ),
        token(
            "case-aud",
            &["read"],
            future,
            Some("HTTPS://MCP.Example.COM/mcp"),
        ),
        token(
            "port-aud",
            &["read"],
            future,
            Some("https://mcp.example.com:443/mcp"),
        ),
        token(
            "trailing-aud",
            &["read"],
            future,
            Some("https://mcp.example.com/mcp/x/"),
        ),
        token("unbound", &["read"], future, None),
        token("abc+/~._-==", &["read"], future, Some(RESOURCE)),
    ];
    StaticVerifier {
        tokens: tokens
            .into_iter()
            .map(|t| (t.token.expose_secret().to_owned(), t))
            .collect(),
        failure: None,
        waits: false,
    }
}

fn auth(scopes: &[&str]) -> BearerAuth<StaticVerifier> {
    BearerAuth::new(verifier(), RESOURCE)
        .required_scopes(scopes.iter().copied())
        .clock(Arc::new(ManualClock::new(T0)))
}

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
    }
    headers
}

/// What a request should get.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Authenticated as this token.
    Ok(String),
    /// Refused with this status and `WWW-Authenticate`.
    Challenge(u16, String),
}

fn ok(token: &str) -> Expect {
    Expect::Ok(token.to_owned())
}

fn challenge(status: u16, value: &str) -> Expect {
    Expect::Challenge(status, value.to_owned())
}

/// The outcome of authenticating `values`, which must be the same asynchronously and without
/// waiting (every data-driven case below checks both paths).
async fn outcome(auth: &BearerAuth<StaticVerifier>, values: &[&[u8]]) -> Expect {
    let headers = headers(values);
    let waited = expectation(auth.authenticate(&headers).await);
    let now = auth
        .authenticate_now(&headers)
        .expect("a verifier that answers at once gives a verdict without waiting");
    assert_eq!(expectation(now), waited, "authenticate_now vs authenticate");
    waited
}

fn expectation(result: Result<AccessToken, BearerRejection>) -> Expect {
    match result {
        Ok(token) => ok(token.token.expose_secret()),
        Err(rejection) => {
            let response = rejection.into_response();
            let value = header(&response, "www-authenticate").unwrap();
            challenge(response.status().as_u16(), value)
        }
    }
}

async fn check(scopes: &[&str], values: &[&[u8]], expect: Expect) {
    let got = outcome(&auth(scopes), values).await;
    assert_eq!(
        got,
        expect,
        "{:?}",
        values
            .iter()
            .map(|v| String::from_utf8_lossy(v))
            .collect::<Vec<_>>()
    );
}

const INVALID: &str = r#"Bearer error="invalid_token", error_description="the access token is unknown or revoked", scope="read", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#;
const EXPIRED: &str = r#"Bearer error="invalid_token", error_description="the access token has expired", scope="read", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#;
const AUDIENCE: &str = r#"Bearer error="invalid_token", error_description="the access token was not issued for this resource", scope="read", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#;
const NONE: &str = r#"Bearer scope="read", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#;

fn malformed(reason: &str) -> Expect {
    let value = format!(
        r#"Bearer error="invalid_request", error_description="{reason}", scope="read", resource_metadata="{METADATA}""#
    );
    Expect::Challenge(400, value)
}

#[tokio::test]
async fn requests_without_bearer_credentials_get_a_challenge_without_error() {
    // Python's test_no_auth_header, test_no_user and test_non_authenticated_user, and the
    // interaction test `test_an_access_token_in_the_query_string_is_not_accepted`:
    // `authenticate` reads headers only, so a token in the query counts as none. Python's
    // test_no_auth_credentials has no counterpart: the scopes travel with the token.
    check(&["read"], &[], challenge(401, NONE)).await;
    // Python's test_non_bearer_auth_header: another scheme counts as no credentials.
    check(&["read"], &[b"Basic dXNlcjpwYXNz"], challenge(401, NONE)).await;
    check(&["read"], &[b"Bearerxyz"], challenge(401, NONE)).await;
    check(&["read"], &[b"Bearer\tvalid"], challenge(401, NONE)).await;
    check(&["read"], &[b""], challenge(401, NONE)).await;
}

#[tokio::test]
async fn the_scheme_is_case_insensitive() {
    // Python's test_valid_token, test_lowercase_bearer_prefix and
    // test_mixed_case_bearer_prefix.
    for value in [
        &b"Bearer valid"[..],
        b"bearer valid",
        b"BeArEr valid",
        b"BEARER valid",
        b"Bearer   valid",
        b"  Bearer valid  ",
    ] {
        check(&["read"], &[value], ok("valid")).await;
    }
}

#[tokio::test]
async fn header_names_are_case_insensitive() {
    // Python's test_mixed_case_authorization_header: `HeaderMap` folds names, so the
    // header is found however the client spelled it.
    let mut headers = HeaderMap::new();
    headers.insert(
        http::HeaderName::from_bytes(b"AuThOrIzAtIoN").unwrap(),
        HeaderValue::from_static("BeArEr valid"),
    );
    assert!(auth(&["read"]).authenticate(&headers).await.is_ok());
}

#[tokio::test]
async fn malformed_credentials_are_invalid_request() {
    let empty = "the bearer token is empty";
    let not_one = "the bearer token is not a single b64token";
    check(&["read"], &[b"Bearer"], malformed(empty)).await;
    check(&["read"], &[b"Bearer "], malformed(empty)).await;
    check(&["read"], &[b"Bearer valid extra"], malformed(not_one)).await;
    check(&["read"], &[b"Bearer val\"id"], malformed(not_one)).await;
    check(&["read"], &[b"Bearer valid,"], malformed(not_one)).await;
    check(&["read"], &[b"Bearer ab=c"], malformed(not_one)).await;
    check(&["read"], &[b"Bearer ==="], malformed(not_one)).await;
    check(&["read"], &[b"Bearer val\tid"], malformed(not_one)).await;
    check(
        &["read"],
        &[b"Bearer valid", b"Bearer valid"],
        malformed("more than one Authorization header"),
    )
    .await;
    check(
        &["read"],
        &[b"Bearer valid", b"Basic eDp5"],
        malformed("more than one Authorization header"),
    )
    .await;
    check(
        &["read"],
        &["Bearer v\u{e9}lid".as_bytes()],
        malformed("the Authorization header is not visible ASCII"),
    )
    .await;
}

#[tokio::test]
async fn every_b64token_character_is_accepted() {
    check(&["read"], &[b"Bearer abc+/~._-=="], ok("abc+/~._-==")).await;
}

#[tokio::test]
async fn unknown_and_expired_tokens_are_invalid_token() {
    // Python's test_invalid_token, test_expired_token and test_token_without_expiry.
    check(&["read"], &[b"Bearer unknown"], challenge(401, INVALID)).await;
    check(&["read"], &[b"Bearer expired"], challenge(401, EXPIRED)).await;
    // RFC 7519 §4.1.4: not accepted "on or after" the expiry; Python accepts this second.
    check(&["read"], &[b"Bearer expires-now"], challenge(401, EXPIRED)).await;
    check(&["read"], &[b"Bearer expires-next"], ok("expires-next")).await;
    check(&["read"], &[b"Bearer no-expiry"], ok("no-expiry")).await;
}

#[tokio::test]
async fn expiry_follows_the_configured_clock() {
    let clock = Arc::new(ManualClock::new(T0));
    let auth = auth(&[]).clock(clock.clone());
    let request = headers(&[b"Bearer valid"]);
    assert!(auth.authenticate(&request).await.is_ok());
    clock.advance(3600);
    let rejection = auth.authenticate(&request).await.unwrap_err();
    assert!(matches!(rejection.kind(), BearerRejectionKind::Expired));
}

#[tokio::test]
async fn tokens_for_other_resources_are_invalid_token() {
    // The Python interaction test `test_a_token_with_a_mismatched_audience_is_accepted` pins
    // the opposite; the MCP specification ("Token Handling") requires this check.
    check(&["read"], &[b"Bearer wrong-aud"], challenge(401, AUDIENCE)).await;
    check(
        &["read"],
        &[b"Bearer sibling-aud"],
        challenge(401, AUDIENCE),
    )
    .await;
    check(&["read"], &[b"Bearer origin-aud"], challenge(401, AUDIENCE)).await;
    check(&["read"], &[b"Bearer unbound"], challenge(401, AUDIENCE)).await;
    check(&["read"], &[b"Bearer sub-aud"], challenge(401, AUDIENCE)).await;
    check(&["read"], &[b"Bearer case-aud"], ok("case-aud")).await;
    check(&["read"], &[b"Bearer port-aud"], ok("port-aud")).await;
}

#[tokio::test]
async fn the_audience_is_matched_exactly_neither_a_sub_path_nor_a_parent_path_passes() {
    // A token for https://mcp.example.com/mcp/sub is refused at https://mcp.example.com/mcp ...
    check(&["read"], &[b"Bearer sub-aud"], challenge(401, AUDIENCE)).await;
    // ... and a token for https://mcp.example.com/mcp at https://mcp.example.com/mcp/sub.
    let sub = BearerAuth::new(verifier(), "https://mcp.example.com/mcp/x")
        .required_scopes(["read"])
        .clock(Arc::new(ManualClock::new(T0)));
    assert_eq!(outcome(&sub, &[b"Bearer sub-aud"]).await, ok("sub-aud"));
    let rejection = sub
        .authenticate(&headers(&[b"Bearer valid"]))
        .await
        .unwrap_err();
    assert!(matches!(
        rejection.kind(),
        BearerRejectionKind::WrongAudience
    ));
    let rejection = sub
        .authenticate(&headers(&[b"Bearer trailing-aud"]))
        .await
        .unwrap_err();
    assert!(matches!(
        rejection.kind(),
        BearerRejectionKind::WrongAudience
    ));
    // Spellings of the same URL still match.
    check(&["read"], &[b"Bearer case-aud"], ok("case-aud")).await;
    check(&["read"], &[b"Bearer port-aud"], ok("port-aud")).await;
}

#[tokio::test]
async fn tokens_without_resource_may_be_admitted() {
    let auth = auth(&["read"]).accept_tokens_without_resource(true);
    assert_eq!(outcome(&auth, &[b"Bearer unbound"]).await, ok("unbound"));
    assert_eq!(
        outcome(&auth, &[b"Bearer wrong-aud"]).await,
        challenge(401, AUDIENCE)
    );
}

#[tokio::test]
async fn missing_scopes_are_insufficient_scope_listing_every_required_scope() {
    // Python's test_missing_required_scope, test_has_required_scopes,
    // test_multiple_required_scopes and test_no_required_scopes.
    check(
        &["admin"],
        &[b"Bearer valid"],
        challenge(403, r#"Bearer error="insufficient_scope", error_description="Required scope: admin", scope="admin", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#),
    )
    .await;
    check(
        &["read", "write", "admin", "root"],
        &[b"Bearer valid"],
        challenge(403, r#"Bearer error="insufficient_scope", error_description="Required scopes: admin root", scope="read write admin root", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#),
    )
    .await;
    check(&["read"], &[b"Bearer valid"], ok("valid")).await;
    check(&["read", "write"], &[b"Bearer valid"], ok("valid")).await;
    check(&[], &[b"Bearer valid"], ok("valid")).await;
    check(&[], &[b"Bearer noscope"], ok("noscope")).await;
}

#[tokio::test]
async fn without_required_scopes_the_challenge_has_no_scope() {
    let expected = format!(r#"Bearer resource_metadata="{METADATA}""#);
    let got = outcome(&auth(&[]), &[]).await;
    assert_eq!(got, Expect::Challenge(401, expected));
}

#[tokio::test]
async fn the_authenticated_token_is_the_verifiers_record() {
    let token = auth(&["read"])
        .authenticate(&headers(&[b"Bearer valid"]))
        .await
        .unwrap();
    assert_eq!(token.client_id, "test_client");
    assert_eq!(token.scopes, ["read", "write"]);
    assert_eq!(token.resource.as_deref(), Some(RESOURCE));
}

#[tokio::test]
async fn error_bodies_are_json_like_the_python_sdk() {
    let cases: [(&[&[u8]], serde_json::Value); 4] = [
        (
            &[],
            serde_json::json!({"error": "invalid_token", "error_description": "Authentication required"}),
        ),
        (
            &[b"Bearer unknown"],
            serde_json::json!({"error": "invalid_token", "error_description": "the access token is unknown or revoked"}),
        ),
        (
            &[b"Bearer noscope"],
            serde_json::json!({"error": "insufficient_scope", "error_description": "Required scope: read"}),
        ),
        (
            &[b"Bearer"],
            serde_json::json!({"error": "invalid_request", "error_description": "the bearer token is empty"}),
        ),
    ];
    for (values, expected) in cases {
        let response = auth(&["read"])
            .authenticate(&headers(values))
            .await
            .unwrap_err()
            .into_response();
        assert_eq!(body_json(&response), expected);
        assert_eq!(header(&response, "content-type"), Some("application/json"));
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
    }
}

#[tokio::test]
async fn verifier_failures_are_503_without_challenge_or_cause() {
    for kind in [ProviderErrorKind::Unavailable, ProviderErrorKind::Internal] {
        let verifier = StaticVerifier {
            failure: Some(kind),
            ..StaticVerifier::default()
        };
        let auth = BearerAuth::new(verifier, RESOURCE).required_scopes(["read"]);
        let rejection = auth
            .authenticate(&headers(&[b"Bearer valid"]))
            .await
            .unwrap_err();
        assert_eq!(rejection.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(rejection.www_authenticate().is_none());
        let response = rejection.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(header(&response, "www-authenticate").is_none());
        assert_eq!(header(&response, "retry-after"), Some("5"));
        assert_eq!(
            body_json(&response),
            serde_json::json!({"error": "temporarily_unavailable"})
        );
        assert!(!String::from_utf8_lossy(response.body()).contains("hunter2"));
    }
}

#[tokio::test]
async fn rejections_never_carry_the_token() {
    let secret = "s3cr3t-token-value";
    let value = format!("Bearer {secret}");
    let rejection = auth(&["read"])
        .authenticate(&headers(&[value.as_bytes()]))
        .await
        .unwrap_err();
    let rendered = format!("{rejection:?} {rejection}");
    let response = rejection.into_response();
    assert!(!rendered.contains(secret), "{rendered}");
    assert!(!format!("{:?}", response.headers()).contains(secret));
    assert!(!String::from_utf8_lossy(response.body()).contains(secret));
}

#[test]
fn attribute_values_are_quoted_strings() {
    let cases = [
        ("scope", "a b", r#"scope="a b""#),
        ("scope", r#"a"b"#, r#"scope="a\"b""#),
        ("scope", r"a\b", r#"scope="a\\b""#),
        ("scope", "a\r\nb\u{7f}", r#"scope="ab""#),
        ("x", "tab\there", "x=\"tab\there\""),
        ("x", "", r#"x="""#),
    ];
    for (name, value, expected) in cases {
        assert_eq!(auth_param(name, value), expected, "{value:?}");
    }
}

#[tokio::test]
async fn configured_values_are_escaped_in_the_challenge() {
    let auth = auth(&[r#"we"ird"#, r"back\slash"]).resource_metadata_url("https://rs/\"x\"");
    let challenge = auth.unauthenticated().www_authenticate().unwrap();
    assert_eq!(
        challenge,
        r#"Bearer scope="we\"ird back\\slash", resource_metadata="https://rs/\"x\"""#
    );
    let response = auth.unauthenticated().into_response();
    assert_eq!(
        header(&response, "www-authenticate"),
        Some(challenge.as_str())
    );
}

#[test]
fn configuration_from_the_handler_context() {
    let env = TestEnv::new();
    let auth = BearerAuth::from_context(verifier(), &env.ctx).unwrap();
    assert_eq!(auth.audience(), RESOURCE);
    assert_eq!(auth.resource_metadata(), METADATA);
    assert!(auth.scopes().is_empty());

    let settings = mcp_auth_core::AuthSettings::builder("https://as.example")
        .resource_server_url("HTTPS://RS.example/mcp")
        .required_scopes(["mcp:tools"])
        .build()
        .unwrap();
    let ctx = HandlerContext::new(settings, mcp_auth_core::Capabilities::new());
    let auth = BearerAuth::from_context(verifier(), &ctx).unwrap();
    assert_eq!(auth.audience(), "https://rs.example/mcp");
    assert_eq!(
        auth.resource_metadata(),
        "https://rs.example/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(auth.scopes(), ["mcp:tools"]);

    let ctx = HandlerContext::new(
        mcp_auth_core::AuthSettings::builder("https://as.example")
            .build()
            .unwrap(),
        mcp_auth_core::Capabilities::new(),
    );
    assert!(BearerAuth::from_context(verifier(), &ctx).is_err());
}

#[tokio::test]
async fn a_provider_backed_verifier_sees_revocation() {
    // Revoked tokens are unknown to the verifier, so they are invalid_token.
    let env = TestEnv::new();
    let (access, _) = env
        .provider
        .issue_tokens("post-client", &["read"], Some(RESOURCE));
    let verifier = mcp_auth_core::ProviderTokenVerifier::new(env.provider.clone());
    let auth = BearerAuth::from_context(verifier, &env.ctx).unwrap();
    let value = format!("Bearer {access}");
    let request = headers(&[value.as_bytes()]);
    assert!(auth.authenticate(&request).await.is_ok());
    use mcp_auth_core::OAuthAuthorizationServerProvider as _;
    let record = env.provider.access_token(&access).unwrap();
    env.provider
        .revoke_token(mcp_auth_core::RevocableToken::Access(record))
        .await
        .unwrap();
    let rejection = auth.authenticate(&request).await.unwrap_err();
    assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
}

/// `scope="…"` of a 403 for `missing`, naming `needed`.
fn insufficient(missing: &str, needed: &str) -> Expect {
    let noun = if missing.contains(' ') {
        "scopes"
    } else {
        "scope"
    };
    challenge(
        403,
        &format!(
            r#"Bearer error="insufficient_scope", error_description="Required {noun}: {missing}", scope="{needed}", resource_metadata="{METADATA}""#
        ),
    )
}

async fn outcome_for(auth: &BearerAuth<StaticVerifier>, value: &[u8], extra: &[&str]) -> Expect {
    let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    match auth.authenticate_for(&headers(&[value]), &extra).await {
        Ok(token) => ok(token.token.expose_secret()),
        Err(rejection) => {
            let response = rejection.into_response();
            let value = header(&response, "www-authenticate").unwrap();
            challenge(response.status().as_u16(), value)
        }
    }
}

#[tokio::test]
async fn granted_scopes_count_for_the_scopes_they_imply() {
    // "noscope" holds other:thing; "valid" holds read and write.
    let exact = auth(&["other:thing:x"]).scope_implication(ScopeImplication::exact());
    let paired = auth(&["admin"]).scope_implication(ScopeImplication::new().pair("write", "admin"));
    let cases: [(BearerAuth<StaticVerifier>, &[u8], Expect); 6] = [
        (auth(&["other:thing:x"]), b"Bearer noscope", ok("noscope")),
        (auth(&["other:thing:x:y"]), b"Bearer noscope", ok("noscope")),
        (
            auth(&["other"]),
            b"Bearer noscope",
            insufficient("other", "other"),
        ),
        (
            auth(&["other:thingx"]),
            b"Bearer noscope",
            insufficient("other:thingx", "other:thingx"),
        ),
        (
            exact,
            b"Bearer noscope",
            insufficient("other:thing:x", "other:thing:x"),
        ),
        (paired, b"Bearer valid", ok("valid")),
    ];
    for (auth, value, expect) in cases {
        assert_eq!(
            outcome(&auth, &[value]).await,
            expect,
            "{:?}",
            auth.scopes()
        );
    }
}

#[tokio::test]
async fn an_operations_challenges_name_the_union_of_base_and_operation_scopes() {
    let base = auth(&["read"]);
    let cases: [(&[u8], &[&str], Expect); 7] = [
        (b"Bearer valid", &["write"], ok("valid")),
        (
            b"Bearer valid",
            &["read", "admin"],
            insufficient("admin", "read admin"),
        ),
        (
            b"Bearer valid",
            &["admin", "root"],
            insufficient("admin root", "read admin root"),
        ),
        (
            b"Bearer noscope",
            &["admin"],
            insufficient("read admin", "read admin"),
        ),
        (b"Bearer valid", &[], ok("valid")),
        (
            b"Bearer unknown",
            &["admin"],
            challenge(
                401,
                &INVALID.replace(r#"scope="read""#, r#"scope="read admin""#),
            ),
        ),
        (
            b"Basic x",
            &["admin"],
            challenge(
                401,
                &NONE.replace(r#"scope="read""#, r#"scope="read admin""#),
            ),
        ),
    ];
    for (value, extra, expect) in cases {
        assert_eq!(outcome_for(&base, value, extra).await, expect, "{extra:?}");
    }
}

#[tokio::test]
async fn without_an_immediate_verdict_only_the_header_is_judged_at_once() {
    let mut waiting = verifier();
    waiting.waits = true;
    let auth = BearerAuth::new(waiting, RESOURCE)
        .required_scopes(["read"])
        .clock(Arc::new(ManualClock::new(T0)));
    // A token the verifier must look up: no verdict now, the asynchronous one stands.
    for value in [&b"Bearer valid"[..], b"Bearer unknown"] {
        assert!(auth.authenticate_now(&headers(&[value])).is_none());
    }
    assert_eq!(
        expectation(auth.authenticate(&headers(&[b"Bearer valid"])).await),
        ok("valid")
    );
    // A request refused for its header alone is refused at once, as it would be later.
    for values in [&[][..], &[&b"Bearer a b"[..]], &[&b"Basic x"[..]]] {
        let headers = headers(values);
        let now = auth
            .authenticate_now(&headers)
            .expect("judged by the header");
        assert_eq!(
            expectation(now),
            expectation(auth.authenticate(&headers).await)
        );
    }
}

#[tokio::test]
async fn verifier_failures_without_waiting_are_503_too() {
    let failing = StaticVerifier {
        failure: Some(ProviderErrorKind::Unavailable),
        ..StaticVerifier::default()
    };
    let auth = BearerAuth::new(failing, RESOURCE);
    let rejection = auth
        .authenticate_now(&headers(&[b"Bearer valid"]))
        .expect("the verifier answered")
        .unwrap_err();
    assert_eq!(rejection.status(), StatusCode::SERVICE_UNAVAILABLE);
}

mod well_formed_bearer_fast_path {
    use http::HeaderValue;
    use proptest::prelude::*;

    use super::super::{exact_bearer, is_b64token_body, is_b64token_byte, well_formed_bearer};

    /// Bytes a header value may hold, weighted towards what makes bearer credentials.
    fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
        let alphabet: Vec<u8> = b" \t=BbEeAaRr.-_~+/0zZ:!\"\\,;"
            .iter()
            .copied()
            .chain([0x80, 0xc3, 0xa9, 0x7e])
            .collect();
        proptest::collection::vec(proptest::sample::select(alphabet), 0..40)
    }

    proptest! {
        /// Whatever the fast path accepts, the full judgement accepts as the same token.
        #[test]
        fn accepts_only_what_the_full_judgement_accepts(raw in header_bytes()) {
            let Ok(value) = HeaderValue::from_bytes(&raw) else { return Ok(()) };
            if let Some(token) = well_formed_bearer(value.as_bytes()) {
                let exact = exact_bearer(&value).expect("the full judgement accepts it too");
                prop_assert_eq!(exact.expose_secret(), token);
            }
        }

        /// And it takes the common forms itself.
        #[test]
        fn takes_the_common_forms(
            token in "[A-Za-z0-9_-]{1,60}\\.[A-Za-z0-9_-]{1,60}\\.[A-Za-z0-9_-]{1,60}={0,2}",
            scheme in "(Bearer|bearer|BEARER)",
            pad in "[ \t]{0,2}",
        ) {
            let header = format!("{pad}{scheme} {token}{pad}");
            let value = HeaderValue::from_str(&header).expect("a header value");
            prop_assert_eq!(well_formed_bearer(value.as_bytes()), Some(token.as_str()));
        }
    }

    #[test]
    fn the_branch_free_byte_test_is_the_rfc_alphabet() {
        for b in 0..=u8::MAX {
            let rfc = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_b64token_byte(b), rfc, "byte {b:#04x}");
        }
    }

    #[test]
    fn one_bad_byte_anywhere_in_a_long_token_is_found() {
        // Past several whole 32-byte blocks, so the block path and the tail are both tried.
        let good = vec![b'a'; 100];
        assert!(is_b64token_body(&good));
        for at in 0..good.len() {
            for bad in [b'=', b' ', b'"', 0x80, 0xff] {
                let mut body = good.clone();
                body[at] = bad;
                assert!(!is_b64token_body(&body), "{bad:#04x} at {at}");
            }
        }
    }

    #[test]
    fn everything_else_goes_to_the_full_judgement() {
        for header in [
            "Basic abc",
            "Bearer",
            "Bearer ",
            "Bearer\tabc",
            "Bearer a b",
            "Bearer ===",
            "Bearer a=b",
            "Bearerabc",
        ] {
            assert_eq!(well_formed_bearer(header.as_bytes()), None, "{header:?}");
        }
    }
}
