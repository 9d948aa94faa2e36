//! Registration under the bounds of `mcp_auth_types::limits` and the body limit.

use super::*;

/// Registrations over a bound of `mcp_auth_types::limits`, and with control characters: each
/// refused with the code for its member and a description naming member and bound, before the
/// provider (set to fail) is reached.
#[tokio::test]
async fn oversized_or_control_character_metadata_is_refused_before_the_provider() {
    use mcp_auth_types::limits::{
        MAX_CONTACTS, MAX_HUMAN_STRING_CHARS, MAX_JWKS_KEYS, MAX_REDIRECT_URIS, MAX_SCOPE_TOKENS,
        MAX_URI_BYTES,
    };
    const URI: &str = "invalid_redirect_uri";
    let env = env_with(ClientRegistrationOptions::enabled());
    env.provider.fail_with(Some(ProviderErrorKind::Internal));
    let long_uri = format!("https://client.example.com/{}", "x".repeat(MAX_URI_BYTES));
    let keys: Vec<Value> = (0..=MAX_JWKS_KEYS)
        .map(|i| json!({"kty": "EC", "kid": format!("k{i}")}))
        .collect();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"redirect_uris": vec!["https://client.example.com/cb"; MAX_REDIRECT_URIS + 1]}),
            URI,
            "redirect_uris has 21 entries; at most 20",
        ),
        (
            json!({"redirect_uris": [long_uri]}),
            URI,
            "redirect_uris[0] is longer than 2048 bytes",
        ),
        (
            json!({"redirect_uris": ["https://client.example.com/cb\u{0}"]}),
            URI,
            "redirect_uris[0] contains a control character",
        ),
        (
            json!({"client_uri": long_uri}),
            METADATA,
            "client_uri is longer than 2048 bytes",
        ),
        (
            json!({"client_name": "n".repeat(MAX_HUMAN_STRING_CHARS + 1)}),
            METADATA,
            "client_name is longer than 200 characters",
        ),
        (
            json!({"client_name": "Evil\u{0}Client"}),
            METADATA,
            "client_name contains a control character",
        ),
        (
            json!({"client_name": "line\nbreak"}),
            METADATA,
            "client_name contains a control character",
        ),
        (
            json!({"contacts": vec!["a@b.example"; MAX_CONTACTS + 1]}),
            METADATA,
            "contacts has 11 entries",
        ),
        (
            json!({"contacts": ["a@b.example\u{7f}"]}),
            METADATA,
            "contacts[0] contains a control character",
        ),
        (
            json!({"scope": vec!["s"; MAX_SCOPE_TOKENS + 1].join(" ")}),
            METADATA,
            "scope has 65 entries",
        ),
        (
            json!({"scope": "read\u{0}"}),
            METADATA,
            "scope contains a control character",
        ),
        (
            json!({"software_id": "\u{1b}[31m"}),
            METADATA,
            "software_id contains a control character",
        ),
        (
            json!({"grant_types": vec!["authorization_code"; 9]}),
            METADATA,
            "grant_types has 9 entries",
        ),
        (
            json!({"jwks": {"keys": keys}}),
            METADATA,
            "jwks.keys has 11 entries",
        ),
        (
            json!({"jwks": {"keys": [{"kty": "EC", "kid": "a"}, {"kty": "EC"}]}}),
            METADATA,
            "jwks.keys[1] has no kid",
        ),
    ];
    for (changes, code, text) in cases {
        let response = register(&env, &with(changes.clone())).await;
        let got = body_json(&response);
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{changes} → {got}"
        );
        assert_eq!(got["error"], code, "{changes} → {got}");
        let description = got["error_description"].as_str().unwrap();
        assert!(description.contains(text), "{changes} → {description}");
    }
}

#[tokio::test]
async fn metadata_at_the_bounds_registers_and_unknown_members_are_not_stored() {
    use mcp_auth_types::limits::{MAX_HUMAN_STRING_CHARS, MAX_REDIRECT_URIS};
    let env = env_with(ClientRegistrationOptions::enabled());
    let uris: Vec<String> = (0..MAX_REDIRECT_URIS)
        .map(|i| format!("https://client.example.com/cb/{i}"))
        .collect();
    let unknown: serde_json::Map<String, Value> = (0..200)
        .map(|i| (format!("x_member_{i}"), json!("v".repeat(100))))
        .collect();
    let mut body = with(json!({
        "redirect_uris": uris,
        "client_name": "é".repeat(MAX_HUMAN_STRING_CHARS),
    }));
    body.as_object_mut().unwrap().extend(unknown);
    let response = register(&env, &body).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        body_json(&response)
    );
    let id = body_json(&response)["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = env.provider.get_client(&id).await.unwrap().unwrap();
    let stored = serde_json::to_value(&stored).unwrap();
    assert_eq!(
        stored["redirect_uris"].as_array().unwrap().len(),
        MAX_REDIRECT_URIS
    );
    assert!(
        stored.get("x_member_0").is_none(),
        "unknown members were stored"
    );
    assert!(body_json(&response).get("x_member_0").is_none());
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_by_default() {
    let env = env_with(ClientRegistrationOptions::enabled());
    let handler = RegistrationHandler::new(env.provider.clone(), env.ctx.clone());
    assert_eq!(
        handler.body_limit(),
        crate::limits::MAX_REGISTRATION_BODY_BYTES
    );
    let padded = |bytes: usize| {
        let mut body = base();
        let filler = bytes - body.to_string().len() - r#","x":"""#.len();
        body["x"] = json!("p".repeat(filler));
        let body = body.to_string();
        assert_eq!(body.len(), bytes);
        body
    };
    let at_limit = handler
        .handle(request(Method::POST, "/register", padded(64 * 1024)))
        .await;
    assert_eq!(at_limit.status(), StatusCode::CREATED);
    let over = handler
        .handle(request(Method::POST, "/register", padded(64 * 1024 + 1)))
        .await;
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body_json(&over)["error"], "invalid_request");
}
