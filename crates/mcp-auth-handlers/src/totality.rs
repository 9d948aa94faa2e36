//! Totality: every handler answers every request — any method, headers, URI and body — with a
//! 2xx, 3xx or 4xx while the provider works. Never a panic, never a 5xx.
//!
//! Two kinds of input per handler: arbitrary requests, which mostly die at the first check,
//! and near-valid ones (well-formed parameters with values drawn from pools of good, bad and
//! random values), which reach the deeper paths. Each run also asserts that the near-valid
//! inputs did reach success at least once, so the strategy cannot silently degrade into
//! testing only the first check.
//!
//! Values now and then carry a control character (NUL, C0, DEL, C1), and the test provider
//! fails like PostgreSQL on any it is handed (a 500 here), so these tests also hold that no
//! control character ever reaches the provider; [`control`] holds that each is refused with
//! the endpoint's own 400.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri};
use mcp_auth_core::{
    AuthSettings, Capabilities, ClientRegistrationOptions, ProviderTokenVerifier, RevocationOptions,
};
use mcp_auth_types::CLIENT_ASSERTION_TYPE_JWT_BEARER;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::authorize::AuthorizationHandler;
use crate::bearer::BearerAuth;
use crate::metadata::{
    MetadataHandler, ProtectedResourceMetadataHandler, build_metadata,
    build_protected_resource_metadata,
};
use crate::register::RegistrationHandler;
use crate::revoke::RevocationHandler;
use crate::test_support::{
    BASIC_CLIENT_ID, BASIC_CLIENT_SECRET, ISSUER, JWT_CLIENT_ID, LOOPBACK_CLIENT_ID,
    LOOPBACK_REDIRECT_URI, PKCE_CHALLENGE, PKCE_VERIFIER, POST_CLIENT_ID, POST_CLIENT_SECRET,
    PUBLIC_CLIENT_ID, REDIRECT_URI, RESOURCE, TestEnv, VALID_ASSERTION, VALID_CLIENT_ASSERTION,
    basic_auth, client_assertion_for, form,
};
use crate::token::TokenHandler;

mod control;

/// A request as generated: plain data, so proptest can print and shrink it.
#[derive(Debug, Clone)]
struct RawRequest {
    method: String,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl RawRequest {
    /// The `http` request. Parts `http` cannot represent (a server would never hand them to a
    /// handler) fall back to `GET`, `/` or are left out.
    fn build(&self) -> Request<Bytes> {
        let mut request = Request::new(Bytes::from(self.body.clone()));
        *request.method_mut() = Method::from_bytes(self.method.as_bytes()).unwrap_or(Method::GET);
        *request.uri_mut() =
            Uri::try_from(self.uri.as_str()).unwrap_or_else(|_| Uri::from_static("/"));
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                request.headers_mut().append(name, value);
            }
        }
        request
    }
}

fn owned(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// Any method, mostly the usual ones.
fn method() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(owned(&["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"])),
        1 => "[A-Z]{1,12}",
    ]
    .boxed()
}

/// Any origin-form URI, with and without a query.
fn uri() -> BoxedStrategy<String> {
    prop_oneof![
        "/[a-zA-Z0-9/._~%-]{0,30}",
        "/[a-z]{0,10}\\?[a-zA-Z0-9=&%+._~:/?@!$'()*,;\\[\\]-]{0,120}",
        "\\PC{0,40}",
    ]
    .boxed()
}

/// Any header value, with the interesting ones over-represented.
fn header_value() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        select(owned(&[
            "application/json",
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "text/plain",
            "multipart/form-data; boundary=x",
            "Bearer",
            "Bearer ",
            "Basic",
            "Basic !!!",
            "Basic Og==",
        ]))
        .prop_map(String::into_bytes),
        "(Bearer|Basic|bearer|BASIC|Digest) [ -~]{0,40}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..48),
    ]
    .boxed()
}

/// Any header set, mostly with the headers the handlers read.
fn headers() -> BoxedStrategy<Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        3 => select(owned(&["authorization", "content-type", "accept", "origin", "content-length"])),
        1 => "[a-zA-Z][a-zA-Z0-9-]{0,15}",
    ];
    proptest::collection::vec((name, header_value()), 0..5).boxed()
}

/// Any body: bytes, text, or something shaped like a form or JSON.
fn body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "\\PC{0,120}".prop_map(String::into_bytes),
        "([a-z_]{1,12}=[ -~]{0,20}&?){0,8}".prop_map(String::into_bytes),
        "([a-z_]{1,12}=[a-z]{0,8}(%00|%0[1-9A-F]|%1[0-9A-F]|%7F|%C2%8[0-9A-F])?&?){0,8}"
            .prop_map(String::into_bytes),
        "\\{(\"[a-z_]{1,14}\": ?(\"[ -~]{0,20}\"|\\[\\]|null|[0-9]{1,4}|true)(, )?){0,6}\\}"
            .prop_map(String::into_bytes),
    ]
    .boxed()
}

/// Arbitrary requests.
fn arbitrary() -> BoxedStrategy<RawRequest> {
    (method(), uri(), headers(), body())
        .prop_map(|(method, uri, headers, body)| RawRequest {
            method,
            uri,
            headers,
            body,
        })
        .boxed()
}

/// An entry of `pool`, whose first entry is the good one and comes most often.
fn pick(pool: Vec<String>) -> BoxedStrategy<String> {
    let good = pool.first().cloned().unwrap_or_default();
    prop_oneof![2 => Just(good), 1 => select(pool)].boxed()
}

/// A value from `pool` (see [`pick`]), or now and then any text, or one of `pool` with a
/// control character in it.
fn value(pool: Vec<String>) -> BoxedStrategy<String> {
    prop_oneof![
        18 => pick(pool.clone()),
        2 => "\\PC{0,24}",
        1 => (pick(pool), any::<proptest::sample::Index>(), control_character())
            .prop_map(|(value, at, control)| insert_control(&value, at, control)),
    ]
    .boxed()
}

/// Any control character: C0 (NUL most often), DEL or C1.
fn control_character() -> BoxedStrategy<char> {
    prop_oneof![
        2 => Just('\u{0}'),
        2 => (1u32..0x20).prop_map(|c| char::from_u32(c).unwrap_or('\u{0}')),
        1 => Just('\u{7f}'),
        1 => (0x80u32..0xa0).prop_map(|c| char::from_u32(c).unwrap_or('\u{0}')),
    ]
    .boxed()
}

/// `value` with `control` inserted at a character boundary chosen by `at`.
fn insert_control(value: &str, at: proptest::sample::Index, control: char) -> String {
    let boundaries: Vec<usize> = value
        .char_indices()
        .map(|(i, _)| i)
        .chain([value.len()])
        .collect();
    let position = boundaries[at.index(boundaries.len())];
    let mut out = value.to_owned();
    out.insert(position, control);
    out
}

/// One parameter of a near-valid request: its name, how often it is present, and its values.
type Param = (&'static str, f64, BoxedStrategy<String>);

/// A parameter present with probability 0.85, with a value from `pool` (see [`value`]).
fn param(name: &'static str, pool: Vec<String>) -> Param {
    (name, 0.85, value(pool))
}

/// A parameter whose value is one of many single-use credentials, or now and then junk.
fn credential(name: &'static str, presence: f64, pool: Vec<String>) -> Param {
    let values = prop_oneof![4 => select(pool), 1 => value(owned(&["junk", ""]))];
    (name, presence, values.boxed())
}

/// Parameters: each of `spec` with its presence and values, plus a few unknown parameters, and
/// sometimes the first one repeated.
fn params(spec: Vec<Param>) -> BoxedStrategy<Vec<(String, String)>> {
    let known: Vec<BoxedStrategy<Option<(String, String)>>> = spec
        .into_iter()
        .map(|(name, presence, values)| {
            proptest::option::weighted(presence, values.prop_map(move |v| (name.to_owned(), v)))
                .boxed()
        })
        .collect();
    let extra = proptest::collection::vec(("[a-z_]{1,10}", "\\PC{0,12}"), 0..3);
    (known, extra, proptest::bool::weighted(0.1))
        .prop_map(|(known, extra, repeat)| {
            let mut pairs: Vec<(String, String)> = known.into_iter().flatten().collect();
            pairs.extend(extra);
            if repeat && let Some(first) = pairs.first().cloned() {
                pairs.push(first);
            }
            pairs
        })
        .boxed()
}

fn encode(pairs: &[(String, String)]) -> String {
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    form(&pairs)
}

/// A form `POST` with mostly the right content type and an optional `Authorization` header.
fn form_post(
    path: &'static str,
    params: BoxedStrategy<Vec<(String, String)>>,
    authorization: Vec<String>,
) -> BoxedStrategy<RawRequest> {
    let content_type = prop_oneof![
        6 => Just(Some("application/x-www-form-urlencoded".to_owned())),
        1 => Just(None),
        1 => Just(Some("application/json".to_owned())),
    ];
    let authorization = proptest::option::weighted(0.3, value(authorization));
    (params, content_type, authorization)
        .prop_map(move |(pairs, content_type, authorization)| {
            let mut headers = Vec::new();
            if let Some(content_type) = content_type {
                headers.push(("content-type".to_owned(), content_type.into_bytes()));
            }
            if let Some(authorization) = authorization {
                headers.push(("authorization".to_owned(), authorization.into_bytes()));
            }
            RawRequest {
                method: "POST".to_owned(),
                uri: path.to_owned(),
                headers,
                body: encode(&pairs).into_bytes(),
            }
        })
        .boxed()
}

/// Client authentication headers, good and bad.
fn authorizations() -> Vec<String> {
    vec![
        basic_auth(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET),
        basic_auth(POST_CLIENT_ID, POST_CLIENT_SECRET),
        basic_auth(BASIC_CLIENT_ID, "wrong"),
        basic_auth("", ""),
        "Basic bm9jb2xvbg==".to_owned(),
        "Basic !!!".to_owned(),
        "Bearer token".to_owned(),
        basic_auth(&format!("{BASIC_CLIENT_ID}\u{0}"), BASIC_CLIENT_SECRET),
        basic_auth(BASIC_CLIENT_ID, &format!("{BASIC_CLIENT_SECRET}\u{7f}")),
    ]
}

/// Client ids of every registration kind, and strangers.
fn client_ids() -> Vec<String> {
    owned(&[
        PUBLIC_CLIENT_ID,
        POST_CLIENT_ID,
        BASIC_CLIENT_ID,
        LOOPBACK_CLIENT_ID,
        JWT_CLIENT_ID,
        "unknown-client",
        "https://client.example.com/metadata.json",
    ])
}

fn scopes() -> Vec<String> {
    owned(&[
        "read",
        "read write",
        "read write profile",
        "admin",
        "",
        "read  write",
    ])
}

fn resources() -> Vec<String> {
    owned(&[
        RESOURCE,
        "https://mcp.example.com/mcp/tools",
        "https://other.example/mcp",
        "https://mcp.example.com/mcp#frag",
        "not a uri",
    ])
}

/// Near-valid authorization requests, by `GET` query or `POST` form.
fn authorize_requests() -> BoxedStrategy<RawRequest> {
    authorize_request(params(authorize_spec()))
}

/// The parameters of a near-valid authorization request.
fn authorize_spec() -> Vec<Param> {
    vec![
        param("response_type", owned(&["code", "token", "code token", ""])),
        param("client_id", client_ids()),
        param(
            "redirect_uri",
            owned(&[
                REDIRECT_URI,
                LOOPBACK_REDIRECT_URI,
                "http://127.0.0.1:49152/callback",
                "https://evil.example/callback",
                "https://client.example.com/callback#x",
            ]),
        ),
        param(
            "code_challenge",
            owned(&[PKCE_CHALLENGE, "too-short", &"a".repeat(129)]),
        ),
        param("code_challenge_method", owned(&["S256", "plain", "s256"])),
        param("state", owned(&["xyz", "a b&c=d", ""])),
        param("scope", scopes()),
        param("resource", resources()),
    ]
}

/// Authorization requests carrying `params`, by `GET` query or `POST` form.
fn authorize_request(params: BoxedStrategy<Vec<(String, String)>>) -> BoxedStrategy<RawRequest> {
    (params, any::<bool>())
        .prop_map(|(pairs, by_get)| {
            let encoded = encode(&pairs);
            if by_get {
                RawRequest {
                    method: "GET".to_owned(),
                    uri: format!("/authorize?{encoded}"),
                    headers: Vec::new(),
                    body: Vec::new(),
                }
            } else {
                RawRequest {
                    method: "POST".to_owned(),
                    uri: "/authorize".to_owned(),
                    headers: vec![(
                        "content-type".to_owned(),
                        b"application/x-www-form-urlencoded".to_vec(),
                    )],
                    body: encoded.into_bytes(),
                }
            }
        })
        .boxed()
}

/// Near-valid registration requests: a JSON object of known members with plausible values,
/// now and then a wrongly typed one.
fn register_requests() -> BoxedStrategy<RawRequest> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::String),
    ];
    let junk = leaf.prop_recursive(2, 8, 3, |inner| {
        proptest::collection::vec(inner, 0..3).prop_map(Value::Array)
    });
    let strings = |pool: Vec<String>| {
        prop_oneof![
            1 => Just(Vec::new()),
            9 => proptest::collection::vec(pick(pool), 1..4),
        ]
    };
    let uris = owned(&[
        REDIRECT_URI,
        LOOPBACK_REDIRECT_URI,
        "com.example.app:/cb",
        "http://evil.example/cb",
        "https://a.example/cb#f",
        "not-a-uri",
    ]);
    let member = |name: &'static str, good: BoxedStrategy<Value>| {
        proptest::option::weighted(
            0.8,
            prop_oneof![19 => good, 1 => junk.clone()].prop_map(move |v| (name.to_owned(), v)),
        )
    };
    let members = vec![
        member("redirect_uris", strings(uris).prop_map(Value::from).boxed()),
        member(
            "token_endpoint_auth_method",
            pick(owned(&[
                "client_secret_post",
                "none",
                "client_secret_basic",
                "private_key_jwt",
                "tls_client_auth",
            ]))
            .prop_map(Value::from)
            .boxed(),
        ),
        member(
            "grant_types",
            strings(owned(&[
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "client_credentials",
            ]))
            .prop_map(Value::from)
            .boxed(),
        ),
        member(
            "response_types",
            strings(owned(&["code", "token", "none"]))
                .prop_map(Value::from)
                .boxed(),
        ),
        member("scope", value(scopes()).prop_map(Value::from).boxed()),
        member("client_name", "\\PC{0,20}".prop_map(Value::from).boxed()),
        member(
            "logo_uri",
            pick(owned(&["https://a.example/logo.png", "", "x"]))
                .prop_map(Value::from)
                .boxed(),
        ),
    ];
    members
        .prop_map(|members| {
            let object: BTreeMap<String, Value> = members.into_iter().flatten().collect();
            RawRequest {
                method: "POST".to_owned(),
                uri: "/register".to_owned(),
                headers: vec![("content-type".to_owned(), b"application/json".to_vec())],
                body: serde_json::to_vec(&object).unwrap_or_default(),
            }
        })
        .boxed()
}

/// Near-valid token requests for each grant, with single-use `codes` and `refresh` tokens.
fn token_requests(codes: Vec<String>, refresh: Vec<String>) -> BoxedStrategy<RawRequest> {
    form_post(
        "/token",
        params(token_spec(codes, refresh)),
        authorizations(),
    )
}

/// The parameters of a near-valid token request.
fn token_spec(codes: Vec<String>, refresh: Vec<String>) -> Vec<Param> {
    vec![
        param(
            "grant_type",
            owned(&[
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "client_credentials",
                "",
            ]),
        ),
        param("client_id", client_ids()),
        (
            "client_secret",
            0.2,
            value(owned(&[POST_CLIENT_SECRET, "wrong"])),
        ),
        credential("code", 0.85, codes),
        param(
            "code_verifier",
            owned(&[PKCE_VERIFIER, &"v".repeat(43), "short"]),
        ),
        param(
            "redirect_uri",
            owned(&[
                REDIRECT_URI,
                LOOPBACK_REDIRECT_URI,
                "https://evil.example/cb",
            ]),
        ),
        credential("refresh_token", 0.5, refresh),
        ("scope", 0.3, value(scopes())),
        ("resource", 0.5, value(resources())),
        (
            "assertion",
            0.3,
            value(owned(&[VALID_ASSERTION, "not-a-jwt"])),
        ),
        (
            "client_assertion",
            0.1,
            value(vec![
                VALID_CLIENT_ASSERTION.to_owned(),
                client_assertion_for("jwt-client\u{0}"),
                client_assertion_for("jwt-client"),
            ]),
        ),
        (
            "client_assertion_type",
            0.1,
            value(owned(&[CLIENT_ASSERTION_TYPE_JWT_BEARER, "x"])),
        ),
    ]
}

/// Near-valid revocation requests for issued, unknown and junk tokens.
fn revoke_requests(tokens: Vec<String>) -> BoxedStrategy<RawRequest> {
    form_post("/revoke", params(revoke_spec(tokens)), authorizations())
}

/// The parameters of a near-valid revocation request.
fn revoke_spec(tokens: Vec<String>) -> Vec<Param> {
    vec![
        credential("token", 0.9, tokens),
        (
            "token_type_hint",
            0.5,
            value(owned(&["access_token", "refresh_token", "id_token"])),
        ),
        param("client_id", client_ids()),
        (
            "client_secret",
            0.2,
            value(owned(&[POST_CLIENT_SECRET, "wrong"])),
        ),
    ]
}

/// Near-valid protected-resource requests: `Authorization` values around the valid tokens.
fn bearer_requests(tokens: Vec<String>) -> BoxedStrategy<RawRequest> {
    let mut values: Vec<String> = tokens.iter().map(|t| format!("Bearer {t}")).collect();
    values.extend(tokens.iter().map(|t| format!("bearer  {t} ")));
    values.extend(tokens.iter().map(|t| format!("Bearer {t} {t}")));
    values.extend(owned(&[
        "Bearer",
        "Bearer unknown",
        "Basic Og==",
        "Bearer a\"b",
    ]));
    let header = proptest::collection::vec(
        value(values).prop_map(|v| ("authorization".to_owned(), v.into_bytes())),
        0..3,
    );
    header
        .prop_map(|headers| RawRequest {
            method: "POST".to_owned(),
            uri: "/mcp".to_owned(),
            headers,
            body: Vec::new(),
        })
        .boxed()
}

/// Settings that switch every feature on, so every path is reachable.
fn env() -> TestEnv {
    TestEnv::with_capabilities(
        AuthSettings::builder(ISSUER)
            .resource_server_url(RESOURCE)
            .client_registration(
                ClientRegistrationOptions::enabled().valid_scopes(["read", "write", "profile"]),
            )
            .revocation(RevocationOptions::enabled())
            .required_scopes(["read"])
            .build()
            .expect("valid settings"),
        Capabilities::new()
            .identity_assertion()
            .client_credentials()
            .private_key_jwt(["ES256"]),
    )
}

/// Runs `test` on `cases` requests from `strategy`; panics with the shrunk failing input.
fn run_cases(
    cases: u32,
    strategy: BoxedStrategy<RawRequest>,
    test: impl Fn(RawRequest) -> Result<(), proptest::test_runner::TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        // Failures are reported with the shrunk input; no regression files in the source tree.
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("{failure}");
    }
}

/// Runs `cases` requests from `strategy` through `handle`, asserting each answer is a 2xx, 3xx
/// or 4xx; returns how many answers `deep` recognises as having passed every check.
fn check_total<F>(
    cases: u32,
    strategy: BoxedStrategy<RawRequest>,
    handle: F,
    deep: fn(&Response<Bytes>) -> bool,
) -> u32
where
    F: Fn(Request<Bytes>) -> Response<Bytes>,
{
    let successes = RefCell::new(0);
    run_cases(cases, strategy, |raw| {
        let response = handle(raw.build());
        let status = response.status();
        prop_assert!(
            (200..500).contains(&status.as_u16()),
            "{raw:?} got {status} {:?}",
            String::from_utf8_lossy(response.body())
        );
        if deep(&response) {
            *successes.borrow_mut() += 1;
        }
        Ok(())
    });
    successes.into_inner()
}

/// Any answer at all.
fn any_answer(_: &Response<Bytes>) -> bool {
    false
}

fn ok(response: &Response<Bytes>) -> bool {
    response.status().is_success()
}

/// A redirect to the client carrying a code: the provider was asked to authorize.
fn code_redirect(response: &Response<Bytes>) -> bool {
    response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.contains("code="))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
}

#[test]
fn the_authorization_endpoint_is_total() {
    let rt = runtime();
    let env = env();
    let handler = AuthorizationHandler::new(env.provider.clone(), env.ctx.clone());
    let handle = |request| rt.block_on(handler.handle(request));
    check_total(256, arbitrary(), handle, any_answer);
    let reached = check_total(512, authorize_requests(), handle, code_redirect);
    assert!(
        reached > 0,
        "no near-valid authorization request reached the provider"
    );
}

#[test]
fn the_token_endpoint_is_total() {
    let rt = runtime();
    let env = env();
    let handler = TokenHandler::new(env.provider.clone(), env.ctx.clone());
    let codes: Vec<String> = (0..128)
        .map(|_| {
            env.provider
                .insert_code(PUBLIC_CLIENT_ID, REDIRECT_URI, true, Some(RESOURCE))
        })
        .collect();
    let refresh: Vec<String> = (0..128)
        .map(|_| {
            env.provider
                .issue_tokens(PUBLIC_CLIENT_ID, &["read", "write"], Some(RESOURCE))
                .1
        })
        .collect();
    let handle = |request| rt.block_on(handler.handle(request));
    check_total(256, arbitrary(), handle, any_answer);
    let reached = check_total(512, token_requests(codes, refresh), handle, ok);
    assert!(reached > 0, "no near-valid token request was granted");
}

#[test]
fn the_revocation_endpoint_is_total() {
    let rt = runtime();
    let env = env();
    let handler = RevocationHandler::new(env.provider.clone(), env.ctx.clone());
    let mut tokens = Vec::new();
    for client in [PUBLIC_CLIENT_ID, POST_CLIENT_ID] {
        for _ in 0..32 {
            let (access, refresh) = env.provider.issue_tokens(client, &["read"], Some(RESOURCE));
            tokens.extend([access, refresh]);
        }
    }
    let handle = |request| rt.block_on(handler.handle(request));
    check_total(256, arbitrary(), handle, any_answer);
    let reached = check_total(512, revoke_requests(tokens), handle, ok);
    assert!(reached > 0, "no near-valid revocation was accepted");
}

#[test]
fn the_registration_endpoint_is_total() {
    let rt = runtime();
    let env = env();
    let handler = RegistrationHandler::new(env.provider.clone(), env.ctx.clone());
    let handle = |request| rt.block_on(handler.handle(request));
    check_total(256, arbitrary(), handle, any_answer);
    let reached = check_total(512, register_requests(), handle, ok);
    assert!(reached > 0, "no near-valid registration succeeded");
}

#[test]
fn the_metadata_endpoints_are_total() {
    let rt = runtime();
    let env = env();
    let metadata = MetadataHandler::new(&build_metadata(&env.ctx.settings, &env.ctx.capabilities));
    let resource = ProtectedResourceMetadataHandler::new(&build_protected_resource_metadata(
        &env.ctx.settings,
        RESOURCE,
    ));
    let reached = check_total(
        256,
        arbitrary(),
        |request| rt.block_on(metadata.handle(request)),
        ok,
    );
    assert!(reached > 0, "no GET reached the metadata");
    let reached = check_total(
        256,
        arbitrary(),
        |request| rt.block_on(resource.handle(request)),
        ok,
    );
    assert!(reached > 0, "no GET reached the resource metadata");
}

#[test]
fn bearer_authentication_is_total() {
    let rt = runtime();
    let env = env();
    let mut tokens = Vec::new();
    for (scopes, resource) in [
        (&["read"][..], Some(RESOURCE)),
        (&["write"][..], Some(RESOURCE)),
        (&["read"][..], Some("https://other.example/mcp")),
        (&["read"][..], None),
    ] {
        tokens.push(
            env.provider
                .issue_tokens(POST_CLIENT_ID, scopes, resource)
                .0,
        );
    }
    let verifier = ProviderTokenVerifier::new(Arc::clone(&env.provider));
    let auth = BearerAuth::from_context(verifier, &env.ctx).expect("a resource server URL");
    let handle = |request: Request<Bytes>| {
        rt.block_on(async {
            match auth.authenticate(request.headers()).await {
                Ok(_) => Response::new(Bytes::new()),
                Err(rejection) => rejection.into_response(),
            }
        })
    };
    check_total(256, arbitrary(), handle, any_answer);
    let reached = check_total(512, bearer_requests(tokens), handle, ok);
    assert!(reached > 0, "no near-valid bearer request was accepted");
}
