//! When keys are created, when they start signing and when they are deleted: pure functions of
//! the stored keys, the policy and the time, so that every instance reading the same keys
//! reaches the same answer.
//!
//! Generation *n + 1* is stored `publish_ahead` before it starts signing (resource servers that
//! cached the key set meet it there before they meet a token it signed), and starts signing
//! `rotation_period` after generation *n* did. Generation *n* stays published until every token
//! it signed has expired: `token_lifetime` (plus a minute for clocks) after *n + 1* took over.

use mcp_auth_core::SigningKeyRecord;

use crate::SigningAlgorithm;

/// Slack for the clocks of resource servers, added before a retired key is deleted.
pub(crate) const CLOCK_SLACK: i64 = 60;

/// How keys rotate, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub(crate) algorithm: SigningAlgorithm,
    pub(crate) rotation_period: i64,
    pub(crate) publish_ahead: i64,
    pub(crate) token_lifetime: i64,
}

/// When the key to create now starts signing, if one is due, given the newest key in use (the
/// new key's generation follows every stored key's).
///
/// - No key: one signing at once (nobody can hold a stale key set yet).
/// - The newest key signs already, and its successor is due within `publish_ahead`, or it uses
///   another algorithm than the configured one: the next generation, signing at the later of its
///   turn and `publish_ahead` from now (after an outage longer than a period the old key keeps
///   signing until the new one has been published long enough).
/// - The newest key does not sign yet: nothing (it is the successor, already published).
pub(crate) fn due_key(
    newest: Option<&SigningKeyRecord>,
    schedule: &Schedule,
    now: i64,
) -> Option<i64> {
    let Some(newest) = newest else {
        return Some(now);
    };
    if newest.activates_at > now {
        return None;
    }
    let turn = newest.activates_at.saturating_add(schedule.rotation_period);
    let other_algorithm = newest.algorithm != schedule.algorithm.as_str();
    if other_algorithm || turn - schedule.publish_ahead <= now {
        let starts = if other_algorithm { now } else { turn }
            .max(now.saturating_add(schedule.publish_ahead));
        Some(starts)
    } else {
        None
    }
}

/// The oldest generation still needed at `now`: keys below it may be deleted. A key is needed
/// while it signs, before it signs, and until `token_lifetime` (plus [`CLOCK_SLACK`]) after its
/// successor took over.
pub(crate) fn oldest_needed(
    keys: &[SigningKeyRecord],
    schedule: &Schedule,
    now: i64,
) -> Option<i64> {
    keys.iter()
        .zip(keys.iter().skip(1).map(Some).chain([None]))
        .find(|(_, successor)| match successor {
            None => true,
            Some(next) => {
                next.activates_at
                    .saturating_add(schedule.token_lifetime)
                    .saturating_add(CLOCK_SLACK)
                    > now
            }
        })
        .map(|(key, _)| key.generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const HOUR: i64 = 3_600;

    fn schedule() -> Schedule {
        Schedule {
            algorithm: SigningAlgorithm::ES256,
            rotation_period: 30 * DAY,
            publish_ahead: HOUR,
            token_lifetime: HOUR,
        }
    }

    fn key(generation: i64, activates_at: i64, algorithm: &str) -> SigningKeyRecord {
        SigningKeyRecord::new(
            generation,
            format!("kid-{generation}"),
            algorithm.to_owned(),
            "{}".to_owned(),
            "pkcs8:".to_owned(),
            activates_at - HOUR,
            activates_at,
        )
    }

    #[test]
    fn the_first_key_signs_at_once() {
        assert_eq!(due_key(None, &schedule(), 1_000), Some(1_000));
    }

    #[test]
    fn the_successor_is_published_an_hour_before_its_turn_and_not_twice() {
        let keys = [key(1, 0, "ES256")];
        let turn = 30 * DAY;
        assert_eq!(due_key(keys.last(), &schedule(), turn - HOUR - 1), None);
        assert_eq!(due_key(keys.last(), &schedule(), turn - HOUR), Some(turn));
        let keys = [key(1, 0, "ES256"), key(2, turn, "ES256")];
        assert_eq!(
            due_key(keys.last(), &schedule(), turn - 10),
            None,
            "the successor is waiting"
        );
    }

    #[test]
    fn after_a_long_outage_the_old_key_signs_until_the_new_one_was_published_long_enough() {
        let keys = [key(1, 0, "ES256")];
        let now = 90 * DAY;
        assert_eq!(due_key(keys.last(), &schedule(), now), Some(now + HOUR));
    }

    #[test]
    fn a_new_algorithm_rotates_early_but_still_publishes_ahead() {
        let keys = [key(1, 0, "RS256")];
        assert_eq!(due_key(keys.last(), &schedule(), DAY), Some(DAY + HOUR));
    }

    #[test]
    fn retired_keys_are_kept_until_their_last_token_expired() {
        let turn = 30 * DAY;
        let keys = [key(1, 0, "ES256"), key(2, turn, "ES256")];
        let last_expiry = turn + HOUR + CLOCK_SLACK;
        assert_eq!(oldest_needed(&keys, &schedule(), turn), Some(1));
        assert_eq!(oldest_needed(&keys, &schedule(), last_expiry - 1), Some(1));
        assert_eq!(oldest_needed(&keys, &schedule(), last_expiry), Some(2));
        // The successor-in-waiting and the signing key are always needed.
        let keys = [
            key(1, 0, "ES256"),
            key(2, turn, "ES256"),
            key(3, 2 * turn, "ES256"),
        ];
        assert_eq!(oldest_needed(&keys, &schedule(), 2 * turn - 5), Some(2));
        assert_eq!(oldest_needed(&[], &schedule(), 0), None);
    }
}
