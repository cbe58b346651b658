//! The signing keys of one trusted issuer, kept in memory and swapped atomically (arc-swap), so
//! the request path reads them with one atomic load and never waits for the network.
//!
//! * A background task refreshes them (honouring `Cache-Control: max-age`, clamped to
//!   [1 min, 1 h]); when the IdP is down the old keys keep working (stale-if-error) and the
//!   failure is logged and counted.
//! * A token naming an unknown `kid` triggers a refetch, but at most one per issuer per
//!   `jwks_refetch_interval`, and concurrent triggers share one fetch (single-flight). When the
//!   last refetch was too recent, the token **waits** for the next allowed one instead of
//!   being refused: right after a refetch (an attacker's unknown kid, or an earlier rotation)
//!   the IdP may start signing with a new key, and its tokens must not fail in the meantime.
//!   The wait is bounded by the interval (plus one fetch); waiters queue on one lock and sleep
//!   on one timer, and a waiter is answered by any fetch that *started* after it arrived.
//!   Tokens naming known keys never come here: that path is one atomic load, no lock.

use crate::idp::{IdpClient, IdpError};
use crate::metrics::Metrics;
use crate::token::jwks::KeySet;
use crate::token::jwt::{TokenError, UnverifiedToken};
use arc_swap::{ArcSwap, ArcSwapOption};
use openidconnect::core::CoreJsonWebKeySet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const MIN_REFRESH: Duration = Duration::from_secs(60);
const MAX_REFRESH: Duration = Duration::from_secs(3600);
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

pub struct JwksCache {
    pub issuer: String,
    jwks_url: ArcSwapOption<String>,
    keys: ArcSwap<KeySet>,
    /// The same keys as openidconnect reads them, for ID tokens (src/login/oidc.rs).
    id_token_keys: ArcSwap<CoreJsonWebKeySet>,
    /// Serialises fetches, and holds when the last unknown-kid refetch started (`None`:
    /// never). `generation` tells a waiter that someone else fetched meanwhile. Held by the
    /// unknown-kid refetch while it waits for the rate limit, so the requests queued behind
    /// it are answered by the fetch it then makes.
    fetch_lock: tokio::sync::Mutex<Option<Instant>>,
    generation: AtomicU64,
    /// Fetches started (successful or not), moved on under `fetch_lock`: a request that read
    /// it before queueing knows, once it holds the lock, whether a fetch began after it came.
    fetches_started: AtomicU64,
    /// Counts refreshes that withdrew a key: tokens verified before must be checked again.
    removals: AtomicU64,
    refetch_interval: Duration,
    next_refresh: std::sync::Mutex<Duration>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwksCache({})", self.issuer)
    }
}

impl JwksCache {
    pub fn new(issuer: String, jwks_url: Option<String>, refetch_interval: Duration) -> Self {
        Self {
            issuer,
            jwks_url: ArcSwapOption::new(jwks_url.map(Arc::new)),
            keys: ArcSwap::from_pointee(KeySet::default()),
            id_token_keys: ArcSwap::from_pointee(CoreJsonWebKeySet::default()),
            fetch_lock: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            fetches_started: AtomicU64::new(0),
            removals: AtomicU64::new(0),
            refetch_interval,
            next_refresh: std::sync::Mutex::new(DEFAULT_REFRESH),
        }
    }

    /// The current keys (lock-free).
    pub fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// The current keys for openidconnect's ID-token verifier (a copy: it takes ownership).
    pub fn id_token_keys(&self) -> CoreJsonWebKeySet {
        CoreJsonWebKeySet::clone(&self.id_token_keys.load())
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
        self.fetch_locked(idp).await
    }

    /// One JWKS fetch; the caller holds `fetch_lock`.
    async fn fetch_locked(&self, idp: &IdpClient) -> Result<(), IdpError> {
        self.fetches_started.fetch_add(1, Ordering::AcqRel);
        let Some(url) = self.jwks_url.load_full() else {
            return Err(IdpError::Unreachable);
        };
        let doc = idp.fetch_jwks(&url).await?;
        let set = KeySet::parse(&doc.body).map_err(|_| IdpError::BadResponse)?;
        // openidconnect skips the keys it can't use, as KeySet does.
        let id_token_keys: CoreJsonWebKeySet =
            serde_json::from_slice(&doc.body).map_err(|_| IdpError::BadResponse)?;
        if set.skipped > 0 {
            tracing::debug!(issuer = %self.issuer, skipped = set.skipped, "JWKS keys skipped (not for signatures, or of unknown type)");
        }
        if self.current().loses_keys_in(&set) {
            self.removals.fetch_add(1, Ordering::AcqRel);
            tracing::info!(issuer = %self.issuer, "signing keys withdrawn from the JWKS; tokens verified with them are forgotten");
        }
        self.keys.store(Arc::new(set));
        self.id_token_keys.store(Arc::new(id_token_keys));
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut next) = self.next_refresh.lock() {
            *next = doc
                .max_age
                .unwrap_or(DEFAULT_REFRESH)
                .clamp(MIN_REFRESH, MAX_REFRESH);
        }
        Ok(())
    }

    /// Called when a token names a key we don't have. Returns once a JWKS fetch that started
    /// after this call has finished (`true`: look again), or `false` when that fetch failed.
    ///
    /// Single-flight and rate-limited: the first caller takes `fetch_lock`, waits until
    /// `jwks_refetch_interval` has passed since the previous unknown-kid refetch (at once if
    /// it has), and fetches; every caller queued behind it meanwhile is answered by that one
    /// fetch. So a flood of unknown kids costs one fetch per interval, and a token of a key
    /// the IdP has just started using waits at most one interval (plus a fetch) instead of
    /// failing.
    pub async fn refetch_for_unknown_kid(&self, idp: &IdpClient, metrics: &Metrics) -> bool {
        let started_before = self.fetches_started.load(Ordering::Acquire);
        let mut last_refetch = self.fetch_lock.lock().await;
        if self.fetches_started.load(Ordering::Acquire) != started_before {
            // A fetch began after we came and is over (it ran under the lock): its keys are
            // as fresh as ours would be.
            return true;
        }
        let allowed_at = last_refetch.map(|at| at + self.refetch_interval);
        let wait = allowed_at.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        });
        if !wait.is_zero() {
            metrics
                .jwks_refetch_suppressed
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(issuer = %self.issuer, wait_ms = wait.as_millis(), "unknown kid: waiting for the next allowed JWKS refetch");
            tokio::time::sleep(wait).await;
        }
        *last_refetch = Some(Instant::now());
        match self.fetch_locked(idp).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(code = "jwks.refetch_failed", issuer = %self.issuer, error = %e, "JWKS refetch for an unknown key failed; keeping cached keys");
                false
            }
        }
    }

    /// Verifies a token's signature with these keys; an unknown `kid` refetches once
    /// (rate-limited, waiting for the limit if need be), so a key rotation at the IdP is
    /// picked up without a restart and without failing the new key's tokens.
    pub async fn verify_signature(
        &self,
        token: &UnverifiedToken<'_>,
        idp: &IdpClient,
        metrics: &Metrics,
    ) -> Result<(), TokenError> {
        self.check_refetching(idp, metrics, || token.verify_with(&self.current()))
            .await
    }

    /// Runs `check` against the current keys; when it says `UnknownKey`, refetches once (see
    /// [`Self::refetch_for_unknown_kid`]) and runs it again. Bearer and logout tokens
    /// ([`Self::verify_signature`]) and openidconnect's ID-token check share this.
    pub async fn check_refetching<T>(
        &self,
        idp: &IdpClient,
        metrics: &Metrics,
        check: impl Fn() -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        match check() {
            Err(TokenError::UnknownKey) if self.refetch_for_unknown_kid(idp, metrics).await => {
                check()
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
