//! OIDC Back-Channel Logout 1.0: the IdP POSTs a signed `logout_token` when a user's session
//! ends there (admin action, logout in another app, session expiry). A valid token revokes
//! every session with that `sid` (or, without `sid`, every session of that `sub`) at once —
//! in this process, and with the Redis session store on every replica.

use crate::audit::{self, Event};
use crate::clock::UnixTime;
use crate::login::oidc::Oidc;
use crate::metrics::Metrics;
use crate::session::revocations::Revocations;
use crate::session::store::{Revoke, SessionStore};
use crate::token::jwt::{LogoutTokenRules, TokenError, UnverifiedToken};
use std::sync::Arc;
use std::time::Duration;

/// Logout tokens older than this are refused; `jti`s are remembered this long.
const MAX_AGE: u64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutError {
    #[error("logout token rejected: {0}")]
    Invalid(TokenError),
    #[error("logout token already used")]
    Replayed,
    /// Valid, but the shared session store could not record it; the IdP may send it again.
    #[error("session store unavailable")]
    StoreUnavailable,
}

pub struct BackchannelLogout {
    seen_jti: moka::sync::Cache<String, ()>,
    leeway: u64,
}

impl BackchannelLogout {
    pub fn new(leeway: Duration) -> Self {
        Self {
            seen_jti: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(MAX_AGE + leeway.as_secs()))
                .build(),
            leeway: leeway.as_secs(),
        }
    }

    pub async fn accept(
        &self,
        token: &str,
        oidc: &Oidc,
        revocations: &Revocations,
        store: &SessionStore,
        metrics: &Arc<Metrics>,
        now: UnixTime,
    ) -> Result<(), LogoutError> {
        let parsed = UnverifiedToken::parse(token).map_err(LogoutError::Invalid)?;
        LogoutTokenRules {
            issuer: &oidc.issuer,
            client_id: &oidc.client_id,
            leeway: self.leeway,
            max_age: MAX_AGE,
        }
        .check(&parsed, now)
        .map_err(LogoutError::Invalid)?;
        oidc.keys
            .verify_signature(&parsed, oidc.idp(), metrics)
            .await
            .map_err(LogoutError::Invalid)?;
        let what = match (&parsed.claims.sid, &parsed.claims.sub) {
            (Some(sid), _) => Revoke::Sid(sid),
            (None, Some(sub)) => Revoke::Sub(sub),
            (None, None) => return Err(LogoutError::Invalid(TokenError::MissingClaim)),
        };
        let jti = parsed.claims.jti.clone().unwrap_or_default();
        let entry = self.seen_jti.entry(jti.clone()).or_insert(());
        if !entry.is_fresh() {
            return Err(LogoutError::Replayed);
        }
        // Sessions that started before the logout was issued end; a replayed or delayed token
        // can't reach sessions that started after it.
        let cutoff = parsed.claims.iat.unwrap_or(now).min(now);
        if store.revoke(what, cutoff).await.is_err() {
            // Not recorded: the same token must be accepted when it comes again.
            self.seen_jti.invalidate(&jti);
            return Err(LogoutError::StoreUnavailable);
        }
        match what {
            Revoke::Sid(sid) => revocations.revoke_sid(sid),
            Revoke::Sub(sub) => revocations.revoke_sub(sub, cutoff),
        }
        audit::record(
            Event::BackchannelLogout {
                sid: parsed.claims.sid.as_deref(),
            },
            parsed.claims.sub.as_deref(),
        );
        Ok(())
    }
}
