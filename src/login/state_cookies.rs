//! The browser-bound state of one login attempt (RFC 6749 §10.12 CSRF, RFC 7636 PKCE, OIDC
//! nonce), kept in a sealed cookie named after the attempt: `<cookie_name>_csrf_<id>`. One
//! cookie per attempt means parallel tabs and bursts of redirects never overwrite each other;
//! each is scoped to the callback path (never sent to apps, so they can't pile up into 431s),
//! lives 10 minutes, and the callback deletes it along with any stale or surplus ones.

use crate::clock::UnixTime;
use crate::seal::random_token;
use crate::seal::{Purpose, SealError, Sealer};
use crate::session::cookie_domains::{CookieContext, CookieDomains};
use crate::session::cookies::SetCookie;
use crate::session::cookies::{cookies_with_prefix, set_cookie};
use crate::token::jwt::constant_time_eq;
use serde::{Deserialize, Serialize};

/// How long a login may take.
pub const LOGIN_TTL: u64 = 600;
/// Pending attempts kept per browser; older ones are deleted at the next callback.
pub const MAX_PENDING: usize = 5;
/// Characters of the state used to name its cookie.
const ID_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAttempt {
    #[serde(rename = "s")]
    pub state: String,
    #[serde(rename = "n")]
    pub nonce: String,
    /// PKCE `code_verifier` (RFC 7636 §4.1).
    #[serde(rename = "v")]
    pub verifier: String,
    /// Where to send the browser afterwards (already validated).
    #[serde(rename = "r")]
    pub return_to: String,
    #[serde(rename = "c")]
    pub created_at: UnixTime,
    /// The callback URL this login uses when it is not `public_url`'s (a host whose cookie
    /// domain does not hold `public_url`'s host: [`CookieDomains::own_callback_host`]); the
    /// code exchange must send the same one (RFC 6749 §4.1.3).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

/// What a callback finds among the browser's state cookies.
pub struct TakenAttempt {
    /// The attempt the callback's `state` names, or why there is none.
    pub attempt: Result<LoginAttempt, StateProblem>,
    /// `Set-Cookie` values deleting the used cookie and every expired or surplus one: sent
    /// whatever the outcome of the login.
    pub clear: Vec<SetCookie>,
    /// How many cookies were deleted besides the used one.
    pub dropped: usize,
}

#[derive(Debug, Clone)]
pub struct LoginStateCookies {
    prefix: String,
    path: String,
    domains: CookieDomains,
    secure: bool,
}

/// Why a callback's state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateProblem {
    Missing,
    NoMatchingAttempt,
}

impl LoginStateCookies {
    pub fn new(
        cookie_name: &str,
        callback_path: &str,
        domains: CookieDomains,
        secure: bool,
    ) -> Self {
        Self {
            prefix: format!("{cookie_name}_csrf_"),
            path: callback_path.to_string(),
            domains,
            secure,
        }
    }

    /// A new attempt and the `Set-Cookie` that binds it to this browser, for the domain of
    /// `host` (where the login starts); `redirect_uri`: its own callback URL, if any.
    pub fn begin(
        &self,
        sealer: &Sealer,
        return_to: String,
        now: UnixTime,
        host: Option<&str>,
        redirect_uri: Option<String>,
    ) -> Result<(LoginAttempt, SetCookie), SealError> {
        let attempt = LoginAttempt {
            state: random_token(32)?,
            nonce: random_token(32)?,
            verifier: random_token(48)?,
            return_to,
            created_at: now,
            redirect_uri,
        };
        let json = serde_json::to_vec(&attempt).map_err(|_| SealError::NoKey)?;
        let sealed = sealer.seal(Purpose::LoginState, &json)?;
        let cookie = self.cookie(&self.name_for(&attempt.state), &sealed, LOGIN_TTL, host);
        Ok((attempt, cookie))
    }

    /// Finds the attempt the callback's `state` belongs to (see [`TakenAttempt`]). Always returns the `Set-Cookie`
    /// values that delete that attempt's cookie and any expired or surplus ones.
    pub fn take(
        &self,
        sealer: &Sealer,
        request: CookieContext<'_>,
        state: Option<&str>,
        now: UnixTime,
    ) -> TakenAttempt {
        let (cookie_header, host) = (request.header, request.host);
        let header = cookie_header.unwrap_or("");
        let mut pending: Vec<(String, Option<LoginAttempt>)> =
            cookies_with_prefix(header, &self.prefix)
                .take(64)
                .map(|(name, value)| {
                    let attempt = sealer
                        .open(Purpose::LoginState, value)
                        .and_then(|p| serde_json::from_slice::<LoginAttempt>(&p).ok())
                        .filter(|a| {
                            now < a.created_at.saturating_add(LOGIN_TTL)
                                && self.name_for(&a.state) == name
                        });
                    (name.to_string(), attempt)
                })
                .collect();
        let mut clear = Vec::new();
        let mut matched = false;
        let found = match state.filter(|s| !s.is_empty() && s.len() <= 256) {
            None => Err(StateProblem::Missing),
            Some(state) => {
                let name = self.name_for(state);
                match pending.iter().position(|(n, _)| *n == name) {
                    Some(i) => {
                        let (n, a) = pending.remove(i);
                        clear.push(self.cookie(&n, "", 0, host));
                        matched = true;
                        a.filter(|a| constant_time_eq(a.state.as_bytes(), state.as_bytes()))
                            .ok_or(StateProblem::NoMatchingAttempt)
                    }
                    None => Err(StateProblem::NoMatchingAttempt),
                }
            }
        };
        // Newest first; keep MAX_PENDING valid attempts, delete the rest.
        pending.sort_by_key(|(_, a)| std::cmp::Reverse(a.as_ref().map_or(0, |a| a.created_at)));
        for (i, (name, attempt)) in pending.iter().enumerate() {
            if attempt.is_none() || i >= MAX_PENDING {
                clear.push(self.cookie(name, "", 0, host));
            }
        }
        let dropped = clear.len() - usize::from(matched);
        TakenAttempt {
            attempt: found,
            clear,
            dropped,
        }
    }

    fn name_for(&self, state: &str) -> String {
        let id: String = state
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(ID_LEN)
            .collect();
        format!("{}{id}", self.prefix)
    }

    fn cookie(&self, name: &str, value: &str, max_age: u64, host: Option<&str>) -> SetCookie {
        set_cookie(
            name,
            value,
            &self.path,
            self.domains.for_host(host),
            self.secure,
            max_age,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(set: &[impl AsRef<str>]) -> String {
        set.iter()
            .map(|c| c.as_ref().split(';').next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn setup() -> (Sealer, LoginStateCookies) {
        (
            Sealer::new(&[[4u8; 32]]).unwrap(),
            LoginStateCookies::new("_p", "/oauth2/callback", CookieDomains::default(), true),
        )
    }

    #[test]
    fn parallel_attempts_do_not_clobber_each_other() {
        let (sealer, c) = setup();
        let (a1, c1) = c.begin(&sealer, "/one".into(), 100, None, None).unwrap();
        let (a2, c2) = c.begin(&sealer, "/two".into(), 101, None, None).unwrap();
        assert!(
            c1.contains("Path=/oauth2/callback")
                && c1.contains("HttpOnly")
                && c1.contains("Max-Age=600")
        );
        assert_ne!(c1.split('=').next(), c2.split('=').next());
        let h = header(&[c1, c2]);
        let TakenAttempt {
            attempt: r2,
            clear: clear2,
            ..
        } = c.take(
            &sealer,
            CookieContext::new(Some(&h), None),
            Some(&a2.state),
            102,
        );
        assert_eq!(r2.unwrap(), a2);
        assert_eq!(clear2.len(), 1);
        let r1 = c
            .take(
                &sealer,
                CookieContext::new(Some(&h), None),
                Some(&a1.state),
                102,
            )
            .attempt;
        assert_eq!(r1.unwrap().return_to, "/one");
    }

    #[test]
    fn wrong_missing_and_expired_state_are_refused() {
        let (sealer, c) = setup();
        let (a, ck) = c.begin(&sealer, "/".into(), 100, None, None).unwrap();
        let h = header(&[ck]);
        assert_eq!(
            c.take(&sealer, CookieContext::new(Some(&h), None), None, 101)
                .attempt,
            Err(StateProblem::Missing)
        );
        assert_eq!(
            c.take(
                &sealer,
                CookieContext::new(Some(&h), None),
                Some("forged-state-value-xyz"),
                101
            )
            .attempt,
            Err(StateProblem::NoMatchingAttempt)
        );
        assert_eq!(
            c.take(&sealer, CookieContext::default(), Some(&a.state), 101)
                .attempt,
            Err(StateProblem::NoMatchingAttempt)
        );
        // Same 16-char prefix, different state: refused.
        let forged = format!("{}ZZZZ", &a.state[..16]);
        assert_eq!(
            c.take(
                &sealer,
                CookieContext::new(Some(&h), None),
                Some(&forged),
                101
            )
            .attempt,
            Err(StateProblem::NoMatchingAttempt)
        );
        assert_eq!(
            c.take(
                &sealer,
                CookieContext::new(Some(&h), None),
                Some(&a.state),
                100 + LOGIN_TTL
            )
            .attempt,
            Err(StateProblem::NoMatchingAttempt)
        );
    }

    #[test]
    fn surplus_and_stale_attempts_are_deleted() {
        let (sealer, c) = setup();
        let mut cookies = Vec::new();
        let mut last = None;
        for i in 0..9 {
            let (a, ck) = c.begin(&sealer, "/".into(), 100 + i, None, None).unwrap();
            cookies.push(ck.to_string());
            last = Some(a);
        }
        cookies.push("_p_csrf_garbage=xyz".to_string());
        let TakenAttempt {
            attempt: r,
            clear,
            dropped,
        } = c.take(
            &sealer,
            CookieContext::new(Some(&header(&cookies)), None),
            Some(&last.unwrap().state),
            120,
        );
        assert!(r.is_ok());
        // the used one + 3 surplus (8 left, keep 5) + the garbage one
        assert_eq!(clear.len(), 1 + 3 + 1, "{clear:?}");
        assert!(clear.iter().all(|c| c.contains("Max-Age=0")));
        assert_eq!(dropped, 4);
    }
}
