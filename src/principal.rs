//! An authenticated caller, ready to be handed upstream: the identity plus the values of the
//! identity headers, computed once (a cached principal costs no formatting, validation or
//! allocation per request: cloning a prepared header value only bumps a reference count).

use crate::clock::UnixTime;
use crate::identity::{ClaimMapping, Identity};
use bytes::Bytes;
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
///
/// Kept compact because one is cached per signed-in user (`benches/cache_memory.rs`): the
/// identity headers' values are one buffer and where each ends, not a `HeaderMap` (whose
/// buckets were ~700 bytes per user) nor (name, value) pairs (~300); a response's map is
/// built from them ([`Self::identity_map`]), which costs about what cloning one did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamHeaders {
    /// The values of `X-Auth-Request-User/Email/Preferred-Username/Groups`, then of each
    /// claim header, back to back; all always present (empty when unknown: Caddy 2.6
    /// forwards a missing copied header as literal placeholder text).
    values: Bytes,
    /// Where each value ends in `values`.
    ends: Box<[u32]>,
    /// The claim headers' names (`[headers.claims]`), in the order of their values.
    claim_names: Box<[HeaderName]>,
    /// `X-Auth-Request-Access-Token`, when the access token is kept.
    pub access_token: Option<HeaderValue>,
    /// `Authorization: Bearer <token>`, when that token is kept.
    pub authorization: Option<HeaderValue>,
}

/// The identity headers every response carries, in the order of their values.
static IDENTITY_HEADERS: [&HeaderName; 4] = [
    &X_AUTH_USER,
    &X_AUTH_EMAIL,
    &X_AUTH_USERNAME,
    &X_AUTH_GROUPS,
];

impl UpstreamHeaders {
    /// The identity headers as a response's header map (a value is a slice of the shared
    /// buffer: a reference count, no copy).
    pub fn identity_map(&self) -> HeaderMap {
        let names = IDENTITY_HEADERS.into_iter().chain(self.claim_names.iter());
        let mut map = HeaderMap::with_capacity(self.ends.len() + 2);
        let mut start = 0;
        for (name, &end) in names.zip(self.ends.iter()) {
            let end = end as usize;
            // Each value was validated when the buffer was built, so this never fails.
            let value = HeaderValue::from_maybe_shared(self.values.slice(start..end))
                .unwrap_or_else(|_| HeaderValue::from_static(""));
            map.insert(name.clone(), value);
            start = end;
        }
        map
    }
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
        // Validated at startup (lowercase tokens), so none is ever skipped.
        let (claim_names, claim_texts): (Vec<HeaderName>, Vec<&str>) = claims
            .headers
            .iter()
            .filter_map(|(name, path)| {
                let text = identity
                    .claims
                    .get(path.as_str())
                    .map_or("", String::as_str);
                Some((HeaderName::from_bytes(name.as_bytes()).ok()?, text))
            })
            .unzip();
        let texts = [
            identity.user_id(claims),
            identity.email.as_deref().unwrap_or(""),
            identity.preferred_username.as_deref().unwrap_or(""),
            groups_header.as_str(),
        ]
        .into_iter()
        .chain(claim_texts)
        // Never left out, so the proxy overwrites any copy the client sent. Empty only for an
        // identity nobody should have built: every constructor refuses unsendable ones.
        .map(|text| {
            if HeaderValue::from_str(text).is_ok() {
                text
            } else {
                ""
            }
        })
        .collect::<Vec<&str>>();
        // Exactly sized: the buffer is kept as long as the principal is cached.
        let mut values = Vec::with_capacity(texts.iter().map(|t| t.len()).sum());
        let mut ends = Vec::with_capacity(texts.len());
        for text in texts {
            values.extend_from_slice(text.as_bytes());
            ends.push(u32::try_from(values.len()).unwrap_or(u32::MAX));
        }
        let value = |s: &str| HeaderValue::from_str(s).ok();
        let headers = UpstreamHeaders {
            values: Bytes::from(values),
            ends: ends.into(),
            claim_names: claim_names.into(),
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
        let map = h.identity_map();
        let get = |name: &HeaderName| map.get(name).map(|v| v.as_bytes());
        assert_eq!(get(&X_AUTH_USER), Some(&b"user-1"[..]));
        assert_eq!(get(&X_AUTH_EMAIL), Some(&b"alice@example.com"[..]));
        assert_eq!(
            get(&X_AUTH_USERNAME),
            Some(&b""[..]),
            "never left out (such an identity is refused before it gets here)"
        );
        assert_eq!(get(&X_AUTH_GROUPS), Some(&b"dev%0Aops"[..]));
        assert_eq!(map.len(), 4);
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
        assert_eq!(without.headers.identity_map().len(), 4);
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
                .identity_map()
                .get("x-auth-request-user")
                .map(|v| v.as_bytes()),
            Some(&b"u-1"[..]),
            "a session made under another user_id_claim sends sub"
        );
        let p = Principal::new(id, PassedTokens::default(), 100, &claims);
        let map = p.headers.identity_map();
        let get = |name: &str| map.get(name).map(|v| v.as_bytes());
        assert_eq!(get("x-auth-request-user"), Some(&b"E1234"[..]));
        assert_eq!(get("x-tenant"), Some(&b"acme"[..]));
        assert_eq!(
            get("x-cost-center"),
            Some(&b""[..]),
            "absent claims go out empty, so the proxy overwrites a client's copy"
        );
        assert_eq!(map.len(), 6);
    }
}
