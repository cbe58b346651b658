//! Where sessions live (`session.store`): sealed whole in the cookie, or in Redis behind an
//! opaque [`SessionTicket`] so every replica sees the same session. In Redis mode this also
//! holds what must be shared between replicas: sign-out (the record is deleted), back-channel
//! revocations (`portcullis:revoked:sid:<sid>` / `:sub:<sub>`, checked on every load) and the
//! cross-replica single-flight refresh (`SET portcullis:lock:refresh:<h> NX PX`).
//!
//! The cookie store never touches Redis code; every method's `Cookie` arm is what Portcullis
//! did before Redis existed.

use super::Session;
use super::cookies::SessionCookies;
use super::redis::{RedisIo, StoreUnavailable};
use super::ticket::{RecordVersion, SessionTicket, hex};
use crate::app::StartupError;
use crate::clock::UnixTime;
use crate::config::{SessionConfig, StoreConfig};
use crate::idp::IdpError;
use crate::metrics::Metrics;
use crate::seal::Sealer;
use crate::session::cookies::SetCookie;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a replica may hold a session's refresh lock (longer than any token call).
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How long a replica without the lock waits for the winner's rewritten session.
/// Longer than `oidc.timeout`'s default (5 s), so a waiting replica outlasts a slow IdP.
const WAIT_FOR_REFRESH: Duration = Duration::from_secs(7);
const POLL_INTERVAL: Duration = Duration::from_millis(40);
/// Deletes the lock only if we still hold it.
const RELEASE_LOCK: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// The session store: it seals sessions (or their tickets) into cookies and reads them back,
/// and keeps them in Redis in Redis mode. Its one way out is [`Refresher`], implemented by the
/// login side, so the store needs nothing of OIDC.
pub struct SessionStore {
    sealer: Arc<Sealer>,
    cookies: SessionCookies,
    backend: Backend,
}

enum Backend {
    Cookie,
    Redis(RedisStore),
}

/// New tokens for a session (the refresh grant, `src/login/oidc.rs`).
pub trait Refresher: Sync {
    fn refresh(
        &self,
        session: &Session,
        now: UnixTime,
    ) -> impl std::future::Future<Output = Result<Arc<Session>, RefreshError>> + Send;
}

/// Why a session could not be refreshed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The session holds no refresh token: it cannot be renewed.
    #[error("the session has no refresh token")]
    NoRefreshToken,
    /// The token endpoint could not be used, or refused the grant.
    #[error(transparent)]
    Idp(IdpError),
    /// The IdP answered, but with tokens that are not accepted (why, in words).
    #[error("refreshed tokens rejected: {0}")]
    BadTokens(String),
}

impl RefreshError {
    /// Whether the session is over for good (on every replica): no refresh token, or the
    /// IdP refused the grant (`invalid_grant`: the refresh token is dead). Anything else may
    /// succeed on a later request.
    pub fn ends_session(&self) -> bool {
        matches!(
            self,
            RefreshError::NoRefreshToken | RefreshError::Idp(IdpError::Refused(_))
        )
    }
}

pub struct RedisStore {
    io: Arc<RedisIo>,
    /// `session.expire`: how long revocations are kept.
    lifetime: Duration,
    metrics: Arc<Metrics>,
    /// In-process single-flight of the cross-replica refresh, keyed by record version. Only
    /// successes are kept: a failure (Redis blip, IdP down) is retried by the next request.
    refreshes: moka::future::Cache<String, Arc<Session>>,
}

/// A session as loaded, with what is needed to write it back.
#[derive(Debug)]
pub struct StoredSession {
    pub session: Session,
    origin: Origin,
}

#[derive(Debug)]
enum Origin {
    Cookie,
    Redis {
        ticket: SessionTicket,
        version: RecordVersion,
    },
}

/// Why a refresh did not produce a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshFailure {
    #[error("refresh failed: {0}")]
    Idp(RefreshError),
    /// Another replica held the refresh lock and neither finished nor gave a result in
    /// time, or no lock token could be made: nothing is known about the session yet.
    #[error("refresh not completed")]
    NotCompleted,
    /// Signed out or revoked while the refresh was pending.
    #[error("session ended during refresh")]
    Ended,
    #[error(transparent)]
    Store(StoreUnavailable),
}

/// What a back-channel logout ends (OIDC Back-Channel Logout 1.0 §2.4).
#[derive(Debug, Clone, Copy)]
pub enum Revoke<'a> {
    /// Every session of this IdP session.
    Sid(&'a str),
    /// Every session of this user that started before the logout.
    Sub(&'a str),
}

impl SessionStore {
    pub fn new(
        cfg: &SessionConfig,
        sealer: Arc<Sealer>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StartupError> {
        let backend = match &cfg.store {
            StoreConfig::Cookie => Backend::Cookie,
            StoreConfig::Redis(r) => Backend::Redis(RedisStore {
                io: Arc::new(RedisIo::new(r, metrics.clone())?),
                lifetime: cfg.expire,
                metrics,
                refreshes: moka::future::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(30))
                    .build(),
            }),
        };
        Ok(SessionStore {
            sealer,
            cookies: SessionCookies::new(cfg),
            backend,
        })
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The session cookies' names, chunking and attributes.
    pub fn cookies(&self) -> &SessionCookies {
        &self.cookies
    }

    /// Starts connecting to Redis (needs a Tokio runtime); nothing for the cookie store.
    /// The store's background task (the Redis connection), if it has one.
    pub fn background(&self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        match &self.backend {
            Backend::Cookie => None,
            Backend::Redis(r) => Some(r.io.clone().run()),
        }
    }

    /// Whether sessions can be served (always, for cookies).
    pub fn is_ready(&self) -> bool {
        match &self.backend {
            Backend::Cookie => true,
            Backend::Redis(r) => r.io.is_healthy(),
        }
    }

    /// The session a `Cookie` header points to, if any is valid and not revoked.
    pub async fn load(&self, header: &str) -> Result<Option<StoredSession>, StoreUnavailable> {
        match self.cookies.sealed_value(header) {
            Some(sealed) => self.load_sealed(&sealed).await,
            None => Ok(None),
        }
    }

    /// [`Self::load`] for a session cookie value already taken out of the `Cookie` header.
    pub async fn load_sealed(
        &self,
        sealed: &str,
    ) -> Result<Option<StoredSession>, StoreUnavailable> {
        let sealer = &*self.sealer;
        match &self.backend {
            Backend::Cookie => {
                Ok(
                    SessionCookies::open(sealer, sealed).map(|session| StoredSession {
                        session,
                        origin: Origin::Cookie,
                    }),
                )
            }
            Backend::Redis(r) => match SessionTicket::open(sealer, sealed) {
                Some(ticket) => r.load(ticket).await,
                None => Ok(None),
            },
        }
    }

    /// Stores a new session (login) and returns the `Set-Cookie` values for it; `Ok(None)` when
    /// it can't be encoded.
    pub async fn create(
        &self,
        session: &Session,
        now: UnixTime,
        request_cookies: Option<&str>,
    ) -> Result<Option<Vec<SetCookie>>, StoreUnavailable> {
        match &self.backend {
            Backend::Cookie => Ok(self
                .cookies
                .write(&self.sealer, session, now, request_cookies)),
            Backend::Redis(r) => {
                let Ok(ticket) = SessionTicket::generate() else {
                    return Ok(None);
                };
                let (Ok(record), Ok(value)) =
                    (ticket.seal_record(session), ticket.seal(&self.sealer))
                else {
                    return Ok(None);
                };
                let ttl = ttl_ms(session, now);
                r.io.query::<()>(
                    redis::cmd("SET")
                        .arg(ticket.storage_key())
                        .arg(record)
                        .arg("PX")
                        .arg(ttl)
                        .clone(),
                )
                .await?;
                Ok(self.cookies.write_sealed(
                    &value,
                    session.expires_at.saturating_sub(now),
                    request_cookies,
                ))
            }
        }
    }

    /// Refreshes a session's tokens (single-flight in-process, and across replicas in Redis
    /// mode) and stores the result. Returns the fresh session and the `Set-Cookie` values to
    /// send (none in Redis mode: the cookie does not change).
    pub async fn refresh(
        &self,
        refresher: &impl Refresher,
        stored: &StoredSession,
        now: UnixTime,
        request_cookies: Option<&str>,
    ) -> Result<(Arc<Session>, Vec<SetCookie>), RefreshFailure> {
        match (&self.backend, &stored.origin) {
            (Backend::Redis(r), Origin::Redis { ticket, version }) => {
                let key = format!("{}:{}", ticket.storage_key(), hex(version));
                let fresh = r
                    .refreshes
                    .try_get_with(
                        key,
                        r.refresh(refresher, ticket, *version, &stored.session, now),
                    )
                    .await
                    .map_err(|e| (*e).clone())?;
                Ok((fresh, Vec::new()))
            }
            (Backend::Cookie | Backend::Redis(_), _) => {
                let fresh = refresher
                    .refresh(&stored.session, now)
                    .await
                    .map_err(RefreshFailure::Idp)?;
                let set = self
                    .cookies
                    .write(&self.sealer, &fresh, now, request_cookies)
                    .unwrap_or_default();
                Ok((fresh, set))
            }
        }
    }

    /// Ends a session in the store (sign-out): in Redis mode the record is deleted, so a copied
    /// cookie stops working on every replica.
    pub async fn end(&self, stored: &StoredSession) -> Result<(), StoreUnavailable> {
        match (&self.backend, &stored.origin) {
            (Backend::Redis(r), Origin::Redis { ticket, .. }) => {
                r.io.query::<()>(redis::cmd("DEL").arg(ticket.storage_key()).clone())
                    .await
            }
            (Backend::Cookie | Backend::Redis(_), _) => Ok(()),
        }
    }

    /// Records a back-channel revocation where every replica sees it (Redis mode); the cookie
    /// store has only the per-process [`crate::revocation::Revocations`].
    pub async fn revoke(&self, what: Revoke<'_>, now: UnixTime) -> Result<(), StoreUnavailable> {
        match &self.backend {
            Backend::Cookie => Ok(()),
            Backend::Redis(r) => {
                let key = match what {
                    Revoke::Sid(sid) => revoked_sid_key(sid),
                    Revoke::Sub(sub) => revoked_sub_key(sub),
                };
                r.io.query::<()>(
                    redis::cmd("SET")
                        .arg(key)
                        .arg(now)
                        .arg("EX")
                        .arg(r.lifetime.as_secs().max(1))
                        .clone(),
                )
                .await
            }
        }
    }
}

impl RedisStore {
    async fn load(&self, ticket: SessionTicket) -> Result<Option<StoredSession>, StoreUnavailable> {
        let record: Option<Vec<u8>> = self
            .io
            .query(redis::cmd("GET").arg(ticket.storage_key()).clone())
            .await?;
        let Some((session, version)) = record.and_then(|r| ticket.open_record(&r)) else {
            return Ok(None);
        };
        if self.is_revoked(&session).await? {
            return Ok(None);
        }
        Ok(Some(StoredSession {
            session,
            origin: Origin::Redis { ticket, version },
        }))
    }

    /// Was this session ended by a back-channel logout received by any replica?
    async fn is_revoked(&self, s: &Session) -> Result<bool, StoreUnavailable> {
        let sid_key = s.identity.sid.as_deref().map(revoked_sid_key);
        let (sid, sub): (Option<UnixTime>, Option<UnixTime>) = self
            .io
            .query(
                redis::cmd("MGET")
                    .arg(sid_key.unwrap_or_else(|| "portcullis:revoked:sid:".into()))
                    .arg(revoked_sub_key(&s.identity.sub))
                    .clone(),
            )
            .await?;
        Ok((s.identity.sid.is_some() && sid.is_some()) || sub.is_some_and(|at| s.created_at <= at))
    }

    /// One refresh of one record version: take the lock and refresh, or wait for whoever has it.
    async fn refresh(
        &self,
        refresher: &impl Refresher,
        ticket: &SessionTicket,
        version: RecordVersion,
        session: &Session,
        now: UnixTime,
    ) -> Result<Arc<Session>, RefreshFailure> {
        let lock = ticket.refresh_lock_key();
        let Ok(token) = crate::seal::random_token(16) else {
            return Err(RefreshFailure::NotCompleted);
        };
        let acquired: Option<String> = self
            .io
            .query(
                redis::cmd("SET")
                    .arg(&lock)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(u64::try_from(LOCK_TTL.as_millis()).unwrap_or(10_000))
                    .clone(),
            )
            .await
            .map_err(RefreshFailure::Store)?;
        if acquired.is_none() {
            self.metrics.refresh_waits.fetch_add(1, Ordering::Relaxed);
            return self.wait_for_refresh(ticket, version, &lock).await;
        }
        let result = self
            .refresh_holding_lock(refresher, ticket, version, session, now)
            .await;
        let released = self
            .io
            .query::<i64>(
                redis::cmd("EVAL")
                    .arg(RELEASE_LOCK)
                    .arg(1)
                    .arg(&lock)
                    .arg(&token)
                    .clone(),
            )
            .await;
        if released.is_err() {
            tracing::warn!(
                code = "store.lock_release_failed",
                "refresh lock not released; it expires by itself"
            );
        }
        result
    }

    async fn refresh_holding_lock(
        &self,
        refresher: &impl Refresher,
        ticket: &SessionTicket,
        version: RecordVersion,
        session: &Session,
        now: UnixTime,
    ) -> Result<Arc<Session>, RefreshFailure> {
        // Another replica may have refreshed between our read and our lock.
        let key = ticket.storage_key();
        let current: Option<Vec<u8>> = self
            .io
            .query(redis::cmd("GET").arg(&key).clone())
            .await
            .map_err(RefreshFailure::Store)?;
        if let Some(done) = already_rewritten(ticket, current, version) {
            return done;
        }
        match refresher.refresh(session, now).await {
            Ok(fresh) => {
                // XX: a session signed out meanwhile is not brought back.
                let written = match ticket.seal_record(&fresh) {
                    Ok(record) => self
                        .io
                        .query::<Option<String>>(
                            redis::cmd("SET")
                                .arg(&key)
                                .arg(record)
                                .arg("XX")
                                .arg("PX")
                                .arg(ttl_ms(&fresh, now))
                                .clone(),
                        )
                        .await
                        .map(|_| ()),
                    Err(_) => Err(StoreUnavailable("cannot encode")),
                };
                if let Err(e) = written {
                    // The tokens are fresh: this request passes; the next one retries.
                    tracing::warn!(code = "store.refresh_not_saved", error = %e, "refreshed session could not be stored");
                }
                Ok(fresh)
            }
            Err(e) if e.ends_session() => {
                // The refresh token is dead, so is the session, on every replica.
                let _ = self
                    .io
                    .query::<()>(redis::cmd("DEL").arg(&key).clone())
                    .await;
                Err(RefreshFailure::Idp(e))
            }
            Err(e) => Err(RefreshFailure::Idp(e)),
        }
    }

    /// Polls until the lock holder rewrote the record (use its session), deleted it (ended),
    /// or gave up without rewriting (a transient failure, like an unreachable IdP).
    async fn wait_for_refresh(
        &self,
        ticket: &SessionTicket,
        version: RecordVersion,
        lock: &str,
    ) -> Result<Arc<Session>, RefreshFailure> {
        let deadline = Instant::now() + WAIT_FOR_REFRESH;
        let key = ticket.storage_key();
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            // EXISTS before GET: the holder writes, then unlocks, so "unlocked" followed by
            // "unchanged" really means it gave up.
            let (locked, record): (bool, Option<Vec<u8>>) = self
                .io
                .query_pipeline(
                    redis::pipe()
                        .cmd("EXISTS")
                        .arg(lock)
                        .cmd("GET")
                        .arg(&key)
                        .clone(),
                )
                .await
                .map_err(RefreshFailure::Store)?;
            if let Some(done) = already_rewritten(ticket, record, version) {
                return done;
            }
            if !locked || Instant::now() >= deadline {
                tracing::info!(
                    code = "refresh.wait_gave_up",
                    "another replica's refresh did not complete"
                );
                return Err(RefreshFailure::NotCompleted);
            }
        }
    }
}

/// What a freshly read record says about a refresh of `version`: the session ended (gone or
/// unreadable), someone else already refreshed it (a newer version), or `None`: still ours to
/// refresh or wait for.
fn already_rewritten(
    ticket: &SessionTicket,
    record: Option<Vec<u8>>,
    version: RecordVersion,
) -> Option<Result<Arc<Session>, RefreshFailure>> {
    match record.and_then(|r| ticket.open_record(&r)) {
        None => Some(Err(RefreshFailure::Ended)),
        Some((s, v)) if v != version => Some(Ok(Arc::new(s))),
        Some(_) => None,
    }
}

/// Remaining session lifetime in milliseconds (at least 1: Redis refuses `PX 0`).
fn ttl_ms(s: &Session, now: UnixTime) -> u64 {
    s.expires_at.saturating_sub(now).saturating_mul(1000).max(1)
}

fn revoked_sid_key(sid: &str) -> String {
    format!("portcullis:revoked:sid:{sid}")
}

fn revoked_sub_key(sub: &str) -> String {
    format!("portcullis:revoked:sub:{sub}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_and_ttls() {
        assert_eq!(revoked_sid_key("kc-1"), "portcullis:revoked:sid:kc-1");
        assert_eq!(revoked_sub_key("alice"), "portcullis:revoked:sub:alice");
        let s = Session {
            id: None,
            identity: Default::default(),
            created_at: 0,
            tokens_at: 0,
            access_expires_at: 300,
            expires_at: 1000,
            refresh_token: None,
            id_token: None,
            access_token: None,
        };
        assert_eq!(ttl_ms(&s, 400), 600_000);
        assert_eq!(ttl_ms(&s, 2000), 1);
    }
}
