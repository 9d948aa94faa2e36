//! What every handler shares: the provider, the validated settings, the clock and the limits.

use std::sync::Arc;

use mcp_auth_core::{AuthSettings, Clock, SystemClock};

/// Default cap on a request body: 1 MiB, as the Python SDK.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Shared configuration of the handlers.
#[derive(Debug, Clone)]
pub struct HandlerContext {
    /// The validated server settings.
    pub settings: Arc<AuthSettings>,
    /// The time source for every expiry check.
    pub clock: Arc<dyn Clock>,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub body_limit: usize,
}

impl HandlerContext {
    /// A context with the system clock and the default body limit.
    pub fn new(settings: AuthSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            clock: Arc::new(SystemClock),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Replaces the clock (tests move time with `ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the body limit.
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// Current time, seconds since the epoch.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
