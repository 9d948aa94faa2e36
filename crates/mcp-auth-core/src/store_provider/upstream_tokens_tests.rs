//! Upstream tokens seen through the provider: stored with the code's grant, found through the
//! grant's live access tokens only, gone with the grant.

use mcp_auth_types::{OAuthClientMetadata, TokenEndpointAuthMethod};

use super::*;
use crate::storage::{UpstreamTokenRecord, UpstreamTokenStore};
use crate::{ManualClock, MemoryStore};

const NOW: i64 = 1_000_000;

type Provider = StoreProvider<Arc<MemoryStore>>;

fn provider(grant_lifetime: Option<u64>) -> (Provider, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let provider = StoreProvider::builder(Arc::new(MemoryStore::new()), "https://as.example")
        .clock(clock.clone())
        .grant_lifetime(grant_lifetime)
        .build()
        .expect("provider");
    (provider, clock)
}

async fn client(provider: &Provider) -> OAuthClientInformationFull {
    let mut metadata = OAuthClientMetadata::new(vec!["http://127.0.0.1:7777/cb".into()]);
    metadata.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    metadata.scope = Some("mcp:tools".into());
    metadata.token_endpoint_auth_method = Some(TokenEndpointAuthMethod::ClientSecretPost);
    let mut info = OAuthClientInformationFull::new("client-1", metadata);
    info.client_secret = Some(ClientSecret::new("s3cret"));
    provider.register_client(info).await.expect("register");
    provider
        .get_client("client-1")
        .await
        .expect("get")
        .expect("registered")
}

/// Signs `alice` in, keeping `sealed` upstream tokens when given; returns the code.
async fn sign_in(
    provider: &Provider,
    client: &OAuthClientInformationFull,
    sealed: Option<&str>,
) -> AuthorizationCodeSecret {
    let params = AuthorizationParams::new(
        Some(vec!["mcp:tools".to_owned()]),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "http://127.0.0.1:7777/cb",
        true,
    );
    let sign_in = provider.authorize(client, params).await.expect("authorize");
    let request_id = sign_in.split_once("request_id=").expect("request id").1;
    let redirect = match sealed {
        Some(sealed) => provider
            .complete_authorization_with_upstream_tokens(request_id, "alice", sealed.to_owned())
            .await
            .expect("complete"),
        None => provider
            .complete_authorization(request_id, "alice")
            .await
            .expect("complete"),
    };
    let code = redirect
        .split_once("code=")
        .and_then(|(_, rest)| rest.split('&').next())
        .expect("code");
    AuthorizationCodeSecret::new(code)
}

/// Exchanges `code`: the grant id and the tokens.
async fn exchange(
    provider: &Provider,
    client: &OAuthClientInformationFull,
    code: &AuthorizationCodeSecret,
) -> (String, OAuthToken) {
    let loaded = provider
        .load_authorization_code(client, code)
        .await
        .expect("load")
        .expect("live code");
    let grant_id = loaded.grant_id.clone();
    let tokens = provider
        .exchange_authorization_code(client, loaded)
        .await
        .expect("exchange");
    (grant_id, tokens)
}

async fn sealed_of(provider: &Provider, token: &AccessTokenSecret) -> Option<String> {
    provider
        .upstream_tokens(token)
        .await
        .expect("upstream tokens")
        .map(|record| record.sealed)
}

#[tokio::test]
async fn upstream_tokens_are_kept_with_the_codes_grant_and_found_through_its_access_token() {
    let (provider, _) = provider(None);
    let client = client(&provider).await;
    let code = sign_in(&provider, &client, Some("sealed-1")).await;
    let (grant_id, tokens) = exchange(&provider, &client, &code).await;

    let stored = provider
        .storage()
        .get_upstream_tokens(&grant_id, NOW)
        .await
        .expect("get")
        .expect("stored under the code's grant");
    assert_eq!(stored.sealed, "sealed-1");
    assert_eq!(
        stored.expires_at,
        NOW + secs(DEFAULT_UPSTREAM_TOKEN_LIFETIME),
        "without a grant lifetime, the default"
    );
    assert_eq!(
        sealed_of(&provider, &tokens.access_token).await.as_deref(),
        Some("sealed-1")
    );

    // A refresh upstream replaces them.
    provider
        .replace_upstream_tokens(&UpstreamTokenRecord::new(
            &grant_id,
            "sealed-2",
            stored.expires_at,
        ))
        .await
        .expect("replace");
    assert_eq!(
        sealed_of(&provider, &tokens.access_token).await.as_deref(),
        Some("sealed-2")
    );

    // A refresh token, an unknown token and another grant's token find nothing.
    let refresh = tokens.refresh_token.expect("refresh token");
    for token in [
        AccessTokenSecret::new(refresh.expose_secret()),
        AccessTokenSecret::new(random_secret()),
    ] {
        assert_eq!(sealed_of(&provider, &token).await, None);
    }
    let plain = sign_in(&provider, &client, None).await;
    let (plain_grant, plain_tokens) = exchange(&provider, &client, &plain).await;
    assert_ne!(plain_grant, grant_id);
    assert_eq!(sealed_of(&provider, &plain_tokens.access_token).await, None);
}

#[tokio::test]
async fn every_revocation_of_the_grant_deletes_its_upstream_tokens() {
    let (provider, _) = provider(None);
    let client = client(&provider).await;

    // Revoking the refresh token (`/revoke`).
    let code = sign_in(&provider, &client, Some("sealed")).await;
    let (grant_id, tokens) = exchange(&provider, &client, &code).await;
    let refresh = provider
        .load_refresh_token(&client, tokens.refresh_token.as_ref().expect("refresh"))
        .await
        .expect("load")
        .expect("live");
    provider
        .revoke_token(RevocableToken::Refresh(refresh))
        .await
        .expect("revoke");
    assert_eq!(sealed_of(&provider, &tokens.access_token).await, None);
    let left = provider.storage().get_upstream_tokens(&grant_id, NOW).await;
    assert!(
        left.expect("get").is_none(),
        "deleted, not only unreachable"
    );

    // An administrator's revocation, before the code is even exchanged.
    let code = sign_in(&provider, &client, Some("sealed")).await;
    let grant_id = provider.grants(None, None).await.expect("grants")[0]
        .grant_id
        .clone();
    assert!(
        provider
            .storage()
            .get_upstream_tokens(&grant_id, NOW)
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        provider
            .revoke_grant_by_id(&grant_id)
            .await
            .expect("revoke")
    );
    let left = provider.storage().get_upstream_tokens(&grant_id, NOW).await;
    assert!(left.expect("get").is_none());
    drop(code);

    // A replayed code.
    let code = sign_in(&provider, &client, Some("sealed")).await;
    let (grant_id, tokens) = exchange(&provider, &client, &code).await;
    assert!(
        provider
            .load_authorization_code(&client, &code)
            .await
            .expect("load")
            .is_none()
    );
    assert_eq!(sealed_of(&provider, &tokens.access_token).await, None);
    let left = provider.storage().get_upstream_tokens(&grant_id, NOW).await;
    assert!(left.expect("get").is_none());
}

#[tokio::test]
async fn upstream_tokens_end_with_the_grant_and_are_purged() {
    const LIFETIME: u64 = 7200;
    let (provider, clock) = provider(Some(LIFETIME));
    let client = client(&provider).await;
    let code = sign_in(&provider, &client, Some("sealed")).await;
    let (grant_id, _) = exchange(&provider, &client, &code).await;
    let stored = provider
        .storage()
        .get_upstream_tokens(&grant_id, NOW)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.expires_at, NOW + secs(LIFETIME));

    clock.advance(secs(LIFETIME) - 1);
    assert_eq!(
        provider
            .purge_expired()
            .await
            .expect("purge")
            .upstream_tokens,
        0
    );
    clock.advance(1);
    assert_eq!(
        provider
            .purge_expired()
            .await
            .expect("purge")
            .upstream_tokens,
        1
    );
    let left = provider
        .storage()
        .get_upstream_tokens(&grant_id, NOW)
        .await
        .expect("get");
    assert!(left.is_none(), "purged, not only expired");
}
