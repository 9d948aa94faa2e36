//! The storage conformance suite: every contract of `mcp_auth_core::storage`, proved against
//! any backend.
//!
//! Instantiate it with [`storage_conformance!`](crate::storage_conformance), giving an async
//! expression that yields a fresh, empty, migrated `Arc<dyn Storage>`; it expands to one test
//! per contract. The same functions run against `MemoryStore`, SQLite, PostgreSQL and Redis.
//!
//! What the traits cannot show (that a purge left nothing behind) is checked by
//! [`purge_conformance!`](crate::purge_conformance), which also takes a way to look into the
//! backend: every backend instantiates both.

pub mod abandon;
pub mod admin;
pub mod hostile;
pub mod provider;
pub mod purge;
pub mod records;
pub mod refresh_reuse;
pub mod replay;
pub mod signing_keys;
pub mod store;
pub mod upstream_tokens;

/// Expands to one `#[tokio::test]` per storage contract, each on a fresh store from `$factory`.
#[macro_export]
macro_rules! storage_conformance {
    ($factory:expr) => {
        $crate::storage_conformance!(@tests $factory;
            clients_round_trip_and_refuse_duplicates,
            client_records_keep_only_a_secret_hash,
            authorization_requests_are_single_use_and_expire,
            authorization_request_is_taken_once_under_concurrency,
            code_take_is_single_use_and_remembers_redemption,
            code_is_single_use_under_concurrent_redemption,
            expired_codes_are_never_returned,
            access_tokens_are_found_until_they_expire,
            rotation_retires_the_old_token_and_earlier_access_tokens,
            rotation_without_new_refresh_token_retires_the_old_one,
            rotated_refresh_token_is_reported_as_reused,
            one_of_concurrent_rotations_wins,
            revoking_a_grant_kills_every_token_and_refuses_new_ones,
            revocation_is_linearizable_with_concurrent_rotation,
            assertion_ids_are_insert_if_absent_with_expiry,
            one_of_concurrent_assertion_uses_wins,
            replay_entries_with_absurd_expiries_still_refuse_replays,
            purge_removes_expired_records_and_keeps_live_ones,
        );
        $crate::storage_conformance!(@module abandon $factory;
            abandoned_operations_leave_the_store_usable,
        );
        $crate::storage_conformance!(@module hostile $factory;
            ids_with_control_characters_are_absent_not_errors,
        );
        $crate::storage_conformance!(@module admin $factory;
            users_are_added_once_changed_listed_and_removed,
            clients_are_listed_by_id_with_their_secret_hash_only,
            live_grants_are_listed_by_subject_and_client,
        );
        $crate::storage_conformance!(@module refresh_reuse $factory;
            racing_refreshes_within_the_reuse_interval_all_get_working_pairs,
            racing_refreshes_without_an_interval_revoke_the_grant,
            reuse_after_the_interval_revokes_the_grant,
        );
        $crate::storage_conformance!(@module signing_keys $factory;
            keys_round_trip_in_generation_order,
            a_generation_is_inserted_once,
            one_of_concurrent_key_insertions_wins,
            a_duplicate_kid_is_a_conflict,
            deleting_before_a_generation_keeps_the_rest,
            key_fields_with_control_characters_are_stored_faithfully_or_refused,
        );
        $crate::storage_conformance!(@module upstream_tokens $factory;
            upstream_tokens_are_stored_replaced_and_deleted_per_grant,
            upstream_tokens_expire_at_their_end,
            purge_counts_and_removes_only_expired_upstream_tokens,
        );
        $crate::storage_conformance!(@provider $factory;
            provider_runs_the_whole_authorization_code_flow,
            provider_revokes_tokens_of_a_replayed_code,
            provider_code_is_single_use_under_concurrent_exchange,
            provider_revokes_the_grant_when_a_rotated_refresh_token_returns,
            provider_revoking_either_token_revokes_both,
            provider_checks_client_secrets_against_the_stored_hash,
            provider_expires_tokens_and_caps_them_by_the_grant_lifetime,
            provider_denial_redirects_with_access_denied,
            provider_unknown_tokens_are_refused_from_memory_and_never_hide_issued_ones,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let store: std::sync::Arc<dyn mcp_auth_core::Storage> = $factory.await;
                $crate::conformance::store::$name(store).await;
            }
        )*
    };
    (@module $module:ident $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let store: std::sync::Arc<dyn mcp_auth_core::Storage> = $factory.await;
                $crate::conformance::$module::$name(store).await;
            }
        )*
    };
    (@provider $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let store: std::sync::Arc<dyn mcp_auth_core::Storage> = $factory.await;
                $crate::conformance::provider::$name(
                    store,
                    $crate::conformance::provider::Caching::Off,
                )
                .await;
            }
        )*
        /// The provider contracts again, with the in-process access-token cache on.
        mod with_access_token_cache {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn provider_access_token_cache_answers_confirmed_tokens_without_waiting() {
                let store: std::sync::Arc<dyn mcp_auth_core::Storage> = $factory.await;
                $crate::conformance::provider::provider_access_token_cache_answers_confirmed_tokens_without_waiting(store)
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn provider_access_token_cache_lags_other_instances_by_its_ttl_at_most() {
                let store: std::sync::Arc<dyn mcp_auth_core::Storage> = $factory.await;
                $crate::conformance::provider::provider_access_token_cache_lags_other_instances_by_its_ttl_at_most(store)
                    .await;
            }
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let store: std::sync::Arc<dyn mcp_auth_core::Storage> = $factory.await;
                    $crate::conformance::provider::$name(
                        store,
                        $crate::conformance::provider::Caching::On,
                    )
                    .await;
                }
            )*
        }
    };
}
