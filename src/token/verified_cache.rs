//! A bounded in-memory cache of things already verified, keyed by a SHA-256 digest of the
//! **whole** credential (a bearer token, or a sealed session cookie), so that a repeated
//! request costs a digest and a lookup instead of a signature check or a decryption. An
//! altered credential has another digest, hence a miss. Entries live until the value's own
//! `valid_until` (a token's `exp`, a session's access-token expiry), at most `max_ttl`.
//!
//! Why a digest and not the credential itself: the key was most of an entry's memory (a
//! Keycloak session cookie is ~1.7 KB, an access token ~0.9–1.5 KB, against 32 bytes), and
//! SHA-256 is collision resistant, so two credentials share an entry only if they are the
//! same credential. The price is per hit: 0.68 µs for a 1.1 KB token with SHA-NI, a cached
//! decision 1.15 µs instead of 0.45 (`cargo bench --bench hot_path`, `token_cache/*` and
//! `decision/*`), for 2.9× less memory per entry (`benches/cache_memory.rs`). Hashing only
//! the tail (signature or tag) would be cheaper, but a token with an altered payload and a
//! copied signature would then hit. The map hashes the 32 bytes with foldhash (randomly
//! seeded: a caller cannot choose digests that collide in it).

use crate::clock::{SharedClock, UnixTime};
use std::sync::Arc;
use std::time::Duration;

/// A cached value knows until when it may be used.
pub trait ValidUntil {
    fn valid_until(&self) -> UnixTime;
}

/// A credential's SHA-256 digest: what the caches are keyed by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    #[inline]
    pub fn of(credential: &str) -> Self {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, credential.as_bytes());
        let mut key = [0; 32];
        key.copy_from_slice(d.as_ref());
        CacheKey(key)
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the digest itself: it identifies a credential.
        f.write_str("CacheKey(..)")
    }
}

pub struct VerifiedCache<V> {
    cache: moka::sync::Cache<CacheKey, Arc<V>, foldhash::fast::RandomState>,
}

struct UntilValid {
    max: Duration,
    clock: SharedClock,
}

impl<V: ValidUntil> moka::Expiry<CacheKey, Arc<V>> for UntilValid {
    fn expire_after_create(
        &self,
        _k: &CacheKey,
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

    /// The value cached under this key, if it is still valid at `now`.
    #[inline]
    pub fn get(&self, key: &CacheKey, now: UnixTime) -> Option<Arc<V>> {
        self.cache.get(key).filter(|v| v.valid_until() > now)
    }

    pub fn insert(&self, key: CacheKey, value: Arc<V>) {
        self.cache.insert(key, value);
    }

    pub fn invalidate(&self, key: &CacheKey) {
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
    fn only_the_same_credential_finds_an_entry() {
        let clock = ManualClock::at(1000);
        let cache = VerifiedCache::new(100, Duration::from_secs(60), Arc::new(clock.clone()));
        let tail = "t".repeat(64);
        let (a, b) = (format!("aaaa{tail}"), format!("bbbb{tail}"));
        cache.insert(CacheKey::of(&a), Arc::new(Until(2000)));
        assert!(cache.get(&CacheKey::of(&a), clock.now()).is_some());
        assert!(
            cache.get(&CacheKey::of(&b), clock.now()).is_none(),
            "same tail, other key"
        );
        assert!(
            cache.get(&CacheKey::of(&a[1..]), clock.now()).is_none(),
            "a shorter key"
        );
        assert!(
            cache
                .get(&CacheKey::of(&format!("{a}x")), clock.now())
                .is_none(),
            "a longer key"
        );
        assert!(
            cache.get(&CacheKey::of(&a), 2000).is_none(),
            "no longer valid"
        );
        cache.invalidate(&CacheKey::of(&a));
        assert!(cache.get(&CacheKey::of(&a), clock.now()).is_none());
    }

    #[test]
    fn a_key_is_the_credentials_sha256_and_never_printed() {
        // FIPS 180-2 test vector.
        let k = CacheKey::of("abc");
        assert_eq!(
            k.0[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") = ba7816bf…"
        );
        assert_eq!(format!("{k:?}"), "CacheKey(..)");
    }
}
