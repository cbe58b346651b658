//! The session a browser carries: who the user is, when the session ends, and the tokens
//! needed to refresh it and to log out. Stored AEAD-encrypted in an `HttpOnly; Secure;
//! SameSite=Lax` cookie ([`cookies`]), or encrypted in Redis behind an opaque cookie
//! ([`store`], [`ticket`], [`redis`]); nothing in it is readable without the key.

pub mod compact;
pub mod cookie_domains;
pub mod cookies;
pub mod redis;
pub mod revocations;
pub mod session_cache;
pub mod store;
pub mod ticket;

use crate::clock::UnixTime;
use crate::identity::Identity;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random id of this login (kept across refreshes), for server-side revocation.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "p")]
    pub identity: Identity,
    /// When the user logged in.
    #[serde(rename = "c")]
    pub created_at: UnixTime,
    /// When the tokens were last obtained (login or refresh).
    #[serde(rename = "t")]
    pub tokens_at: UnixTime,
    /// The access token's `exp`: past it the session passes only after a refresh.
    #[serde(rename = "a")]
    pub access_expires_at: UnixTime,
    /// Hard end of the session (`session.expire` after login).
    #[serde(rename = "x")]
    pub expires_at: UnixTime,
    #[serde(rename = "rt", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Kept for `id_token_hint` at logout (OIDC RP-Initiated Logout §2).
    #[serde(rename = "it", default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Kept only when configured to pass it upstream.
    #[serde(rename = "at", default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

/// What a session needs before it can pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Passes as it is.
    Fresh,
    /// Passes, but its tokens are older than `session.refresh`: refresh, and if that fails
    /// keep passing until the access token expires.
    RefreshDue,
    /// Its access token expired: passes only if a refresh succeeds.
    RefreshRequired,
    /// Over: the session lifetime ended, or the tokens expired with nothing to refresh them.
    Expired,
}

/// The times that decide a session's [`Freshness`]: all the opened sessions' cache keeps of
/// a session besides its principal (not its tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub tokens_at: UnixTime,
    pub access_expires_at: UnixTime,
    pub expires_at: UnixTime,
    /// It holds a refresh token.
    pub refreshable: bool,
}

impl Lifetimes {
    pub fn freshness(&self, now: UnixTime, refresh_after: Option<Duration>) -> Freshness {
        if now >= self.expires_at {
            return Freshness::Expired;
        }
        // With refresh off ("0s") a session never outlives its access token.
        let can_refresh = self.refreshable && refresh_after.is_some();
        if now >= self.access_expires_at {
            return if can_refresh {
                Freshness::RefreshRequired
            } else {
                Freshness::Expired
            };
        }
        match refresh_after {
            Some(after) if can_refresh && now.saturating_sub(self.tokens_at) >= after.as_secs() => {
                Freshness::RefreshDue
            }
            _ => Freshness::Fresh,
        }
    }
}

impl Session {
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            tokens_at: self.tokens_at,
            access_expires_at: self.access_expires_at,
            expires_at: self.expires_at,
            refreshable: self.refresh_token.is_some(),
        }
    }

    pub fn freshness(&self, now: UnixTime, refresh_after: Option<Duration>) -> Freshness {
        self.lifetimes().freshness(now, refresh_after)
    }
}

/// A session for unit tests: user-1 (alice@example.com), logged in at `at`, tokens valid for
/// 5 minutes, session for an hour.
#[cfg(test)]
pub(crate) fn test_session(at: UnixTime) -> Session {
    Session {
        id: Some("sess-1".into()),
        identity: Identity {
            sub: "user-1".into(),
            email: Some("alice@example.com".into()),
            ..Default::default()
        },
        created_at: at,
        tokens_at: at,
        access_expires_at: at + 300,
        expires_at: at + 3600,
        refresh_token: Some("refresh-token".into()),
        id_token: None,
        access_token: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            id: None,
            identity: Identity {
                sub: "u".into(),
                ..Default::default()
            },
            created_at: 1000,
            tokens_at: 1000,
            access_expires_at: 1300,
            expires_at: 1000 + 12 * 3600,
            refresh_token: Some("rt".into()),
            id_token: None,
            access_token: None,
        }
    }

    #[test]
    fn freshness_follows_refresh_and_expiry() {
        let s = session();
        let five_min = Some(Duration::from_secs(60));
        assert_eq!(s.freshness(1010, five_min), Freshness::Fresh);
        assert_eq!(s.freshness(1060, five_min), Freshness::RefreshDue);
        assert_eq!(s.freshness(1300, five_min), Freshness::RefreshRequired);
        assert_eq!(
            s.freshness(1300, None),
            Freshness::Expired,
            "refresh off: tokens expired = session over"
        );
        assert_eq!(s.freshness(1000 + 12 * 3600, five_min), Freshness::Expired);
    }

    #[test]
    fn expired_tokens_without_refresh_token_end_the_session() {
        // oauth2-proxy #1836: a session must not outlive its tokens when refresh is off.
        let s = Session {
            refresh_token: None,
            ..session()
        };
        assert_eq!(s.freshness(1299, None), Freshness::Fresh);
        assert_eq!(s.freshness(1300, None), Freshness::Expired);
        assert_eq!(
            s.freshness(1100, Some(Duration::from_secs(60))),
            Freshness::Fresh
        );
    }
}
