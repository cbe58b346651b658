//! The browser login loop: forward-auth → IdP → callback → back where the user was going,
//! and every way a callback can be bad.

use crate::support::*;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn browser_without_session_goes_straight_to_the_idp() {
    let h = Harness::start().await;
    let r = h
        .forward_auth("/dashboard?tab=2", &[("accept", BROWSER_ACCEPT)])
        .await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(
        loc.starts_with(&h.idp.authorization_endpoint()),
        "absolute Location to the IdP: {loc}"
    );
    let url = url::Url::parse(&loc).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "portcullis");
    assert_eq!(
        q["redirect_uri"],
        "https://auth.example.com/oauth2/callback"
    );
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    let sc = set_cookies(&r);
    assert_eq!(sc.len(), 1);
    let c = &sc[0];
    assert!(c.starts_with("_portcullis_csrf_"), "{c}");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/oauth2/callback",
        "Domain=example.com",
        "Max-Age=600",
    ] {
        assert!(c.contains(attr), "state cookie lacks {attr}: {c}");
    }
}

#[tokio::test]
async fn full_login_lands_on_the_original_url_with_identity_headers() {
    let h = Harness::start().await;
    let (session, landed) = h.login("/reports/q3?year=2026&sort=desc").await;
    assert_eq!(
        landed,
        "https://app.example.com/reports/q3?year=2026&sort=desc"
    );
    let r = h.forward_auth("/reports/q3", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-request-user"), Some("a1b2c3-alice"));
    assert_eq!(
        header(&r, "x-auth-request-email"),
        Some("alice@example.com")
    );
    assert_eq!(
        header(&r, "x-auth-request-preferred-username"),
        Some("alice")
    );
    let groups = header(&r, "x-auth-request-groups").unwrap();
    assert!(groups.split(',').any(|g| g == "admins"), "{groups}");
    assert!(
        groups.split(',').any(|g| g == "role:platform-user"),
        "roles from the access token: {groups}"
    );
    assert!(
        groups.split(',').any(|g| g == "role:portcullis:reader"),
        "{groups}"
    );
    // nginx flavour answers 202.
    let r = h.get("/oauth2/auth", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "x-auth-request-user"), Some("a1b2c3-alice"));
}

#[tokio::test]
async fn session_cookie_is_encrypted_small_and_locked_down() {
    let h = Harness::start().await;
    let start = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    let state = cookie_pairs(&start);
    let cb = h.follow_idp(&location(&start)).await;
    let r = h.get(&cb, &[("cookie", &state)]).await;
    let sc = set_cookies(&r);
    let session = sc
        .iter()
        .find(|c| c.starts_with("_portcullis="))
        .expect("one session cookie");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Domain=example.com",
    ] {
        assert!(session.contains(attr), "{attr} missing: {session}");
    }
    assert!(
        session.len() < 4096,
        "session fits one cookie: {}",
        session.len()
    );
    for leak in ["alice", "a1b2c3", "admins"] {
        assert!(!session.contains(leak), "cookie reveals {leak}");
    }
    assert!(!reveals_a_jwt(session), "cookie reveals a token: {session}");
    // The used state cookie is deleted.
    assert!(
        sc.iter()
            .any(|c| c.starts_with("_portcullis_csrf_") && c.contains("Max-Age=0"))
    );
}

#[tokio::test]
async fn start_endpoint_honours_only_safe_rd() {
    let h = Harness::start().await;
    for (rd, expect) in [
        (
            "https://app.example.com/x?y=1",
            "https://app.example.com/x?y=1",
        ),
        ("/local/path", "/local/path"),
        ("https://evil.com/", "/"),
        ("//evil.com", "/"),
        ("/\\evil.com", "/"),
        ("https://app.example.com@evil.com/", "/"),
        ("javascript:alert(1)", "/"),
    ] {
        let r = h
            .get(&format!("/oauth2/start?rd={}", urlencode(rd)), &[])
            .await;
        assert_eq!(r.status(), 302);
        let state = cookie_pairs(&r);
        let cb = h.follow_idp(&location(&r)).await;
        let done = h.get(&cb, &[("cookie", &state)]).await;
        assert_eq!(done.status(), 302);
        assert_eq!(location(&done), expect, "rd={rd}");
    }
}

/// nginx's `error_page 401 = /oauth2/sign_in` with `X-Auth-Request-Redirect: $request_uri`:
/// the login returns there, through the same redirect policy as `rd`; `rd` wins when both
/// are given.
#[tokio::test]
async fn sign_in_returns_to_x_auth_request_redirect_when_it_is_safe() {
    let h = Harness::start().await;
    for (path, header, expect) in [
        ("/oauth2/sign_in", "/inbox?x=1", "/inbox?x=1"),
        (
            "/oauth2/sign_in",
            "https://app.example.com/deep",
            "https://app.example.com/deep",
        ),
        ("/oauth2/sign_in", "https://evil.com/", "/"),
        ("/oauth2/sign_in", "//evil.com", "/"),
        ("/oauth2/start", "/from-header", "/from-header"),
        ("/oauth2/sign_in?rd=%2Ffrom-rd", "/from-header", "/from-rd"),
    ] {
        let r = h.get(path, &[("x-auth-request-redirect", header)]).await;
        assert_eq!(r.status(), 302, "{path} {header}");
        let state = cookie_pairs(&r);
        let cb = h.follow_idp(&location(&r)).await;
        let done = h.get(&cb, &[("cookie", &state)]).await;
        assert_eq!(done.status(), 302);
        assert_eq!(location(&done), expect, "{path} with {header}");
    }
}

#[tokio::test]
async fn spoofed_forwarded_host_never_becomes_the_redirect_target() {
    let h = Harness::start().await;
    let r = h
        .get(
            "/oauth2/forward-auth",
            &[
                ("accept", BROWSER_ACCEPT),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.com"),
                ("x-forwarded-uri", "/steal"),
            ],
        )
        .await;
    assert_eq!(r.status(), 302);
    let state = cookie_pairs(&r);
    let cb = h.follow_idp(&location(&r)).await;
    let done = h.get(&cb, &[("cookie", &state)]).await;
    assert_eq!(location(&done), "/");
}

#[tokio::test]
async fn parallel_tabs_each_complete_their_own_login() {
    let h = Harness::start().await;
    let a = h
        .forward_auth("/tab-a", &[("accept", BROWSER_ACCEPT)])
        .await;
    let b = h
        .forward_auth("/tab-b", &[("accept", BROWSER_ACCEPT)])
        .await;
    let jar = format!("{}; {}", cookie_pairs(&a), cookie_pairs(&b));
    let cb_a = h.follow_idp(&location(&a)).await;
    let cb_b = h.follow_idp(&location(&b)).await;
    let done_b = h.get(&cb_b, &[("cookie", &jar)]).await;
    assert_eq!(location(&done_b), "https://app.example.com/tab-b");
    let done_a = h.get(&cb_a, &[("cookie", &jar)]).await;
    assert_eq!(location(&done_a), "https://app.example.com/tab-a");
}

/// Every refused callback: 4xx, a page that reflects nothing, no session cookie.
async fn assert_refused(r: reqwest::Response, status: u16) {
    assert_eq!(r.status(), status);
    assert!(
        session_cookie(&r).is_empty(),
        "a refused callback must not set a session"
    );
    assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
    let body = r.text().await.unwrap();
    assert!(!body.contains("<script"), "{body}");
    for internal in [
        "invalid_grant",
        "nonce",
        "TokenError",
        "panicked",
        "127.0.0.1",
    ] {
        assert!(!body.contains(internal), "page leaks {internal}: {body}");
    }
}

#[tokio::test]
async fn callback_without_or_with_wrong_state_is_refused() {
    let h = Harness::start().await;
    let start = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    let state_cookie = cookie_pairs(&start);
    let cb = h.follow_idp(&location(&start)).await;
    let code = url::Url::parse(&format!("https://x{cb}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    assert_refused(
        h.get(
            &format!("/oauth2/callback?code={code}"),
            &[("cookie", &state_cookie)],
        )
        .await,
        400,
    )
    .await;
    assert_refused(
        h.get(
            &format!("/oauth2/callback?code={code}&state=forged<script>"),
            &[("cookie", &state_cookie)],
        )
        .await,
        400,
    )
    .await;
    // Right state but the cookie is missing (CSRF: the attacker's link in the victim's browser).
    assert_refused(h.get(&cb, &[]).await, 400).await;
    // A state cookie from another login attempt.
    let other = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    assert_refused(h.get(&cb, &[("cookie", &cookie_pairs(&other))]).await, 400).await;
}

#[tokio::test]
async fn idp_error_is_refused_without_reflecting_it() {
    let h = Harness::start().await;
    h.idp
        .controls()
        .authorize_error
        .store(true, Ordering::SeqCst);
    let start = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    let state = cookie_pairs(&start);
    let cb = h.follow_idp(&location(&start)).await;
    assert!(cb.contains("error="));
    assert_refused(h.get(&cb, &[("cookie", &state)]).await, 403).await;
    // A hand-made error with markup in it.
    let st = url::Url::parse(&format!("https://x{cb}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let r = h.get(&format!("/oauth2/callback?state={st}&error=%3Cscript%3Ealert(1)%3C/script%3E&error_description=%3Cb%3E"), &[("cookie", &state)]).await;
    assert!(r.status().is_client_error());
    assert!(!r.text().await.unwrap().contains("<script>alert"));
}

#[tokio::test]
async fn replayed_callback_is_refused_even_if_the_idp_would_accept_the_code() {
    let h = Harness::start().await;
    h.idp
        .controls()
        .allow_code_reuse
        .store(true, Ordering::SeqCst);
    let start = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    let state = cookie_pairs(&start);
    let cb = h.follow_idp(&location(&start)).await;
    let first = h.get(&cb, &[("cookie", &state)]).await;
    assert_eq!(first.status(), 302);
    let grants = h.idp.controls().code_grants();
    assert_refused(h.get(&cb, &[("cookie", &state)]).await, 400).await;
    assert_eq!(
        h.idp.controls().code_grants(),
        grants,
        "a replay never reaches the token endpoint"
    );
}

#[tokio::test]
async fn bad_id_tokens_never_create_a_session() {
    let h = Harness::start().await;
    for switch in [
        "id_token_wrong_nonce",
        "id_token_wrong_aud",
        "id_token_wrong_iss",
        "id_token_bad_signature",
        "id_token_expired",
        "id_token_azp_other",
        "id_token_hs256_client_secret",
        "id_token_alg_none",
    ] {
        h.idp.controls().reset_switches();
        assert!(h.idp.controls().set_switch(switch, true), "{switch}");
        let start = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
        let state = cookie_pairs(&start);
        let cb = h.follow_idp(&location(&start)).await;
        let r = h.get(&cb, &[("cookie", &state)]).await;
        assert_eq!(r.status(), 400, "{switch}");
        assert!(session_cookie(&r).is_empty(), "{switch} set a session");
    }
}

#[tokio::test]
async fn token_endpoint_failures_are_clear_errors() {
    let h = Harness::start().await;
    for (switch, status) in [("token_endpoint_error", 400), ("token_endpoint_500", 502)] {
        h.idp.controls().reset_switches();
        h.idp.controls().set_switch(switch, true);
        let start = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
        let state = cookie_pairs(&start);
        let cb = h.follow_idp(&location(&start)).await;
        assert_refused(h.get(&cb, &[("cookie", &state)]).await, status).await;
    }
}

#[tokio::test]
async fn non_browsers_get_401_and_post_navigations_are_not_redirected() {
    let h = Harness::start().await;
    let r = h
        .forward_auth("/api/items", &[("accept", "application/json")])
        .await;
    assert_eq!(r.status(), 401);
    assert!(
        header(&r, "www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    assert!(set_cookies(&r).is_empty());
    let r = h
        .get(
            "/oauth2/forward-auth",
            &[
                ("accept", BROWSER_ACCEPT),
                ("x-forwarded-method", "POST"),
                ("x-forwarded-uri", "/form"),
            ],
        )
        .await;
    assert_eq!(r.status(), 401);
    // nginx's endpoint never redirects.
    let r = h.get("/oauth2/auth", &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn sign_out_clears_the_session_and_ends_the_idp_session() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    let r = h
        .get(
            "/oauth2/sign_out?rd=https%3A%2F%2Fapp.example.com%2Fbye",
            &[("cookie", &session)],
        )
        .await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(loc.starts_with(&h.idp.end_session_endpoint()), "{loc}");
    let url = url::Url::parse(&loc).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["post_logout_redirect_uri"], "https://app.example.com/bye");
    assert!(q["id_token_hint"].starts_with("eyJ"));
    // The leak check the cookie tests use recognises a real token, and only a token.
    assert!(reveals_a_jwt(&format!("x={};", q["id_token_hint"])));
    assert!(!reveals_a_jwt("AeyJ9zz-eyJq.QeyJ"));
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("_portcullis=;") && c.contains("Max-Age=0"))
    );
    // The signed-out cookie is dead: signing out with it again goes straight to rd.
    let r = h
        .get("/oauth2/sign_out?rd=%2Fagain", &[("cookie", &session)])
        .await;
    assert_eq!(location(&r), "/again");
    // Open redirect through sign_out is refused.
    let (session, _) = h.login("/").await;
    let r = h
        .get(
            "/oauth2/sign_out?rd=https%3A%2F%2Fevil.com%2F",
            &[("cookie", &session)],
        )
        .await;
    let q: std::collections::HashMap<_, _> = url::Url::parse(&location(&r))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["post_logout_redirect_uri"], "https://auth.example.com/");
    // Without a session: straight to rd.
    let r = h.get("/oauth2/sign_out?rd=%2Fsigned-out", &[]).await;
    assert_eq!(location(&r), "/signed-out");
}

#[tokio::test]
async fn authz_denies_with_403_for_authenticated_users_outside_groups() {
    let h = Harness::start_with(|t| t + "[authz]\nallowed_groups = [\"ops\"]\n").await;
    let (session, _) = h.login("/").await;
    let r = h
        .forward_auth("/", &[("cookie", &session), ("accept", BROWSER_ACCEPT)])
        .await;
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Access denied") && body.contains("alice"),
        "{body}"
    );
    let r = h.get("/oauth2/auth", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 403);
    // A refresh done while checking still reaches the browser with the 403, so the next
    // request does not refresh again (Louketo #568).
    h.advance(6 * 60);
    let r = h.forward_auth("/", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 403);
    let fresh = session_cookie(&r);
    assert!(!fresh.is_empty(), "refreshed cookie sent with the 403");
    let grants = h.idp.controls().refresh_grants();
    assert_eq!(
        h.forward_auth("/", &[("cookie", &fresh)]).await.status(),
        403
    );
    assert_eq!(h.idp.controls().refresh_grants(), grants);
}

#[tokio::test]
async fn authz_allows_by_role() {
    let h = Harness::start_with(|t| {
        t + "[authz]\nallowed_groups = [\"ops\"]\nallowed_roles = [\"platform-user\"]\n"
    })
    .await;
    let (session, _) = h.login("/").await;
    assert_eq!(
        h.forward_auth("/", &[("cookie", &session)]).await.status(),
        200
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `prompt`, `login_hint`, `acr_values` and `kc_idp_hint`: configured ones go with every
/// login (the forward-auth redirect too) and can't be overridden; `/oauth2/start` may add
/// the others; a bad value is a 400 and nothing else is passed through.
#[tokio::test]
async fn login_parameters_are_configured_or_asked_for_and_checked() {
    let h = Harness::start_with(|t| {
        t.replace(
            "[oidc]\n",
            "[oidc]\nprompt = \"login\"\nacr_values = \"gold\"\n",
        )
    })
    .await;
    let params = |r: &reqwest::Response| -> Vec<(String, String)> {
        let url = url::Url::parse(&location(r)).unwrap();
        url.query_pairs().into_owned().collect()
    };
    let get = |pairs: &[(String, String)], name: &str| {
        pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let r = h
        .get(
            "/oauth2/start?rd=%2F&prompt=none&acr_values=1&kc_idp_hint=github&login_hint=alice%40example.com&redirect_uri=https%3A%2F%2Fevil.example%2F&scope=admin",
            &[],
        )
        .await;
    assert_eq!(r.status(), 302);
    let p = params(&r);
    assert_eq!(get(&p, "prompt"), ["login"], "the configured prompt wins");
    assert_eq!(get(&p, "acr_values"), ["gold"]);
    assert_eq!(get(&p, "kc_idp_hint"), ["github"]);
    assert_eq!(get(&p, "login_hint"), ["alice@example.com"]);
    assert_eq!(
        get(&p, "redirect_uri"),
        ["https://auth.example.com/oauth2/callback"]
    );
    assert_eq!(get(&p, "scope"), ["openid profile email"]);
    // The login still completes.
    let state = cookie_pairs(&r);
    let cb = h.follow_idp(&location(&r)).await;
    assert_eq!(h.get(&cb, &[("cookie", &state)]).await.status(), 302);

    // The forward-auth redirect carries the configured ones.
    let r = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    let p = params(&r);
    assert_eq!(get(&p, "prompt"), ["login"]);
    assert_eq!(get(&p, "acr_values"), ["gold"]);
    assert!(get(&p, "kc_idp_hint").is_empty());

    for bad in [
        "kc_idp_hint=a%26client_id%3Devil",
        "login_hint=a%0D%0Ab",
        "kc_idp_hint=",
    ] {
        let r = h.get(&format!("/oauth2/start?{bad}"), &[]).await;
        assert_refused(r, 400).await;
    }
}

/// `session.cookie_domains`: each cookie gets the longest domain the browser's host is in. A
/// login on a host whose domain holds `public_url`'s host calls back there (auth.example.com);
/// one on another domain calls back on its own host, so its state and session cookies are
/// that domain's; a host in no domain is answered as `public_url`'s host.
#[tokio::test]
async fn several_cookie_domains_each_get_their_own_cookies_and_callback() {
    let h = Harness::start_with(|t| {
        t.replace(
            "cookie_domain = \"example.com\"",
            "cookie_domains = [\"example.com\", \"example.org\"]",
        )
        .replace(
            "allowed_domains = [\".example.com\"]",
            "allowed_domains = [\".example.com\", \".example.org\", \"app.example.net\"]",
        )
    })
    .await;
    let ask = |host: &'static str, extra: Vec<(&'static str, String)>| {
        let mut req = h
            .client
            .get(h.url("/oauth2/forward-auth"))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", host)
            .header("x-forwarded-uri", "/inbox")
            .header("accept", BROWSER_ACCEPT);
        for (k, v) in extra {
            req = req.header(k, v);
        }
        req.send()
    };
    let query = |url: &str, name: &str| -> Option<String> {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let domain_of = |set_cookie: &str| -> Option<String> {
        set_cookie
            .split(';')
            .map(str::trim)
            .find_map(|a| a.strip_prefix("Domain=").map(str::to_string))
    };

    // example.org: its own callback, its domain's cookies.
    let start = ask("app.example.org", vec![]).await.unwrap();
    assert_eq!(start.status(), 302);
    let authorize = location(&start);
    assert_eq!(
        query(&authorize, "redirect_uri").as_deref(),
        Some("https://app.example.org/oauth2/callback")
    );
    let state_cookie = &set_cookies(&start)[0];
    assert_eq!(domain_of(state_cookie).as_deref(), Some("example.org"));
    let at_idp = h.client.get(&authorize).send().await.unwrap();
    let callback = location(&at_idp);
    let path = callback
        .strip_prefix("https://app.example.org")
        .expect("the IdP returns to the host's own callback");
    let done = h
        .get(
            path,
            &[
                ("cookie", &cookie_pairs(&start)),
                ("x-forwarded-host", "app.example.org"),
            ],
        )
        .await;
    assert_eq!(done.status(), 302, "{:?}", done.text().await);
    assert_eq!(location(&done), "https://app.example.org/inbox");
    let sets = set_cookies(&done);
    let session_set = sets.iter().find(|c| c.starts_with("_portcullis=")).unwrap();
    assert_eq!(domain_of(session_set).as_deref(), Some("example.org"));
    assert!(
        sets.iter()
            .filter(|c| c.contains("_csrf_"))
            .all(|c| domain_of(c).as_deref() == Some("example.org")),
        "the state cookie is cleared on the domain it was set for: {sets:?}"
    );
    let session = session_cookie(&done);
    let r = ask("app.example.org", vec![("cookie", session.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // example.com holds public_url's host: the usual callback and example.com's cookies.
    let start = ask("app.example.com", vec![]).await.unwrap();
    assert_eq!(
        query(&location(&start), "redirect_uri").as_deref(),
        Some("https://auth.example.com/oauth2/callback")
    );
    assert_eq!(
        domain_of(&set_cookies(&start)[0]).as_deref(),
        Some("example.com")
    );
    let (session, _) = h.login("/").await;
    assert!(!session.is_empty());

    // In no domain: as for public_url's host (which a browser on app.example.net ignores).
    let start = ask("app.example.net", vec![]).await.unwrap();
    assert_eq!(
        domain_of(&set_cookies(&start)[0]).as_deref(),
        Some("example.com")
    );
    assert_eq!(
        query(&location(&start), "redirect_uri").as_deref(),
        Some("https://auth.example.com/oauth2/callback")
    );
}
