//! Scenario: access rules through the real proxies.
//!
//! - Spoofing: through the shipped Caddy and nginx configs (Portcullis A and B, whose rules
//!   `scripts/e2e` sets: `/public/**` public, `/denied/**` denied), a client asking for a
//!   protected path while sending forwarded headers that name a public one gets what the
//!   protected path gets; the real public path reaches the app without a session; the
//!   decision endpoints do not exist from outside.
//! - `trusted_proxies`: callers outside it get 403 from the decision endpoints.
//! - Multi-app: one Portcullis behind two Caddy instances of the shipped Caddyfile
//!   (`a.apps.localhost`, `b.apps.localhost`), sharing one session cookie
//!   (`cookie_domain = "apps.localhost"`), with per-host rules and a per-app constraint in
//!   Caddy A's check (`PORTCULLIS_AUTH_QUERY`).
//!
//! Named `http_rules` to run after `backchannel` (which needs alice to have a single Keycloak
//! session; these logins leave sessions behind).

use url::Url;

use crate::caddy::{Caddy, Site};
use crate::http_authz::assert_denied_page;
use crate::instance::{Instance, Settings, free_port, metrics_text};
use crate::support::browser_like::{BrowserLike, Response};
use crate::support::env::Env;
use crate::support::keycloak::{self, ALICE, Admin, BOB};
use crate::support::{Echo, R, err};

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// Not the app: no echo-app JSON in the body.
fn assert_not_upstream(resp: &Response, ctx: &str) {
    assert!(
        Echo::parse(&resp.body).is_err(),
        "{ctx}: reached the app: {}",
        resp.describe()
    );
}

fn assert_sent_to_keycloak(resp: &Response, env: &Env, ctx: &str) {
    assert_eq!(resp.status, 302, "{ctx}: {}", resp.describe());
    assert!(
        resp.location()
            .is_some_and(|l| l.as_str().starts_with(&env.keycloak_issuer)),
        "{ctx}: not a redirect to Keycloak: {}",
        resp.describe()
    );
    assert_not_upstream(resp, ctx);
}

/// The 403 "Access denied" page of a `deny` rule (which names no one: it refuses everyone
/// without looking at credentials).
fn assert_denied_by_rule(resp: &Response, ctx: &str) {
    assert_eq!(resp.status, 403, "{ctx}: {}", resp.describe());
    assert!(resp.header("location").is_none(), "{ctx}");
    assert!(
        resp.body.contains("Access denied"),
        "{ctx}: no \"Access denied\" on the page: {}",
        resp.describe()
    );
    assert_not_upstream(resp, ctx);
}

/// Lines of `portcullis_rule_decisions_total` naming `rule` (label order is the exporter's).
async fn rule_decisions(base: &str, rule: &str) -> R<Vec<String>> {
    let text = metrics_text(base).await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("portcullis_rule_decisions_total{")
                && l.contains(&format!("rule=\"{rule}\""))
        })
        .map(str::to_owned)
        .collect())
}

#[tokio::test]
async fn rules_spoofed_forwarded_headers_do_not_pass_caddy_or_nginx() -> R {
    let env = Env::load()?;
    let b = BrowserLike::for_env(&env)?;
    let mut public = Vec::new();
    for (name, base) in env.front_ends() {
        let front = Url::parse(base)?;
        let hostport = format!(
            "{}:{}",
            front.host_str().unwrap_or_default(),
            front.port().unwrap_or(80)
        );
        // Everything a client could claim about a request for the public path.
        let spoof = [
            ("x-forwarded-uri", "/public/x"),
            ("x-forwarded-host", hostport.as_str()),
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "http"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut h: Vec<(&str, &str)> = spoof.to_vec();
            h.extend_from_slice(extra);
            h
        };

        // A browser asking for a protected path is sent to sign in, as without the headers.
        let r = b.get_with(&format!("{base}/private/x"), &spoof).await?;
        assert_sent_to_keycloak(&r, &env, &format!("{name}: /private/x, spoofed"));
        // An API client gets 401.
        let r = b
            .get_with(
                &format!("{base}/private/x"),
                &with(&[("accept", "application/json")]),
            )
            .await?;
        assert_eq!(r.status, 401, "{name}: API, spoofed: {}", r.describe());
        assert_not_upstream(&r, name);
        // A denied path stays denied.
        let r = b.get_with(&format!("{base}/denied/x"), &spoof).await?;
        assert_eq!(
            r.status,
            403,
            "{name}: /denied/x, spoofed: {}",
            r.describe()
        );
        assert_not_upstream(&r, name);
        if name == "caddy" {
            // nginx answers a 403 check with its own error page.
            assert_denied_by_rule(&r, "caddy: /denied/x");
        }

        // The real public path (checked below, for both front ends at once).
        public.push((
            name,
            b.get_with(
                &format!("{base}/public/x?y=1"),
                &[("x-auth-request-user", "mallory")],
            )
            .await?,
        ));

        // The decision endpoints do not exist from outside, whatever is sent along.
        for path in [
            "/oauth2/forward-auth",
            "/oauth2/forward-auth?allowed_groups=x",
            "/oauth2/forward-auth/",
            "/oauth2/auth",
            "/oauth2/ext-authz/private/x",
        ] {
            let r = b.get_with(&format!("{base}{path}"), &spoof).await?;
            assert_eq!(r.status, 404, "{name}: {path}: {}", r.describe());
        }
        // Portcullis' other endpoints still are reachable.
        let r = b
            .get_with(
                &format!("{base}/oauth2/userinfo"),
                &[("accept", "application/json")],
            )
            .await?;
        assert_eq!(r.status, 401, "{name}: /oauth2/userinfo: {}", r.describe());
    }
    // The metrics name the rules that decided.
    for base in [&env.portcullis_caddy_url, &env.portcullis_nginx_url] {
        for rule in ["public", "denied"] {
            let lines = rule_decisions(base, rule).await?;
            assert!(!lines.is_empty(), "{base}: no decisions by rule {rule}");
        }
    }
    // The real public path reaches the app with no session (its query string playing no part
    // in the check), and no identity reaches the app: neither the client's nor any other.
    let problems: Vec<String> = public
        .iter()
        .filter_map(|(name, r)| public_path_problem(r).map(|p| format!("{name}: {p}")))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    Ok(())
}

/// What is wrong with an anonymous answer for `/public/x?y=1`, if anything.
fn public_path_problem(r: &Response) -> Option<String> {
    if r.status != 200 {
        return Some(format!("expected the app: {}", r.describe()));
    }
    let echo = match Echo::parse(&r.body) {
        Ok(e) => e,
        Err(e) => return Some(e.to_string()),
    };
    if (echo.path.as_str(), echo.query.as_str()) != ("/public/x", "y=1") {
        return Some(format!("the app saw {}?{}", echo.path, echo.query));
    }
    let identity: Vec<_> = echo
        .headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-auth-request-"))
        .collect();
    (!identity.is_empty()).then(|| format!("identity headers reached the app: {identity:?}"))
}

#[tokio::test]
async fn rules_trusted_proxies_refuse_other_callers() -> R {
    let env = Env::load()?;
    // The suite calls from 127.0.0.1, which this list leaves out.
    let p = Instance::start(
        &env,
        "portcullis-trusted-proxies",
        &Settings {
            top_toml: r#"trusted_proxies = ["10.0.0.0/8"]"#,
            ..Settings::default()
        },
    )
    .await?;
    let b = p.browser()?;
    let fa = p.forward_auth(&b, "/private", HTML).await?;
    assert_eq!(fa.status, 403, "forward-auth: {}", fa.describe());
    for path in ["/oauth2/auth", "/oauth2/ext-authz/private"] {
        let r = b
            .get_with(
                &format!("{}{path}", p.url),
                &[
                    ("x-forwarded-host", "app.localhost"),
                    ("x-forwarded-uri", "/private"),
                ],
            )
            .await?;
        assert_eq!(r.status, 403, "{path}: {}", r.describe());
    }
    // Only the decision endpoints are limited.
    let ping = b.get(&format!("{}/ping", p.url)).await?;
    assert_eq!(ping.status, 200, "{}", ping.describe());
    Ok(())
}

const MULTI_APP_RULES: &str = r#"
[[rules]]
name = "b-public"
hosts = ["b.apps.localhost"]
paths = ["/public/**"]
action = "public"

[[rules]]
name = "a-health"
hosts = ["a.apps.localhost"]
paths = ["/healthz"]
action = "public"

[[rules]]
name = "denied"
paths = ["/denied/**"]
action = "deny"

[[rules]]
name = "b-automation"
hosts = ["b.apps.localhost"]
allowed_groups = ["automation"]
"#;

#[tokio::test]
async fn rules_one_portcullis_two_apps_through_caddy() -> R {
    let env = Env::load()?;
    let (port_a, port_b) = (free_port()?, free_port()?);
    let public_url = format!("http://a.apps.localhost:{port_a}");
    let p = Instance::start(
        &env,
        "portcullis-multi-app",
        &Settings {
            public_url: Some(&public_url),
            cookie_domain: Some("apps.localhost"),
            allowed_domains: &[".apps.localhost"],
            extra_toml: MULTI_APP_RULES,
            ..Settings::default()
        },
    )
    .await?;
    // App A only for group admins, by the constraint in its Caddy's check; app B by rule.
    let a = Caddy::start(
        &env,
        "caddy-app-a",
        &Site {
            host: "a.apps.localhost",
            port: port_a,
            portcullis: &p.addr,
            auth_query: "allowed_groups=admins",
        },
    )
    .await?;
    let b = Caddy::start(
        &env,
        "caddy-app-b",
        &Site {
            host: "b.apps.localhost",
            port: port_b,
            portcullis: &p.addr,
            auth_query: "",
        },
    )
    .await?;
    let hosts = ["a.apps.localhost", "b.apps.localhost"];
    let ctx = |what: &str| format!("{what}\n  portcullis log:\n{}", p.log_tail());

    // Anonymous.
    let anon = BrowserLike::new(&hosts)?;
    // Public rules ignore the check's constraints: A's health check is open.
    let r = anon.get(&format!("{}/healthz", a.url)).await?;
    assert_eq!(r.status, 200, "A /healthz: {}", ctx(&r.describe()));
    // B's public rule is B's only.
    let r = anon.get(&format!("{}/public/x", a.url)).await?;
    assert_sent_to_keycloak(&r, &env, "A /public/x");
    for app in [&a, &b] {
        let r = anon.get(&format!("{}/denied/x", app.url)).await?;
        assert_denied_by_rule(&r, &format!("{}: anonymous /denied/x", app.name));
    }

    // alice (group admins) signs in on A and reaches its app.
    let alice = BrowserLike::new(&hosts)?;
    let start = format!("{}/dashboard?tab=1", a.url);
    let last = keycloak::login_via(&alice, &env, &start, ALICE).await?;
    if last.url.as_str() != start || last.status != 200 {
        return Err(err(format!(
            "alice's login ended at {} instead of {start}\n  trail: {}\n{}",
            last.describe(),
            alice.trail(),
            ctx("")
        )));
    }
    let alice_id = Admin::connect(&env).await?.user_id("alice").await?;
    Echo::parse(&last.body)?.assert_alice(&alice_id);
    // One session for both hosts.
    assert!(
        alice
            .cookies_for(&b.url)?
            .iter()
            .any(|(n, _)| n == "_portcullis"),
        "the session cookie is not sent to {}",
        b.url
    );
    // App B needs group automation: the 403 page, naming her.
    let r = alice.get(&format!("{}/reports", b.url)).await?;
    assert_denied_page(&r, "alice", "alice on app B");
    // B's public path, now with her identity.
    let r = alice.get(&format!("{}/public/x", b.url)).await?;
    assert_eq!(r.status, 200, "{}", ctx(&r.describe()));
    assert_eq!(
        Echo::parse(&r.body)?.header("x-auth-request-preferred-username"),
        Some("alice"),
        "valid credentials on a public path add the identity"
    );
    // Denied for her too.
    let r = alice.get(&format!("{}/denied/x", a.url)).await?;
    assert_denied_by_rule(&r, "alice on A /denied/x");

    // bob (no group) signs in through B, which refuses him; A's constraint refuses him too,
    // though [authz] alone would let him in.
    let bob = BrowserLike::new(&hosts)?;
    let last = keycloak::login_via(&bob, &env, &format!("{}/x", b.url), BOB).await?;
    assert_denied_page(&last, "bob", "bob on app B");
    let r = bob.get(&format!("{}/dashboard", a.url)).await?;
    assert_denied_page(
        &r,
        "bob",
        "bob on app A (allowed_groups=admins in the check)",
    );

    // B's public path without a session reaches the app, and no identity with it.
    let r = anon.get(&format!("{}/public/x?y=1", b.url)).await?;
    if let Some(problem) = public_path_problem(&r) {
        return Err(err(format!("anonymous B /public/x: {}", ctx(&problem))));
    }

    for rule in ["b-public", "a-health", "denied", "b-automation"] {
        let lines = rule_decisions(&p.url, rule).await?;
        assert!(!lines.is_empty(), "no decisions by rule {rule}");
    }
    Ok(())
}
