use std::sync::Mutex;

use async_trait::async_trait;
use mcp_auth_types::{
    AccessTokenSecret, Assertion, GrantType, IdentityAssertionParams, OAuthClientMetadata,
    principal_components,
};

use super::*;
use crate::assertion::{IdentityAssertionGrant, VerifiedClientAssertion};
use crate::provider::OAuthAuthorizationServerProvider;
use crate::storage::ReplayStore;
use crate::{ManualClock, MemoryStore};

const ISSUER: &str = "https://as.example";
const IDP: &str = "https://idp.example";
const RESOURCE: &str = "https://mcp.example/mcp";
const T0: i64 = 1_700_000_000;

/// A validator that answers with a fixed grant (or error), standing in for signature checks.
struct FixedValidator(Mutex<Result<IdentityAssertionGrant, TokenErrorCode>>);

#[async_trait]
impl IdentityAssertionValidator for FixedValidator {
    async fn validate_identity_assertion(
        &self,
        _: &OAuthClientInformationFull,
        _: &Assertion,
        _: i64,
    ) -> Result<IdentityAssertionGrant, TokenError> {
        self.0
            .lock()
            .unwrap()
            .clone()
            .map_err(|code| TokenError::new(code, "exp: the assertion has expired"))
    }
}

/// A verifier that accepts every assertion with the given jti.
struct FixedVerifier(&'static str);

#[async_trait]
impl ClientAssertionVerifier for FixedVerifier {
    fn signing_algorithms(&self) -> Vec<String> {
        vec!["ES256".to_owned()]
    }

    async fn verify_client_assertion(
        &self,
        _: &OAuthClientInformationFull,
        _: &Assertion,
        audiences: &[String],
        now: i64,
    ) -> Result<VerifiedClientAssertion, ClientAssertionError> {
        assert_eq!(audiences, [ISSUER.to_owned()]);
        Ok(VerifiedClientAssertion::new(self.0, now + 60))
    }
}

/// Expected outcome: the granted scope (or resource), or an error code.
type Outcome = Result<&'static str, TokenErrorCode>;
/// Server's valid scopes, if configured.
type Valid = Option<&'static [&'static str]>;

fn grant() -> IdentityAssertionGrant {
    let mut grant = IdentityAssertionGrant::new(
        IDP,
        "alice",
        "c1",
        vec![RESOURCE.to_owned()],
        "jti-1",
        T0 + 300,
    );
    grant.scopes = vec!["read".into(), "write".into(), "admin".into()];
    grant
}

fn client(id: &str, scope: Option<&str>) -> OAuthClientInformationFull {
    let mut metadata = OAuthClientMetadata::new(vec![]);
    metadata.scope = scope.map(str::to_owned);
    metadata.grant_types = vec![GrantType::JwtBearer, GrantType::ClientCredentials];
    OAuthClientInformationFull::new(id, metadata)
}

fn provider_with(
    grant: Result<IdentityAssertionGrant, TokenErrorCode>,
    valid: Option<&[&str]>,
) -> StoreProvider<MemoryStore> {
    let mut builder = StoreProvider::builder(MemoryStore::new(), ISSUER)
        .clock(Arc::new(ManualClock::new(T0)))
        .identity_assertion_validator(Arc::new(FixedValidator(Mutex::new(grant))))
        .client_assertion_verifier(Arc::new(FixedVerifier("client-jti")))
        .client_credentials(true);
    if let Some(valid) = valid {
        builder = builder.valid_scopes(valid.iter().copied());
    }
    builder.build().unwrap()
}

fn params(scope: Option<&str>, resource: Option<&str>) -> IdentityAssertionParams {
    let mut params = IdentityAssertionParams::new(Assertion::new("a.b.c"));
    params.scopes = scope.map(|s| s.split(' ').map(str::to_owned).collect());
    params.resource = resource.map(str::to_owned);
    params
}

fn code_of<T: std::fmt::Debug>(result: Result<T, TokenError>) -> TokenErrorCode {
    match result {
        Err(TokenError::Rejected { code, .. }) => code,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

async fn access(
    provider: &StoreProvider<MemoryStore>,
    token: &OAuthToken,
) -> mcp_auth_types::AccessToken {
    provider
        .load_access_token(&AccessTokenSecret::new(token.access_token.expose_secret()))
        .await
        .unwrap()
        .expect("token is live")
        .as_ref()
        .clone()
}

#[tokio::test]
async fn an_id_jag_becomes_an_audience_restricted_token_for_the_idp_user_without_refresh() {
    let provider = provider_with(Ok(grant()), None);
    let client = client("c1", Some("read write"));
    let token = provider
        .exchange_identity_assertion(&client, params(None, None))
        .await
        .unwrap();
    assert!(token.refresh_token.is_none());
    assert_eq!(token.scope.as_deref(), Some("read write"));
    let record = access(&provider, &token).await;
    assert_eq!(record.resource.as_deref(), Some(RESOURCE));
    assert_eq!(record.subject.as_deref(), Some("https://idp.example|alice"));
    assert_eq!(record.issuer().as_deref(), Some(IDP));
    assert_eq!(record.client_id, "c1");
}

#[tokio::test]
async fn granted_scopes_are_the_intersection_of_assertion_request_client_and_server() {
    // (requested, client's registered scope, server's valid scopes, granted or error)
    #[rustfmt::skip]
    let cases: [(Option<&str>, Option<&str>, Valid, Outcome); 8] = [
        (None, Some("read write admin"), None, Ok("read write admin")),
        (Some("read"), Some("read write admin"), None, Ok("read")),
        (Some("read delete"), Some("read write admin"), None, Ok("read")),
        (None, Some("read"), None, Ok("read")),
        (None, Some("read write admin"), Some(&["write"]), Ok("write")),
        (Some("delete"), Some("read write admin delete"), None, Err(TokenErrorCode::InvalidScope)),
        (Some("admin"), Some("read"), None, Err(TokenErrorCode::InvalidScope)),
        (None, None, None, Ok("")),
    ];
    for (requested, registered, valid, expected) in cases {
        let provider = provider_with(Ok(grant()), valid);
        let result = provider
            .exchange_identity_assertion(&client("c1", registered), params(requested, None))
            .await;
        let case = format!("{requested:?} {registered:?} {valid:?}");
        match expected {
            Ok(scope) => {
                let token = result.expect(&case);
                assert_eq!(token.scope.as_deref().unwrap_or(""), scope, "{case}");
            }
            Err(code) => assert_eq!(code_of(result), code, "{case}"),
        }
    }
}

#[tokio::test]
async fn the_token_request_resource_must_be_one_the_assertion_grants() {
    let mut two = grant();
    two.resources.push("https://other.example/api".into());
    #[rustfmt::skip]
    let cases: [(IdentityAssertionGrant, Option<&str>, Result<&str, TokenErrorCode>); 5] = [
        (grant(), Some("HTTPS://MCP.example/mcp"), Ok(RESOURCE)),
        (grant(), Some("https://other.example/api"), Err(TokenErrorCode::InvalidTarget)),
        (two.clone(), Some("https://other.example/api"), Ok("https://other.example/api")),
        (two, None, Err(TokenErrorCode::InvalidTarget)),
        (IdentityAssertionGrant { resources: vec![], ..grant() }, None, Err(TokenErrorCode::InvalidTarget)),
    ];
    for (grant, requested, expected) in cases {
        let provider = provider_with(Ok(grant), None);
        let result = provider
            .exchange_identity_assertion(&client("c1", Some("read")), params(None, requested))
            .await;
        match expected {
            Ok(resource) => {
                let token = result.expect("exchanged");
                let record = access(&provider, &token).await;
                assert_eq!(record.resource.as_deref(), Some(resource));
            }
            Err(code) => assert_eq!(code_of(result), code, "{requested:?}"),
        }
    }
}

#[tokio::test]
async fn a_replayed_assertion_is_invalid_grant_but_a_refused_request_does_not_burn_it() {
    let provider = provider_with(Ok(grant()), None);
    let client = client("c1", Some("read"));
    let refused = provider
        .exchange_identity_assertion(&client, params(None, Some("https://other.example/x")))
        .await;
    assert_eq!(code_of(refused), TokenErrorCode::InvalidTarget);
    provider
        .exchange_identity_assertion(&client, params(None, None))
        .await
        .expect("first use");
    let replay = provider
        .exchange_identity_assertion(&client, params(None, None))
        .await;
    assert_eq!(code_of(replay), TokenErrorCode::InvalidGrant);
}

#[tokio::test]
async fn validator_rejections_and_foreign_client_bindings_are_invalid_grant() {
    let provider = provider_with(Err(TokenErrorCode::InvalidGrant), None);
    let result = provider
        .exchange_identity_assertion(&client("c1", Some("read")), params(None, None))
        .await;
    assert_eq!(code_of(result), TokenErrorCode::InvalidGrant);
    // A validator that forgot the client binding is caught by the provider.
    let provider = provider_with(Ok(grant()), None);
    let result = provider
        .exchange_identity_assertion(&client("c2", Some("read")), params(None, None))
        .await;
    assert_eq!(code_of(result), TokenErrorCode::InvalidGrant);
}

#[tokio::test]
async fn without_a_validator_the_grant_is_unsupported() {
    let provider = StoreProvider::builder(MemoryStore::new(), ISSUER)
        .build()
        .unwrap();
    let result = provider
        .exchange_identity_assertion(&client("c1", Some("read")), params(None, None))
        .await;
    assert_eq!(code_of(result), TokenErrorCode::UnsupportedGrantType);
}

#[tokio::test]
async fn principals_of_different_idps_or_tenants_differ_even_with_the_same_sub() {
    let mut principals = Vec::new();
    let mut other_idp = grant();
    other_idp.issuer = "https://idp2.example".into();
    let mut tenant = grant();
    tenant.tenant = Some("acme".into());
    for (i, grant) in [grant(), other_idp, tenant].into_iter().enumerate() {
        let provider = provider_with(Ok(grant), None);
        let token = provider
            .exchange_identity_assertion(&client("c1", Some("read")), params(None, None))
            .await
            .unwrap();
        let record = access(&provider, &token).await;
        if i == 2 {
            assert_eq!(
                record.claims.as_ref().unwrap()["tenant"],
                serde_json::json!("acme")
            );
        }
        principals.push(principal_components(&record));
    }
    assert_ne!(principals[0], principals[1]);
    assert_ne!(principals[0], principals[2]);
    assert_ne!(principals[1], principals[2]);
}

#[tokio::test]
async fn client_credentials_tokens_are_the_clients_own_within_its_registered_scopes() {
    #[rustfmt::skip]
    let cases: [(Option<&str>, Valid, Outcome); 5] = [
        (None, None, Ok("read write")),
        (Some("read"), None, Ok("read")),
        (None, Some(&["read"]), Ok("read")),
        (Some("admin"), None, Err(TokenErrorCode::InvalidScope)),
        (Some("read admin"), None, Err(TokenErrorCode::InvalidScope)),
    ];
    for (requested, valid, expected) in cases {
        let provider = provider_with(Ok(grant()), valid);
        let scopes = requested.map(|s| s.split(' ').map(str::to_owned).collect());
        let result = provider
            .exchange_client_credentials(
                &client("m2m", Some("read write")),
                scopes,
                Some(RESOURCE.into()),
            )
            .await;
        match expected {
            Ok(scope) => {
                let token = result.expect("issued");
                assert!(token.refresh_token.is_none());
                assert_eq!(token.scope.as_deref(), Some(scope));
                let record = access(&provider, &token).await;
                assert_eq!(record.subject.as_deref(), Some("m2m"));
                assert_eq!(record.resource.as_deref(), Some(RESOURCE));
                assert_eq!(record.issuer().as_deref(), Some(ISSUER));
            }
            Err(code) => assert_eq!(code_of(result), code, "{requested:?}"),
        }
    }
}

#[tokio::test]
async fn client_assertion_ids_are_single_use_per_client() {
    let provider = provider_with(Ok(grant()), None);
    let audiences = [ISSUER.to_owned()];
    let assertion = Assertion::new("x.y.z");
    let c1 = client("c1", None);
    provider
        .authenticate_client_assertion(&c1, &assertion, &audiences)
        .await
        .expect("first use");
    let replay = provider
        .authenticate_client_assertion(&c1, &assertion, &audiences)
        .await;
    assert!(
        matches!(&replay, Err(ClientAssertionError::Rejected { description }) if description.starts_with("jti")),
        "{replay:?}"
    );
    // Another client's jti lives in another namespace.
    provider
        .authenticate_client_assertion(&client("c2", None), &assertion, &audiences)
        .await
        .expect("other client");
    let plain = StoreProvider::builder(MemoryStore::new(), ISSUER)
        .build()
        .unwrap();
    assert!(
        plain
            .authenticate_client_assertion(&c1, &assertion, &audiences)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn replay_entries_hold_the_hash_of_the_jti_never_the_jti() {
    let provider = provider_with(Ok(grant()), None);
    provider
        .exchange_identity_assertion(&client("c1", Some("read")), params(None, None))
        .await
        .expect("first use");
    let issuer = id_jag_replay_issuer(IDP);
    let hashed = SecretHash::of("jti-1").to_hex();
    let store = &provider.storage;
    assert!(
        !store
            .record_assertion_id(&issuer, &hashed, T0 + 600, T0)
            .await
            .unwrap(),
        "the hash is recorded"
    );
    assert!(
        store
            .record_assertion_id(&issuer, "jti-1", T0 + 600, T0)
            .await
            .unwrap(),
        "the raw jti is not"
    );
    provider
        .authenticate_client_assertion(
            &client("c1", None),
            &Assertion::new("x.y.z"),
            &[ISSUER.to_owned()],
        )
        .await
        .expect("first use");
    assert!(
        !store
            .record_assertion_id(
                &client_assertion_replay_issuer("c1"),
                &SecretHash::of("client-jti").to_hex(),
                T0 + 600,
                T0
            )
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_over_long_jti_or_replay_window_is_refused_and_burns_nothing() {
    let long_jti = "j".repeat(crate::limits::MAX_JTI_LENGTH + 1);
    let longest_jti = "j".repeat(crate::limits::MAX_JTI_LENGTH);
    let window = crate::limits::MAX_REPLAY_WINDOW;
    // (jti, replay_until, accepted)
    let cases: [(&str, i64, bool); 5] = [
        ("jti-1", T0 + 360, true),
        (&longest_jti, T0 + 360, true),
        (&long_jti, T0 + 360, false),
        ("", T0 + 360, false),
        ("jti-1", T0 + window + 1, false),
    ];
    for (jti, replay_until, accepted) in cases {
        let mut grant = grant();
        grant.jti = jti.to_owned();
        grant.replay_until = replay_until;
        let provider = provider_with(Ok(grant), None);
        let result = provider
            .exchange_identity_assertion(&client("c1", Some("read")), params(None, None))
            .await;
        assert_eq!(
            result.is_ok(),
            accepted,
            "{jti:.8} {replay_until}: {result:?}"
        );
        if !accepted {
            assert_eq!(code_of(result), TokenErrorCode::InvalidGrant);
            // Nothing was recorded: the same id is still fresh for the store.
            assert!(
                provider
                    .storage
                    .record_assertion_id(
                        &id_jag_replay_issuer(IDP),
                        &SecretHash::of(jti).to_hex(),
                        T0 + 60,
                        T0
                    )
                    .await
                    .unwrap()
            );
        }
    }
}

/// A verifier that accepts every assertion but reports a `jti` and replay window chosen by the
/// test, standing in for a faulty implementation.
struct LaxVerifier(String, i64);

#[async_trait]
impl ClientAssertionVerifier for LaxVerifier {
    fn signing_algorithms(&self) -> Vec<String> {
        vec!["ES256".to_owned()]
    }

    async fn verify_client_assertion(
        &self,
        _: &OAuthClientInformationFull,
        _: &Assertion,
        _: &[String],
        now: i64,
    ) -> Result<VerifiedClientAssertion, ClientAssertionError> {
        let mut verified = VerifiedClientAssertion::new(self.0.clone(), now + 60);
        verified.replay_until = self.1;
        Ok(verified)
    }
}

#[tokio::test]
async fn a_client_assertion_with_an_over_long_jti_or_window_does_not_authenticate() {
    let window = crate::limits::MAX_REPLAY_WINDOW;
    let cases = [
        (
            "j".repeat(crate::limits::MAX_JTI_LENGTH + 1),
            T0 + 60,
            "jti",
        ),
        ("ok".to_owned(), T0 + window + 1, "exp"),
    ];
    for (jti, replay_until, rule) in cases {
        let provider = StoreProvider::builder(MemoryStore::new(), ISSUER)
            .clock(Arc::new(ManualClock::new(T0)))
            .client_assertion_verifier(Arc::new(LaxVerifier(jti, replay_until)))
            .build()
            .unwrap();
        let result = provider
            .authenticate_client_assertion(
                &client("c1", None),
                &Assertion::new("x.y.z"),
                &[ISSUER.to_owned()],
            )
            .await;
        assert!(
            matches!(&result, Err(ClientAssertionError::Rejected { description }) if description.starts_with(rule)),
            "{rule}: {result:?}"
        );
    }
}

/// The provider's capabilities are derived from what it was given, never stated separately:
/// each collaborator adds its grant or method, the client-credentials switch its grant, and a
/// grant that is not among them is refused even to a direct caller.
#[tokio::test]
async fn capabilities_follow_the_collaborators_and_the_client_credentials_switch() {
    use crate::Capabilities;
    use mcp_auth_types::GrantType;

    let plain = StoreProvider::builder(MemoryStore::new(), ISSUER)
        .build()
        .unwrap();
    assert_eq!(plain.capabilities(), Capabilities::new());
    let refused = plain
        .exchange_client_credentials(&client("m2m", Some("read")), None, Some(RESOURCE.into()))
        .await;
    assert_eq!(code_of(refused), TokenErrorCode::UnsupportedGrantType);

    let full = provider_with(Ok(grant()), None);
    let capabilities = full.capabilities();
    for grant in [GrantType::ClientCredentials, GrantType::JwtBearer] {
        assert!(capabilities.supports_grant(&grant), "{grant:?}");
    }
    assert_eq!(capabilities.client_assertion_signing_algs(), ["ES256"]);
    assert!(!capabilities.supports_client_id_metadata_documents());
}
