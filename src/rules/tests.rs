//! The rule engine's verdicts: ordering, each matcher, every spelling trick, preflights, and a
//! property test that another reading of a path never gets a more permissive verdict.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

fn policy(groups: &[&str]) -> AuthzPolicy {
    AuthzPolicy::new(
        vec!["*".into()],
        groups.iter().map(|g| g.to_string()).collect(),
        vec![],
        vec![],
    )
    .unwrap()
}

fn rule(name: &str, hosts: &[&str], paths: &[&str], methods: &[&str], action: Action) -> Rule {
    Rule {
        name: name.into(),
        hosts: hosts
            .iter()
            .map(|h| HostPattern::parse(h).unwrap())
            .collect(),
        paths: paths.iter().map(|p| PathGlob::parse(p).unwrap()).collect(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        action,
        login_redirect: true,
    }
}

/// The platform of the issue: public health checks and assets, a denied area, an admin area
/// for one group, one app needing another group, and an open default.
fn platform() -> AccessRules {
    AccessRules::new(
        vec![
            rule(
                "health",
                &[],
                &["/healthz", "/static/**"],
                &[],
                Action::Public,
            ),
            rule("denied", &[], &["/denied/**"], &[], Action::Deny),
            rule(
                "grafana-admin",
                &["grafana.example.com"],
                &["/admin/**", "/api/*/keys"],
                &["GET", "POST"],
                Action::Authenticate(policy(&["grafana-admins"])),
            ),
            rule(
                "n8n",
                &[".n8n.example.com"],
                &[],
                &[],
                Action::Authenticate(policy(&["automation"])),
            ),
            rule(
                "webhooks",
                &["hooks.example.com"],
                &["/in/*"],
                &["POST"],
                Action::Public,
            ),
        ],
        policy(&[]),
        false,
    )
}

fn target<'a>(host: &'a str, method: &'a str, uri: &'a str) -> RequestTarget<'a> {
    RequestTarget::new(Some(host), Some(method), Some(uri), false).unwrap()
}

/// The verdict as (kind, deciding rule label, group lists required).
fn judge(rules: &AccessRules, t: &RequestTarget<'_>) -> (&'static str, String, Vec<Vec<String>>) {
    let v = rules.evaluate(t);
    let label = rules.label(v.decider()).to_string();
    match v {
        Verdict::Public(_) => ("public", label, vec![]),
        Verdict::Deny(_) => ("deny", label, vec![]),
        Verdict::Authenticate { policies, .. } => {
            let all = match policies {
                Policies::One(p) => vec![p],
                Policies::All(v) => v,
            };
            let mut groups: Vec<Vec<String>> = all.iter().map(|p| groups_of(p)).collect();
            groups.sort();
            ("authenticate", label, groups)
        }
    }
}

fn groups_of(p: &AuthzPolicy) -> Vec<String> {
    // The policy's groups, found by asking it (its fields are private to authz).
    ["grafana-admins", "automation", "ops"]
        .iter()
        .filter(|g| {
            p.check(&crate::identity::Identity {
                groups: vec![g.to_string()],
                ..Default::default()
            })
            .is_ok()
        })
        .map(|g| g.to_string())
        .collect()
}

#[test]
fn first_matching_rule_decides_and_no_match_gets_authz() {
    let r = platform();
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // host, method, uri, kind, rule
        ("app.example.com", "GET", "/healthz", "public", "health"),
        (
            "app.example.com",
            "GET",
            "/static/css/site.css",
            "public",
            "health",
        ),
        ("app.example.com", "GET", "/denied", "deny", "denied"),
        ("app.example.com", "GET", "/denied/x/y", "deny", "denied"),
        (
            "grafana.example.com",
            "GET",
            "/admin",
            "authenticate",
            "grafana-admin",
        ),
        (
            "grafana.example.com",
            "POST",
            "/api/v1/keys",
            "authenticate",
            "grafana-admin",
        ),
        // Another method, another host, another depth: not the admin rule.
        (
            "grafana.example.com",
            "DELETE",
            "/admin/x",
            "authenticate",
            "(default)",
        ),
        (
            "grafana.example.org",
            "GET",
            "/admin/x",
            "authenticate",
            "(default)",
        ),
        (
            "grafana.example.com",
            "GET",
            "/api/v1/x/keys",
            "authenticate",
            "(default)",
        ),
        ("n8n.example.com", "GET", "/", "authenticate", "n8n"),
        ("eu.n8n.example.com", "GET", "/x", "authenticate", "n8n"),
        (
            "badn8n.example.com",
            "GET",
            "/x",
            "authenticate",
            "(default)",
        ),
        (
            "hooks.example.com",
            "POST",
            "/in/github",
            "public",
            "webhooks",
        ),
        (
            "hooks.example.com",
            "GET",
            "/in/github",
            "authenticate",
            "(default)",
        ),
        // Earlier rules win: the health rule is public on every host.
        ("n8n.example.com", "GET", "/healthz", "public", "health"),
        // The query never takes part.
        (
            "app.example.com",
            "GET",
            "/healthz?x=/../denied/a",
            "public",
            "health",
        ),
        (
            "app.example.com",
            "GET",
            "/denied?/healthz",
            "deny",
            "denied",
        ),
    ];
    for (host, method, uri, kind, rule) in cases {
        let (k, l, _) = judge(&r, &target(host, method, uri));
        assert_eq!((k, l.as_str()), (*kind, *rule), "{method} {host}{uri}");
    }
}

#[test]
fn hosts_match_without_case_port_or_trailing_dot() {
    let r = platform();
    for host in [
        "GRAFANA.example.com",
        "grafana.example.com:8443",
        "grafana.example.com.",
        "Grafana.Example.Com.:443",
    ] {
        let (_, l, _) = judge(&r, &target(host, "GET", "/admin/users"));
        assert_eq!(l, "grafana-admin", "{host}");
    }
}

#[test]
fn methods_are_the_forwarded_one_only() {
    let r = platform();
    let (_, l, _) = judge(&r, &target("grafana.example.com", "post", "/admin"));
    assert_eq!(l, "grafana-admin", "methods compare case-insensitively");
    // No forwarded method: the webhook's public rule can't apply.
    let t = RequestTarget::new(Some("hooks.example.com"), None, Some("/in/github"), false).unwrap();
    assert_eq!(judge(&r, &t).0, "authenticate");
}

#[test]
fn ambiguous_spellings_never_reach_a_public_rule() {
    let r = platform();
    for uri in [
        "/static/..%2fdenied/x",
        "/static/..%2Fadmin",
        "/static/%2e%2e/denied/x",
        "/static/..;/denied/x",
        "/static/..\\denied/x",
        "/static//x.css",
        "/static/%252e%252e/x",
        "/static/a;jsessionid=1/x.css",
        "/static%2fx.css",
        "/healthz;x",
        "/static/x.css#",
    ] {
        let (k, _, _) = judge(&r, &target("app.example.com", "GET", uri));
        assert_ne!(k, "public", "{uri}");
    }
}

#[test]
fn deny_and_group_rules_are_not_escaped_by_another_spelling() {
    let r = platform();
    for uri in [
        "/static/..%2fdenied/x",
        "/static/%2e%2e/denied/x",
        "/static/..;/denied/x",
        "/static/..\\denied/x",
        "/x/..%2f..%2fdenied",
        "//denied/x",
        "/denied%2fx",
        "/denied;x=1/y",
        "/%64enied/x",
        "/denied/./x",
        "/a/../denied",
        "/static/x#/../../denied",
        "/static/%252e%252e/denied",
    ] {
        let (k, l, _) = judge(&r, &target("app.example.com", "GET", uri));
        assert_eq!((k, l.as_str()), ("deny", "denied"), "{uri}");
    }
    for uri in [
        "//admin/x",
        "/admin;/x",
        "/x/..%2fadmin",
        "/%61dmin",
        "/admin%2fx",
    ] {
        let (k, _, groups) = judge(&r, &target("grafana.example.com", "GET", uri));
        assert_eq!(k, "authenticate", "{uri}");
        assert!(
            groups.iter().any(|g| g == &["grafana-admins".to_string()]),
            "{uri}: the admin group must still be required: {groups:?}"
        );
    }
}

#[test]
fn what_is_not_known_matches_no_public_rule() {
    let r = platform();
    let no_host = RequestTarget::new(None, Some("GET"), Some("/healthz"), false).unwrap();
    assert_eq!(judge(&r, &no_host).0, "authenticate");
    let no_uri = RequestTarget::new(Some("app.example.com"), Some("GET"), None, false).unwrap();
    // Without the path, the deny rule may apply: refused.
    assert_eq!(judge(&r, &no_uri).0, "deny");
    let unusable_host = RequestTarget::new(
        Some("evil.com, app.example.com"),
        Some("GET"),
        Some("/healthz"),
        false,
    )
    .unwrap();
    assert_eq!(judge(&r, &unusable_host).0, "authenticate");
    // Without the host, every rule that may apply is required: here the n8n group as well.
    let rules = AccessRules::new(
        vec![rule(
            "n8n",
            &["n8n.example.com"],
            &[],
            &[],
            Action::Authenticate(policy(&["automation"])),
        )],
        policy(&[]),
        false,
    );
    let (_, _, groups) = judge(
        &rules,
        &RequestTarget::new(None, Some("GET"), Some("/"), false).unwrap(),
    );
    assert!(
        groups.contains(&vec!["automation".to_string()]),
        "{groups:?}"
    );
}

#[test]
fn malformed_paths_are_errors() {
    for uri in [
        "/a%00b",
        "/a%0d%0aX: y",
        "/a%zz",
        "/a%c0%ae",
        "relative",
        "/a b",
    ] {
        assert!(
            RequestTarget::new(Some("h"), Some("GET"), Some(uri), false).is_err(),
            "{uri}"
        );
    }
}

#[test]
fn preflights_pass_only_when_asked_and_never_past_deny() {
    let mut r = platform();
    let pre = |uri| RequestTarget::new(Some("n8n.example.com"), Some("OPTIONS"), Some(uri), true);
    assert_eq!(judge(&r, &pre("/api").unwrap()).0, "authenticate");
    r.skip_preflight = true;
    assert_eq!(judge(&r, &pre("/api").unwrap()).1, "(preflight)");
    assert_eq!(judge(&r, &pre("/denied/x").unwrap()).0, "deny");
    assert_eq!(judge(&r, &pre("/static/..%2fdenied").unwrap()).0, "deny");
    // A bare OPTIONS is not a preflight.
    let bare = RequestTarget::new(
        Some("n8n.example.com"),
        Some("OPTIONS"),
        Some("/api"),
        false,
    );
    assert_eq!(judge(&r, &bare.unwrap()).0, "authenticate");
    // Nor is a GET carrying the preflight headers.
    let get = RequestTarget::new(Some("n8n.example.com"), Some("GET"), Some("/api"), true);
    assert_eq!(judge(&r, &get.unwrap()).0, "authenticate");
}

/// Strictness: deny > authenticate (more required policies = stricter) > public.
fn at_least_as_strict(a: &Verdict<'_>, b: &Verdict<'_>) -> bool {
    let set = |v: &Verdict<'_>| -> Vec<*const AuthzPolicy> {
        match v {
            Verdict::Authenticate { policies, .. } => match policies {
                Policies::One(p) => vec![*p as *const _],
                Policies::All(all) => all.iter().map(|p| *p as *const _).collect(),
            },
            _ => vec![],
        }
    };
    match (a, b) {
        (Verdict::Deny(_), _) => true,
        (_, Verdict::Deny(_)) => false,
        (Verdict::Public(_), Verdict::Public(_)) => true,
        (Verdict::Public(_), _) => false,
        (Verdict::Authenticate { .. }, Verdict::Public(_)) => true,
        (Verdict::Authenticate { .. }, Verdict::Authenticate { .. }) => {
            let (sa, sb) = (set(a), set(b));
            sb.iter().all(|p| sa.contains(p))
        }
    }
}

/// What a server may do to a path before it serves it.
fn server_readings(p: &str) -> Vec<String> {
    let decode = |s: &str| -> String {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let strip_params = |s: &str| -> String {
        s.split('/')
            .map(|seg| seg.split(';').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut merged = p.to_string();
    while merged.contains("//") {
        merged = merged.replace("//", "/");
    }
    vec![
        decode(p),
        p.replace('\\', "/"),
        strip_params(p),
        merged,
        strip_params(&decode(p)),
        decode(&strip_params(p)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// A path's verdict is at least as strict as the verdict of any reading a server may make
    /// of it: spelling a path differently never opens it up.
    #[test]
    fn no_spelling_is_more_permissive_than_its_readings(
        segs in proptest::collection::vec(
            prop::sample::select(vec![
                "static", "denied", "admin", "x", ".", "..", "%2e", "%2E%2e", "%2f", "%5c",
                "\\", ";x", "..;", "%25", "%252e", "", "a%41", "%2e%2e%2fdenied", "healthz",
            ]),
            1..7,
        )
    ) {
        let r = platform();
        let p = format!("/{}", segs.join("/"));
        let Ok(t) = RequestTarget::new(Some("grafana.example.com"), Some("GET"), Some(&p), false) else {
            return Ok(());
        };
        let v = r.evaluate(&t);
        for reading in server_readings(&p) {
            if reading.contains(['?', '#']) || !reading.starts_with('/') {
                continue;
            }
            let Ok(rt) = RequestTarget::new(Some("grafana.example.com"), Some("GET"), Some(&reading), false) else {
                continue;
            };
            let rv = r.evaluate(&rt);
            prop_assert!(
                at_least_as_strict(&v, &rv),
                "{p:?} got {:?} but its reading {reading:?} got {:?}",
                v, rv
            );
        }
    }
}
