//! The one mapping from every refusal and error to an HTTP response (exhaustive, no `_` arm).
//! Clients get a status, a short fixed message and, for browsers, a small HTML page (in the
//! look of `[pages]`, [`crate::pages`]); the details go to the log with a stable code.

use super::Body;
use crate::audit::{self, Event};
use crate::authz::Denied;
use crate::gate::Refused;
use crate::idp::IdpError;
use crate::login::oidc::LoginError;
use crate::pages::{Page, Pages};
use crate::request_context::{RequestId, with_current};
use crate::token::jwt::TokenError;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use std::borrow::Cow;

#[derive(Debug)]
pub enum Problem {
    /// No credentials: 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3).
    Unauthenticated,
    /// A bad bearer token: 401 `invalid_token` (RFC 6750 §3.1).
    InvalidToken(TokenError),
    /// Authenticated but not allowed: 403. A browser's page names the user and offers to
    /// sign in as someone else.
    Forbidden(Denied, Option<SignedInAs>),
    /// A `deny` rule: 403 for everyone.
    DeniedByRule,
    /// The caller of a decision endpoint is not in `trusted_proxies`: 403.
    UntrustedCaller,
    /// A login callback that can't complete.
    Login(LoginError),
    /// The IdP is needed and unreachable: 503.
    IdpUnavailable,
    /// The session store (Redis) is needed and not answering: 503, fail closed.
    StoreUnavailable,
    BadRequest(&'static str),
    NotFound,
    MethodNotAllowed,
    /// A bug: a handler panicked (`http::service`, panic catching). 500, nothing more said.
    Internal,
    /// `/ready` before discovery, keys and the session store are: 503 with the reason.
    NotReady(&'static str),
    /// A back-channel logout request refused: 400 (503 when the session store is down), with
    /// the JSON error body of OIDC Back-Channel Logout 1.0 §2.8.
    LogoutRejected(LogoutRejection),
}

/// Who was refused, for the 403 page.
#[derive(Debug)]
pub struct SignedInAs {
    /// What the page calls the user (`preferred_username`, else `sub`).
    pub name: String,
    /// "Sign in as someone else": sign-out, then back to the refused address
    /// ([`crate::pages::sign_in_again_url`]).
    pub sign_in_again_url: String,
}

/// Why a back-channel logout request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutRejection {
    NotAForm,
    Unreadable,
    MissingToken,
    Replayed,
    InvalidToken,
    StoreUnavailable,
}

impl LogoutRejection {
    fn answer(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::NotAForm => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "expected application/x-www-form-urlencoded",
            ),
            Self::Unreadable => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "request body too large or unreadable",
            ),
            Self::MissingToken => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "missing logout_token",
            ),
            Self::Replayed => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "logout token already used",
            ),
            Self::InvalidToken => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "invalid logout token",
            ),
            Self::StoreUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "session store unavailable",
            ),
        }
    }
}

impl From<Refused> for Problem {
    fn from(r: Refused) -> Self {
        match r {
            Refused::DeniedByRule => Problem::DeniedByRule,
            Refused::Unauthenticated { .. } => Problem::Unauthenticated,
            Refused::InvalidToken(e) => Problem::InvalidToken(e),
            Refused::Forbidden(d, _) => Problem::Forbidden(d, None),
            Refused::StoreUnavailable => Problem::StoreUnavailable,
        }
    }
}

impl Problem {
    /// The answer: for a browser (`page` is the configured look) an HTML page, for anyone
    /// else (`None`) the message in plain text.
    pub fn response(self, page: Option<&Pages>) -> Response<Body> {
        if let Problem::LogoutRejected(why) = self {
            let (status, code, description) = why.answer();
            let body = serde_json::json!({"error": code, "error_description": description});
            let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
            *r.status_mut() = status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return r;
        }
        let mut sign_in_again = None;
        let (status, title, message, www_auth): (
            StatusCode,
            &str,
            Cow<'static, str>,
            Option<HeaderValue>,
        ) = match &self {
            Problem::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "Sign-in required",
                "Sign in to continue.".into(),
                Some(HeaderValue::from_static("Bearer realm=\"portcullis\"")),
            ),
            Problem::InvalidToken(e) => {
                audit::record(Event::BearerRefused { reason: e.code() }, None);
                (
                        StatusCode::UNAUTHORIZED,
                        "Invalid token",
                        e.description().into(),
                        HeaderValue::from_str(&format!(
                            "Bearer realm=\"portcullis\", error=\"invalid_token\", error_description=\"{}\"",
                            e.description()
                        ))
                        .ok(),
                    )
            }
            Problem::Forbidden(_, who) => {
                let msg: Cow<'static, str> = match who {
                    Some(u) => {
                        sign_in_again = Some(u.sign_in_again_url.as_str());
                        format!("You are signed in as {}, but your account is not allowed to open this application. Ask its owner for access, or sign in with another account.", u.name).into()
                    }
                    None => "Your account is not allowed to open this application. Ask its owner for access.".into(),
                };
                (StatusCode::FORBIDDEN, "Access denied", msg, None)
            }
            Problem::DeniedByRule => (
                StatusCode::FORBIDDEN,
                "Access denied",
                "This address is not open to anyone.".into(),
                None,
            ),
            Problem::UntrustedCaller => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Decisions are only given to the platform's proxies.".into(),
                None,
            ),
            Problem::Login(e) => {
                // The audit line has the reason code; this one the details (the IdP's error).
                tracing::warn!(code = "login.failed", reason = %e, "login callback refused");
                audit::record(Event::LoginFailed { reason: e.code() }, None);
                let (status, msg) = match e {
                    LoginError::StateMissing | LoginError::StateMismatch => (
                        StatusCode::BAD_REQUEST,
                        "This sign-in link is invalid or has expired, or it was opened in another browser. Start again from the application.",
                    ),
                    LoginError::Replayed => (
                        StatusCode::BAD_REQUEST,
                        "This sign-in was already completed. Start again from the application.",
                    ),
                    LoginError::Denied => (
                        StatusCode::FORBIDDEN,
                        "The identity provider did not sign you in. Start again from the application.",
                    ),
                    LoginError::CodeMissing
                    | LoginError::IdToken(_)
                    | LoginError::Exchange(IdpError::Refused(_)) => (
                        StatusCode::BAD_REQUEST,
                        "Sign-in could not be completed. Start again from the application.",
                    ),
                    LoginError::Exchange(
                        IdpError::Unreachable | IdpError::ServerError(_) | IdpError::BadResponse,
                    ) => (
                        StatusCode::BAD_GATEWAY,
                        "The identity provider is not answering. Try again in a moment.",
                    ),
                    LoginError::IdpUnavailable => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The identity provider is not available. Try again in a moment.",
                    ),
                };
                (status, "Sign-in failed", msg.into(), None)
            }
            Problem::IdpUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in unavailable",
                "The identity provider is not available. Try again in a moment.".into(),
                None,
            ),
            Problem::StoreUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in temporarily unavailable",
                "Sessions can't be checked right now. Try again in a moment.".into(),
                None,
            ),
            Problem::NotReady(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Not ready",
                (*why).into(),
                None,
            ),
            // Answered above, in JSON.
            Problem::LogoutRejected(_) => unreachable!("answered before the match"),
            Problem::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Portcullis could not answer this request. Try again in a moment.".into(),
                None,
            ),
            Problem::BadRequest(why) => {
                (StatusCode::BAD_REQUEST, "Bad request", (*why).into(), None)
            }
            Problem::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "Nothing here.".into(),
                None,
            ),
            Problem::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "Method not allowed.".into(),
                None,
            ),
        };
        let request_id = with_current(|c| c.id.clone());
        let request_id = request_id.as_ref().map(RequestId::as_str);
        let mut resp = if let Some(pages) = page {
            let html = pages.render(&Page {
                status: status.as_u16(),
                title,
                message: &message,
                sign_in_again_url: sign_in_again,
                request_id,
            });
            let mut r = Response::new(Full::new(Bytes::from(html)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            // Built from checked parts (Logo::parse); should it ever not be a header value,
            // the page goes out under the strictest policy rather than none.
            let csp = HeaderValue::from_str(pages.content_security_policy())
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
            r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
            // Never framed (frame-ancestors above, and for browsers without CSP 2), never
            // sniffed as anything but HTML.
            r.headers_mut()
                .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            r.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            r
        } else {
            let text = match request_id {
                Some(id) => format!("{message}\nrequest id: {id}\n"),
                None => format!("{message}\n"),
            };
            let mut r = Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        };
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Some(w) = www_auth {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, w);
        }
        resp
    }
}
