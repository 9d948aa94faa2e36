//! Audit events (`mcp_auth::audit`): one per security-relevant fact of a whole authorization
//! flow through the server, with who and what, and never a credential.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use mcp_auth_tests::server::{ALICE_PASSWORD, TestServer, redirect_params};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// One captured audit event: its level and fields (`event` included), as text.
#[derive(Debug, Clone)]
struct Captured {
    level: tracing::Level,
    fields: BTreeMap<String, String>,
}

static EVENTS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());

struct AuditCapture;

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for AuditCapture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != mcp_auth_core::audit::AUDIT_TARGET {
            return;
        }
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        EVENTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Captured {
                level: *event.metadata().level(),
                fields,
            });
    }
}

/// Installs the capture for the whole process once (the server's tasks run on other threads).
fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(AuditCapture))
            .expect("no other global subscriber in this test binary");
    });
}

/// The events that name `client_id`, in order.
fn events_of(client_id: &str) -> Vec<Captured> {
    EVENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|event| event.fields.get("client_id").map(String::as_str) == Some(client_id))
        .cloned()
        .collect()
}

fn names(events: &[Captured]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.fields["event"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_security_fact_of_a_flow_is_one_audit_event_without_a_credential() {
    capture();
    let server = TestServer::start("memory").await;
    let client = server.register("audited app").await;
    let mut secrets = vec![ALICE_PASSWORD.to_owned(), "not-alices-password".to_owned()];

    // A wrong password, then the right one: sign-in failed, then succeeded with consent.
    let authorization = server.authorize(&client).await;
    let page = server.sign_in_page(&authorization).await;
    let failed = server
        .submit(
            &page,
            &[
                ("username", "alice"),
                ("password", "not-alices-password"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(failed.status(), 200, "the form again");
    let page = server.sign_in_page(&authorization).await;
    let params = server.approve(&page, "alice", ALICE_PASSWORD).await;
    let code = params["code"].clone();
    let tokens = server.exchange_code(&client, &authorization, &code).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    secrets.extend([
        code.clone(),
        tokens["access_token"].as_str().unwrap().to_owned(),
    ]);
    secrets.push(refresh.clone());

    // A refresh, then the rotated token again (theft), then the code again (replay).
    let refreshed = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client.client_id),
        ])
        .await;
    secrets.push(refreshed["access_token"].as_str().unwrap().to_owned());
    secrets.push(refreshed["refresh_token"].as_str().unwrap().to_owned());
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", client.client_id.as_str()),
    ];
    let reuse = server
        .http
        .post(server.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), 400);
    let replay = server
        .http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("client_id", client.client_id.as_str()),
            ("code_verifier", authorization.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);

    // A second grant, revoked by the client; a third request, denied by the user.
    let second = server.sign_in(&client, "alice", ALICE_PASSWORD).await;
    let access = second["access_token"].as_str().unwrap().to_owned();
    secrets.push(access.clone());
    let revoked = server
        .http
        .post(server.url("/revoke"))
        .form(&[
            ("token", access.as_str()),
            ("client_id", client.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let denied = server.authorize(&client).await;
    let page = server.sign_in_page(&denied).await;
    let response = server.submit(&page, &[("decision", "deny")]).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(redirect_params(&location)["error"], "access_denied");

    let events = events_of(&client.client_id);
    assert_eq!(
        names(&events),
        [
            "client.registered",
            "sign_in.failed",
            "code.issued",
            "sign_in.succeeded",
            "consent.approved",
            "code.redeemed",
            "token.issued",
            "token.refreshed",
            "refresh.reuse_detected",
            "code.replayed",
            "code.issued",
            "sign_in.succeeded",
            "consent.approved",
            "code.redeemed",
            "token.issued",
            "token.revoked",
            "consent.denied",
        ],
        "{events:#?}"
    );
    let field = |index: usize, name: &str| events[index].fields.get(name).cloned();
    // A failed sign-in names a hash of the name as typed, never the text.
    assert_eq!(field(1, "user"), None);
    assert_eq!(field(1, "user_hash").map(|hash| hash.len()), Some(16));
    assert_eq!(field(1, "ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(field(3, "user").as_deref(), Some("alice"));
    assert_eq!(
        field(6, "grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(field(6, "subject").as_deref(), Some("alice"));
    assert_eq!(field(6, "refresh_token").as_deref(), Some("true"));
    assert_eq!(
        field(6, "grant_id"),
        field(2, "grant_id"),
        "the code's grant"
    );
    assert_eq!(
        field(8, "grant_id"),
        field(2, "grant_id"),
        "reuse names the grant it revokes"
    );
    assert_eq!(events[8].level, tracing::Level::WARN);
    assert_eq!(events[9].level, tracing::Level::WARN);
    assert_eq!(field(15, "token_type").as_deref(), Some("access_token"));

    // No field of any audit event carries a credential.
    let all = EVENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for event in &all {
        for value in event.fields.values() {
            for secret in &secrets {
                assert!(
                    !value.contains(secret.as_str()),
                    "a credential in {event:?}"
                );
            }
        }
    }
}
