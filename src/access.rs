//! The forward-auth decision: may this request pass? Takes the request's `Authorization` and
//! `Cookie` values and answers with a principal (plus refreshed cookies) or a reason to refuse.
//! No HTTP types: `http::forward_auth` adapts this to Traefik, Caddy, nginx and Envoy.

use crate::authz::{AuthzPolicy, Denied};
use crate::bearer::BearerVerifier;
use crate::clock::UnixTime;
use crate::idp::IdpError;
use crate::jwt::TokenError;
use crate::oidc::Oidc;
use crate::principal::Principal;
use crate::revocation::Revocations;
use crate::seal::Sealer;
use crate::session::cookies::SessionCookies;
use crate::session::{Freshness, Session};
use std::sync::Arc;
use std::time::Duration;

/// What the request carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The whole `Authorization` header value.
    pub authorization: Option<&'a str>,
    /// The whole `Cookie` header value.
    pub cookie: Option<&'a str>,
}

/// Access granted.
#[derive(Debug)]
pub struct Granted {
    pub principal: Arc<Principal>,
    /// Refreshed session cookies to hand back to the browser.
    pub set_cookies: Vec<String>,
}

/// Access refused, and why.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No usable credentials (none, or an invalid/expired session). `clear` deletes a dead
    /// session cookie.
    Unauthenticated { clear: Vec<String> },
    /// A bearer token was presented and is not acceptable (RFC 6750 §3.1 `invalid_token`).
    InvalidToken(TokenError),
    /// Authenticated, but `[authz]` says no.
    Forbidden(Denied),
}

pub struct Gate {
    pub sealer: Arc<Sealer>,
    pub cookies: SessionCookies,
    pub bearer: Option<BearerVerifier>,
    pub authz: AuthzPolicy,
    pub oidc: Arc<Oidc>,
    pub refresh_after: Option<Duration>,
    pub revocations: Revocations,
}

impl Gate {
    pub async fn check(&self, creds: Credentials<'_>, now: UnixTime) -> Result<Granted, Refused> {
        let granted = self.authenticate(creds, now).await?;
        self.authz
            .check(&granted.principal.identity)
            .map_err(Refused::Forbidden)?;
        Ok(granted)
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
        let header = creds.cookie.unwrap_or("");
        let Some(session) = self.cookies.read(&self.sealer, header) else {
            let had_cookie = self.cookies.sealed_value(header).is_some();
            return Err(Refused::Unauthenticated {
                clear: if had_cookie {
                    self.cookies.clear(creds.cookie)
                } else {
                    Vec::new()
                },
            });
        };
        self.session_access(session, creds.cookie, now).await
    }

    async fn session_access(
        &self,
        session: Session,
        cookie_header: Option<&str>,
        now: UnixTime,
    ) -> Result<Granted, Refused> {
        let dead = || Refused::Unauthenticated {
            clear: self.cookies.clear(cookie_header),
        };
        if self.revocations.is_revoked(&session) {
            return Err(dead());
        }
        match session.freshness(now, self.refresh_after) {
            Freshness::Fresh => Ok(self.granted(&session, Vec::new())),
            Freshness::Expired => Err(dead()),
            due @ (Freshness::RefreshDue | Freshness::RefreshRequired) => {
                match self.oidc.refresh(&session, now).await {
                    Ok(fresh) => {
                        let set = self
                            .cookies
                            .write(&self.sealer, &fresh, now, cookie_header)
                            .unwrap_or_default();
                        Ok(self.granted(&fresh, set))
                    }
                    Err(e) => {
                        let soft =
                            due == Freshness::RefreshDue && !matches!(e, IdpError::Refused(_));
                        tracing::info!(code = "session.refresh_failed", error = %e, still_valid = soft, "session refresh failed");
                        if soft {
                            Ok(self.granted(&session, Vec::new()))
                        } else {
                            Err(dead())
                        }
                    }
                }
            }
        }
    }

    fn granted(&self, s: &Session, set_cookies: Vec<String>) -> Granted {
        let principal = Principal::new(
            s.identity.clone(),
            s.access_token.clone(),
            s.access_expires_at.min(s.expires_at),
        );
        Granted {
            principal: Arc::new(principal),
            set_cookies,
        }
    }

    /// The session behind a cookie header, if valid (for `/oauth2/userinfo` and sign-out).
    pub fn session(&self, cookie_header: Option<&str>) -> Option<Session> {
        self.cookies
            .read(&self.sealer, cookie_header?)
            .filter(|s| !self.revocations.is_revoked(s))
    }
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
