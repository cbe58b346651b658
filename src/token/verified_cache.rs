//! A bounded in-memory cache of things already verified, keyed by the **whole** credential
//! (a bearer token, or a sealed session cookie), so that a repeated request costs a hash and a
//! lookup instead of a signature check or a decryption. An altered credential is a different
//! key, hence a miss. Entries live until the value's own `valid_until` (a token's `exp`, a
//! session's access-token expiry), at most `max_ttl`.
//!
//! Hashed with foldhash, not std's SipHash, and over the key's **last** [`TAIL`] bytes only
//! (plus its length): hashing the whole ~1–3 KB key was most of the cost of a hit. Every key
//! we store ends in a signature (tokens) or an AES-GCM tag (sealed cookies), which nobody can
//! choose without our keys, so the tail spreads keys as well as the whole would. Equality
//! still compares whole keys, so two keys with the same tail are still two entries. A
//! randomly seeded, non-cryptographic hash is enough because only credentials we verified
//! are ever inserted: a caller cannot choose keys that collide.

use crate::clock::{SharedClock, UnixTime};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

/// A cached value knows until when it may be used.
pub trait ValidUntil {
    fn valid_until(&self) -> UnixTime;
}

pub struct VerifiedCache<V> {
    cache: moka::sync::Cache<Box<str>, Arc<V>, TailHash>,
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
            .build_with_hasher(TailHash::default());
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

    pub fn invalidate(&self, key: &str) {
        self.cache.invalidate(key);
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

/// Bytes at the end of a key that are hashed.
pub const TAIL: usize = 32;

/// Builds [`TailHasher`]s (randomly seeded per cache).
#[derive(Clone, Default)]
pub struct TailHash(foldhash::fast::RandomState);

impl BuildHasher for TailHash {
    type Hasher = TailHasher;
    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

/// foldhash over the length and the last [`TAIL`] bytes of each write.
pub struct TailHasher(foldhash::fast::FoldHasher<'static>);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write_usize(bytes.len());
        let tail = bytes
            .get(bytes.len().saturating_sub(TAIL)..)
            .unwrap_or(bytes);
        self.0.write(tail);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    struct Until(UnixTime);
    impl ValidUntil for Until {
        fn valid_until(&self) -> UnixTime {
            self.0
        }
    }

    #[test]
    fn keys_with_the_same_tail_are_different_entries() {
        let clock = ManualClock::at(1000);
        let cache = VerifiedCache::new(100, Duration::from_secs(60), Arc::new(clock.clone()));
        let tail = "t".repeat(TAIL);
        let (a, b) = (format!("aaaa{tail}"), format!("bbbb{tail}"));
        let h = TailHash::default();
        assert_eq!(h.hash_one(a.as_str()), h.hash_one(b.as_str()));
        cache.insert(&a, Arc::new(Until(2000)));
        assert!(cache.get(&a, clock.now()).is_some());
        assert!(cache.get(&b, clock.now()).is_none(), "same hash, other key");
        assert!(cache.get(&a[1..], clock.now()).is_none(), "a shorter key");
        assert!(cache.get(&a, 2000).is_none(), "no longer valid");
    }

    #[test]
    fn the_tail_and_length_decide_the_hash() {
        let h = TailHash::default();
        assert_ne!(h.hash_one("abc"), h.hash_one("abd"));
        let long = "x".repeat(100);
        assert_ne!(
            h.hash_one(format!("{long}1")),
            h.hash_one(format!("{long}2"))
        );
        assert_ne!(h.hash_one(format!("a{long}")), h.hash_one(long.clone()));
    }
}
