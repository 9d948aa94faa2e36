use serde_json::{Value, json};

use super::*;

/// Metadata from a JSON object, as the registration endpoint parses it.
fn metadata(value: Value) -> OAuthClientMetadata {
    serde_json::from_value(value).unwrap()
}

/// A registration that is valid and at every bound at once.
fn at_every_bound() -> Value {
    let uri = |prefix: &str| {
        format!(
            "https://client.example/{}",
            "u".repeat(MAX_URI_BYTES - 23 - prefix.len())
        ) + prefix
    };
    let keys: Vec<Value> = (0..MAX_JWKS_KEYS)
        .map(|i| json!({"kty": "EC", "crv": "P-256", "kid": format!("k{i}"), "x": "x", "y": "y"}))
        .collect();
    let scope: Vec<String> = (0..MAX_SCOPE_TOKENS)
        .map(|i| format!("{i:0>width$}", width = MAX_SCOPE_TOKEN_BYTES))
        .collect();
    json!({
        "redirect_uris": (0..MAX_REDIRECT_URIS).map(|i| uri(&i.to_string())).collect::<Vec<_>>(),
        "client_name": "é".repeat(MAX_HUMAN_STRING_CHARS),
        "contacts": vec!["ops@client.example"; MAX_CONTACTS],
        "client_uri": uri("c"),
        "logo_uri": uri("l"),
        "tos_uri": uri("t"),
        "policy_uri": uri("p"),
        "software_id": "s".repeat(MAX_HUMAN_STRING_CHARS),
        "software_version": "1.0",
        "grant_types": vec!["authorization_code"; MAX_GRANT_TYPES],
        "response_types": vec!["code"; MAX_RESPONSE_TYPES],
        "scope": scope.join(" "),
        "jwks": {"keys": keys},
    })
}

/// `base` with `member` replaced by `value`.
fn with(member: &str, value: Value) -> OAuthClientMetadata {
    let mut base = at_every_bound();
    base[member] = value;
    metadata(base)
}

#[test]
fn metadata_at_every_bound_is_accepted() {
    assert_eq!(metadata(at_every_bound()).check_limits(), Ok(()));
    assert_eq!(metadata(json!({})).check_limits(), Ok(()));
}

#[test]
fn each_bound_refuses_one_more_with_the_member_named() {
    let long_uri = format!("https://client.example/{}", "u".repeat(MAX_URI_BYTES));
    let many = |n: usize, item: &str| Value::from(vec![item; n]);
    let too_long = |field, index, max, unit| MetadataLimitError::TooLong {
        field,
        index,
        max,
        unit,
    };
    let too_many = |field, count, max| MetadataLimitError::TooManyEntries { field, count, max };
    let cases: Vec<(&str, Value, MetadataLimitError)> = vec![
        (
            "redirect_uris",
            many(MAX_REDIRECT_URIS + 1, "https://c.example/cb"),
            too_many("redirect_uris", MAX_REDIRECT_URIS + 1, MAX_REDIRECT_URIS),
        ),
        (
            "redirect_uris",
            json!(["https://c.example/cb", long_uri]),
            too_long("redirect_uris", Some(1), MAX_URI_BYTES, "bytes"),
        ),
        (
            "client_uri",
            json!(long_uri),
            too_long("client_uri", None, MAX_URI_BYTES, "bytes"),
        ),
        (
            "logo_uri",
            json!(long_uri),
            too_long("logo_uri", None, MAX_URI_BYTES, "bytes"),
        ),
        (
            "tos_uri",
            json!(long_uri),
            too_long("tos_uri", None, MAX_URI_BYTES, "bytes"),
        ),
        (
            "policy_uri",
            json!(long_uri),
            too_long("policy_uri", None, MAX_URI_BYTES, "bytes"),
        ),
        (
            "jwks_uri",
            json!(long_uri),
            too_long("jwks_uri", None, MAX_URI_BYTES, "bytes"),
        ),
        (
            "client_name",
            json!("é".repeat(MAX_HUMAN_STRING_CHARS + 1)),
            too_long("client_name", None, MAX_HUMAN_STRING_CHARS, "characters"),
        ),
        (
            "software_version",
            json!("v".repeat(MAX_HUMAN_STRING_CHARS + 1)),
            too_long(
                "software_version",
                None,
                MAX_HUMAN_STRING_CHARS,
                "characters",
            ),
        ),
        (
            "contacts",
            many(MAX_CONTACTS + 1, "a@b.example"),
            too_many("contacts", MAX_CONTACTS + 1, MAX_CONTACTS),
        ),
        (
            "contacts",
            json!([format!("{}@b.example", "a".repeat(MAX_HUMAN_STRING_CHARS))]),
            too_long("contacts", Some(0), MAX_HUMAN_STRING_CHARS, "characters"),
        ),
        (
            "grant_types",
            many(MAX_GRANT_TYPES + 1, "refresh_token"),
            too_many("grant_types", MAX_GRANT_TYPES + 1, MAX_GRANT_TYPES),
        ),
        (
            "grant_types",
            json!(["authorization_code", "g".repeat(MAX_VOCABULARY_BYTES + 1)]),
            too_long("grant_types", Some(1), MAX_VOCABULARY_BYTES, "bytes"),
        ),
        (
            "response_types",
            many(MAX_RESPONSE_TYPES + 1, "code"),
            too_many("response_types", MAX_RESPONSE_TYPES + 1, MAX_RESPONSE_TYPES),
        ),
        (
            "token_endpoint_auth_method",
            json!("m".repeat(MAX_VOCABULARY_BYTES + 1)),
            too_long(
                "token_endpoint_auth_method",
                None,
                MAX_VOCABULARY_BYTES,
                "bytes",
            ),
        ),
        (
            "scope",
            json!(vec!["s"; MAX_SCOPE_TOKENS + 1].join(" ")),
            too_many("scope", MAX_SCOPE_TOKENS + 1, MAX_SCOPE_TOKENS),
        ),
        (
            "scope",
            json!(format!("read {}", "s".repeat(MAX_SCOPE_TOKEN_BYTES + 1))),
            too_long("scope", Some(1), MAX_SCOPE_TOKEN_BYTES, "bytes"),
        ),
        (
            "scope",
            json!(format!("read{}write", " ".repeat(MAX_SCOPE_BYTES))),
            too_long("scope", None, MAX_SCOPE_BYTES, "bytes"),
        ),
    ];
    for (member, value, expect) in cases {
        assert_eq!(with(member, value).check_limits(), Err(expect), "{member}");
    }
}

#[test]
fn key_sets_are_bounded_in_keys_and_bytes_and_need_kids_when_several() {
    let key = |kid: Option<&str>| match kid {
        Some(kid) => json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": "x", "y": "y"}),
        None => json!({"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}),
    };
    let keys = |n: usize| -> Vec<Value> { (0..n).map(|i| key(Some(&format!("k{i}")))).collect() };
    let padded = json!({"keys": [{"kty": "oct", "kid": "k", "k": "p".repeat(MAX_JWKS_BYTES)}]});
    let cases: Vec<(Value, Result<(), MetadataLimitError>)> = vec![
        (json!({"keys": [key(None)]}), Ok(())),
        (json!({"keys": keys(MAX_JWKS_KEYS)}), Ok(())),
        (
            json!({"keys": keys(MAX_JWKS_KEYS + 1)}),
            Err(MetadataLimitError::TooManyEntries {
                field: "jwks.keys",
                count: MAX_JWKS_KEYS + 1,
                max: MAX_JWKS_KEYS,
            }),
        ),
        (
            json!({"keys": [key(Some("a")), key(None)]}),
            Err(MetadataLimitError::KeyWithoutKid { index: 1 }),
        ),
        (
            json!({"keys": [key(Some("")), key(Some("b"))]}),
            Err(MetadataLimitError::KeyWithoutKid { index: 0 }),
        ),
        (
            json!({"keys": [key(Some("a")), "not a key"]}),
            Err(MetadataLimitError::KeyWithoutKid { index: 1 }),
        ),
        (
            padded,
            Err(MetadataLimitError::TooLong {
                field: "jwks",
                index: None,
                max: MAX_JWKS_BYTES,
                unit: "bytes",
            }),
        ),
        (
            json!({"keys": [key(Some("a\u{0}"))]}),
            Err(MetadataLimitError::ControlCharacter {
                field: "jwks",
                index: None,
            }),
        ),
        (
            json!({"keys": [{"kty\u{7f}": "EC"}]}),
            Err(MetadataLimitError::ControlCharacter {
                field: "jwks",
                index: None,
            }),
        ),
        // Not a key set: the bound on bytes still holds; whether it is acceptable is decided by
        // the authentication-method checks.
        (json!("not a key set"), Ok(())),
    ];
    for (jwks, expect) in cases {
        let got = metadata(json!({"jwks": jwks})).check_limits();
        assert_eq!(got, expect, "{jwks}");
    }
}

#[test]
fn control_characters_are_refused_in_every_string_member() {
    let members = [
        "client_name",
        "client_uri",
        "logo_uri",
        "tos_uri",
        "policy_uri",
        "jwks_uri",
        "software_id",
        "software_version",
        "application_type",
        "scope",
        "token_endpoint_auth_method",
    ];
    for control in [
        '\u{0}', '\u{1}', '\n', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
    ] {
        let text = format!("a{control}b");
        for member in members {
            let got = metadata(json!({ member: text })).check_limits();
            assert_eq!(
                got,
                Err(MetadataLimitError::ControlCharacter {
                    field: member,
                    index: None
                }),
                "{member} {control:?}"
            );
        }
        for member in ["redirect_uris", "contacts", "grant_types", "response_types"] {
            let got = metadata(json!({ member: ["ok", text] })).check_limits();
            assert_eq!(
                got,
                Err(MetadataLimitError::ControlCharacter {
                    field: member,
                    index: Some(1)
                }),
                "{member} {control:?}"
            );
        }
    }
}

#[test]
fn redirect_uri_errors_are_invalid_redirect_uri_and_the_rest_invalid_client_metadata() {
    let uri_error = with("redirect_uris", json!(["https://c.example/\u{0}"]))
        .check_limits()
        .unwrap_err();
    assert_eq!(uri_error.code(), RegistrationErrorCode::InvalidRedirectUri);
    assert_eq!(
        uri_error.to_string(),
        "redirect_uris[0] contains a control character"
    );
    let name_error = with("client_name", json!("x".repeat(MAX_HUMAN_STRING_CHARS + 1)))
        .check_limits()
        .unwrap_err();
    assert_eq!(
        name_error.code(),
        RegistrationErrorCode::InvalidClientMetadata
    );
    assert_eq!(
        name_error.to_string(),
        "client_name is longer than 200 characters"
    );
}

#[test]
fn control_characters_are_the_unicode_cc_category() {
    for value in ["\u{0}", "a\u{1f}", "\u{7f}", "\u{80}", "x\u{9f}y", "\r\n"] {
        assert!(contains_control_character(value), "{value:?}");
    }
    for value in ["", "plain", "é ü ☃", "\u{a0}", "\u{200b}", "~!@#$%^&*()"] {
        assert!(!contains_control_character(value), "{value:?}");
    }
}
