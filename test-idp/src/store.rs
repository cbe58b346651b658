//! Mutable server-side state: the user who logs in next, pending authorization
//! codes, login sessions and issued refresh tokens.

use std::collections::HashMap;

use crate::TestUser;

/// Authorization code lifetime (Keycloak's default is 60 s).
pub(crate) const CODE_TTL_SECS: u64 = 60;

/// An authorization code handed out by `/auth`.
#[derive(Clone, Debug)]
pub(crate) struct PendingCode {
    pub redirect_uri: String,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub sid: String,
    pub created: u64,
    pub used: bool,
}

/// A login session (Keycloak "user session").
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub user: TestUser,
    pub auth_time: u64,
    pub active: bool,
}

/// An issued refresh token.
#[derive(Clone, Debug)]
pub(crate) struct RefreshRecord {
    pub sid: String,
    pub scope: String,
    pub exp: u64,
    pub epoch: u64,
    pub used: bool,
}

/// All mutable IdP state, kept behind one mutex.
#[derive(Debug)]
pub(crate) struct Store {
    pub current_user: TestUser,
    pub codes: HashMap<String, PendingCode>,
    pub sessions: HashMap<String, Session>,
    pub refresh_tokens: HashMap<String, RefreshRecord>,
    pub last_sid: Option<String>,
}

impl Store {
    pub(crate) fn new(user: TestUser) -> Self {
        Self {
            current_user: user,
            codes: HashMap::new(),
            sessions: HashMap::new(),
            refresh_tokens: HashMap::new(),
            last_sid: None,
        }
    }

    /// End a session: its refresh tokens stop working.
    pub(crate) fn end_session(&mut self, sid: &str) -> bool {
        match self.sessions.get_mut(sid) {
            Some(s) => {
                let was_active = s.active;
                s.active = false;
                was_active
            }
            None => false,
        }
    }

    /// Drop codes older than their lifetime (keeps the map small in long benches).
    pub(crate) fn prune_codes(&mut self, now: u64) {
        self.codes
            .retain(|_, c| now.saturating_sub(c.created) <= CODE_TTL_SECS * 2);
    }

    /// Drop expired refresh tokens.
    pub(crate) fn prune_refresh(&mut self, now: u64) {
        self.refresh_tokens.retain(|_, r| r.exp >= now);
    }
}
