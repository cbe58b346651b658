//! An authenticated caller, ready to be handed upstream: the identity plus the values of the
//! identity headers, computed once (a cached principal costs no formatting, validation or
//! allocation per request: cloning a prepared header value only bumps a reference count).

use crate::clock::UnixTime;
use crate::identity::Identity;
use http::HeaderValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub identity: Identity,
    /// `X-Auth-Request-Groups`.
    pub groups_header: String,
    /// The access token, when it may be passed upstream.
    pub access_token: Option<String>,
    /// The identity headers' values, prepared once.
    pub headers: UpstreamHeaders,
    /// After this instant the principal must not be used.
    pub valid_until: UnixTime,
}

/// Values of the headers sent upstream. `None` where the text is not valid in a header (such a
/// header is left out, never sent mangled); an unknown value is an empty header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamHeaders {
    pub user: Option<HeaderValue>,
    pub email: Option<HeaderValue>,
    pub preferred_username: Option<HeaderValue>,
    pub groups: Option<HeaderValue>,
    /// `X-Auth-Request-Access-Token`, when the access token is kept.
    pub access_token: Option<HeaderValue>,
    /// `Authorization: Bearer <access token>`, when the access token is kept.
    pub authorization: Option<HeaderValue>,
}

impl Principal {
    pub fn new(identity: Identity, access_token: Option<String>, valid_until: UnixTime) -> Self {
        let groups_header = identity.groups_header();
        let value = |s: &str| HeaderValue::from_str(s).ok();
        let headers = UpstreamHeaders {
            user: value(&identity.sub),
            email: value(identity.email.as_deref().unwrap_or("")),
            preferred_username: value(identity.preferred_username.as_deref().unwrap_or("")),
            groups: value(&groups_header),
            access_token: access_token.as_deref().and_then(value),
            authorization: access_token
                .as_deref()
                .and_then(|t| value(&format!("Bearer {t}"))),
        };
        Self {
            identity,
            groups_header,
            access_token,
            headers,
            valid_until,
        }
    }
}

impl crate::verified_cache::ValidUntil for Principal {
    fn valid_until(&self) -> UnixTime {
        self.valid_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_prepared_and_invalid_text_is_left_out() {
        let id = Identity {
            sub: "user-1".into(),
            email: Some("alice@example.com".into()),
            preferred_username: Some("ali\nce".into()),
            ..Default::default()
        };
        let p = Principal::new(id, Some("tok".into()), 100);
        let h = &p.headers;
        assert_eq!(h.user.as_ref().map(|v| v.as_bytes()), Some(&b"user-1"[..]));
        assert_eq!(
            h.email.as_ref().map(|v| v.as_bytes()),
            Some(&b"alice@example.com"[..])
        );
        assert_eq!(h.preferred_username, None, "a newline can't go in a header");
        assert_eq!(h.groups.as_ref().map(|v| v.as_bytes()), Some(&b""[..]));
        assert_eq!(
            h.access_token.as_ref().map(|v| v.as_bytes()),
            Some(&b"tok"[..])
        );
        assert_eq!(
            h.authorization.as_ref().map(|v| v.as_bytes()),
            Some(&b"Bearer tok"[..])
        );
        let without = Principal::new(Identity::default(), None, 100);
        assert_eq!(without.headers.access_token, None);
        assert_eq!(without.headers.authorization, None);
    }
}
