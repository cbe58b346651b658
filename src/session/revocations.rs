//! Sessions that must stop passing before their cookie expires: ended by OIDC Back-Channel
//! Logout (by Keycloak session `sid`, or every session of a `sub`) or by sign-out (our own
//! session id). Entries live as long as a session can (`session.expire`), so a revoked cookie
//! can never come back. This store is per process: with the cookie session store and several
//! replicas, back-channel logout reaches one of them (see README: Sessions). With the Redis
//! session store, revocations are also written to Redis and checked by every replica
//! ([`crate::session::store`]).

use crate::clock::UnixTime;
use crate::identity::Identity;
use crate::session::Session;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct Revocations {
    sids: moka::sync::Cache<String, ()>,
    session_ids: moka::sync::Cache<String, ()>,
    /// `sub` → when all of that user's sessions were ended; later logins stay valid.
    subs: moka::sync::Cache<String, UnixTime>,
    /// Lets the request path skip the lookups while nothing was ever revoked.
    any: AtomicBool,
}

impl Revocations {
    pub fn new(session_lifetime: Duration) -> Self {
        let cache = || {
            moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(session_lifetime)
                .build()
        };
        Self {
            sids: cache(),
            session_ids: cache(),
            subs: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(session_lifetime)
                .build(),
            any: AtomicBool::new(false),
        }
    }

    pub fn revoke_sid(&self, sid: &str) {
        self.sids.insert(sid.to_string(), ());
        self.any.store(true, Ordering::Release);
    }

    pub fn revoke_sub(&self, sub: &str, at: UnixTime) {
        self.subs.insert(sub.to_string(), at);
        self.any.store(true, Ordering::Release);
    }

    pub fn revoke_session(&self, session: &Session) {
        if let Some(id) = &session.id {
            self.session_ids.insert(id.clone(), ());
        }
        if let Some(sid) = &session.identity.sid {
            self.sids.insert(sid.clone(), ());
        }
        self.any.store(true, Ordering::Release);
    }

    pub fn is_revoked(&self, s: &Session) -> bool {
        self.is_revoked_login(s.id.as_ref(), &s.identity, s.created_at)
    }

    /// The same, from the parts of a session that decide it: its login's id, its user and
    /// sign-in (`sub`, `sid`), and when it was created.
    pub fn is_revoked_login(
        &self,
        id: Option<&String>,
        identity: &Identity,
        created_at: UnixTime,
    ) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        id.is_some_and(|id| self.session_ids.contains_key(id))
            || identity
                .sid
                .as_ref()
                .is_some_and(|sid| self.sids.contains_key(sid))
            || self
                .subs
                .get(&identity.sub)
                .is_some_and(|at| created_at <= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn session(id: &str, sid: &str, sub: &str, created_at: UnixTime) -> Session {
        let base = crate::session::test_session(created_at);
        Session {
            id: Some(id.into()),
            identity: Identity {
                sub: sub.into(),
                sid: Some(sid.into()),
                ..base.identity.clone()
            },
            ..base
        }
    }

    #[test]
    fn revoked_by_sid_sub_or_session_id() {
        let r = Revocations::new(Duration::from_secs(3600));
        let a = session("s1", "kc-1", "alice", 100);
        let b = session("s2", "kc-2", "alice", 100);
        let c = session("s3", "kc-3", "bob", 100);
        assert!(!r.is_revoked(&a));
        r.revoke_sid("kc-1");
        assert!(r.is_revoked(&a) && !r.is_revoked(&b));
        r.revoke_session(&c);
        assert!(r.is_revoked(&c));
        r.revoke_sub("alice", 150);
        assert!(r.is_revoked(&b));
        assert!(
            !r.is_revoked(&session("s4", "kc-4", "alice", 200)),
            "a later login stays valid"
        );
    }
}
