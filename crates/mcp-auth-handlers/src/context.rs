//! What every handler shares: the provider, the validated settings, the clock and the limits.

use std::sync::Arc;

use mcp_auth_core::{AuthSettings, Capabilities, Clock, SystemClock};

use crate::limits::{MAX_FORM_BODY_BYTES, MAX_REGISTRATION_BODY_BYTES};

/// The largest request body each kind of endpoint accepts; a larger one gets `413` with an
/// `invalid_request` body before anything is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BodyLimits {
    /// Form endpoints: `/token`, `/revoke`, `POST /authorize` (and the body of any request to
    /// a metadata endpoint, which reads none). Default [`MAX_FORM_BODY_BYTES`].
    pub form: usize,
    /// `/register`. Default [`MAX_REGISTRATION_BODY_BYTES`].
    pub registration: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            form: MAX_FORM_BODY_BYTES,
            registration: MAX_REGISTRATION_BODY_BYTES,
        }
    }
}

impl BodyLimits {
    /// The same limit for every endpoint.
    pub fn uniform(bytes: usize) -> Self {
        Self {
            form: bytes,
            registration: bytes,
        }
    }

    /// Replaces the form endpoints' limit.
    #[must_use]
    pub fn form(mut self, bytes: usize) -> Self {
        self.form = bytes;
        self
    }

    /// Replaces the registration endpoint's limit.
    #[must_use]
    pub fn registration(mut self, bytes: usize) -> Self {
        self.registration = bytes;
        self
    }
}

/// Shared configuration of the handlers.
#[derive(Debug, Clone)]
pub struct HandlerContext {
    /// The validated server settings: the operator's policy.
    pub settings: Arc<AuthSettings>,
    /// What the provider supports (its
    /// [`capabilities`](mcp_auth_core::OAuthAuthorizationServerProvider::capabilities), read
    /// once): the grants the token endpoint dispatches, the client-authentication methods,
    /// and what metadata and registration admit.
    pub capabilities: Arc<Capabilities>,
    /// The time source for every expiry check.
    pub clock: Arc<dyn Clock>,
    /// Largest accepted request body per kind of endpoint; larger bodies get 413.
    pub body_limits: BodyLimits,
}

impl HandlerContext {
    /// A context with the system clock and the default body limits ([`BodyLimits::default`]).
    /// `capabilities` are the provider's own.
    pub fn new(settings: AuthSettings, capabilities: Capabilities) -> Self {
        Self {
            settings: Arc::new(settings),
            capabilities: Arc::new(capabilities),
            clock: Arc::new(SystemClock),
            body_limits: BodyLimits::default(),
        }
    }

    /// Replaces the clock (tests move time with `ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// One body limit for every endpoint ([`BodyLimits::uniform`]).
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limits = BodyLimits::uniform(limit);
        self
    }

    /// Replaces the body limits.
    pub fn with_body_limits(mut self, limits: BodyLimits) -> Self {
        self.body_limits = limits;
        self
    }

    /// Current time, seconds since the epoch.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
