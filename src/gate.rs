//! The forward-auth decision: may this request pass? Takes what the access rules require
//! ([`Verdict`]) and the request's `Authorization` and `Cookie` values, and answers with a
//! principal (plus refreshed cookies), an anonymous pass for a public route, or a reason to
//! refuse. No HTTP types: `http::forward_auth` adapts this to Traefik, Caddy, nginx and Envoy.

use crate::audit::{self, Event};
use crate::authz::{AuthzPolicy, Denied};
use crate::clock::UnixTime;
use crate::config::AuthorizationToken;
use crate::identity::ClaimMapping;
use crate::login::oidc::Oidc;
use crate::metrics::{Metrics, RefreshOutcome};
use crate::principal::{PassedTokens, Principal};
use crate::rules::Verdict;
use crate::seal::Sealer;
use crate::session::cookie_domains::CookieContext;
use crate::session::cookies::SessionCookies;
use crate::session::cookies::SetCookie;
use crate::session::redis::StoreUnavailable;
use crate::session::revocations::Revocations;
use crate::session::session_cache::{DecodedSession, Slot};
use crate::session::store::{RefreshFailure, SessionStore, StoredSession};
use crate::session::{Freshness, Session};
use crate::token::bearer::BearerVerifier;
use crate::token::jwt::TokenError;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// What the request carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The whole `Authorization` header value.
    pub authorization: Option<&'a str>,
    /// The whole `Cookie` header value.
    pub cookie: Option<&'a str>,
    /// The host the browser asked for (`X-Forwarded-Host`), port included: which cookie domain
    /// a refreshed or cleared session cookie gets.
    pub host: Option<&'a str>,
}

/// Access granted.
#[derive(Debug, PartialEq, Eq)]
pub struct Granted {
    pub principal: Arc<Principal>,
    /// Refreshed session cookies to hand back to the browser.
    pub set_cookies: Vec<SetCookie>,
}

/// Access granted: to a user, or to anyone on a public route.
#[derive(Debug, PartialEq, Eq)]
pub enum Pass {
    User(Granted),
    /// A `public` rule (or a skipped preflight) and no valid credentials: no identity headers.
    Anonymous,
}

/// Access refused, and why.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// A `deny` rule: refused to everyone, signed in or not.
    DeniedByRule,
    /// No usable credentials (none, or an invalid/expired session). `clear` deletes a dead
    /// session cookie.
    Unauthenticated { clear: Vec<SetCookie> },
    /// A bearer token was presented and is not acceptable (RFC 6750 §3.1 `invalid_token`).
    InvalidToken(TokenError),
    /// Authenticated, but `[authz]` says no. Carries who it was (for the 403 page) and any
    /// refreshed cookies: the browser must get them even with a 403, or every request would
    /// refresh again.
    Forbidden(Denied, Granted),
    /// The session store (Redis) is needed and not answering: fail closed, keep the cookie.
    StoreUnavailable,
}

pub struct Gate {
    bearer: Option<BearerVerifier>,
    oidc: Arc<Oidc>,
    refresh_after: Option<Duration>,
    /// Shared with the configurations loaded after this one: a revocation outlives reloads.
    revocations: Arc<Revocations>,
    /// Also holds the opened sessions' cache (`session/session_cache.rs`): a hit skips
    /// decryption (and Redis), never the revocation and freshness checks.
    store: SessionStore,
    /// Which session token the `Authorization` answer header carries.
    authorization_token: AuthorizationToken,
    /// Which claim headers a principal carries.
    claims: ClaimMapping,
    /// Counts refresh outcomes.
    metrics: Arc<Metrics>,
}

impl Gate {
    pub fn new(
        config: &crate::config::Config,
        bearer: Option<BearerVerifier>,
        oidc: Arc<Oidc>,
        revocations: Arc<Revocations>,
        store: SessionStore,
        metrics: Arc<Metrics>,
    ) -> Gate {
        let session = &config.session;
        Gate {
            bearer,
            oidc,
            refresh_after: session.refresh,
            revocations,
            store,
            authorization_token: config.headers.authorization_token,
            claims: config.claims.clone(),
            metrics,
        }
    }

    pub fn sealer(&self) -> &Sealer {
        self.store.sealer()
    }

    pub fn bearer(&self) -> Option<&BearerVerifier> {
        self.bearer.as_ref()
    }

    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// How old a session's tokens may get before a request refreshes them.
    pub fn refresh_after(&self) -> Option<Duration> {
        self.refresh_after
    }

    pub fn cookies(&self) -> &SessionCookies {
        self.store.cookies()
    }

    /// `Set-Cookie` values deleting every session cookie the browser sent.
    pub fn clear_cookies(&self, request: CookieContext<'_>) -> Vec<SetCookie> {
        self.store.cookies().clear(request)
    }

    /// The decision for a request the rules judged `verdict`; `constraints` are the calling
    /// middleware's own (they narrow what an authenticated user needs, never widen it).
    /// Bearer tokens and sessions are held to exactly the same requirements.
    pub async fn decide(
        &self,
        verdict: &Verdict<'_>,
        constraints: Option<&AuthzPolicy>,
        creds: Credentials<'_>,
        now: UnixTime,
    ) -> Result<Pass, Refused> {
        match verdict {
            Verdict::Deny(_) => Err(Refused::DeniedByRule),
            // Valid credentials still earn identity headers; anything else passes anonymously.
            Verdict::Public(_) => Ok(match self.authenticate(creds, now).await {
                Ok(granted) => Pass::User(granted),
                Err(_) => Pass::Anonymous,
            }),
            Verdict::Authenticate { policies, .. } => {
                let granted = self.authenticate(creds, now).await?;
                let id = &granted.principal.identity;
                match policies
                    .check(id)
                    .and_then(|()| constraints.map_or(Ok(()), |c| c.check(id)))
                {
                    Ok(()) => Ok(Pass::User(granted)),
                    Err(denied) => Err(Refused::Forbidden(denied, granted)),
                }
            }
        }
    }

    /// Who the credentials belong to, with no access rule applied (`/oauth2/userinfo`).
    pub async fn identify(
        &self,
        creds: Credentials<'_>,
        now: UnixTime,
    ) -> Result<Granted, Refused> {
        self.authenticate(creds, now).await
    }

    async fn authenticate(
        &self,
        creds: Credentials<'_>,
        now: UnixTime,
    ) -> Result<Granted, Refused> {
        if let (Some(bearer), Some(token)) =
            (&self.bearer, creds.authorization.and_then(bearer_token))
        {
            let principal = bearer
                .verify(token, now)
                .await
                .map_err(Refused::InvalidToken)?;
            return Ok(Granted {
                principal,
                set_cookies: Vec::new(),
            });
        }
        // The session cookies are found (and reassembled from chunks) once per request. Kept
        // out of the future's state: nothing of the header's reading lives across an await.
        let header = creds.cookie.unwrap_or("");
        let request = CookieContext::new(creds.cookie, creds.host);
        let found = {
            let values = self.store.cookies().values(header);
            match values.single() {
                Some(one) => Ok(one),
                None if values.is_empty() => {
                    return Err(Refused::Unauthenticated { clear: Vec::new() });
                }
                None => Err(values.candidates()),
            }
        };
        let sealed = match found {
            Ok(one) => one,
            // Several: tossed by another host under `cookie_domain`, or stale. Boxed: this
            // slow path must not grow every decision's future.
            Err(candidates) => {
                return Box::pin(self.authenticate_among(candidates, request, now)).await;
            }
        };
        let slot = self.store.cache_slot(&sealed);
        if let Some(d) = slot.as_ref().and_then(|s| self.store.cache().get(s, now)) {
            if !self.revocations.is_revoked_login(
                d.login_id.as_ref(),
                &d.principal.identity,
                d.created_at,
            ) && d.lifetimes.freshness(now, self.refresh_after) == Freshness::Fresh
            {
                self.metrics.session_cache_hits.fetch_add(1, Relaxed);
                return Ok(Granted {
                    principal: d.principal.clone(),
                    set_cookies: Vec::new(),
                });
            }
        }
        self.metrics.session_cache_misses.fetch_add(1, Relaxed);
        let Some(stored) = self.open(&sealed).await? else {
            // A stray chunk after our last one makes one set of chunks that doesn't open:
            // its shorter readings are tried too.
            let candidates = self.store.cookies().values(header).candidates();
            if candidates.len() > 1 {
                return Box::pin(self.authenticate_among(candidates, request, now)).await;
            }
            return Err(self.signed_out(request));
        };
        self.session_access(stored, request, slot, now).await
    }

    /// A request carrying several session cookies (RFC 6265 §5.4: a sibling host's cookie
    /// with a longer `Path` is sent before ours). Every candidate is tried; those that don't
    /// open, are revoked, or are over don't count, so garbage can't lock the user out. Among
    /// the live ones:
    ///
    /// * all of one user (an older login's cookie left under another Path or Domain): the
    ///   most recently refreshed passes;
    /// * of different users: **none** passes, and ours is cleared. One of them was planted,
    ///   and which one can't be told from the request (a cookie's Path and Domain are not
    ///   sent), so letting either pass could sign the victim in as the attacker (login
    ///   fixation). Logged as `session.conflicting_cookies` with both subjects: the planted
    ///   one's session can then be ended at the IdP (back-channel logout revokes it).
    async fn authenticate_among(
        &self,
        candidates: Vec<std::borrow::Cow<'_, str>>,
        request: CookieContext<'_>,
        now: UnixTime,
    ) -> Result<Granted, Refused> {
        let mut chosen: Option<(StoredSession, Option<Slot>)> = None;
        for sealed in &candidates {
            // Taken before the read, like every slot (see `session/session_cache.rs`).
            let slot = self.store.cache_slot(sealed);
            let Some(stored) = self.open(sealed).await? else {
                continue;
            };
            let s = &stored.session;
            if self.revocations.is_revoked(s)
                || s.freshness(now, self.refresh_after) == Freshness::Expired
            {
                continue;
            }
            match &chosen {
                None => chosen = Some((stored, slot)),
                Some((c, _)) if c.session.identity.sub == s.identity.sub => {
                    if (s.tokens_at, s.created_at) > (c.session.tokens_at, c.session.created_at) {
                        chosen = Some((stored, slot));
                    }
                }
                Some((c, _)) => {
                    tracing::warn!(
                        code = "session.conflicting_cookies",
                        first = ?c.session.identity.sub,
                        second = ?s.identity.sub,
                        "session cookies of two users in one request (one was set by another host under cookie_domain); neither passes"
                    );
                    return Err(self.signed_out(request));
                }
            }
        }
        let Some((stored, slot)) = chosen else {
            return Err(self.signed_out(request));
        };
        self.session_access(stored, request, slot, now).await
    }

    /// The session a sealed cookie value holds (`None`: it doesn't open or is gone).
    async fn open(&self, sealed: &str) -> Result<Option<StoredSession>, Refused> {
        self.store
            .load_sealed(sealed)
            .await
            .map_err(store_unavailable)
    }

    /// No session: 401, and the session cookies the request carried are cleared.
    fn signed_out(&self, request: CookieContext<'_>) -> Refused {
        Refused::Unauthenticated {
            clear: self.clear_cookies(request),
        }
    }

    async fn session_access(
        &self,
        stored: StoredSession,
        request: CookieContext<'_>,
        slot: Option<Slot>,
        now: UnixTime,
    ) -> Result<Granted, Refused> {
        let dead = || self.signed_out(request);
        let session = &stored.session;
        if self.revocations.is_revoked(session) {
            return Err(dead());
        }
        // Logins refuse such identities (`Identity::from_claims`); a cookie sealed before they
        // did must not pass with an identity header missing either.
        if let Some(claim) = session.identity.unsendable_claim() {
            tracing::warn!(
                code = "identity.unsendable",
                claim,
                "session refused: a claim holds characters an identity header can't carry exactly"
            );
            return Err(dead());
        }
        match session.freshness(now, self.refresh_after) {
            Freshness::Fresh => {
                let granted = self.granted(session, Vec::new());
                if let Some(slot) = slot {
                    let decoded = DecodedSession::new(&stored.session, granted.principal.clone());
                    self.store.cache().remember(slot, Arc::new(decoded));
                }
                Ok(granted)
            }
            Freshness::Expired => Err(dead()),
            due @ (Freshness::RefreshDue | Freshness::RefreshRequired) => {
                // Boxed: the refresh future is large, and inlining it would make every
                // decision (cache hits included) move a ~17 KB future around.
                let refreshed =
                    Box::pin(self.store.refresh(&*self.oidc, &stored, now, request)).await;
                let (outcome, answer) = match refreshed {
                    Ok((fresh, set)) => (RefreshOutcome::Refreshed, Ok(self.granted(&fresh, set))),
                    Err(RefreshFailure::Store(e)) => {
                        (RefreshOutcome::StoreUnavailable, Err(store_unavailable(e)))
                    }
                    Err(RefreshFailure::Ended) => (RefreshOutcome::Ended, Err(dead())),
                    Err(e @ (RefreshFailure::Idp(_) | RefreshFailure::NotCompleted)) => {
                        let ends = matches!(&e, RefreshFailure::Idp(r) if r.ends_session());
                        let soft = due == Freshness::RefreshDue && !ends;
                        audit::record(
                            Event::RefreshFailed {
                                reason: e.code(),
                                still_valid: soft,
                            },
                            Some(session.identity.user_id(&self.claims)),
                        );
                        if soft {
                            (
                                RefreshOutcome::FailedKept,
                                Ok(self.granted(session, Vec::new())),
                            )
                        } else if ends {
                            (RefreshOutcome::Ended, Err(dead()))
                        } else {
                            // The IdP is unreachable: refuse for now but keep the cookie, so
                            // the session can refresh once the IdP is back.
                            (
                                RefreshOutcome::FailedRefused,
                                Err(Refused::Unauthenticated { clear: Vec::new() }),
                            )
                        }
                    }
                };
                self.metrics.session_refresh(outcome);
                answer
            }
        }
    }

    fn granted(&self, s: &Session, set_cookies: Vec<SetCookie>) -> Granted {
        let authorization = match self.authorization_token {
            AuthorizationToken::Access => s.access_token.clone(),
            AuthorizationToken::Id => s.id_token.clone(),
        };
        let principal = Principal::new(
            s.identity.clone(),
            PassedTokens {
                access: s.access_token.clone(),
                authorization,
            },
            s.access_expires_at.min(s.expires_at),
            &self.claims,
        );
        Granted {
            principal: Arc::new(principal),
            set_cookies,
        }
    }

    /// Every live (opened, not revoked) session the `Cookie` header carries: one normally,
    /// more when another host tossed one in (bounded, see [`SessionCookieValues`]).
    ///
    /// [`SessionCookieValues`]: crate::session::cookies::SessionCookieValues
    async fn live_sessions(&self, header: &str) -> Result<Vec<StoredSession>, StoreUnavailable> {
        let mut live = Vec::new();
        for sealed in self.store.cookies().values(header).candidates() {
            if let Some(s) = self.store.load_sealed(&sealed).await? {
                if !self.revocations.is_revoked(&s.session) {
                    live.push(s);
                }
            }
        }
        Ok(live)
    }

    /// Stores the session of a new login; the `Set-Cookie` values that carry it, `Ok(None)` if
    /// it can't be encoded.
    pub async fn start_session(
        &self,
        session: &Session,
        now: UnixTime,
        request: CookieContext<'_>,
    ) -> Result<Option<Vec<SetCookie>>, StoreUnavailable> {
        self.store.create(session, now, request).await
    }

    /// Sign-out: ends the session everywhere (a copied cookie must not outlive it) and returns
    /// it, for the IdP logout's `id_token_hint`. Every session the browser sent is ended, a
    /// tossed one included; when they belong to different users, none is returned (the IdP
    /// logout then goes without a hint, and asks).
    pub async fn end_session(
        &self,
        cookie_header: Option<&str>,
    ) -> Result<Option<Session>, StoreUnavailable> {
        let Some(header) = cookie_header else {
            return Ok(None);
        };
        let mut ended: Option<Session> = None;
        let mut one_user = true;
        for stored in self.live_sessions(header).await? {
            self.store.end(&stored).await?;
            self.revocations.revoke_session(&stored.session);
            let s = stored.session;
            match &ended {
                None => ended = Some(s),
                Some(e) if e.identity.sub != s.identity.sub => one_user = false,
                Some(e) if (s.tokens_at, s.created_at) > (e.tokens_at, e.created_at) => {
                    ended = Some(s);
                }
                Some(_) => {}
            }
        }
        Ok(ended.filter(|_| one_user))
    }
}

fn store_unavailable(e: StoreUnavailable) -> Refused {
    tracing::warn!(code = "session.store_unavailable", error = %e, "session store unavailable; request refused");
    Refused::StoreUnavailable
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive, RFC 6750 §2.1).
/// Other schemes (Basic…) are not ours: `None`.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_scheme_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic dXNlcjpwdw=="), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
