use super::*;

#[test]
fn upstream_urls_are_checked() {
    for good in [
        "http://127.0.0.1:8000/mcp",
        "https://mcp.internal/mcp",
        "http://[::1]:9/",
    ] {
        assert!(upstream_uri(good).is_ok(), "{good}");
    }
    for bad in [
        "ftp://host/mcp",
        "/mcp",
        "http://user:pw@host/mcp",
        "http://host/mcp#frag",
        "not a url",
    ] {
        assert!(upstream_uri(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn the_clients_query_is_kept_unless_the_upstream_has_one() {
    let proxy = UpstreamProxy::builder("http://127.0.0.1:9/mcp")
        .build()
        .unwrap();
    assert_eq!(proxy.shared.uri_for(None), "http://127.0.0.1:9/mcp");
    assert_eq!(
        proxy.shared.uri_for(Some("a=1")),
        "http://127.0.0.1:9/mcp?a=1"
    );
    let fixed = UpstreamProxy::builder("http://127.0.0.1:9/mcp?tenant=x")
        .build()
        .unwrap();
    assert_eq!(
        fixed.shared.uri_for(Some("a=1")),
        "http://127.0.0.1:9/mcp?tenant=x"
    );
}

/// An upstream whose every answer is an SSE stream that stays open (one event, then nothing),
/// on a real socket.
async fn streaming_upstream() -> String {
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::any(|| async {
            let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
            tokio::spawn(async move {
                let _ = sender
                    .send_data(Bytes::from_static(b"data: open\n\n"))
                    .await;
                // Keeps the stream open until the test's runtime ends.
                std::future::pending::<()>().await;
                drop(sender);
            });
            Response::new(Body::new(body))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/mcp")
}

fn authenticated_get() -> Request<Body> {
    let mut request = Request::get("/mcp").body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(Authenticated(mcp_auth_types::AccessToken::new(
            mcp_auth_types::AccessTokenSecret::new("t"),
            "client",
            vec!["mcp:tools".to_owned()],
        )));
    request
}

#[tokio::test]
async fn open_streams_count_against_the_in_flight_cap_until_they_end() {
    use tower::Service as _;
    let mut proxy = UpstreamProxy::builder(streaming_upstream().await)
        .max_in_flight(2)
        .build()
        .unwrap();
    let first = proxy.call(authenticated_get()).await.unwrap();
    let second = proxy.call(authenticated_get()).await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let refused = proxy.call(authenticated_get()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()[http::header::RETRY_AFTER], "1");
    let body = axum::body::to_bytes(refused.into_body(), 1024)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("gateway_busy"));
    // A stream that ends (here: its client goes away) gives its place back.
    drop(first);
    let again = proxy.call(authenticated_get()).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    drop(second);
}
