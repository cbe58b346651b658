//! The one place that reads the wall clock. Everything else receives `now` from a [`Clock`],
//! so tests can pin time and move it forward (see `clippy.toml`, which forbids
//! `SystemTime::now` elsewhere).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Seconds since the Unix epoch: the unit of JWT `exp`/`iat`/`nbf` (RFC 7519 §2 NumericDate).
pub type UnixTime = u64;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixTime;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the single sanctioned read of the wall clock
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; shared between the test and the code under test.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn at(now: UnixTime) -> Self {
        Self(Arc::new(AtomicU64::new(now)))
    }
    /// Starts at the real current time (for tests that talk to a live IdP minting real `exp`s).
    pub fn starting_now() -> Self {
        Self::at(SystemClock.now())
    }
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn set(&self, now: UnixTime) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

/// The clock the application runs with.
pub type SharedClock = Arc<dyn Clock>;
