//! Access rules (`[[rules]]`): which requests are public, which are refused to everyone, and
//! which groups, roles or addresses a route needs. Ordered; the first rule whose hosts, paths
//! and methods all match decides, and a request no rule matches gets `[authz]`.
//!
//! The attacker controls how the path is spelled, so the rule engine never trusts one reading
//! of it: [`path::forwarded_path`] returns every reading that some server may serve, and
//! [`AccessRules::evaluate`] requires what **every** reading requires. Whatever is uncertain —
//! an ambiguous path, or a request that lacks its forwarded host, path or method — is never
//! given a `public` rule, so it never gets a more permissive answer than it would with every
//! `public` rule removed, and a `deny` rule is never escaped by another spelling of its path.
//!
//! Pure: plain strings in, a [`Verdict`] out.

pub mod constraints;
pub mod glob;
pub mod host;
pub mod path;

use crate::authz::{AuthzPolicy, Denied};
use crate::identity::Identity;
use glob::PathGlob;
use host::HostPattern;
use path::{ForwardedPath, PathError};
use std::borrow::Cow;

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Passes without credentials; identity headers are added when valid ones come along.
    Public,
    /// Refused to everyone, signed in or not (403).
    Deny,
    /// Needs a signed-in user who passes this policy.
    Authenticate(AuthzPolicy),
}

/// One `[[rules]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// Empty = any host.
    pub hosts: Vec<HostPattern>,
    /// Empty = any path.
    pub paths: Vec<PathGlob>,
    /// Upper case; empty = any method.
    pub methods: Vec<String>,
    pub action: Action,
    /// `login_redirect` (default true): a browser without a session is sent to sign in. False
    /// for an API (oauth2-proxy's `--api-route`): every request without credentials gets 401.
    pub login_redirect: bool,
}

/// The ordered rules, and what applies when none matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRules {
    rules: Vec<Rule>,
    /// `[authz]`.
    default: AuthzPolicy,
    /// `[authz] skip_preflight`: CORS preflights pass unless a `deny` rule applies.
    skip_preflight: bool,
}

/// Which part of the configuration decided; bounded (rule names come from the config), so it
/// can label metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// The rule at this index.
    Rule(usize),
    /// No rule matched: `[authz]`.
    Default,
    /// A CORS preflight let through by `skip_preflight`.
    Preflight,
}

/// What the rules require of one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'r> {
    Public(Decider),
    Deny(Decider),
    /// A signed-in user who passes every policy listed (one, unless the request was uncertain
    /// and several rules may apply).
    Authenticate {
        decider: Decider,
        policies: Policies<'r>,
        /// Whether a browser without credentials is sent to sign in (every rule that may
        /// apply allows it), or gets 401.
        login_redirect: bool,
    },
}

impl Verdict<'_> {
    pub fn decider(&self) -> Decider {
        match self {
            Verdict::Public(d) | Verdict::Deny(d) => *d,
            Verdict::Authenticate { decider, .. } => *decider,
        }
    }

    /// Whether a browser without credentials is sent to sign in rather than answered 401.
    pub fn login_redirect(&self) -> bool {
        match self {
            Verdict::Authenticate { login_redirect, .. } => *login_redirect,
            Verdict::Public(_) | Verdict::Deny(_) => true,
        }
    }
}

/// The policies an identity must all pass.
#[derive(Debug, PartialEq, Eq)]
pub enum Policies<'r> {
    One(&'r AuthzPolicy),
    All(Vec<&'r AuthzPolicy>),
}

impl Policies<'_> {
    pub fn check(&self, id: &Identity) -> Result<(), Denied> {
        match self {
            Policies::One(p) => p.check(id),
            Policies::All(all) => all.iter().try_for_each(|p| p.check(id)),
        }
    }
}

/// What is known of the request being asked about, from the proxy's forwarded headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget<'a> {
    /// Normalised host (lower case, no port, no trailing dot); `None` when not sent or unusable.
    pub host: Option<Cow<'a, str>>,
    /// The forwarded method; `None` when not sent.
    pub method: Option<&'a str>,
    pub path: TargetPath<'a>,
    /// `OPTIONS` with `Origin` and `Access-Control-Request-Method`: a CORS preflight.
    pub preflight: bool,
}

/// The path part of the [`RequestTarget`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPath<'a> {
    /// No `X-Forwarded-Uri`: nothing is known.
    Unknown,
    /// One reading, in normal form.
    Clean(Cow<'a, str>),
    /// Every reading some server may serve, in normal form.
    Ambiguous(Vec<String>),
}

impl<'a> RequestTarget<'a> {
    /// From the forwarded values as received. A path that no server should accept (control
    /// characters, bad escapes, invalid UTF-8) is an error: the request is answered 400.
    pub fn new(
        host: Option<&'a str>,
        method: Option<&'a str>,
        uri: Option<&'a str>,
        preflight_headers: bool,
    ) -> Result<Self, PathError> {
        let path = match uri {
            None => TargetPath::Unknown,
            Some(uri) => match path::forwarded_path(uri)? {
                ForwardedPath::Clean(p) => TargetPath::Clean(p),
                ForwardedPath::Ambiguous(all) => TargetPath::Ambiguous(all),
            },
        };
        let method = method.map(str::trim).filter(|m| !m.is_empty());
        Ok(Self {
            host: host.and_then(host::normal_host),
            preflight: preflight_headers
                && method.is_some_and(|m| m.eq_ignore_ascii_case("OPTIONS")),
            method,
            path,
        })
    }

    /// Whether anything a rule matches on is unknown or has several readings.
    fn uncertain(&self) -> bool {
        self.host.is_none() || self.method.is_none() || !matches!(self.path, TargetPath::Clean(_))
    }
}

/// Whether a rule applies to a request (or to one reading of its path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    No,
    /// Something the rule looks at is unknown.
    Maybe,
    Yes,
}

impl Match {
    fn and(self, other: Match) -> Match {
        match (self, other) {
            (Match::No, _) | (_, Match::No) => Match::No,
            (Match::Yes, Match::Yes) => Match::Yes,
            _ => Match::Maybe,
        }
    }
}

impl Rule {
    /// Does this rule apply to `target`, whose path reads as `path` (`None` = unknown)?
    fn matches(&self, target: &RequestTarget<'_>, path: Option<&str>) -> Match {
        let host = if self.hosts.is_empty() {
            Match::Yes
        } else {
            match &target.host {
                None => Match::Maybe,
                Some(h) => yes_if(self.hosts.iter().any(|p| p.matches(h))),
            }
        };
        let method = if self.methods.is_empty() {
            Match::Yes
        } else {
            match target.method {
                None => Match::Maybe,
                Some(m) => yes_if(self.methods.iter().any(|x| x.eq_ignore_ascii_case(m))),
            }
        };
        let path = if self.paths.is_empty() {
            Match::Yes
        } else {
            match path {
                None => Match::Maybe,
                Some(p) => yes_if(self.paths.iter().any(|g| g.matches(p))),
            }
        };
        host.and(method).and(path)
    }
}

fn yes_if(b: bool) -> Match {
    if b { Match::Yes } else { Match::No }
}

impl AccessRules {
    pub fn new(rules: Vec<Rule>, default: AuthzPolicy, skip_preflight: bool) -> Self {
        Self {
            rules,
            default,
            skip_preflight,
        }
    }

    /// Allows every signed-in user, no rules (tests and benches).
    pub fn allow_all() -> Self {
        Self::new(Vec::new(), AuthzPolicy::allow_all(), false)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The name of a decider, for logs and metric labels.
    pub fn label(&self, d: Decider) -> &str {
        match d {
            Decider::Rule(i) => self.rules.get(i).map_or("(default)", |r| r.name.as_str()),
            Decider::Default => "(default)",
            Decider::Preflight => "(preflight)",
        }
    }

    /// What the rules require of `target`.
    pub fn evaluate<'r>(&'r self, target: &RequestTarget<'_>) -> Verdict<'r> {
        let verdict = match &target.path {
            TargetPath::Clean(p) if !target.uncertain() => self.first_match(target, p),
            TargetPath::Clean(p) => self.strictest(target, std::iter::once(Some(&**p))),
            TargetPath::Unknown => self.strictest(target, std::iter::once(None)),
            TargetPath::Ambiguous(all) => {
                self.strictest(target, all.iter().map(|p| Some(p.as_str())))
            }
        };
        // A preflight carries no credentials (Fetch: CORS-preflight request), so it can only
        // pass without them; `deny` still applies.
        if self.skip_preflight && target.preflight && !matches!(verdict, Verdict::Deny(_)) {
            return Verdict::Public(Decider::Preflight);
        }
        verdict
    }

    /// The hot path: everything known, one reading — the first rule that matches decides.
    fn first_match(&self, target: &RequestTarget<'_>, path: &str) -> Verdict<'_> {
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.matches(target, Some(path)) == Match::Yes {
                let decider = Decider::Rule(i);
                return match &rule.action {
                    Action::Public => Verdict::Public(decider),
                    Action::Deny => Verdict::Deny(decider),
                    Action::Authenticate(p) => Verdict::Authenticate {
                        decider,
                        policies: Policies::One(p),
                        login_redirect: rule.login_redirect,
                    },
                };
            }
        }
        Verdict::Authenticate {
            decider: Decider::Default,
            policies: Policies::One(&self.default),
            login_redirect: true,
        }
    }

    /// Something is uncertain: for every reading, walk the rules as if there were no `public`
    /// rule, collecting what each rule that matches — or may match — requires, up to the first
    /// that surely matches. The request must satisfy all of it; one `deny` refuses it.
    fn strictest<'r, 'p>(
        &'r self,
        target: &RequestTarget<'_>,
        readings: impl Iterator<Item = Option<&'p str>>,
    ) -> Verdict<'r> {
        let mut needed: Vec<&'r AuthzPolicy> = Vec::new();
        let mut decider = None;
        let mut login_redirect = true;
        for path in readings {
            let mut settled = false;
            for (i, rule) in self.rules.iter().enumerate() {
                let m = rule.matches(target, path);
                if m == Match::No || rule.action == Action::Public {
                    continue;
                }
                match &rule.action {
                    Action::Deny => return Verdict::Deny(Decider::Rule(i)),
                    Action::Authenticate(p) => {
                        push_unique(&mut needed, p);
                        login_redirect &= rule.login_redirect;
                    }
                    Action::Public => {}
                }
                decider.get_or_insert(Decider::Rule(i));
                if m == Match::Yes {
                    settled = true;
                    break;
                }
            }
            if !settled {
                push_unique(&mut needed, &self.default);
                decider.get_or_insert(Decider::Default);
            }
        }
        let policies = match needed.as_slice() {
            [one] => Policies::One(one),
            // No reading at all cannot happen (Ambiguous has two or more); be strict anyway.
            [] => Policies::One(&self.default),
            _ => Policies::All(needed),
        };
        Verdict::Authenticate {
            decider: decider.unwrap_or(Decider::Default),
            policies,
            login_redirect,
        }
    }
}

fn push_unique<'r>(v: &mut Vec<&'r AuthzPolicy>, p: &'r AuthzPolicy) {
    if !v.iter().any(|x| std::ptr::eq(*x, p)) {
        v.push(p);
    }
}

#[cfg(test)]
mod tests;
