//! Authorization: may this authenticated user reach the app? Applies the same `[authz]` rules
//! (or a `[[rules]]` entry's) to session and bearer identities. Groups, roles and exact email
//! addresses are alternatives: a user in any listed group, **or** holding any listed role,
//! **or** with a listed (verified) address passes. Email domains always apply.

use crate::identity::Identity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzPolicy {
    /// `None` = any email (or none at all).
    email_domains: Option<Vec<String>>,
    groups: Vec<String>,
    roles: Vec<RoleRule>,
    /// Exact addresses, lowercase; only a verified email matches.
    emails: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RoleRule {
    Realm(String),
    Client(String, String),
}

/// Why a user was refused; shown to the user only as a generic 403 page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("email domain not allowed")]
    EmailDomain,
    #[error("not in an allowed group or role, nor an allowed address")]
    GroupOrRole,
}

impl Denied {
    /// The stable reason code of the `request.denied` audit event.
    pub fn code(self) -> &'static str {
        match self {
            Denied::EmailDomain => "email_domain",
            Denied::GroupOrRole => "group_or_role",
        }
    }
}

impl AuthzPolicy {
    /// Errors name the offending key: `(key, reason)`.
    pub fn new(
        email_domains: Vec<String>,
        groups: Vec<String>,
        roles: Vec<String>,
        emails: Vec<String>,
    ) -> Result<Self, (&'static str, String)> {
        let email_domains = if email_domains.iter().any(|d| d == "*") {
            None
        } else {
            if email_domains.is_empty() {
                return Err((
                    "email_domains",
                    "is empty: nobody could log in (use [\"*\"] for any)".into(),
                ));
            }
            Some(
                email_domains
                    .into_iter()
                    .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
                    .collect(),
            )
        };
        let mut rules = Vec::new();
        for r in roles {
            let rule = match r.split_once(':') {
                Some((c, n)) if !c.is_empty() && !n.is_empty() && !n.contains(':') => {
                    RoleRule::Client(c.into(), n.into())
                }
                None if !r.is_empty() => RoleRule::Realm(r),
                _ => {
                    return Err((
                        "allowed_roles",
                        format!("{r:?} must be ROLE or CLIENT:ROLE"),
                    ));
                }
            };
            rules.push(rule);
        }
        let mut exact = Vec::with_capacity(emails.len());
        for e in emails {
            let e = e.trim().to_ascii_lowercase();
            if email_domain(&e).is_none() {
                return Err((
                    "allowed_emails",
                    format!("{e:?} is not an address like user@example.com"),
                ));
            }
            exact.push(e);
        }
        Ok(Self {
            emails: exact,
            email_domains,
            groups: groups
                .into_iter()
                .map(|g| g.trim_start_matches('/').to_string())
                .collect(),
            roles: rules,
        })
    }

    pub fn allow_all() -> Self {
        Self {
            email_domains: None,
            groups: Vec::new(),
            roles: Vec::new(),
            emails: Vec::new(),
        }
    }

    pub fn check(&self, id: &Identity) -> Result<(), Denied> {
        // An unverified address proves nothing: anyone can type any email in a profile.
        let verified = id.email.as_deref().filter(|_| id.email_verified);
        if let Some(domains) = &self.email_domains {
            let domain = verified.and_then(email_domain).ok_or(Denied::EmailDomain)?;
            if !domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
                return Err(Denied::EmailDomain);
            }
        }
        if self.groups.is_empty() && self.roles.is_empty() && self.emails.is_empty() {
            return Ok(());
        }
        let listed = verified.is_some_and(|e| {
            email_domain(e).is_some() && self.emails.iter().any(|x| x.eq_ignore_ascii_case(e))
        });
        let in_group = self
            .groups
            .iter()
            .any(|g| id.groups.iter().any(|ug| ug == g));
        let has_role = self.roles.iter().any(|rule| match rule {
            RoleRule::Realm(n) => id.realm_roles.iter().any(|r| r == n),
            RoleRule::Client(c, n) => id.client_roles.iter().any(|(uc, ur)| uc == c && ur == n),
        });
        if in_group || has_role || listed {
            Ok(())
        } else {
            Err(Denied::GroupOrRole)
        }
    }
}

/// The domain of an address with exactly one `@` and a non-empty local part; anything else
/// (`a@b@evil.com`, `@x`, `x@`) has no domain.
fn email_domain(email: &str) -> Option<&str> {
    let (local, domain) = email.split_once('@')?;
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || email.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return None;
    }
    Some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            sub: "a".into(),
            email: Some("alice@Example.com".into()),
            email_verified: true,
            groups: vec!["admins".into()],
            realm_roles: vec!["platform-user".into()],
            client_roles: vec![("portcullis".into(), "reader".into())],
            ..Default::default()
        }
    }

    #[test]
    fn open_policy_allows_everyone() {
        assert_eq!(AuthzPolicy::allow_all().check(&Identity::default()), Ok(()));
    }

    #[test]
    fn email_domains_need_exactly_one_at() {
        let p = AuthzPolicy::new(vec!["example.com".into()], vec![], vec![], vec![]).unwrap();
        assert_eq!(p.check(&alice()), Ok(()));
        for bad in [
            "a@evil.com",
            "a@example.com@evil.com",
            "a@evil.com@example.com",
            "@example.com",
            "example.com",
            "a @example.com",
        ] {
            let id = Identity {
                email: Some(bad.into()),
                ..alice()
            };
            assert_eq!(p.check(&id), Err(Denied::EmailDomain), "{bad}");
        }
        assert_eq!(
            p.check(&Identity {
                email: None,
                ..alice()
            }),
            Err(Denied::EmailDomain)
        );
    }

    #[test]
    fn unverified_emails_never_match_a_domain() {
        let p = AuthzPolicy::new(vec!["example.com".into()], vec![], vec![], vec![]).unwrap();
        let unverified = Identity {
            email_verified: false,
            ..alice()
        };
        assert_eq!(p.check(&unverified), Err(Denied::EmailDomain));
        assert_eq!(AuthzPolicy::allow_all().check(&unverified), Ok(()));
    }

    #[test]
    fn groups_or_roles() {
        let by_group =
            AuthzPolicy::new(vec!["*".into()], vec!["/admins".into()], vec![], vec![]).unwrap();
        assert_eq!(by_group.check(&alice()), Ok(()));
        assert_eq!(
            by_group.check(&Identity {
                groups: vec![],
                ..alice()
            }),
            Err(Denied::GroupOrRole)
        );
        let by_role = AuthzPolicy::new(
            vec!["*".into()],
            vec!["ops".into()],
            vec!["platform-user".into()],
            vec![],
        )
        .unwrap();
        assert_eq!(
            by_role.check(&Identity {
                groups: vec![],
                ..alice()
            }),
            Ok(())
        );
        let by_client_role = AuthzPolicy::new(
            vec!["*".into()],
            vec![],
            vec!["portcullis:reader".into()],
            vec![],
        )
        .unwrap();
        assert_eq!(by_client_role.check(&alice()), Ok(()));
        let other_client = AuthzPolicy::new(
            vec!["*".into()],
            vec![],
            vec!["other:reader".into()],
            vec![],
        )
        .unwrap();
        assert_eq!(other_client.check(&alice()), Err(Denied::GroupOrRole));
    }

    #[test]
    fn exact_addresses_are_an_alternative_and_must_be_verified() {
        let p = AuthzPolicy::new(
            vec!["*".into()],
            vec!["ops".into()],
            vec![],
            vec!["Alice@example.com".into()],
        )
        .unwrap();
        assert_eq!(p.check(&alice()), Ok(()));
        let unverified = Identity {
            email_verified: false,
            ..alice()
        };
        assert_eq!(p.check(&unverified), Err(Denied::GroupOrRole));
        let other = Identity {
            email: Some("mallory@example.com".into()),
            ..alice()
        };
        assert_eq!(p.check(&other), Err(Denied::GroupOrRole));
        assert!(AuthzPolicy::new(vec!["*".into()], vec![], vec![], vec!["a@b@c".into()]).is_err());
    }

    #[test]
    fn bad_rules_are_rejected() {
        assert!(AuthzPolicy::new(vec![], vec![], vec![], vec![]).is_err());
        assert!(AuthzPolicy::new(vec!["*".into()], vec![], vec!["a:b:c".into()], vec![]).is_err());
        assert!(AuthzPolicy::new(vec!["*".into()], vec![], vec![":x".into()], vec![]).is_err());
    }
}
