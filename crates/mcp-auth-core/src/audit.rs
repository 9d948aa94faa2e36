//! Audit events: one structured `tracing` event per security-relevant fact, on the target
//! [`AUDIT_TARGET`] at `INFO`, so that an operator can route them apart from the other logs
//! (`RUST_LOG=mcp_auth::audit=info`, or a JSON log collector filtering on the target).
//!
//! Every event has an `event` field naming the fact (the constants below), and the ids that
//! say who and what: `client_id`, `subject`, `grant_id`, `grant_type`, and where the fact is
//! seen by the server, `user` and `ip`. Never a credential: no token, code, secret, password or
//! assertion, nor anything derived from one that could be presented.
//!
//! [`StoreProvider`](crate::StoreProvider) emits the protocol facts (codes, tokens, reuse,
//! registration); the server emits what only it sees (sign-in, consent, rate limits, the
//! administration commands) with [`audit_event!`](crate::audit_event).

/// The `tracing` target of every audit event.
pub const AUDIT_TARGET: &str = "mcp_auth::audit";

/// An authorization code was issued after the user consented.
pub const CODE_ISSUED: &str = "code.issued";
/// An authorization code was redeemed at the token endpoint.
pub const CODE_REDEEMED: &str = "code.redeemed";
/// A redeemed code was presented again: its grant was revoked (RFC 6749 §4.1.2).
pub const CODE_REPLAYED: &str = "code.replayed";
/// Tokens were issued for a new grant (any grant type).
pub const TOKEN_ISSUED: &str = "token.issued";
/// A refresh token was rotated for a new pair.
pub const TOKEN_REFRESHED: &str = "token.refreshed";
/// A token was revoked (RFC 7009), and with it its grant.
pub const TOKEN_REVOKED: &str = "token.revoked";
/// A refresh token rotated moments ago was presented again within the reuse interval and got
/// a further pair of its grant (WARN: a client racing itself and a thief look the same).
pub const REFRESH_REUSED_WITHIN_INTERVAL: &str = "refresh.reused_within_interval";
/// A rotated refresh token was presented again: its grant was revoked (RFC 9700 §4.14.2).
pub const REFRESH_REUSE_DETECTED: &str = "refresh.reuse_detected";
/// A client registered (RFC 7591).
pub const CLIENT_REGISTERED: &str = "client.registered";
/// A grant was revoked by an administrator (`grant revoke`, or with its user or client).
pub const GRANT_REVOKED: &str = "grant.revoked";
/// A client was removed by an administrator.
pub const CLIENT_REMOVED: &str = "client.removed";
/// A user signed in.
pub const SIGN_IN_SUCCEEDED: &str = "sign_in.succeeded";
/// A sign-in failed (unknown user or wrong password).
pub const SIGN_IN_FAILED: &str = "sign_in.failed";
/// The user approved an authorization request.
pub const CONSENT_APPROVED: &str = "consent.approved";
/// The user denied an authorization request.
pub const CONSENT_DENIED: &str = "consent.denied";
/// A request was refused because its client spent its budget.
pub const RATE_LIMITED: &str = "rate_limit.hit";
/// A user was added by an administrator.
pub const USER_ADDED: &str = "user.added";
/// A user's password was changed by an administrator.
pub const USER_PASSWORD_CHANGED: &str = "user.password_changed";
/// A user was removed by an administrator.
pub const USER_REMOVED: &str = "user.removed";

/// Emits an audit event: `audit_event!(CODE_ISSUED, client_id = %id, ...)`, the name one of
/// this module's constants and the fields as in `tracing::info!`. Each event also counts in
/// the metric `mcp_auth_audit_events_total{event}` (sign-ins by outcome, reuse detected, rate
/// limits hit, …), so the counters and the log can never disagree. Facts that suggest an attack
/// (a replayed code, a reused refresh token) are emitted at `WARN`:
/// `audit_event!(warn: CODE_REPLAYED, ...)`.
#[macro_export]
macro_rules! audit_event {
    (warn: $event:expr $(, $($fields:tt)*)?) => {{
        $crate::__metrics::counter!("mcp_auth_audit_events_total", "event" => $event).increment(1);
        $crate::__tracing::warn!(
            target: $crate::audit::AUDIT_TARGET,
            event = $event
            $(, $($fields)*)?
        )
    }};
    ($event:expr $(, $($fields:tt)*)?) => {{
        $crate::__metrics::counter!("mcp_auth_audit_events_total", "event" => $event).increment(1);
        $crate::__tracing::info!(
            target: $crate::audit::AUDIT_TARGET,
            event = $event
            $(, $($fields)*)?
        )
    }};
}
