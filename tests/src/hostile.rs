//! Hostile input against a running server, on whatever store it uses: control characters (NUL
//! included, which PostgreSQL refuses in text), oversized and repeated parameters, in every
//! parameter of every OAuth endpoint. Every answer must be the endpoint's own 4xx (or, at
//! `/authorize` once the client and redirect URI are known, a redirect carrying the error);
//! never a 5xx, never a success, and nothing hostile stored.
//!
//! The handlers' property test proves the same against a test provider; this runs the real
//! stores, so a backend that would turn an input into a storage error is caught.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{TestClient, TestServer, location, redirect_params};

/// Characters no parameter may carry: C0 (NUL first), DEL, C1.
const CONTROL: [char; 6] = ['\0', '\u{1}', '\n', '\u{1b}', '\u{7f}', '\u{85}'];

/// How many randomly spliced requests each endpoint gets, from a fixed seed (reproducible).
const RANDOM_CASES: usize = 24;

/// `value` with a control character spliced in at a position chosen by `rng`.
fn splice(rng: &mut StdRng, value: &str) -> String {
    let c = CONTROL[rng.random_range(0..CONTROL.len())];
    let at = rng.random_range(0..=value.chars().count());
    let mut out: String = value.chars().take(at).collect();
    out.push(c);
    out.extend(value.chars().skip(at));
    out
}

/// The whole battery; `server` must have the users of [`TestServer::start`].
pub async fn hostile_inputs_are_refused_on_every_endpoint(server: &TestServer) {
    let client = server.register("Hostile-input client").await;
    let mut rng = StdRng::seed_from_u64(0x6d63_702d_6175_7468);
    token_endpoint(server, &client, &mut rng).await;
    revocation_endpoint(server, &client, &mut rng).await;
    registration_endpoint(server, &mut rng).await;
    authorization_endpoint(server, &client, &mut rng).await;
}

fn token_form(client: &TestClient) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", "made-up-code".to_owned()),
        ("redirect_uri", client.redirect_uri.clone()),
        ("client_id", client.client_id.clone()),
        ("code_verifier", "v".repeat(43)),
    ]
}

async fn post_form(
    server: &TestServer,
    path: &str,
    form: &[(&str, String)],
) -> (StatusCode, Value) {
    let response = server
        .http
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .expect("POST");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn token_endpoint(server: &TestServer, client: &TestClient, rng: &mut StdRng) {
    for case in 0..RANDOM_CASES {
        let mut form = token_form(client);
        let i = case % form.len();
        form[i].1 = splice(rng, &form[i].1);
        let (status, body) = post_form(server, "/token", &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "/token {form:?}: {body}");
        assert_eq!(body["error"], "invalid_request", "/token {form:?}: {body}");
    }
    // Refresh and client-credentials shapes, and an unknown client id with a NUL in it.
    for form in [
        vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", "a\0b".to_owned()),
            ("client_id", client.client_id.clone()),
        ],
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", "nobody\0".to_owned()),
            ("client_secret", "s".to_owned()),
        ],
    ] {
        let (status, body) = post_form(server, "/token", &form).await;
        assert!(status.is_client_error(), "/token {form:?}: {status} {body}");
    }
    // More than 64 parameters, and a body past the 64 KiB form limit.
    let body: String =
        (0..100).map(|i| format!("p{i}=v&")).collect::<String>() + "grant_type=authorization_code";
    let response = server
        .http
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "100 parameters");
    let response = server
        .http
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&pad={}",
            "x".repeat(70 * 1024)
        ))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

async fn revocation_endpoint(server: &TestServer, client: &TestClient, rng: &mut StdRng) {
    for _ in 0..RANDOM_CASES / 2 {
        let form = vec![
            ("token", splice(rng, "some-token-value")),
            ("client_id", client.client_id.clone()),
        ];
        let (status, body) = post_form(server, "/revoke", &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "/revoke {form:?}: {body}");
        let form = vec![
            ("token", "some-token-value".to_owned()),
            ("client_id", splice(rng, &client.client_id)),
        ];
        let (status, body) = post_form(server, "/revoke", &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "/revoke {form:?}: {body}");
    }
}

async fn registration_endpoint(server: &TestServer, rng: &mut StdRng) {
    let fields = [
        "client_name",
        "client_uri",
        "scope",
        "software_id",
        "logo_uri",
    ];
    for case in 0..RANDOM_CASES {
        let field = fields[case % fields.len()];
        let mut metadata = json!({
            "redirect_uris": ["https://app.example/cb"],
            "client_name": "Hostile",
            "client_uri": "https://app.example",
            "logo_uri": "https://app.example/logo.png",
            "software_id": "hostile",
            "scope": "mcp:tools",
        });
        let value = metadata[field].as_str().unwrap_or_default().to_owned();
        metadata[field] = json!(splice(rng, &value));
        let (status, body) = register(server, &metadata).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "/register {metadata}: {body}"
        );
        assert_eq!(
            body["error"], "invalid_client_metadata",
            "{metadata}: {body}"
        );
    }
    for metadata in [
        json!({"redirect_uris": [splice(rng, "https://app.example/cb")]}),
        json!({"redirect_uris": (0..21).map(|i| format!("https://app.example/{i}")).collect::<Vec<_>>()}),
        json!({"redirect_uris": [format!("https://app.example/{}", "x".repeat(3000))]}),
    ] {
        let (status, body) = register(server, &metadata).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "/register {metadata}: {body}"
        );
        assert_eq!(body["error"], "invalid_redirect_uri", "{body}");
    }
    for metadata in [
        json!({"redirect_uris": ["https://app.example/cb"], "client_name": "n".repeat(201)}),
        json!({"redirect_uris": ["https://app.example/cb"],
               "contacts": (0..11).map(|i| format!("a{i}@example.com")).collect::<Vec<_>>()}),
    ] {
        let (status, body) = register(server, &metadata).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    }
}

async fn register(server: &TestServer, metadata: &Value) -> (StatusCode, Value) {
    let response = server
        .http
        .post(server.url("/register"))
        .json(metadata)
        .send()
        .await
        .expect("register");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn authorization_endpoint(server: &TestServer, client: &TestClient, rng: &mut StdRng) {
    let resource = server.resource();
    let base = vec![
        ("response_type", "code".to_owned()),
        ("client_id", client.client_id.clone()),
        ("redirect_uri", client.redirect_uri.clone()),
        ("code_challenge", "c".repeat(43)),
        ("code_challenge_method", "S256".to_owned()),
        ("state", "st".to_owned()),
        ("resource", resource),
        ("scope", "mcp:tools".to_owned()),
    ];
    for case in 0..RANDOM_CASES {
        let mut query = base.clone();
        let i = case % query.len();
        query[i].1 = splice(rng, &query[i].1);
        let response = authorize(server, &query).await;
        let status = response.status();
        if status == StatusCode::FOUND {
            // Only an error may go back to the client, never the sign-in page.
            let params = redirect_params(&location(&response));
            assert!(
                params.contains_key("error"),
                "/authorize {query:?}: {params:?}"
            );
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "/authorize {query:?}");
        }
    }
    let mut query = base;
    query[5].1 = "s".repeat(5000);
    let response = authorize(server, &query).await;
    match response.status() {
        StatusCode::FOUND => {
            let params = redirect_params(&location(&response));
            assert_eq!(
                params.get("error").map(String::as_str),
                Some("invalid_request")
            );
        }
        status => assert_eq!(status, StatusCode::BAD_REQUEST),
    }
}

async fn authorize(server: &TestServer, query: &[(&str, String)]) -> reqwest::Response {
    server
        .http
        .get(server.url("/authorize"))
        .query(query)
        .send()
        .await
        .expect("authorize")
}
