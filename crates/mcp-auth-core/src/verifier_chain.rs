//! [`ChainedTokenVerifier`]: one resource accepting tokens of several kinds or issuers.

use std::sync::Arc;

use async_trait::async_trait;
use mcp_auth_types::{AccessToken, AccessTokenSecret};

use crate::error::ProviderError;
use crate::provider::TokenVerifier;

/// Tries its verifiers in order; the first that knows the token answers. A deployment can so
/// accept its own opaque tokens (a [`ProviderTokenVerifier`](crate::ProviderTokenVerifier))
/// and an enterprise issuer's JWTs (`mcp_auth_jwt::JwtAccessTokenVerifier`) at one resource.
///
/// A verifier that fails (its store or its issuer's keys unavailable) does not end the search:
/// a later one may still know the token. If none does and one failed, the answer is that
/// failure (503), not "invalid token": the failed one might have known it, and a 401 would
/// send an MCP client to re-authorize.
#[derive(Clone)]
pub struct ChainedTokenVerifier {
    verifiers: Vec<Arc<dyn TokenVerifier>>,
}

impl std::fmt::Debug for ChainedTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainedTokenVerifier")
            .field("verifiers", &self.verifiers.len())
            .finish()
    }
}

impl ChainedTokenVerifier {
    /// A verifier trying `verifiers` in order.
    pub fn new(verifiers: Vec<Arc<dyn TokenVerifier>>) -> Self {
        Self { verifiers }
    }
}

#[async_trait]
impl TokenVerifier for ChainedTokenVerifier {
    async fn verify_token(
        &self,
        token: &AccessTokenSecret,
    ) -> Result<Option<AccessToken>, ProviderError> {
        let mut failure = None;
        for verifier in &self.verifiers {
            match verifier.verify_token(token).await {
                Ok(Some(access)) => return Ok(Some(access)),
                Ok(None) => {}
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        failure.map_or(Ok(None), Err)
    }

    /// Answers at once only when it can answer exactly as `verify_token` would: a verifier
    /// before which every other answered "unknown" at once knows the token, or every verifier
    /// answered "unknown" at once.
    fn verify_token_now(
        &self,
        token: &AccessTokenSecret,
    ) -> Option<Result<Option<AccessToken>, ProviderError>> {
        for verifier in &self.verifiers {
            match verifier.verify_token_now(token)? {
                Ok(Some(access)) => return Some(Ok(Some(access))),
                Ok(None) => {}
                // A failure does not end the search; the async path will go on past it.
                Err(_) => return None,
            }
        }
        Some(Ok(None))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Knows one token, or fails, and may answer at once.
    struct Fixed {
        known: &'static str,
        fails: bool,
        immediate: bool,
        calls: AtomicUsize,
    }

    fn fixed(known: &'static str, fails: bool, immediate: bool) -> Arc<Fixed> {
        Arc::new(Fixed {
            known,
            fails,
            immediate,
            calls: AtomicUsize::new(0),
        })
    }

    impl Fixed {
        fn answer(&self, token: &AccessTokenSecret) -> Result<Option<AccessToken>, ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fails {
                return Err(ProviderError::unavailable(std::io::Error::other("down")));
            }
            Ok((token.expose_secret() == self.known)
                .then(|| AccessToken::new(token.clone(), self.known, Vec::new())))
        }
    }

    #[async_trait]
    impl TokenVerifier for Fixed {
        async fn verify_token(
            &self,
            token: &AccessTokenSecret,
        ) -> Result<Option<AccessToken>, ProviderError> {
            self.answer(token)
        }

        fn verify_token_now(
            &self,
            token: &AccessTokenSecret,
        ) -> Option<Result<Option<AccessToken>, ProviderError>> {
            self.immediate.then(|| self.answer(token))
        }
    }

    fn chain(verifiers: &[Arc<Fixed>]) -> ChainedTokenVerifier {
        ChainedTokenVerifier::new(
            verifiers
                .iter()
                .map(|v| Arc::clone(v) as Arc<dyn TokenVerifier>)
                .collect(),
        )
    }

    #[tokio::test]
    async fn the_first_verifier_that_knows_the_token_answers() {
        let (a, b) = (fixed("a", false, false), fixed("b", false, false));
        let chain = chain(&[a.clone(), b.clone()]);
        let verify = async |t: &'static str| chain.verify_token(&AccessTokenSecret::new(t)).await;
        assert_eq!(verify("a").await.unwrap().unwrap().client_id, "a");
        assert_eq!(b.calls.load(Ordering::SeqCst), 0, "b not asked");
        assert_eq!(verify("b").await.unwrap().unwrap().client_id, "b");
        assert!(verify("c").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_failure_is_passed_over_but_answers_when_nobody_knows_the_token() {
        let chain = chain(&[fixed("a", true, false), fixed("b", false, false)]);
        let verify = async |t: &'static str| chain.verify_token(&AccessTokenSecret::new(t)).await;
        assert_eq!(verify("b").await.unwrap().unwrap().client_id, "b");
        assert!(
            verify("c").await.is_err(),
            "unknown to b, undecided by a: 503"
        );
    }

    #[tokio::test]
    async fn an_immediate_answer_is_given_only_when_it_is_the_final_one() {
        let token = |t: &'static str| AccessTokenSecret::new(t);
        let both_now = chain(&[fixed("a", false, true), fixed("b", false, true)]);
        assert!(matches!(
            both_now.verify_token_now(&token("b")),
            Some(Ok(Some(_)))
        ));
        assert!(matches!(
            both_now.verify_token_now(&token("c")),
            Some(Ok(None))
        ));
        let second_async = chain(&[fixed("a", false, true), fixed("b", false, false)]);
        assert!(matches!(
            second_async.verify_token_now(&token("a")),
            Some(Ok(Some(_)))
        ));
        assert!(second_async.verify_token_now(&token("b")).is_none());
        let first_fails = chain(&[fixed("a", true, true), fixed("b", false, true)]);
        assert!(first_fails.verify_token_now(&token("b")).is_none());
        assert!(
            first_fails
                .verify_token(&token("b"))
                .await
                .unwrap()
                .is_some()
        );
    }
}
