//! Per-middleware constraints, oauth2-proxy compatible: the decision endpoint's own query
//! (`/oauth2/forward-auth?allowed_groups=a,b&allowed_roles=r&allowed_emails=x@y&allowed_email_domains=d`)
//! or, for Envoy, `;`-parameters after the ext_authz prefix
//! (`/oauth2/ext-authz;allowed_groups=a,b;allowed_roles=r/…`). One Traefik Middleware per app
//! then carries that app's audience.
//!
//! Constraints only narrow: the user must pass the rule (or `[authz]`) **and** them. Lists are
//! comma-separated and a repeated parameter adds to its list. An unknown parameter is an error
//! (a typo such as `allowed_group` must not silently allow everyone).

use crate::authz::AuthzPolicy;
use std::sync::Arc;

/// Constraint texts parsed so far and their policies. A platform has one text per Traefik
/// Middleware, sent on every request, so a few entries cover it: the lookup is a lock-free
/// scan comparing strings (cheaper than hashing into a concurrent map). Bounded: past
/// [`ParsedConstraints::CAPACITY`] texts, new ones are parsed every time.
#[derive(Default)]
pub struct ParsedConstraints(arc_swap::ArcSwap<Vec<(Box<str>, Arc<AuthzPolicy>)>>);

impl ParsedConstraints {
    pub const CAPACITY: usize = 64;

    /// The policy of `raw` (`parse` runs on a miss; errors and empty texts are not kept).
    pub fn get_or_parse(
        &self,
        raw: &str,
        parse: impl FnOnce(&str) -> Result<Option<AuthzPolicy>, ConstraintError>,
    ) -> Result<Option<Arc<AuthzPolicy>>, ConstraintError> {
        if let Some((_, p)) = self.0.load().iter().find(|(k, _)| &**k == raw) {
            return Ok(Some(p.clone()));
        }
        let Some(policy) = parse(raw)? else {
            return Ok(None);
        };
        let policy = Arc::new(policy);
        self.0.rcu(|entries| {
            let mut next = Vec::clone(entries);
            if next.len() < Self::CAPACITY && !next.iter().any(|(k, _)| &**k == raw) {
                next.push((raw.into(), policy.clone()));
            }
            next
        });
        Ok(Some(policy))
    }
}

/// Why a constraint string was refused; the message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    #[error(
        "unknown parameter {0:?} (allowed_groups, allowed_roles, allowed_emails, allowed_email_domains)"
    )]
    UnknownParameter(String),
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
}

/// Parses `name=value` pairs (already split); `None` when no constraint is set.
fn build<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Result<Option<AuthzPolicy>, ConstraintError> {
    let (mut groups, mut roles, mut emails, mut domains) = (vec![], vec![], vec![], vec![]);
    let mut any = false;
    for (k, v) in pairs {
        let list = match &*k {
            "allowed_groups" => &mut groups,
            "allowed_roles" => &mut roles,
            "allowed_emails" => &mut emails,
            "allowed_email_domains" => &mut domains,
            _ => return Err(ConstraintError::UnknownParameter(k.into_owned())),
        };
        any = true;
        list.extend(
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    if !any {
        return Ok(None);
    }
    if domains.is_empty() {
        domains.push("*".into());
    }
    AuthzPolicy::new(domains, groups, roles, emails)
        .map(Some)
        .map_err(|(key, why)| {
            let key = if key == "email_domains" {
                "allowed_email_domains"
            } else {
                key
            };
            ConstraintError::Invalid(key, why)
        })
}

/// From a query string (`a=b&c=d`, form-encoded).
pub fn from_query(query: &str) -> Result<Option<AuthzPolicy>, ConstraintError> {
    build(url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| !k.is_empty()))
}

/// From `;`-separated parameters (`allowed_groups=a,b;allowed_roles=r`, percent-encoded).
pub fn from_path_parameters(params: &str) -> Result<Option<AuthzPolicy>, ConstraintError> {
    let decode = |s: &'_ str| -> String {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    build(
        params
            .split(';')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k).into(), decode(v).into()),
                None => (decode(p).into(), String::new().into()),
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Denied;
    use crate::identity::Identity;

    fn alice() -> Identity {
        Identity {
            sub: "a".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            groups: vec!["admins".into()],
            realm_roles: vec!["platform-user".into()],
            ..Default::default()
        }
    }

    #[test]
    fn query_constraints_narrow() {
        assert_eq!(from_query(""), Ok(None));
        let p = from_query("allowed_groups=ops,admins").unwrap().unwrap();
        assert_eq!(p.check(&alice()), Ok(()));
        let p = from_query("allowed_groups=ops").unwrap().unwrap();
        assert_eq!(p.check(&alice()), Err(Denied::GroupOrRole));
        let p = from_query("allowed_groups=ops&allowed_roles=platform-user")
            .unwrap()
            .unwrap();
        assert_eq!(p.check(&alice()), Ok(()));
        let p = from_query("allowed_email_domains=example.org")
            .unwrap()
            .unwrap();
        assert_eq!(p.check(&alice()), Err(Denied::EmailDomain));
        let p = from_query("allowed_emails=alice%40example.com")
            .unwrap()
            .unwrap();
        assert_eq!(p.check(&alice()), Ok(()));
        // Repeated parameters add up.
        let p = from_query("allowed_groups=ops&allowed_groups=admins")
            .unwrap()
            .unwrap();
        assert_eq!(p.check(&alice()), Ok(()));
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        assert_eq!(
            from_query("allowed_group=admins"),
            Err(ConstraintError::UnknownParameter("allowed_group".into()))
        );
        assert!(matches!(
            from_query("allowed_roles=a:b:c"),
            Err(ConstraintError::Invalid("allowed_roles", _))
        ));
        assert!(matches!(
            from_query("allowed_emails=nobody"),
            Err(ConstraintError::Invalid("allowed_emails", _))
        ));
    }

    #[test]
    fn parsed_constraints_are_kept_and_bounded() {
        let cache = ParsedConstraints::default();
        let a = cache
            .get_or_parse("allowed_groups=admins", from_query)
            .unwrap()
            .unwrap();
        let again = cache
            .get_or_parse("allowed_groups=admins", |_| panic!("parsed twice"))
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        assert!(cache.get_or_parse("allowed_group=x", from_query).is_err());
        assert_eq!(cache.get_or_parse("", from_query), Ok(None));
        for i in 0..ParsedConstraints::CAPACITY + 10 {
            let q = format!("allowed_groups=g{i}");
            assert!(cache.get_or_parse(&q, from_query).unwrap().is_some());
        }
        assert_eq!(cache.0.load().len(), ParsedConstraints::CAPACITY);
    }

    #[test]
    fn path_parameters_for_envoy() {
        let p = from_path_parameters("allowed_groups=ops;allowed_roles=platform-user")
            .unwrap()
            .unwrap();
        assert_eq!(p.check(&alice()), Ok(()));
        let p = from_path_parameters("allowed_groups=ops%2Cnobody")
            .unwrap()
            .unwrap();
        assert_eq!(p.check(&alice()), Err(Denied::GroupOrRole));
        assert_eq!(from_path_parameters(""), Ok(None));
        assert!(from_path_parameters("rd=x").is_err());
    }
}
