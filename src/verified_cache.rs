//! A bounded in-memory cache of things already verified, keyed by the **whole** credential
//! (a bearer token, or a sealed session cookie), so that a repeated request costs a hash and a
//! lookup instead of a signature check or a decryption. An altered credential is a different
//! key, hence a miss. Entries live until the value's own `valid_until` (a token's `exp`, a
//! session's access-token expiry), at most `max_ttl`.
//!
//! Hashed with foldhash, not std's SipHash: hashing the ~1–3 KB key is most of the cost of a
//! hit, and foldhash halves the lookup (`benches/hot_path.rs`, `token_cache/*`). Its randomly
//! seeded, non-cryptographic hash is enough because only credentials we verified are ever
//! inserted: a caller cannot choose keys that collide.

use crate::clock::{SharedClock, UnixTime};
use std::sync::Arc;
use std::time::Duration;

/// A cached value knows until when it may be used.
pub trait ValidUntil {
    fn valid_until(&self) -> UnixTime;
}

pub struct VerifiedCache<V> {
    cache: moka::sync::Cache<Box<str>, Arc<V>, foldhash::fast::RandomState>,
}

struct UntilValid {
    max: Duration,
    clock: SharedClock,
}

impl<V: ValidUntil> moka::Expiry<Box<str>, Arc<V>> for UntilValid {
    fn expire_after_create(
        &self,
        _k: &Box<str>,
        v: &Arc<V>,
        _at: std::time::Instant,
    ) -> Option<Duration> {
        let left = Duration::from_secs(v.valid_until().saturating_sub(self.clock.now()));
        Some(left.min(self.max))
    }
}

impl<V: ValidUntil + Send + Sync + 'static> VerifiedCache<V> {
    pub fn new(capacity: u64, max_ttl: Duration, clock: SharedClock) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilValid {
                max: max_ttl,
                clock,
            })
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self { cache }
    }

    /// The value cached under this exact key, if it is still valid at `now`.
    #[inline]
    pub fn get(&self, key: &str, now: UnixTime) -> Option<Arc<V>> {
        self.cache.get(key).filter(|v| v.valid_until() > now)
    }

    pub fn insert(&self, key: &str, value: Arc<V>) {
        self.cache.insert(key.into(), value);
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    pub fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
