//! The session binding layer.

use super::*;

/// A stand-in MCP transport: `initialize` (no session header) creates a session and returns its
/// id; requests with a session id echo it.
async fn fake_mcp(request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    match request.headers().get("mcp-session-id") {
        None => (
            [("mcp-session-id", mcp_auth_core::secrets::random_id())],
            "created",
        )
            .into_response(),
        Some(id) => id.to_str().unwrap_or_default().to_owned().into_response(),
    }
}

#[tokio::test]
async fn a_session_answers_404_to_every_other_principal() {
    let fixture = fixture(|b| b);
    let bearer = fixture.auth.require_bearer().expect("resource");
    let app: Router = Router::new()
        .route("/mcp", post(fake_mcp).delete(fake_mcp))
        .route_layer(SessionBindingLayer::default())
        .route_layer(bearer);
    let alice = token(&fixture.store, "alice", &["mcp:tools"], RESOURCE).await;
    let mallory = token(&fixture.store, "mallory", &["mcp:tools"], RESOURCE).await;
    let created = send(&app, post_to("/mcp", Some(&alice))).await;
    let session = created.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let with_session = |token: &str, method: http::Method| {
        Request::builder()
            .method(method)
            .uri("/mcp")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("mcp-session-id", &session)
            .body(Body::empty())
            .expect("request")
    };
    assert_eq!(
        send(&app, with_session(&alice, http::Method::POST))
            .await
            .status(),
        StatusCode::OK
    );
    let stolen = send(&app, with_session(&mallory, http::Method::POST)).await;
    assert_eq!(stolen.status(), StatusCode::NOT_FOUND);
    assert_eq!(stolen.headers()[header::CONNECTION], "close");
    let unknown = send(
        &app,
        Request::post("/mcp")
            .header(header::AUTHORIZATION, format!("Bearer {alice}"))
            .header("mcp-session-id", "never-created")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body_string(stolen).await,
        body_string(unknown).await,
        "indistinguishable from unknown"
    );
    assert_eq!(
        send(&app, with_session(&alice, http::Method::DELETE))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, with_session(&alice, http::Method::POST))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// A stand-in whose answer opens a new session even inside one when asked to
/// (`x-new-session`), as an upstream does that never saw the session id the client sent.
async fn opens_sessions_anywhere(request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.headers().contains_key("x-new-session") {
        return (
            [("mcp-session-id", mcp_auth_core::secrets::random_id())],
            "created",
        )
            .into_response();
    }
    fake_mcp(request).await
}

#[tokio::test]
async fn a_session_the_service_opens_inside_another_is_bound_and_counted() {
    let fixture = fixture(|b| b);
    let bearer = fixture.auth.require_bearer().expect("resource");
    let app: Router = Router::new()
        .route(
            "/mcp",
            post(opens_sessions_anywhere).delete(opens_sessions_anywhere),
        )
        .route_layer(SessionBindingLayer::default().max_per_principal(1))
        .route_layer(bearer);
    let alice = token(&fixture.store, "alice", &["mcp:tools"], RESOURCE).await;
    let first = send(&app, post_to("/mcp", Some(&alice))).await;
    let first = first.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let in_session = |session: &str, new: bool| {
        let mut request = Request::post("/mcp")
            .header(header::AUTHORIZATION, format!("Bearer {alice}"))
            .header("mcp-session-id", session);
        if new {
            request = request.header("x-new-session", "1");
        }
        request.body(Body::empty()).expect("request")
    };
    let second = send(&app, in_session(&first, true)).await;
    let second = second.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(first, second);
    // The new session counts against alice's one: the first was closed to make room.
    assert_eq!(
        send(&app, in_session(&first, false)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, in_session(&second, false)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn two_or_unreadable_session_ids_are_unknown_sessions() {
    let fixture = fixture(|b| b);
    let bearer = fixture.auth.require_bearer().expect("resource");
    let app: Router = Router::new()
        .route("/mcp", post(fake_mcp))
        .route_layer(SessionBindingLayer::default())
        .route_layer(bearer);
    let alice = token(&fixture.store, "alice", &["mcp:tools"], RESOURCE).await;
    let created = send(&app, post_to("/mcp", Some(&alice))).await;
    let session = created.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let twice = Request::post("/mcp")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .header("mcp-session-id", &session)
        .header("mcp-session-id", "another")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&app, twice).await.status(), StatusCode::NOT_FOUND);
    let unreadable = Request::post("/mcp")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .header(
            "mcp-session-id",
            http::HeaderValue::from_bytes(b"s\xff").expect("obs-text"),
        )
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&app, unreadable).await.status(), StatusCode::NOT_FOUND);
}
