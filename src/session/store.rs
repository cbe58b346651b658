//! Where sessions live (`session.store`): sealed whole in the cookie, or in Redis behind an
//! opaque [`SessionTicket`] so every replica sees the same session (every Redis command and
//! key name is in `session/redis.rs`). The cookie store never touches Redis code; every
//! method's `Cookie` arm is what Portcullis did before Redis existed.

use super::Session;
use super::cookie_domains::CookieContext;
use super::cookies::SessionCookies;
use super::redis::{RedisStore, StoreUnavailable};
use super::session_cache::{SessionCache, Slot};
use super::ticket::{RecordVersion, SessionTicket};
use crate::app::StartupError;
use crate::clock::SharedClock;
use crate::clock::UnixTime;
use crate::config::{SessionConfig, StoreConfig};
use crate::idp::IdpError;
use crate::metrics::Metrics;
use crate::seal::Sealer;
use crate::session::cookies::SetCookie;
use std::sync::Arc;

/// The session store: it seals sessions (or their tickets) into cookies and reads them back,
/// and keeps them in Redis in Redis mode. Its one way out is [`Refresher`], implemented by the
/// login side, so the store needs nothing of OIDC.
pub struct SessionStore {
    sealer: Arc<Sealer>,
    cookies: SessionCookies,
    backend: Backend,
    /// Opened sessions (`session.cache_capacity`); the Redis backend invalidates it.
    cache: Arc<SessionCache>,
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
    /// The stable reason code of the `session.refresh_failed` audit event.
    pub fn code(&self) -> &'static str {
        match self {
            RefreshError::NoRefreshToken => "no_refresh_token",
            RefreshError::Idp(e) => e.code(),
            RefreshError::BadTokens(_) => "bad_tokens",
        }
    }

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

/// A session as loaded, with what is needed to write it back.
#[derive(Debug)]
pub struct StoredSession {
    pub session: Session,
    pub(super) origin: Origin,
}

#[derive(Debug)]
pub(super) enum Origin {
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

impl RefreshFailure {
    /// The stable reason code of the `session.refresh_failed` audit event.
    pub fn code(&self) -> &'static str {
        match self {
            RefreshFailure::Idp(e) => e.code(),
            RefreshFailure::NotCompleted => "not_completed",
            RefreshFailure::Ended => "ended",
            RefreshFailure::Store(_) => "store_unavailable",
        }
    }
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
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        let (backend, cache) = match &cfg.store {
            StoreConfig::Cookie => (
                Backend::Cookie,
                Arc::new(SessionCache::for_cookies(cfg.cache_capacity, clock)),
            ),
            StoreConfig::Redis(r) => {
                let cache = Arc::new(SessionCache::for_tracked_records(cfg.cache_capacity, clock));
                let tracked = cfg.cache_capacity > 0;
                let store = RedisStore::new(r, cfg.expire, metrics, cache.clone(), tracked)?;
                (Backend::Redis(store), cache)
            }
        };
        Ok(SessionStore {
            sealer,
            cookies: SessionCookies::new(cfg),
            backend,
            cache,
        })
    }

    /// The opened sessions' cache.
    pub fn cache(&self) -> &SessionCache {
        &self.cache
    }

    /// Where the session of a sealed cookie value is cached: under the value itself (cookie
    /// store), or under its record's key while Redis tracks this replica's reads and is
    /// healthy. Take it before loading the session.
    #[inline]
    pub fn cache_slot(&self, sealed: &str) -> Option<Slot> {
        match &self.backend {
            Backend::Cookie => self.cache.slot(sealed),
            Backend::Redis(r) => {
                if !self.cache.is_live() || !r.is_healthy() {
                    return None;
                }
                let ticket = SessionTicket::open(&self.sealer, sealed)?;
                self.cache.slot(&super::redis::session_key(&ticket))
            }
        }
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
            Backend::Redis(r) => Some(r.background()),
        }
    }

    /// Whether sessions can be served (always, for cookies).
    pub fn is_ready(&self) -> bool {
        match &self.backend {
            Backend::Cookie => true,
            Backend::Redis(r) => r.is_healthy(),
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
        request: CookieContext<'_>,
    ) -> Result<Option<Vec<SetCookie>>, StoreUnavailable> {
        match &self.backend {
            Backend::Cookie => Ok(self.cookies.write(&self.sealer, session, now, request)),
            Backend::Redis(r) => {
                let Ok(ticket) = SessionTicket::generate() else {
                    return Ok(None);
                };
                let (Ok(record), Ok(value)) =
                    (ticket.seal_record(session), ticket.seal(&self.sealer))
                else {
                    return Ok(None);
                };
                r.create(&ticket, record, session, now).await?;
                Ok(self.cookies.write_sealed(
                    &value,
                    session.expires_at.saturating_sub(now),
                    request,
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
        request: CookieContext<'_>,
    ) -> Result<(Arc<Session>, Vec<SetCookie>), RefreshFailure> {
        match (&self.backend, &stored.origin) {
            (Backend::Redis(r), Origin::Redis { ticket, version }) => {
                let key = super::redis::refresh_flight_key(ticket, version);
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
                    .write(&self.sealer, &fresh, now, request)
                    .unwrap_or_default();
                Ok((fresh, set))
            }
        }
    }

    /// Ends a session in the store (sign-out): in Redis mode the record is deleted, so a copied
    /// cookie stops working on every replica.
    pub async fn end(&self, stored: &StoredSession) -> Result<(), StoreUnavailable> {
        match (&self.backend, &stored.origin) {
            (Backend::Redis(r), Origin::Redis { ticket, .. }) => r.end(ticket).await,
            (Backend::Cookie | Backend::Redis(_), _) => Ok(()),
        }
    }

    /// Records a back-channel revocation where every replica sees it (Redis mode); the cookie
    /// store has only the per-process [`crate::session::revocations::Revocations`].
    pub async fn revoke(&self, what: Revoke<'_>, now: UnixTime) -> Result<(), StoreUnavailable> {
        match &self.backend {
            Backend::Cookie => Ok(()),
            Backend::Redis(r) => r.revoke(what, now).await,
        }
    }
}
