//! The signing keys of one trusted issuer, kept in memory and swapped atomically (arc-swap), so
//! the request path reads them with one atomic load and never waits for the network.
//!
//! * A background task refreshes them (honouring `Cache-Control: max-age`, clamped to
//!   [1 min, 1 h]); when the IdP is down the old keys keep working (stale-if-error) and the
//!   failure is logged and counted.
//! * A token naming an unknown `kid` may trigger a refetch, but at most one per issuer per
//!   `jwks_refetch_interval`, and concurrent triggers share one fetch (single-flight).

use crate::idp::{IdpClient, IdpError};
use crate::jwks::KeySet;
use crate::jwt::{TokenError, UnverifiedToken};
use crate::metrics::Metrics;
use arc_swap::{ArcSwap, ArcSwapOption};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const MIN_REFRESH: Duration = Duration::from_secs(60);
const MAX_REFRESH: Duration = Duration::from_secs(3600);
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

pub struct IssuerKeys {
    pub issuer: String,
    jwks_url: ArcSwapOption<String>,
    keys: ArcSwap<KeySet>,
    /// Serialises fetches; `generation` tells a waiter that someone else fetched meanwhile.
    fetch_lock: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// Counts refreshes that withdrew a key: tokens verified before must be checked again.
    removals: AtomicU64,
    /// Milliseconds since `epoch` of the last unknown-kid refetch (0 = never).
    last_kid_fetch_ms: AtomicU64,
    epoch: Instant,
    refetch_interval: Duration,
    next_refresh: std::sync::Mutex<Duration>,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuerKeys({})", self.issuer)
    }
}

impl IssuerKeys {
    pub fn new(issuer: String, jwks_url: Option<String>, refetch_interval: Duration) -> Self {
        Self {
            issuer,
            jwks_url: ArcSwapOption::new(jwks_url.map(Arc::new)),
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            removals: AtomicU64::new(0),
            last_kid_fetch_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            refetch_interval,
            next_refresh: std::sync::Mutex::new(DEFAULT_REFRESH),
        }
    }

    /// The current keys (lock-free).
    pub fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    pub fn removals(&self) -> u64 {
        self.removals.load(Ordering::Acquire)
    }

    pub fn is_loaded(&self) -> bool {
        // Only a successful fetch moves the generation on.
        self.generation.load(Ordering::Acquire) > 0
    }

    pub fn set_jwks_url(&self, url: String) {
        self.jwks_url.store(Some(Arc::new(url)));
    }

    pub fn has_jwks_url(&self) -> bool {
        self.jwks_url.load().is_some()
    }

    /// Fetches the keys now; concurrent callers share one fetch.
    pub async fn refresh(&self, idp: &IdpClient) -> Result<(), IdpError> {
        let seen = self.generation.load(Ordering::Acquire);
        let _guard = self.fetch_lock.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            return Ok(()); // someone fetched while we waited
        }
        let Some(url) = self.jwks_url.load_full() else {
            return Err(IdpError::Unreachable);
        };
        let doc = idp.fetch_jwks(&url).await?;
        let set = KeySet::parse(&doc.body).map_err(|_| IdpError::BadResponse(200))?;
        if set.skipped > 0 {
            tracing::debug!(issuer = %self.issuer, skipped = set.skipped, "JWKS keys skipped (not for signatures, or of unknown type)");
        }
        if self.current().loses_keys_in(&set) {
            self.removals.fetch_add(1, Ordering::AcqRel);
            tracing::info!(issuer = %self.issuer, "signing keys withdrawn from the JWKS; tokens verified with them are forgotten");
        }
        self.keys.store(Arc::new(set));
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut next) = self.next_refresh.lock() {
            *next = doc
                .max_age
                .unwrap_or(DEFAULT_REFRESH)
                .clamp(MIN_REFRESH, MAX_REFRESH);
        }
        Ok(())
    }

    /// Called when a token names a key we don't have. Returns `true` if a refetch ran (or was
    /// already running) so the caller may look again; `false` when rate-limited.
    pub async fn refetch_for_unknown_kid(&self, idp: &IdpClient, metrics: &Metrics) -> bool {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let last = self.last_kid_fetch_ms.load(Ordering::Acquire);
        let interval = u64::try_from(self.refetch_interval.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now_ms.saturating_sub(last) < interval {
            metrics
                .jwks_refetch_suppressed
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if self
            .last_kid_fetch_ms
            .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another request won the race and is fetching: share its result.
            let _wait = self.fetch_lock.lock().await;
            return true;
        }
        match self.refresh(idp).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(code = "jwks.refetch_failed", issuer = %self.issuer, error = %e, "JWKS refetch for an unknown key failed; keeping cached keys");
                false
            }
        }
    }

    /// Verifies a token's signature with these keys; an unknown `kid` may refetch once
    /// (rate-limited), so a key rotation at the IdP is picked up without a restart.
    pub async fn verify_signature(
        &self,
        token: &UnverifiedToken<'_>,
        idp: &IdpClient,
        metrics: &Metrics,
    ) -> Result<(), TokenError> {
        let first = {
            let keys = self.current();
            token
                .find_key(&keys)
                .and_then(|k| token.verify_signature(k))
        };
        match first {
            Err(TokenError::UnknownKey) if self.refetch_for_unknown_kid(idp, metrics).await => {
                let keys = self.current();
                token.verify_signature(token.find_key(&keys)?)
            }
            other => other,
        }
    }

    /// Keeps the keys fresh for as long as the process runs.
    pub async fn run_refresh_loop(self: Arc<Self>, idp: IdpClient) {
        let mut backoff = Duration::from_secs(1);
        loop {
            if !self.has_jwks_url() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            match self.refresh(&idp).await {
                Ok(()) => {
                    backoff = Duration::from_secs(1);
                    let wait = self
                        .next_refresh
                        .lock()
                        .map(|d| *d)
                        .unwrap_or(DEFAULT_REFRESH);
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    tracing::warn!(code = "jwks.fetch_failed", issuer = %self.issuer, error = %e, stale_keys = self.current().len(), "cannot fetch JWKS; cached keys stay in use");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}
