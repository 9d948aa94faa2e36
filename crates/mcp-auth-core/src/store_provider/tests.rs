//! Unit tests of the provider's configuration.

use super::builder::StoreProviderBuilder;
use super::*;
use crate::MemoryStore;
use crate::access_token_signer::AccessTokenClaims;
use crate::storage::ClientStore;

#[test]
fn lifetimes_are_bounded() {
    type Configure = fn(StoreProviderBuilder<MemoryStore>) -> StoreProviderBuilder<MemoryStore>;
    let cases: [(&str, Configure); 5] = [
        ("code_ttl", |b| b.code_ttl(601)),
        ("code_ttl", |b| b.code_ttl(0)),
        ("access_token_ttl", |b| b.access_token_ttl(0)),
        ("refresh_token_ttl", |b| b.refresh_token_ttl(Some(0))),
        ("grant_lifetime", |b| b.grant_lifetime(Some(0))),
    ];
    for (setting, configure) in cases {
        let err = configure(StoreProvider::builder(
            MemoryStore::new(),
            "https://as.example",
        ))
        .build()
        .expect_err(setting);
        assert!(
            matches!(err, ConfigError::Lifetime { setting: s, .. } if s == setting),
            "{err}"
        );
    }
}

#[test]
fn defaults_build_and_sign_in_lives_under_the_issuer() {
    let provider = StoreProvider::builder(MemoryStore::new(), "https://as.example/tenant")
        .build()
        .expect("defaults are valid");
    assert_eq!(
        provider.config.sign_in_url,
        "https://as.example/tenant/sign-in"
    );
    assert_eq!(provider.config.code_ttl, 300);
    assert!(
        StoreProvider::builder(MemoryStore::new(), "http://as.example")
            .build()
            .is_err()
    );
}

/// A resolver that answers one URL and refuses everything else.
struct OneDocument;

#[async_trait]
impl ClientMetadataResolver for OneDocument {
    async fn resolve(
        &self,
        client_id: &str,
    ) -> Result<OAuthClientInformationFull, crate::ClientMetadataError> {
        match client_id {
            // As in the MCP spec's example document: no `scope`.
            "https://app.example/no-scope.json" => Ok(OAuthClientInformationFull::new(
                client_id,
                mcp_auth_types::OAuthClientMetadata::new(vec!["https://app.example/cb".into()]),
            )),
            "https://app.example/client.json" => Ok(OAuthClientInformationFull::new(
                client_id,
                mcp_auth_types::OAuthClientMetadata::new(vec!["https://app.example/cb".into()]),
            )),
            // A misbehaving resolver: the provider must not trust the answer.
            "https://app.example/other.json" => Ok(OAuthClientInformationFull::new(
                "https://app.example/client.json",
                mcp_auth_types::OAuthClientMetadata::new(vec!["https://app.example/cb".into()]),
            )),
            "https://busy.example/client.json" => Err(crate::ClientMetadataError::Unavailable(
                "every fetch slot is taken".into(),
            )),
            _ => Err(crate::ClientMetadataError::InvalidDocument("no".into())),
        }
    }
}

#[tokio::test]
async fn https_client_ids_are_resolved_by_the_metadata_resolver_only() {
    let without = StoreProvider::builder(MemoryStore::new(), "https://as.example")
        .build()
        .unwrap();
    assert!(
        without
            .get_client("https://app.example/client.json")
            .await
            .unwrap()
            .is_none()
    );
    // Even a stored record under an https id is never served: that namespace belongs to
    // metadata documents.
    let store = MemoryStore::new();
    store
        .insert_client(&ClientRecord::new(OAuthClientInformationFull::new(
            "https://stored.example/c",
            mcp_auth_types::OAuthClientMetadata::new(vec!["https://x/cb".into()]),
        )))
        .await
        .unwrap();
    let with = StoreProvider::builder(store, "https://as.example")
        .client_metadata_resolver(Arc::new(OneDocument))
        .build()
        .unwrap();
    let cases = [
        ("https://app.example/client.json", true),
        ("HTTPS://app.example/client.json", false),
        ("https://app.example/other.json", false),
        ("https://app.example/missing.json", false),
        ("https://stored.example/c", false),
    ];
    for (client_id, found) in cases {
        let client = with.get_client(client_id).await.unwrap();
        assert_eq!(client.is_some(), found, "{client_id}");
        if let Some(client) = client {
            assert_eq!(client.client_id, client_id);
        }
    }
    // A resolver that cannot try now is an outage (retry), not an unknown client.
    let busy = with
        .get_client("https://busy.example/client.json")
        .await
        .unwrap_err();
    assert_eq!(busy.kind(), crate::ProviderErrorKind::Unavailable);
}

#[test]
fn debug_shows_configuration_not_storage() {
    let provider = StoreProvider::builder(MemoryStore::new(), "https://as.example")
        .build()
        .expect("valid");
    let debug = format!("{provider:?}");
    assert!(debug.contains("StoreProvider") && debug.contains("access_token_ttl"));
}

fn scope_rules() -> crate::ClientRegistrationOptions {
    crate::ClientRegistrationOptions::enabled()
        .valid_scopes(["mcp:tools", "mcp:admin"])
        .default_scopes(["mcp:tools"])
        .step_up_scopes(["mcp:admin"])
}

#[tokio::test]
async fn metadata_document_scopes_follow_the_registration_rules() {
    let provider = StoreProvider::builder(MemoryStore::new(), "https://as.example")
        .client_metadata_resolver(Arc::new(OneDocument))
        .client_scope_rules(scope_rules())
        .build()
        .unwrap();
    let client = provider
        .get_client("https://app.example/no-scope.json")
        .await
        .unwrap()
        .expect("resolved");
    assert_eq!(
        client.metadata.scope.as_deref(),
        Some("mcp:tools mcp:admin")
    );
    assert!(client.validate_scope(Some("mcp:tools")).is_ok());

    let as_is = StoreProvider::builder(MemoryStore::new(), "https://as.example")
        .client_metadata_resolver(Arc::new(OneDocument))
        .build()
        .unwrap();
    let client = as_is
        .get_client("https://app.example/no-scope.json")
        .await
        .unwrap()
        .expect("resolved");
    assert_eq!(
        client.metadata.scope, None,
        "without rules the document is taken as is"
    );
}

/// A signer that records what it was asked to sign and returns it as the "token".
#[derive(Default)]
struct RecordingSigner {
    signed: std::sync::Mutex<Vec<String>>,
}

impl AccessTokenSigner for RecordingSigner {
    fn sign(&self, claims: &AccessTokenClaims<'_>) -> Result<String, ProviderError> {
        let token = format!(
            "{}|{}|{}|{}|{}|{}|{}|{}",
            claims.issuer,
            claims.subject,
            claims.audience.unwrap_or("-"),
            claims.client_id,
            claims.scopes.join(" "),
            claims.expires_at - claims.issued_at,
            claims.jwt_id.len(),
            self.signed.lock().unwrap().len(),
        );
        self.signed.lock().unwrap().push(claims.jwt_id.to_owned());
        Ok(token)
    }
    fn key_set(&self) -> Arc<str> {
        Arc::from(r#"{"keys":[]}"#)
    }
}

#[tokio::test]
async fn a_signer_makes_the_token_and_the_stored_record_still_decides() {
    let signer = Arc::new(RecordingSigner::default());
    let provider = StoreProvider::builder(MemoryStore::new(), "https://as.example")
        .client_credentials(true)
        .access_token_ttl(600)
        .access_token_signer(Arc::clone(&signer) as Arc<dyn AccessTokenSigner>)
        .build()
        .unwrap();
    assert!(provider.capabilities().supports_signed_access_tokens());
    assert_eq!(
        provider.access_token_key_set().as_deref(),
        Some(r#"{"keys":[]}"#)
    );
    let mut metadata = mcp_auth_types::OAuthClientMetadata::new(vec![]);
    metadata.grant_types = vec![GrantType::ClientCredentials];
    metadata.scope = Some("mcp:tools".to_owned());
    let client = OAuthClientInformationFull::new("svc", metadata);
    let issue = |resource: Option<&str>| {
        provider.exchange_client_credentials(
            &client,
            Some(vec!["mcp:tools".to_owned()]),
            resource.map(str::to_owned),
        )
    };
    let token = issue(Some("https://mcp.example/mcp")).await.unwrap();
    let raw = token.access_token.expose_secret().to_owned();
    // The client acting in its own name is the subject (RFC 9068 §2.2); a UUID `jti`.
    assert_eq!(
        raw,
        "https://as.example|svc|https://mcp.example/mcp|svc|mcp:tools|600|36|0"
    );
    let second = issue(None).await.unwrap();
    assert!(
        second
            .access_token
            .expose_secret()
            .starts_with("https://as.example|svc|-|")
    );
    let ids = signer.signed.lock().unwrap().clone();
    assert_ne!(ids[0], ids[1], "every token has its own jti");

    // The signed token is stored under its hash like an opaque one, and revocation kills it.
    let secret = AccessTokenSecret::new(raw);
    let loaded = provider
        .load_access_token(&secret)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        loaded.token.resource.as_deref(),
        Some("https://mcp.example/mcp")
    );
    provider
        .revoke_token(RevocableToken::Access(loaded))
        .await
        .unwrap();
    assert!(provider.load_access_token(&secret).await.unwrap().is_none());

    // Without a signer: opaque tokens, no key set.
    let opaque = StoreProvider::builder(MemoryStore::new(), "https://as.example")
        .build()
        .unwrap();
    assert!(!opaque.capabilities().supports_signed_access_tokens());
    assert!(opaque.access_token_key_set().is_none());
}
