//! Contracts of `StoreProvider` on top of a backend: the security properties users rely on.

use std::sync::Arc;

use mcp_auth_core::types::{
    AccessTokenSecret, AuthorizationCodeSecret, AuthorizationParams, ClientSecret, GrantType,
    OAuthClientInformationFull, OAuthClientMetadata, OAuthToken, RefreshTokenSecret,
    TokenEndpointAuthMethod,
};
use mcp_auth_core::{
    ManualClock, OAuthAuthorizationServerProvider, RevocableToken, Storage, StoreProvider,
    TokenError,
};

use super::records::NOW;
use super::store::futures_all;

const ISSUER: &str = "https://as.example";
const REDIRECT: &str = "http://127.0.0.1:7777/cb";

/// A provider over `store` with a manual clock at `NOW`.
pub fn provider(
    store: Arc<dyn Storage>,
    configure: impl FnOnce(
        mcp_auth_core::StoreProviderBuilder<Arc<dyn Storage>>,
    ) -> mcp_auth_core::StoreProviderBuilder<Arc<dyn Storage>>,
) -> (Arc<StoreProvider<Arc<dyn Storage>>>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let builder = StoreProvider::builder(store, ISSUER)
        .clock(clock.clone())
        .sign_in_url("https://as.example/sign-in?lang=en");
    let provider = configure(builder)
        .build()
        .expect("valid provider configuration");
    (Arc::new(provider), clock)
}

/// Whether a contract runs with the provider's in-process access-token cache: every contract
/// must hold either way, the cache being invalidated by each revocation it makes. Both run
/// with the unknown-token cache at its default (on), which issuance invalidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// No access-token cache (the default).
    Off,
    /// `access_token_cache_ttl(60)`.
    On,
}

/// [`provider`] with `caching` applied before `configure`.
pub fn contract_provider(
    store: Arc<dyn Storage>,
    caching: Caching,
    configure: impl FnOnce(
        mcp_auth_core::StoreProviderBuilder<Arc<dyn Storage>>,
    ) -> mcp_auth_core::StoreProviderBuilder<Arc<dyn Storage>>,
) -> (Arc<StoreProvider<Arc<dyn Storage>>>, Arc<ManualClock>) {
    provider(store, |builder| {
        configure(match caching {
            Caching::Off => builder,
            Caching::On => builder.access_token_cache_ttl(60),
        })
    })
}

/// Registers a client (public unless `secret` is given) allowed to refresh.
pub async fn register(
    provider: &StoreProvider<Arc<dyn Storage>>,
    id: &str,
    secret: Option<&str>,
) -> OAuthClientInformationFull {
    let mut metadata = OAuthClientMetadata::new(vec![REDIRECT.to_owned()]);
    metadata.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    metadata.token_endpoint_auth_method = Some(if secret.is_some() {
        TokenEndpointAuthMethod::ClientSecretPost
    } else {
        TokenEndpointAuthMethod::None
    });
    let mut info = OAuthClientInformationFull::new(id, metadata);
    info.client_secret = secret.map(ClientSecret::new);
    provider.register_client(info).await.expect("register");
    provider
        .get_client(id)
        .await
        .expect("get")
        .expect("registered")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Runs authorize → sign-in → complete, returning the code.
pub async fn obtain_code(
    provider: &StoreProvider<Arc<dyn Storage>>,
    client: &OAuthClientInformationFull,
    subject: &str,
) -> AuthorizationCodeSecret {
    let mut params = AuthorizationParams::new(
        Some(vec!["mcp:tools".to_owned()]),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        REDIRECT,
        true,
    );
    params.state = Some("xyz".to_owned());
    params.resource = Some("https://mcp.example/mcp".to_owned());
    let sign_in = provider.authorize(client, params).await.expect("authorize");
    assert!(
        sign_in.starts_with("https://as.example/sign-in?lang=en&request_id="),
        "{sign_in}"
    );
    let request_id = query_param(&sign_in, "request_id").expect("request id");
    let pending = provider
        .pending_authorization(&request_id)
        .await
        .expect("pending")
        .expect("live request");
    assert_eq!(pending.client.client_id, client.client_id);
    assert_eq!(pending.params.state.as_deref(), Some("xyz"));
    let redirect = provider
        .complete_authorization(&request_id, subject)
        .await
        .expect("complete");
    assert!(redirect.starts_with(REDIRECT), "{redirect}");
    assert_eq!(query_param(&redirect, "state").as_deref(), Some("xyz"));
    assert_eq!(query_param(&redirect, "iss").as_deref(), Some(ISSUER));
    assert!(
        provider
            .complete_authorization(&request_id, subject)
            .await
            .is_err(),
        "a pending request completes once"
    );
    AuthorizationCodeSecret::new(query_param(&redirect, "code").expect("code"))
}

/// Exchanges `code` (an unknown code is `invalid_grant`).
pub async fn exchange(
    provider: &StoreProvider<Arc<dyn Storage>>,
    client: &OAuthClientInformationFull,
    code: &AuthorizationCodeSecret,
) -> Result<OAuthToken, TokenError> {
    let Some(loaded) = provider
        .load_authorization_code(client, code)
        .await
        .expect("load")
    else {
        return Err(TokenError::code(
            mcp_auth_core::types::TokenErrorCode::InvalidGrant,
        ));
    };
    provider.exchange_authorization_code(client, loaded).await
}

/// Whether `token` is live, asked both ways: without waiting (where the provider can answer
/// at once: its cache, an in-memory store) before and after the asynchronous lookup, which
/// must agree with it.
pub async fn access_ok(
    provider: &StoreProvider<Arc<dyn Storage>>,
    token: &AccessTokenSecret,
) -> bool {
    let fingerprint = |found: Option<mcp_auth_core::StoredAccessToken>| {
        found.map(|found| {
            let grant = found.grant_id().to_owned();
            (grant, serde_json::to_value(found.as_ref()).expect("json"))
        })
    };
    let before = provider.load_access_token_now(token);
    let waited = fingerprint(provider.load_access_token(token).await.expect("load"));
    let after = provider.load_access_token_now(token);
    for immediate in [before, after].into_iter().flatten() {
        assert_eq!(
            fingerprint(immediate.expect("load now")),
            waited,
            "load_access_token_now disagrees with load_access_token"
        );
    }
    waited.is_some()
}

/// Refreshes `token` for `scopes` (an unknown token is `invalid_grant`).
pub async fn refresh(
    provider: &StoreProvider<Arc<dyn Storage>>,
    client: &OAuthClientInformationFull,
    token: &RefreshTokenSecret,
    scopes: &[&str],
) -> Result<OAuthToken, TokenError> {
    let Some(loaded) = provider
        .load_refresh_token(client, token)
        .await
        .expect("load")
    else {
        return Err(TokenError::code(
            mcp_auth_core::types::TokenErrorCode::InvalidGrant,
        ));
    };
    provider
        .exchange_refresh_token(
            client,
            loaded,
            scopes.iter().map(|s| (*s).to_owned()).collect(),
        )
        .await
}

/// Register → authorize → sign in → code → tokens → refresh, with subject, resource and
/// scopes stamped on every token.
pub async fn provider_runs_the_whole_authorization_code_flow(
    store: Arc<dyn Storage>,
    caching: Caching,
) {
    let (provider, _) = contract_provider(store, caching, |b| b);
    let client = register(&provider, "flow-client", None).await;
    let code = obtain_code(&provider, &client, "alice").await;
    let tokens = exchange(&provider, &client, &code).await.expect("exchange");
    assert_eq!(tokens.expires_in, Some(3600));
    assert_eq!(tokens.scope.as_deref(), Some("mcp:tools"));
    assert_eq!(
        tokens.access_token.expose_secret().len(),
        43,
        "256-bit token"
    );
    let access = provider
        .load_access_token(&tokens.access_token)
        .await
        .expect("load")
        .expect("live");
    let access = access.as_ref();
    assert_eq!(access.client_id, "flow-client");
    assert_eq!(access.subject.as_deref(), Some("alice"));
    assert_eq!(access.resource.as_deref(), Some("https://mcp.example/mcp"));
    assert_eq!(access.scopes, ["mcp:tools"]);
    assert_eq!(access.issuer().as_deref(), Some(ISSUER));

    let refresh_token = tokens.refresh_token.expect("refresh token issued");
    let refreshed = refresh(&provider, &client, &refresh_token, &["mcp:tools"])
        .await
        .expect("refresh");
    let new_access = provider
        .load_access_token(&refreshed.access_token)
        .await
        .expect("load")
        .expect("live");
    assert_eq!(new_access.as_ref().subject.as_deref(), Some("alice"));
    assert_eq!(
        new_access.as_ref().resource.as_deref(),
        Some("https://mcp.example/mcp")
    );
    assert!(
        !access_ok(&provider, &tokens.access_token).await,
        "rotation retires the old access token"
    );
    let other = register(&provider, "other-client", None).await;
    assert!(
        provider
            .load_refresh_token(&other, refreshed.refresh_token.as_ref().expect("rotated"))
            .await
            .expect("load")
            .is_none(),
        "another client's refresh token reads as unknown"
    );
}

/// A code redeemed twice: the second attempt fails and revokes the first redemption's tokens.
pub async fn provider_revokes_tokens_of_a_replayed_code(store: Arc<dyn Storage>, caching: Caching) {
    let (provider, _) = contract_provider(store, caching, |b| b);
    let client = register(&provider, "replay-client", None).await;
    let code = obtain_code(&provider, &client, "bob").await;
    let tokens = exchange(&provider, &client, &code)
        .await
        .expect("first exchange");
    assert!(access_ok(&provider, &tokens.access_token).await);
    assert!(
        exchange(&provider, &client, &code).await.is_err(),
        "second exchange fails"
    );
    assert!(
        !access_ok(&provider, &tokens.access_token).await,
        "tokens of the first redemption are revoked"
    );
    let refresh_token = tokens.refresh_token.expect("refresh");
    assert!(
        refresh(&provider, &client, &refresh_token, &[])
            .await
            .is_err()
    );
}

/// 32 concurrent exchanges of one code through the provider: exactly one gets tokens.
pub async fn provider_code_is_single_use_under_concurrent_exchange(
    store: Arc<dyn Storage>,
    caching: Caching,
) {
    let (provider, _) = contract_provider(store, caching, |b| b);
    let client = register(&provider, "race-client", None).await;
    let code = obtain_code(&provider, &client, "carol").await;
    let racer = Arc::clone(&provider);
    let results = futures_all(32, move |_| {
        let provider = Arc::clone(&racer);
        let client = client.clone();
        let code = code.clone();
        async move { exchange(&provider, &client, &code).await.ok() }
    })
    .await;
    let issued: Vec<OAuthToken> = results.into_iter().flatten().collect();
    // At most one exchange gets tokens. Zero is also correct: every losing exchange is a
    // replay of the code and revokes its grant (RFC 6749 §4.1.2), which can happen before the
    // winner stores its tokens, and a revoked grant refuses them.
    assert!(
        issued.len() <= 1,
        "{} concurrent exchanges got tokens",
        issued.len()
    );
    // Either way the replays revoked the grant: nothing issued from the code survives.
    for tokens in &issued {
        assert!(
            !access_ok(&provider, &tokens.access_token).await,
            "a token of a replayed code survived"
        );
    }
}

/// A rotated refresh token presented again revokes the whole grant (RFC 9700 §4.14.2).
pub async fn provider_revokes_the_grant_when_a_rotated_refresh_token_returns(
    store: Arc<dyn Storage>,
    caching: Caching,
) {
    let (provider, _) = contract_provider(store, caching, |b| b);
    let client = register(&provider, "rotate-client", None).await;
    let code = obtain_code(&provider, &client, "dave").await;
    let first = exchange(&provider, &client, &code).await.expect("exchange");
    let old_refresh = first.refresh_token.expect("refresh");
    let second = refresh(&provider, &client, &old_refresh, &["mcp:tools"])
        .await
        .expect("refresh");
    assert!(access_ok(&provider, &second.access_token).await);
    assert!(
        refresh(&provider, &client, &old_refresh, &["mcp:tools"])
            .await
            .is_err(),
        "reuse refused"
    );
    assert!(
        !access_ok(&provider, &second.access_token).await,
        "reuse revokes the current access token"
    );
    let current = second.refresh_token.expect("rotated refresh");
    assert!(
        refresh(&provider, &client, &current, &["mcp:tools"])
            .await
            .is_err(),
        "and the current refresh token"
    );
}

/// Revoking the access token kills the refresh token, and the other way round.
pub async fn provider_revoking_either_token_revokes_both(
    store: Arc<dyn Storage>,
    caching: Caching,
) {
    let (provider, _) = contract_provider(store, caching, |b| b);
    let client = register(&provider, "revoke-client", None).await;

    let tokens = exchange(
        &provider,
        &client,
        &obtain_code(&provider, &client, "erin").await,
    )
    .await
    .expect("exchange");
    let access = provider
        .load_access_token(&tokens.access_token)
        .await
        .expect("load")
        .expect("live");
    provider
        .revoke_token(RevocableToken::Access(access))
        .await
        .expect("revoke");
    let refresh_token = tokens.refresh_token.expect("refresh");
    assert!(
        provider
            .load_refresh_token(&client, &refresh_token)
            .await
            .expect("load")
            .is_none()
    );

    let tokens = exchange(
        &provider,
        &client,
        &obtain_code(&provider, &client, "erin").await,
    )
    .await
    .expect("exchange");
    // Looked up first, so a cache (when on) holds it when the refresh token is revoked.
    assert!(access_ok(&provider, &tokens.access_token).await);
    let refresh_token = tokens.refresh_token.expect("refresh");
    let loaded = provider
        .load_refresh_token(&client, &refresh_token)
        .await
        .expect("load")
        .expect("live");
    provider
        .revoke_token(RevocableToken::Refresh(loaded))
        .await
        .expect("revoke");
    assert!(!access_ok(&provider, &tokens.access_token).await);
}

/// Client secrets are verified against the stored hash; records read back carry no secret.
pub async fn provider_checks_client_secrets_against_the_stored_hash(
    store: Arc<dyn Storage>,
    caching: Caching,
) {
    let (provider, _) = contract_provider(store.clone(), caching, |b| b.client_cache_ttl(0));
    let client = register(
        &provider,
        "secret-client",
        Some("correct horse battery staple"),
    )
    .await;
    assert!(
        client.client_secret.is_none(),
        "get_client never returns the secret"
    );
    let ok = provider
        .authenticate_client_secret(&client, &ClientSecret::new("correct horse battery staple"))
        .await
        .expect("auth");
    assert!(ok);
    for wrong in [
        "",
        "correct horse battery stapl",
        "correct horse battery staplE",
        "x",
    ] {
        let ok = provider
            .authenticate_client_secret(&client, &ClientSecret::new(wrong))
            .await
            .expect("auth");
        assert!(!ok, "{wrong:?} must not authenticate");
    }
    let stored = store
        .get_client("secret-client")
        .await
        .expect("get")
        .expect("stored");
    let dump = serde_json::to_string(&stored).expect("json");
    assert!(
        !dump.contains("correct horse"),
        "the store keeps only a hash"
    );
}

/// Tokens stop working at their expiry, and an absolute grant lifetime caps refreshes.
pub async fn provider_expires_tokens_and_caps_them_by_the_grant_lifetime(
    store: Arc<dyn Storage>,
    caching: Caching,
) {
    let (provider, clock) = contract_provider(store, caching, |b| {
        b.access_token_ttl(60)
            .refresh_token_ttl(Some(1000))
            .grant_lifetime(Some(150))
    });
    let client = register(&provider, "expiry-client", None).await;
    let tokens = exchange(
        &provider,
        &client,
        &obtain_code(&provider, &client, "fay").await,
    )
    .await
    .expect("exchange");
    assert_eq!(tokens.expires_in, Some(60));
    clock.advance(59);
    assert!(access_ok(&provider, &tokens.access_token).await);
    clock.advance(1);
    assert!(
        !access_ok(&provider, &tokens.access_token).await,
        "expired at expires_at"
    );

    // At t=60 the grant has 90 s left: the new access token gets 60, the refresh token 90.
    let second = refresh(
        &provider,
        &client,
        tokens.refresh_token.as_ref().expect("refresh"),
        &[],
    )
    .await
    .expect("refresh");
    assert_eq!(second.expires_in, Some(60));
    clock.advance(60);
    // At t=120 only 30 s remain: the access token is capped and no refresh token follows.
    let third = refresh(
        &provider,
        &client,
        second.refresh_token.as_ref().expect("refresh"),
        &[],
    )
    .await
    .expect("refresh");
    assert_eq!(third.expires_in, Some(30));
    assert!(
        third.refresh_token.is_none(),
        "no refresh token past the grant lifetime"
    );
    clock.advance(30);
    assert!(!access_ok(&provider, &third.access_token).await);

    // Codes expire too.
    let code = obtain_code(&provider, &client, "fay").await;
    clock.advance(301);
    assert!(
        exchange(&provider, &client, &code).await.is_err(),
        "an expired code is refused"
    );
}

/// Denying a pending request redirects with `access_denied`, `state` and `iss`, once.
pub async fn provider_denial_redirects_with_access_denied(
    store: Arc<dyn Storage>,
    caching: Caching,
) {
    let (provider, _) = contract_provider(store, caching, |b| b);
    let client = register(&provider, "deny-client", None).await;
    let mut params = AuthorizationParams::new(
        None,
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        REDIRECT,
        false,
    );
    params.state = Some("s 1".to_owned());
    let sign_in = provider
        .authorize(&client, params)
        .await
        .expect("authorize");
    let request_id = query_param(&sign_in, "request_id").expect("request id");
    let redirect = provider
        .deny_authorization(&request_id)
        .await
        .expect("deny");
    assert_eq!(
        query_param(&redirect, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&redirect, "state").as_deref(), Some("s 1"));
    assert_eq!(query_param(&redirect, "iss").as_deref(), Some(ISSUER));
    assert!(query_param(&redirect, "code").is_none());
    assert!(
        provider
            .complete_authorization(&request_id, "x")
            .await
            .is_err()
    );
    assert!(
        provider
            .pending_authorization(&request_id)
            .await
            .expect("pending")
            .is_none()
    );
}

/// With the access-token cache on, a token storage has confirmed is answered without waiting
/// (`load_access_token_now`, which the bearer layer asks first) on every backend, and a
/// revocation through the provider ends that at once.
pub async fn provider_access_token_cache_answers_confirmed_tokens_without_waiting(
    store: Arc<dyn Storage>,
) {
    let (provider, _clock) = contract_provider(store, Caching::On, |b| b);
    let client = register(&provider, "immediate-client", None).await;
    let tokens = exchange(
        &provider,
        &client,
        &obtain_code(&provider, &client, "ivy").await,
    )
    .await
    .expect("exchange");
    assert!(access_ok(&provider, &tokens.access_token).await);
    let immediate = provider
        .load_access_token_now(&tokens.access_token)
        .expect("a confirmed token is answered without waiting")
        .expect("load now")
        .expect("live");
    assert_eq!(immediate.as_ref().subject.as_deref(), Some("ivy"));
    let again = provider
        .load_access_token_now(&tokens.access_token)
        .expect("answered without waiting")
        .expect("load now")
        .expect("live");
    assert!(
        Arc::ptr_eq(immediate.as_ref().info(), again.as_ref().info()),
        "a cached token's information is shared between requests, not copied"
    );
    provider
        .revoke_token(RevocableToken::Access(immediate))
        .await
        .expect("revoke");
    let after = provider
        .load_access_token_now(&tokens.access_token)
        .map(|found| found.expect("load now"));
    assert!(
        !matches!(after, Some(Some(_))),
        "a revoked token is never answered from memory"
    );
    assert!(!access_ok(&provider, &tokens.access_token).await);
}

/// The access-token cache across two instances sharing `store`: the instance that revokes sees
/// it at once; the other one keeps serving its cached entry for at most the cache's TTL — the
/// documented price of the cache — and a provider without a cache sees it at once.
pub async fn provider_access_token_cache_lags_other_instances_by_its_ttl_at_most(
    store: Arc<dyn Storage>,
) {
    let (cached, cached_clock) = provider(store.clone(), |b| b.access_token_cache_ttl(5));
    let (uncached, _) = provider(store.clone(), |b| b);
    let (revoker, _) = provider(store, |b| b.access_token_cache_ttl(5));
    let client = register(&revoker, "cache-client", None).await;
    let tokens = exchange(
        &revoker,
        &client,
        &obtain_code(&revoker, &client, "gus").await,
    )
    .await
    .expect("exchange");
    for instance in [&cached, &uncached, &revoker] {
        assert!(access_ok(instance, &tokens.access_token).await);
    }
    let loaded = revoker
        .load_access_token(&tokens.access_token)
        .await
        .expect("load")
        .expect("live");
    revoker
        .revoke_token(RevocableToken::Access(loaded))
        .await
        .expect("revoke");
    assert!(
        !access_ok(&revoker, &tokens.access_token).await,
        "the revoking instance forgets its cached entry at once"
    );
    assert!(!access_ok(&uncached, &tokens.access_token).await);
    cached_clock.advance(4);
    assert!(
        access_ok(&cached, &tokens.access_token).await,
        "another instance's revocation is not seen inside the TTL (this proves the cache serves)"
    );
    cached_clock.advance(1);
    assert!(
        !access_ok(&cached, &tokens.access_token).await,
        "and is seen once the TTL has passed"
    );
}

/// A made-up token is refused, and refused again without waiting (from the unknown-token
/// cache, or from a store in memory); an instance that saw made-up tokens still finds every
/// token issued afterwards, by itself or by another instance sharing `store`.
pub async fn provider_unknown_tokens_are_refused_from_memory_and_never_hide_issued_ones(
    store: Arc<dyn Storage>,
    caching: Caching,
) {
    let (looker, _) = contract_provider(store.clone(), caching, |b| b);
    let (issuer, _) = contract_provider(store, caching, |b| b);
    let made_up = AccessTokenSecret::new(mcp_auth_core::secrets::random_secret());
    assert!(!access_ok(&looker, &made_up).await);
    assert!(
        matches!(looker.load_access_token_now(&made_up), Some(Ok(None))),
        "a token found unknown is refused without waiting"
    );
    assert!(!access_ok(&looker, &made_up).await);

    for (name, instance) in [("looker", &looker), ("issuer", &issuer)] {
        let client = register(instance, &format!("unknown-{name}"), None).await;
        let tokens = exchange(
            instance,
            &client,
            &obtain_code(instance, &client, "uma").await,
        )
        .await
        .expect("exchange");
        assert!(access_ok(&looker, &tokens.access_token).await, "{name}");
        assert!(access_ok(&issuer, &tokens.access_token).await, "{name}");
        let rotated = refresh(
            instance,
            &client,
            tokens.refresh_token.as_ref().expect("refresh token"),
            &["mcp:tools"],
        )
        .await
        .expect("rotate");
        assert!(access_ok(&looker, &rotated.access_token).await, "{name}");
    }
}
