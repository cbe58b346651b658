//! An authenticated caller, ready to be handed upstream: the identity plus the values of the
//! identity headers, computed once (a cached principal costs no formatting, validation or
//! allocation per request: cloning a prepared header value only bumps a reference count).

use crate::clock::UnixTime;
use crate::identity::{ClaimMapping, Identity};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;

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

/// The signed-in user, as a request extension for the handlers behind
/// [`crate::ForwardAuthLayer`] (`request.extensions().get::<SignedIn>()`). Gives the identity
/// only; the tokens reach the app only in the headers the configuration allows.
#[derive(Debug, Clone)]
pub struct SignedIn(pub(crate) Arc<Principal>);

impl SignedIn {
    pub fn identity(&self) -> &Identity {
        &self.0.identity
    }
}

/// The headers sent upstream. The four identity headers, and each `[headers.claims]` header,
/// are always present: an identity whose
/// `sub`, `email` or `preferred_username` can't be sent exactly is refused before it gets here
/// ([`Identity::unsendable_claim`]), and group names are encoded so that the groups header is
/// always valid ([`Identity::groups_header`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamHeaders {
    /// `X-Auth-Request-User/Email/Preferred-Username/Groups` and the claim headers, all always
    /// present (empty when unknown: Caddy 2.6 forwards a missing copied header as literal placeholder
    /// text). A response starts as a clone of this map: no hashing or validation per request.
    pub identity: HeaderMap,
    /// `X-Auth-Request-Access-Token`, when the access token is kept.
    pub access_token: Option<HeaderValue>,
    /// `Authorization: Bearer <token>`, when that token is kept.
    pub authorization: Option<HeaderValue>,
}

/// The tokens a principal may hand upstream, when the configuration passes them.
#[derive(Debug, Clone, Default)]
pub struct PassedTokens {
    /// For `X-Auth-Request-Access-Token`.
    pub access: Option<String>,
    /// For `Authorization: Bearer` (the access token, or the ID token: `headers.authorization_token`).
    pub authorization: Option<String>,
}

impl Principal {
    /// `claims`: which claim headers to send ([`ClaimMapping::headers`]); their values were
    /// read into the identity when it was built.
    pub fn new(
        identity: Identity,
        tokens: PassedTokens,
        valid_until: UnixTime,
        claims: &ClaimMapping,
    ) -> Self {
        let groups_header = identity.groups_header();
        let value = |s: &str| HeaderValue::from_str(s).ok();
        let mut map = HeaderMap::with_capacity(4 + claims.headers.len());
        // Validated at startup (lowercase tokens), so none is ever skipped.
        let claim_headers: Vec<(HeaderName, &str)> = claims
            .headers
            .iter()
            .filter_map(|(name, path)| {
                let text = identity
                    .claims
                    .get(path.as_str())
                    .map_or("", String::as_str);
                Some((HeaderName::from_bytes(name.as_bytes()).ok()?, text))
            })
            .collect();
        for (name, text) in [
            (X_AUTH_USER.clone(), identity.user_id(claims)),
            (
                X_AUTH_EMAIL.clone(),
                identity.email.as_deref().unwrap_or(""),
            ),
            (
                X_AUTH_USERNAME.clone(),
                identity.preferred_username.as_deref().unwrap_or(""),
            ),
            (X_AUTH_GROUPS.clone(), groups_header.as_str()),
        ]
        .into_iter()
        .chain(claim_headers)
        {
            // Never left out, so the proxy overwrites any copy the client sent. Empty only for
            // an identity nobody should have built: every constructor refuses unsendable ones.
            let v = value(text).unwrap_or_else(|| HeaderValue::from_static(""));
            map.insert(name, v);
        }
        let headers = UpstreamHeaders {
            identity: map,
            access_token: tokens.access.as_deref().and_then(value),
            authorization: tokens
                .authorization
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

impl crate::token::verified_cache::ValidUntil for Principal {
    fn valid_until(&self) -> UnixTime {
        self.valid_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_prepared_and_the_four_identity_headers_are_always_sent() {
        let id = Identity {
            sub: "user-1".into(),
            email: Some("alice@example.com".into()),
            preferred_username: Some("ali\nce".into()),
            groups: vec!["dev\nops".into()],
            ..Default::default()
        };
        assert_eq!(id.unsendable_claim(), Some("preferred_username"));
        let p = Principal::new(
            id,
            PassedTokens {
                access: Some("tok".into()),
                authorization: Some("tok".into()),
            },
            100,
            &ClaimMapping::default(),
        );
        let h = &p.headers;
        let get = |name: &HeaderName| h.identity.get(name).map(|v| v.as_bytes());
        assert_eq!(get(&X_AUTH_USER), Some(&b"user-1"[..]));
        assert_eq!(get(&X_AUTH_EMAIL), Some(&b"alice@example.com"[..]));
        assert_eq!(
            get(&X_AUTH_USERNAME),
            Some(&b""[..]),
            "never left out (such an identity is refused before it gets here)"
        );
        assert_eq!(get(&X_AUTH_GROUPS), Some(&b"dev%0Aops"[..]));
        assert_eq!(h.identity.len(), 4);
        assert_eq!(
            h.access_token.as_ref().map(|v| v.as_bytes()),
            Some(&b"tok"[..])
        );
        assert_eq!(
            h.authorization.as_ref().map(|v| v.as_bytes()),
            Some(&b"Bearer tok"[..])
        );
        let without = Principal::new(
            Identity::default(),
            PassedTokens::default(),
            100,
            &ClaimMapping::default(),
        );
        assert_eq!(without.headers.access_token, None);
        assert_eq!(without.headers.authorization, None);
        assert_eq!(without.headers.identity.len(), 4);
    }

    #[test]
    fn claim_headers_are_always_sent_and_the_user_id_claim_is_the_user() {
        use crate::identity::ClaimPath;
        let claims = ClaimMapping {
            user_id: ClaimPath::parse("employee_id").unwrap(),
            headers: vec![
                ("x-tenant".into(), ClaimPath::parse("tenant").unwrap()),
                ("x-cost-center".into(), ClaimPath::parse("org.cc").unwrap()),
            ],
            ..ClaimMapping::default()
        };
        let id = Identity {
            sub: "u-1".into(),
            user: Some(("employee_id".into(), "E1234".into())),
            claims: [("tenant".to_string(), "acme".to_string())].into(),
            ..Default::default()
        };
        let standard = Principal::new(
            id.clone(),
            PassedTokens::default(),
            100,
            &ClaimMapping::default(),
        );
        assert_eq!(
            standard
                .headers
                .identity
                .get("x-auth-request-user")
                .map(|v| v.as_bytes()),
            Some(&b"u-1"[..]),
            "a session made under another user_id_claim sends sub"
        );
        let p = Principal::new(id, PassedTokens::default(), 100, &claims);
        let get = |name: &str| p.headers.identity.get(name).map(|v| v.as_bytes());
        assert_eq!(get("x-auth-request-user"), Some(&b"E1234"[..]));
        assert_eq!(get("x-tenant"), Some(&b"acme"[..]));
        assert_eq!(
            get("x-cost-center"),
            Some(&b""[..]),
            "absent claims go out empty, so the proxy overwrites a client's copy"
        );
        assert_eq!(p.headers.identity.len(), 6);
    }
}
