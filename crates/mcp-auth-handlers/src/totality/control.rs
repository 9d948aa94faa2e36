//! Control characters (NUL, C0, DEL, C1) in any parameter of any endpoint: refused with the
//! endpoint's own `400` — `invalid_request` at `/authorize`, `/token` and `/revoke`,
//! `invalid_client_metadata` or `invalid_redirect_uri` at `/register` — never a redirect, never
//! a 5xx, never handed to the provider (the test provider fails like PostgreSQL on any).

use proptest::sample::Index;

use super::*;

/// `params` with a control character inserted into one value, or now and then into a name.
fn tainted(params: BoxedStrategy<Vec<(String, String)>>) -> BoxedStrategy<Vec<(String, String)>> {
    (
        params,
        any::<Index>(),
        any::<Index>(),
        control_character(),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(mut pairs, which, at, control, in_name)| {
            if pairs.is_empty() {
                pairs.push(("client_id".to_owned(), String::new()));
            }
            let chosen = which.index(pairs.len());
            let pair = &mut pairs[chosen];
            if in_name {
                pair.0 = insert_control(&pair.0, at, control);
            } else {
                pair.1 = insert_control(&pair.1, at, control);
            }
            pairs
        })
        .boxed()
}

/// Runs `cases` requests from `strategy` through `handle`, asserting each is a `400` whose
/// `error` is one of `codes`.
fn check_refused<F>(cases: u32, strategy: BoxedStrategy<RawRequest>, handle: F, codes: &[&str])
where
    F: Fn(Request<Bytes>) -> Response<Bytes>,
{
    run_cases(cases, strategy, |raw| {
        let response = handle(raw.build());
        let body = String::from_utf8_lossy(response.body()).into_owned();
        prop_assert_eq!(response.status().as_u16(), 400, "{:?} got {}", raw, body);
        let error: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let code = error["error"].as_str().unwrap_or_default();
        prop_assert!(codes.contains(&code), "{:?} got {}", raw, body);
        Ok(())
    });
}

#[test]
fn control_characters_at_the_authorization_endpoint_are_a_direct_invalid_request() {
    let rt = runtime();
    let env = env();
    let handler = AuthorizationHandler::new(env.provider.clone(), env.ctx.clone());
    check_refused(
        256,
        authorize_request(tainted(params(authorize_spec()))),
        |request| rt.block_on(handler.handle(request)),
        &["invalid_request"],
    );
}

#[test]
fn control_characters_at_the_token_endpoint_are_invalid_request() {
    let rt = runtime();
    let env = env();
    let handler = TokenHandler::new(env.provider.clone(), env.ctx.clone());
    let codes = vec!["code_1".to_owned()];
    let refresh = vec!["refresh_1".to_owned()];
    let in_params = form_post(
        "/token",
        tainted(params(token_spec(codes.clone(), refresh.clone()))),
        authorizations(),
    );
    // Control characters in HTTP Basic credentials, with otherwise near-valid parameters.
    let in_basic = (
        params(token_spec(codes, refresh)),
        any::<Index>(),
        control_character(),
        any::<bool>(),
    )
        .prop_map(|(pairs, at, control, in_id)| {
            let (id, secret) = if in_id {
                (
                    insert_control(BASIC_CLIENT_ID, at, control),
                    BASIC_CLIENT_SECRET.to_owned(),
                )
            } else {
                (
                    BASIC_CLIENT_ID.to_owned(),
                    insert_control(BASIC_CLIENT_SECRET, at, control),
                )
            };
            RawRequest {
                method: "POST".to_owned(),
                uri: "/token".to_owned(),
                headers: vec![
                    (
                        "content-type".to_owned(),
                        b"application/x-www-form-urlencoded".to_vec(),
                    ),
                    (
                        "authorization".to_owned(),
                        basic_auth(&id, &secret).into_bytes(),
                    ),
                ],
                body: encode(&pairs).into_bytes(),
            }
        });
    let handle = |request| rt.block_on(handler.handle(request));
    check_refused(256, in_params, handle, &["invalid_request"]);
    check_refused(128, in_basic.boxed(), handle, &["invalid_request"]);
}

#[test]
fn control_characters_at_the_revocation_endpoint_are_invalid_request() {
    let rt = runtime();
    let env = env();
    let handler = RevocationHandler::new(env.provider.clone(), env.ctx.clone());
    let tokens = vec![
        env.provider
            .issue_tokens(POST_CLIENT_ID, &["read"], Some(RESOURCE))
            .0,
    ];
    check_refused(
        256,
        form_post(
            "/revoke",
            tainted(params(revoke_spec(tokens))),
            authorizations(),
        ),
        |request| rt.block_on(handler.handle(request)),
        &["invalid_request"],
    );
}

/// The (member, index) of every string in the known members of a registration body.
fn string_slots(body: &Value) -> Vec<(String, Option<usize>)> {
    let mut slots = Vec::new();
    for (name, value) in body.as_object().into_iter().flatten() {
        match value {
            Value::String(_) => slots.push((name.clone(), None)),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if item.is_string() {
                        slots.push((name.clone(), Some(i)));
                    }
                }
            }
            _ => {}
        }
    }
    slots
}

#[test]
fn control_characters_at_the_registration_endpoint_are_invalid_client_metadata() {
    let rt = runtime();
    let env = env();
    let handler = RegistrationHandler::new(env.provider.clone(), env.ctx.clone());
    let strategy = (
        register_requests(),
        any::<Index>(),
        any::<Index>(),
        control_character(),
    )
        .prop_map(|(mut raw, which, at, control)| {
            let mut body: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
            if !body.is_object() {
                body = serde_json::json!({});
            }
            let slots = string_slots(&body);
            let slot = match slots.as_slice() {
                [] => ("client_name".to_owned(), None),
                slots => slots[which.index(slots.len())].clone(),
            };
            let target = match slot {
                (name, None) => &mut body[&name],
                (name, Some(i)) => &mut body[&name][i],
            };
            let current = target.as_str().unwrap_or_default().to_owned();
            *target = Value::String(insert_control(&current, at, control));
            raw.body = serde_json::to_vec(&body).unwrap_or_default();
            raw
        });
    check_refused(
        256,
        strategy.boxed(),
        |request| rt.block_on(handler.handle(request)),
        &["invalid_client_metadata", "invalid_redirect_uri"],
    );
}
