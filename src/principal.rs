//! An authenticated caller, ready to be handed upstream: the identity plus the values of the
//! identity headers, computed once (a cached principal costs no formatting, validation or
//! allocation per request: cloning a prepared header value only bumps a reference count).

use crate::clock::UnixTime;
use crate::identity::Identity;
use http::{HeaderMap, HeaderName, HeaderValue};

/// oauth2-proxy's names for the identity headers.
pub static X_AUTH_USER: HeaderName = HeaderName::from_static("x-auth-request-user");
pub static X_AUTH_EMAIL: HeaderName = HeaderName::from_static("x-auth-request-email");
pub static X_AUTH_USERNAME: HeaderName =
    HeaderName::from_static("x-auth-request-preferred-username");
pub static X_AUTH_GROUPS: HeaderName = HeaderName::from_static("x-auth-request-groups");
pub static X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-request-access-token");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub identity: Identity,
    /// The identity headers' values (and the access token's, when it may be passed
    /// upstream), prepared once.
    pub headers: UpstreamHeaders,
    /// After this instant the principal must not be used.
    pub valid_until: UnixTime,
}

/// The headers sent upstream. A value that is not valid header text is left out, never sent
/// mangled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamHeaders {
    /// `X-Auth-Request-User/Email/Preferred-Username/Groups`, all four always present (empty
    /// when unknown: Caddy 2.6 forwards a missing copied header as literal placeholder
    /// text). A response starts as a clone of this map: no hashing or validation per request.
    pub identity: HeaderMap,
    /// `X-Auth-Request-Access-Token`, when the access token is kept.
    pub access_token: Option<HeaderValue>,
    /// `Authorization: Bearer <access token>`, when the access token is kept.
    pub authorization: Option<HeaderValue>,
}

impl Principal {
    pub fn new(identity: Identity, access_token: Option<String>, valid_until: UnixTime) -> Self {
        let groups_header = identity.groups_header();
        let value = |s: &str| HeaderValue::from_str(s).ok();
        let mut map = HeaderMap::with_capacity(4);
        for (name, text) in [
            (&X_AUTH_USER, identity.sub.as_str()),
            (&X_AUTH_EMAIL, identity.email.as_deref().unwrap_or("")),
            (
                &X_AUTH_USERNAME,
                identity.preferred_username.as_deref().unwrap_or(""),
            ),
            (&X_AUTH_GROUPS, groups_header.as_str()),
        ] {
            if let Some(v) = value(text) {
                map.insert(name.clone(), v);
            }
        }
        let headers = UpstreamHeaders {
            identity: map,
            access_token: access_token.as_deref().and_then(value),
            authorization: access_token
                .as_deref()
                .and_then(|t| value(&format!("Bearer {t}"))),
        };
        Self {
            identity,
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
        let get = |name: &HeaderName| h.identity.get(name).map(|v| v.as_bytes());
        assert_eq!(get(&X_AUTH_USER), Some(&b"user-1"[..]));
        assert_eq!(get(&X_AUTH_EMAIL), Some(&b"alice@example.com"[..]));
        assert_eq!(
            get(&X_AUTH_USERNAME),
            None,
            "a newline can't go in a header"
        );
        assert_eq!(get(&X_AUTH_GROUPS), Some(&b""[..]), "unknown: empty");
        assert_eq!(h.identity.len(), 3);
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
