//! Sessions already opened, kept in memory (`session.cache_capacity`), so a repeated cookie
//! costs a lookup instead of a decryption, and in Redis mode instead of a round trip.
//!
//! - **Cookie store**: keyed by the sealed cookie value itself (its SHA-256, like every key
//!   of `token/verified_cache.rs`). The cookie is the whole
//!   session, so an entry can never go stale; revocation and freshness are still checked on
//!   every request by the gate.
//! - **Redis store**: keyed by the record's key, and only trusted while Redis is *tracking*
//!   this replica's reads (RESP3 `CLIENT TRACKING`, `session/redis.rs`): Redis then pushes an
//!   invalidation the moment a record this replica read is rewritten, deleted or expires,
//!   or a revocation key it read is set, whichever replica did it. Without tracking (not yet
//!   enabled, connection lost, Redis unhealthy) nothing is served from here or put here.
//!
//! The race this file closes: a request reads a record, another replica deletes it, and the
//! invalidation arrives before the request stores what it read. Every invalidation bumps a
//! generation; a request notes the generation *before* reading ([`SessionCache::slot`]) and
//! its entry is dropped again if the generation moved by the time it is stored
//! ([`SessionCache::remember`]). Pure: no I/O, no clock of its own.

use super::{Lifetimes, Session};
use crate::clock::{SharedClock, UnixTime};
use crate::principal::Principal;
use crate::token::verified_cache::{CacheKey, ValidUntil, VerifiedCache};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A session opened and found fresh, with its principal (identity headers) ready: what a
/// repeated request needs to pass, and no more (not the tokens: an entry is a few hundred
/// bytes, not the session's kilobytes).
pub struct DecodedSession {
    /// The login's id (`Session::id`) and creation time, for the revocation check.
    pub login_id: Option<String>,
    pub created_at: UnixTime,
    pub lifetimes: Lifetimes,
    /// The session's identity is the principal's.
    pub principal: Arc<Principal>,
}

impl DecodedSession {
    pub fn new(session: &Session, principal: Arc<Principal>) -> Self {
        DecodedSession {
            login_id: session.id.clone(),
            created_at: session.created_at,
            lifetimes: session.lifetimes(),
            principal,
        }
    }
}

impl ValidUntil for DecodedSession {
    fn valid_until(&self) -> UnixTime {
        self.principal.valid_until
    }
}

/// The longest an entry is kept even if nothing invalidates it (a backstop, not the
/// mechanism: the cookie store's entries cannot go stale, the Redis store's are invalidated).
const MAX_TTL: Duration = Duration::from_secs(300);

/// Bit 0 of the state: invalidations are being received (always set for the cookie store).
const LIVE: u64 = 1;
/// One generation step (the state's other bits).
const STEP: u64 = 2;

pub struct SessionCache {
    entries: VerifiedCache<DecodedSession>,
    /// `generation * STEP | LIVE?`, read before a load and checked after it.
    state: AtomicU64,
}

/// Where a session would be cached, and the state seen before it was read.
pub struct Slot {
    key: CacheKey,
    state: u64,
}

impl SessionCache {
    /// For the cookie store: always live, never invalidated.
    pub fn for_cookies(capacity: u64, clock: SharedClock) -> Self {
        Self::new(capacity, clock, LIVE)
    }

    /// For the Redis store: not live until [`Self::tracking_started`].
    pub fn for_tracked_records(capacity: u64, clock: SharedClock) -> Self {
        Self::new(capacity, clock, 0)
    }

    fn new(capacity: u64, clock: SharedClock, state: u64) -> Self {
        SessionCache {
            entries: VerifiedCache::new(capacity, MAX_TTL, clock),
            state: AtomicU64::new(state),
        }
    }

    /// Where `key`'s session may be looked up and stored; `None` while invalidations are
    /// not being received. Take it **before** reading the session.
    #[inline]
    pub fn slot(&self, key: &str) -> Option<Slot> {
        let state = self.state.load(Ordering::Acquire);
        (state & LIVE != 0).then(|| Slot {
            key: CacheKey::of(key),
            state,
        })
    }

    #[inline]
    pub fn get(&self, slot: &Slot, now: UnixTime) -> Option<Arc<DecodedSession>> {
        self.entries.get(&slot.key, now)
    }

    /// Keeps what was read under `slot`, unless an invalidation came in since the slot was
    /// taken (checked after inserting, so one arriving meanwhile cannot be missed either).
    pub fn remember(&self, slot: Slot, decoded: Arc<DecodedSession>) {
        self.entries.insert(slot.key, decoded);
        if self.state.load(Ordering::Acquire) != slot.state {
            self.entries.invalidate(&slot.key);
        }
    }

    /// `key` changed or ended.
    pub fn invalidate(&self, key: &str) {
        self.state.fetch_add(STEP, Ordering::AcqRel);
        self.entries.invalidate(&CacheKey::of(key));
    }

    /// Anything may have changed (a revocation, a flush).
    pub fn invalidate_all(&self) {
        self.state.fetch_add(STEP, Ordering::AcqRel);
        self.entries.invalidate_all();
    }

    /// Invalidations may have been missed (the connection was lost, or Redis is unhealthy):
    /// forget everything and stop caching until tracking starts again.
    pub fn tracking_lost(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some((s | LIVE) + STEP - LIVE)
            });
        self.entries.invalidate_all();
    }

    /// Whether invalidations are being received.
    pub fn is_live(&self) -> bool {
        self.state.load(Ordering::Acquire) & LIVE != 0
    }

    /// The state to pass to [`Self::tracking_started`]; take it before enabling tracking.
    pub fn before_tracking(&self) -> u64 {
        self.state.load(Ordering::Acquire)
    }

    /// Tracking was enabled on the connection; live again unless the connection was lost
    /// (or anything invalidated) since `before`: then the caller tries again later.
    pub fn tracking_started(&self, before: u64) -> bool {
        self.state
            .compare_exchange(before, before | LIVE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Entries held now (for tests and the bench).
    pub fn len(&self) -> u64 {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::identity::Identity;

    fn decoded(until: UnixTime) -> Arc<DecodedSession> {
        let session = Session {
            id: None,
            identity: Identity::default(),
            created_at: 0,
            tokens_at: 0,
            access_expires_at: until,
            expires_at: until,
            refresh_token: None,
            id_token: None,
            access_token: None,
        };
        let principal = Principal::new(
            Identity::default(),
            crate::principal::PassedTokens {
                access: None,
                authorization: None,
            },
            until,
            &crate::identity::ClaimMapping::default(),
        );
        Arc::new(DecodedSession::new(&session, Arc::new(principal)))
    }

    fn tracked() -> SessionCache {
        let c = SessionCache::for_tracked_records(100, Arc::new(ManualClock::at(1000)));
        assert!(c.tracking_started(c.before_tracking()));
        c
    }

    #[test]
    fn nothing_is_cached_until_tracking_starts_and_after_it_is_lost() {
        let c = SessionCache::for_tracked_records(100, Arc::new(ManualClock::at(1000)));
        assert!(c.slot("k").is_none(), "not live yet");
        assert!(c.tracking_started(c.before_tracking()));
        let slot = c.slot("k").unwrap();
        c.remember(slot, decoded(2000));
        assert!(c.get(&c.slot("k").unwrap(), 1000).is_some());
        c.tracking_lost();
        assert!(!c.is_live());
        assert!(c.slot("k").is_none());
        assert!(c.tracking_started(c.before_tracking()));
        assert!(
            c.get(&c.slot("k").unwrap(), 1000).is_none(),
            "forgotten when tracking was lost"
        );
    }

    #[test]
    fn an_invalidation_between_reading_and_storing_wins() {
        let c = tracked();
        let slot = c.slot("k").unwrap();
        // Another replica deletes the record after we read it; its invalidation is
        // processed before we store what we read.
        c.invalidate("k");
        c.remember(slot, decoded(2000));
        assert!(c.get(&c.slot("k").unwrap(), 1000).is_none());
        // Any invalidation counts (another key's too): the safe side.
        let slot = c.slot("k").unwrap();
        c.invalidate_all();
        c.remember(slot, decoded(2000));
        assert!(c.get(&c.slot("k").unwrap(), 1000).is_none());
        // Undisturbed, it is kept, until invalidated.
        let slot = c.slot("k").unwrap();
        c.remember(slot, decoded(2000));
        assert!(c.get(&c.slot("k").unwrap(), 1000).is_some());
        c.invalidate("k");
        assert!(c.get(&c.slot("k").unwrap(), 1000).is_none());
    }

    #[test]
    fn tracking_enabled_on_a_connection_lost_meanwhile_does_not_count() {
        let c = SessionCache::for_tracked_records(100, Arc::new(ManualClock::at(1000)));
        let before = c.before_tracking();
        c.tracking_lost();
        assert!(!c.tracking_started(before));
        assert!(!c.is_live());
        assert!(c.tracking_started(c.before_tracking()));
    }

    #[test]
    fn the_cookie_cache_is_live_from_the_start_and_entries_end_with_the_session() {
        let c = SessionCache::for_cookies(100, Arc::new(ManualClock::at(1000)));
        let slot = c.slot("sealed").unwrap();
        c.remember(slot, decoded(1500));
        let slot = c.slot("sealed").unwrap();
        assert!(c.get(&slot, 1400).is_some());
        assert!(c.get(&slot, 1500).is_none());
    }
}
