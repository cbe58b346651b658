//! Audit events: one structured log line for every security-relevant outcome, under the log
//! target `audit` (so `PORTCULLIS_LOG=warn,audit=info` keeps only them). Each names the event
//! (`event`, a stable name from [`Event::name`]), a stable `reason` code where there is one, the
//! user id, and the request it happened in: `request_id`, `client_ip`, `host`, `path` (from
//! [`crate::request_context`]). Never a token, a cookie, a code or a secret: the fields are
//! the ones below and nothing else. The names are listed in the README ("Audit events").

use crate::request_context::with_current;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A browser completed a login; a session was started.
    LoginSucceeded { sid: Option<&'a str> },
    /// A login callback was refused.
    LoginFailed { reason: &'static str },
    /// A user signed out (`user` is `None` when the request held no session).
    SignedOut,
    /// The IdP ended sessions by back-channel logout (`sid` and/or the user's `sub`).
    BackchannelLogout { sid: Option<&'a str> },
    /// A session's refresh at the IdP failed; `still_valid`: its tokens are not yet expired,
    /// so the request passed anyway.
    RefreshFailed {
        reason: &'static str,
        still_valid: bool,
    },
    /// A bearer token was presented and refused.
    BearerRefused { reason: &'static str },
    /// A request was refused by the access policy: `rule` is the deciding rule.
    Denied { rule: &'a str, reason: &'static str },
    /// A decision was asked by a caller outside `trusted_proxies`.
    UntrustedCaller,
}

impl Event<'_> {
    /// The stable name, the `event` field of the log line.
    pub fn name(&self) -> &'static str {
        match self {
            Event::LoginSucceeded { .. } => "login.succeeded",
            Event::LoginFailed { .. } => "login.failed",
            Event::SignedOut => "sign_out",
            Event::BackchannelLogout { .. } => "logout.backchannel",
            Event::RefreshFailed { .. } => "session.refresh_failed",
            Event::BearerRefused { .. } => "bearer.refused",
            Event::Denied { .. } => "request.denied",
            Event::UntrustedCaller => "request.untrusted_caller",
        }
    }

    fn reason(&self) -> Option<&'static str> {
        match self {
            Event::LoginFailed { reason }
            | Event::RefreshFailed { reason, .. }
            | Event::BearerRefused { reason }
            | Event::Denied { reason, .. } => Some(reason),
            Event::LoginSucceeded { .. }
            | Event::SignedOut
            | Event::BackchannelLogout { .. }
            | Event::UntrustedCaller => None,
        }
    }

    /// Every event name, for the README's table (kept in step by a test).
    pub const NAMES: [&'static str; 8] = [
        "login.succeeded",
        "login.failed",
        "sign_out",
        "logout.backchannel",
        "session.refresh_failed",
        "bearer.refused",
        "request.denied",
        "request.untrusted_caller",
    ];
}

/// Writes the audit line of `event` for `user` (the user id; `None` when unknown), with the
/// current request's id, client address, host and path.
pub fn record(event: Event<'_>, user: Option<&str>) {
    let (rule, sid, still_valid) = match event {
        Event::Denied { rule, .. } => (Some(rule), None, None),
        Event::LoginSucceeded { sid } | Event::BackchannelLogout { sid } => (None, sid, None),
        Event::RefreshFailed { still_valid, .. } => (None, None, Some(still_valid)),
        _ => (None, None, None),
    };
    let emit = |request_id: Option<&str>,
                client_ip: Option<std::net::IpAddr>,
                host: Option<&str>,
                path: Option<&str>| {
        tracing::info!(
            target: "audit",
            event = event.name(),
            reason = event.reason(),
            user,
            rule,
            sid,
            still_valid,
            request_id,
            client_ip = client_ip.map(display),
            host,
            path,
            "audit"
        );
    };
    let in_request = with_current(|c| {
        emit(
            Some(c.id.as_str()),
            c.client_ip,
            c.host.as_deref(),
            c.path.as_deref(),
        )
    });
    if in_request.is_none() {
        emit(None, None, None, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_listed_once_each() {
        let all = [
            Event::LoginSucceeded { sid: None },
            Event::LoginFailed { reason: "x" },
            Event::SignedOut,
            Event::BackchannelLogout { sid: None },
            Event::RefreshFailed {
                reason: "x",
                still_valid: false,
            },
            Event::BearerRefused { reason: "x" },
            Event::Denied {
                rule: "r",
                reason: "x",
            },
            Event::UntrustedCaller,
        ];
        let names: Vec<&str> = all.iter().map(Event::name).collect();
        assert_eq!(names, Event::NAMES);
    }

    #[test]
    fn the_readme_lists_every_event() {
        let readme = include_str!("../README.md");
        for name in Event::NAMES {
            assert!(
                readme.contains(&format!("`{name}`")),
                "README.md does not document the audit event `{name}`"
            );
        }
    }
}
