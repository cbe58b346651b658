//! Access rules end to end in-process: each action, per-middleware constraints (query and
//! Envoy path parameters), preflights, malformed paths, trusted proxies, the rule in metrics,
//! and reloading the configuration file (a good one applies, a bad one is refused).

use crate::support::*;
use portcullis_test_idp::TestUser;

const RULES: &str = r#"
[[rules]]
name = "health"
paths = ["/healthz", "/static/**"]
action = "public"

[[rules]]
name = "denied"
paths = ["/denied/**"]
action = "deny"

[[rules]]
name = "ops-only"
hosts = ["ops.example.com"]
allowed_groups = ["ops"]
"#;

async fn harness() -> Harness {
    Harness::start_with(|t| format!("{t}\n{RULES}")).await
}

fn bearer(h: &Harness, user: &TestUser) -> String {
    format!(
        "Bearer {}",
        h.idp
            .mint_access_token(user, serde_json::json!({}), "rsa-1")
    )
}

/// What Traefik sends for `method host uri`, plus `extra` client headers.
async fn ask(
    h: &Harness,
    endpoint: &str,
    method: &str,
    host: &str,
    uri: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut headers = vec![
        ("x-forwarded-method", method),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", host),
        ("x-forwarded-uri", uri),
    ];
    headers.extend_from_slice(extra);
    h.get(endpoint, &headers).await
}

#[tokio::test]
async fn public_routes_pass_without_credentials_and_never_echo_identity_headers() {
    let h = harness().await;
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "GET",
        "app.example.com",
        "/static/app.js",
        &[
            ("x-auth-request-user", "mallory"),
            ("accept", BROWSER_ACCEPT),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    // Every identity header is sent, empty: the proxy replaces the client's copy with nothing.
    for name in [
        "x-auth-request-user",
        "x-auth-request-email",
        "x-auth-request-preferred-username",
        "x-auth-request-groups",
    ] {
        assert_eq!(header(&r, name), Some(""), "{name}");
    }
    assert!(header(&r, "set-cookie").is_none());
    let r = ask(
        &h,
        "/oauth2/auth",
        "GET",
        "app.example.com",
        "/healthz",
        &[],
    )
    .await;
    assert_eq!(r.status(), 202, "nginx's endpoint answers 202");
    // Valid credentials on a public route still earn the identity headers.
    let alice = bearer(&h, &TestUser::alice());
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "GET",
        "app.example.com",
        "/healthz",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-request-user"), Some("a1b2c3-alice"));
    // An invalid token on a public route: still public, no identity.
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "GET",
        "app.example.com",
        "/healthz",
        &[("authorization", "Bearer not.a.token")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-request-user"), Some(""));
    // Everything else still needs a session.
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "GET",
        "app.example.com",
        "/inbox",
        &[],
    )
    .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn deny_is_403_for_everyone_and_a_page_for_browsers() {
    let h = harness().await;
    let (session, _) = h.login("/inbox").await;
    for extra in [
        vec![],
        vec![("cookie", session.as_str())],
        vec![("cookie", session.as_str()), ("accept", BROWSER_ACCEPT)],
    ] {
        let r = ask(
            &h,
            "/oauth2/forward-auth",
            "GET",
            "app.example.com",
            "/denied/x",
            &extra,
        )
        .await;
        assert_eq!(r.status(), 403, "{extra:?}");
        assert!(header(&r, "x-auth-request-user").is_none());
        assert!(header(&r, "location").is_none(), "never a login redirect");
    }
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "GET",
        "app.example.com",
        "/denied/x",
        &[("accept", BROWSER_ACCEPT)],
    )
    .await;
    assert!(header(&r, "content-type").unwrap().starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("Access denied"));
    // Other spellings of the denied path are refused too.
    for uri in [
        "/static/..%2fdenied/x",
        "/static/..;/denied/x",
        "//denied/x",
        "/denied%2fx",
    ] {
        let r = ask(
            &h,
            "/oauth2/forward-auth",
            "GET",
            "app.example.com",
            uri,
            &[],
        )
        .await;
        assert_eq!(r.status(), 403, "{uri}");
    }
}

#[tokio::test]
async fn group_rules_hold_sessions_and_bearer_tokens_alike() {
    let h = harness().await;
    let (session, _) = h.login("/").await;
    let alice = bearer(&h, &TestUser::alice());
    for creds in [
        ("cookie", session.as_str()),
        ("authorization", alice.as_str()),
    ] {
        let r = ask(
            &h,
            "/oauth2/forward-auth",
            "GET",
            "ops.example.com",
            "/",
            &[creds],
        )
        .await;
        assert_eq!(r.status(), 403, "{}", creds.0);
        let r = ask(
            &h,
            "/oauth2/forward-auth",
            "GET",
            "app.example.com",
            "/",
            &[creds],
        )
        .await;
        assert_eq!(r.status(), 200, "{}", creds.0);
    }
    // The host matches without its port or case.
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "GET",
        "OPS.example.com:443",
        "/",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn middleware_constraints_only_narrow() {
    let h = harness().await;
    let alice = bearer(&h, &TestUser::alice());
    let bob = bearer(&h, &TestUser::bob());
    let fa = |q: &str| format!("/oauth2/forward-auth?{q}");
    let cases = [
        (fa("allowed_groups=admins"), &alice, 200),
        (fa("allowed_groups=admins"), &bob, 403),
        (fa("allowed_groups=ops,admins"), &alice, 200),
        (fa("allowed_roles=platform-user"), &alice, 200),
        (fa("allowed_roles=portcullis:reader"), &alice, 200),
        (fa("allowed_emails=bob%40example.org"), &bob, 200),
        (fa("allowed_emails=bob%40example.org"), &alice, 403),
        (fa("allowed_email_domains=example.com"), &alice, 200),
        (fa("allowed_email_domains=example.com"), &bob, 403),
        (
            "/oauth2/auth?allowed_groups=admins".to_string(),
            &alice,
            202,
        ),
        ("/oauth2/auth?allowed_groups=ops".to_string(), &alice, 403),
    ];
    for (endpoint, who, status) in cases {
        let r = ask(
            &h,
            &endpoint,
            "GET",
            "app.example.com",
            "/",
            &[("authorization", who)],
        )
        .await;
        assert_eq!(r.status(), status, "{endpoint}");
    }
    // A rule's own group is still required: the query cannot widen it.
    let r = ask(
        &h,
        &fa("allowed_groups=admins"),
        "GET",
        "ops.example.com",
        "/",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(r.status(), 403);
    // A public route stays public; a deny stays deny.
    let r = ask(
        &h,
        &fa("allowed_groups=ops"),
        "GET",
        "app.example.com",
        "/healthz",
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    // A typo must not allow everyone: 400, and nothing internal in the body.
    let r = ask(
        &h,
        &fa("allowed_group=admins"),
        "GET",
        "app.example.com",
        "/",
        &[("authorization", &bob)],
    )
    .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn envoy_constraints_ride_on_the_path_prefix() {
    let h = harness().await;
    let alice = bearer(&h, &TestUser::alice());
    let envoy = |path: &str| {
        let url = h.url(path);
        let alice = alice.clone();
        let client = h.client.clone();
        async move {
            client
                .get(url)
                .header("host", "app.example.com")
                .header("authorization", alice)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(envoy("/oauth2/ext-authz/inbox?x=1").await, 200);
    assert_eq!(
        envoy("/oauth2/ext-authz;allowed_groups=admins/inbox").await,
        200
    );
    assert_eq!(
        envoy("/oauth2/ext-authz;allowed_groups=ops/inbox").await,
        403
    );
    assert_eq!(
        envoy("/oauth2/ext-authz;allowed_groups=ops%2Cadmins/inbox").await,
        200
    );
    assert_eq!(envoy("/oauth2/ext-authz/denied/x").await, 403);
    assert_eq!(
        envoy("/oauth2/ext-authz;allowed_gruops=ops/inbox").await,
        400
    );
    assert_eq!(envoy("/oauth2/ext-authzfoo").await, 404);
}

#[tokio::test]
async fn preflights_pass_only_with_skip_preflight_and_never_past_deny() {
    let preflight = [
        ("origin", "https://other.example.com"),
        ("access-control-request-method", "POST"),
    ];
    let off = harness().await;
    let r = ask(
        &off,
        "/oauth2/forward-auth",
        "OPTIONS",
        "app.example.com",
        "/api",
        &preflight,
    )
    .await;
    assert_eq!(r.status(), 401, "skip_preflight is off by default");

    let h = Harness::start_with(|t| {
        format!(
            "{}\n{RULES}",
            t.replace("[bearer]", "[authz]\nskip_preflight = true\n[bearer]")
        )
    })
    .await;
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "OPTIONS",
        "app.example.com",
        "/api",
        &preflight,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-request-user"), Some(""));
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "OPTIONS",
        "app.example.com",
        "/denied/x",
        &preflight,
    )
    .await;
    assert_eq!(r.status(), 403);
    // A bare OPTIONS is not a preflight.
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "OPTIONS",
        "app.example.com",
        "/api",
        &preflight[..1],
    )
    .await;
    assert_eq!(r.status(), 401);
    let m = h.get("/metrics", &[]).await.text().await.unwrap();
    assert!(
        m.contains(r#"portcullis_rule_decisions_total{rule="(preflight)",decision="allowed"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn malformed_paths_get_400_and_method_overrides_are_ignored() {
    let h = harness().await;
    for uri in [
        "/healthz%00",
        "/static/%0d%0aX-Auth-Request-User:%20x",
        "/static/%zz",
        "/static/%c0%ae%c0%ae/",
    ] {
        let r = ask(
            &h,
            "/oauth2/forward-auth",
            "GET",
            "app.example.com",
            uri,
            &[],
        )
        .await;
        assert_eq!(r.status(), 400, "{uri}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("Utf8") && !body.contains("Error"), "{body}");
    }
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "DELETE",
        "app.example.com",
        "/inbox",
        &[
            ("x-http-method-override", "GET"),
            ("x-method-override", "GET"),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    // A request that lacks the forwarded host matches no public rule.
    let r = h
        .get(
            "/oauth2/forward-auth",
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/healthz"),
            ],
        )
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn trusted_proxies_restrict_who_may_ask() {
    let h = Harness::start_with(|t| format!("trusted_proxies = [\"10.0.0.0/8\"]\n{t}")).await;
    for endpoint in [
        "/oauth2/forward-auth",
        "/oauth2/auth",
        "/oauth2/ext-authz/x",
    ] {
        let r = h.get(endpoint, &[]).await;
        assert_eq!(r.status(), 403, "{endpoint}");
    }
    assert_eq!(h.get("/ping", &[]).await.status(), 200);
    assert_eq!(h.get("/oauth2/userinfo", &[]).await.status(), 401);
    let h =
        Harness::start_with(|t| format!("trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n{t}"))
            .await;
    let alice = bearer(&h, &TestUser::alice());
    let r = ask(
        &h,
        "/oauth2/forward-auth",
        "GET",
        "app.example.com",
        "/",
        &[("authorization", &alice)],
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_deciding_rule_is_counted() {
    let h = harness().await;
    ask(
        &h,
        "/oauth2/forward-auth",
        "GET",
        "app.example.com",
        "/healthz",
        &[],
    )
    .await;
    ask(
        &h,
        "/oauth2/forward-auth",
        "GET",
        "app.example.com",
        "/denied/1",
        &[],
    )
    .await;
    ask(
        &h,
        "/oauth2/forward-auth",
        "GET",
        "app.example.com",
        "/x",
        &[],
    )
    .await;
    let m = h.get("/metrics", &[]).await.text().await.unwrap();
    for line in [
        r#"portcullis_rule_decisions_total{rule="health",decision="allowed"} 1"#,
        r#"portcullis_rule_decisions_total{rule="denied",decision="forbidden"} 1"#,
        r#"portcullis_rule_decisions_total{rule="(default)",decision="unauthenticated"} 1"#,
    ] {
        assert!(m.contains(line), "missing {line}:\n{m}");
    }
}

/// `login_redirect = false` (oauth2-proxy's `--api-route`): a browser without a session gets
/// 401 there instead of a login redirect; signed-in users still pass by `[authz]`; an
/// ambiguous path that may read as the API is not redirected either.
#[tokio::test]
async fn api_rules_answer_401_to_browsers_without_a_session() {
    let h = Harness::start_with(|t| {
        format!(
            "{t}[authz]\nallowed_groups = [\"admins\"]\n[[rules]]\nname = \"api\"\npaths = [\"/api/**\"]\nlogin_redirect = false\n"
        )
    })
    .await;
    let browser = [("accept", BROWSER_ACCEPT)];
    for uri in ["/api/items", "/api", "/x/..%2Fapi/items"] {
        let r = h.forward_auth(uri, &browser).await;
        assert_eq!(r.status(), 401, "{uri}");
        assert!(header(&r, "location").is_none(), "{uri}: no login redirect");
    }
    let r = h.forward_auth("/app", &browser).await;
    assert_eq!(r.status(), 302, "elsewhere the browser is sent to sign in");

    let (session, _) = h.login("/app").await;
    let r = h.forward_auth("/api/items", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 200);
    let outsider = bearer(&h, &TestUser::bob());
    let r = h
        .forward_auth("/api/items", &[("authorization", &outsider)])
        .await;
    assert_eq!(r.status(), 403, "[authz] applies to the API rule");
}
