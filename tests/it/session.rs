//! Sessions after login: tampering, expiry, refresh (single-flight), key rotation.

use crate::support::*;
use std::sync::atomic::Ordering;

#[tokio::test]
async fn tampered_truncated_and_foreign_cookies_are_no_session() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    let value = session.strip_prefix("_portcullis=").unwrap();
    let mut flipped = value.as_bytes().to_vec();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let foreign = "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let garbage = "x".repeat(5000);
    for bad in [
        format!("_portcullis={flipped}"),
        format!("_portcullis={}", &value[..value.len() - 10]),
        format!("_portcullis={foreign}"),
        format!("_portcullis={garbage}"),
        "_portcullis=".to_string(),
        "_portcullis_0=abc; _portcullis_1=def".to_string(),
        "_portcullis=%00%ff".to_string(),
    ] {
        let r = h
            .forward_auth("/", &[("cookie", &bad), ("accept", "application/json")])
            .await;
        assert_eq!(r.status(), 401, "{bad:.40}");
        assert!(
            set_cookies(&r).iter().any(|c| c.contains("Max-Age=0")),
            "dead cookie is cleared"
        );
        let r = h
            .forward_auth("/", &[("cookie", &bad), ("accept", BROWSER_ACCEPT)])
            .await;
        assert_eq!(r.status(), 302);
    }
}

#[tokio::test]
async fn another_apps_utf8_cookie_does_not_hide_the_session() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    let cookies = format!("theme=clair-et-épuré; {session}; lang=français");
    let r = h.forward_auth("/", &[("cookie", &cookies)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-request-user"), Some("a1b2c3-alice"));
}

#[tokio::test]
async fn with_refresh_off_the_session_ends_with_the_access_token() {
    let h = Harness::start_with(|t| t.replace("refresh = \"5m\"", "refresh = \"0s\"")).await;
    let (session, _) = h.login("/").await;
    assert_eq!(
        h.forward_auth("/", &[("cookie", &session)]).await.status(),
        200
    );
    // oauth2-proxy #1836: expired tokens must not keep a session alive.
    h.advance(301);
    assert_eq!(
        h.forward_auth("/", &[("cookie", &session)]).await.status(),
        401
    );
    assert_eq!(h.idp.controls().refresh_grants(), 0);
}

#[tokio::test]
async fn session_ends_after_expire_even_with_fresh_tokens() {
    let h = Harness::start_with(|t| t.replace("expire = \"12h\"", "expire = \"20m\"")).await;
    let (mut session, _) = h.login("/").await;
    for _ in 0..3 {
        h.advance(6 * 60);
        let r = h.forward_auth("/", &[("cookie", &session)]).await;
        assert_eq!(r.status(), 200);
        session = session_cookie(&r);
    }
    h.advance(3 * 60); // 21 minutes after login
    let r = h
        .forward_auth("/", &[("cookie", &session), ("accept", "application/json")])
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn stale_session_is_refreshed_and_the_new_cookie_returned() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    h.advance(6 * 60);
    let r = h.forward_auth("/", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h.idp.controls().refresh_grants(), 1);
    let fresh = session_cookie(&r);
    assert!(
        !fresh.is_empty() && fresh != session,
        "refreshed cookie returned"
    );
    // The new cookie passes without another refresh.
    assert_eq!(
        h.forward_auth("/", &[("cookie", &fresh)]).await.status(),
        200
    );
    assert_eq!(h.idp.controls().refresh_grants(), 1);
}

#[tokio::test]
async fn expired_tokens_with_failed_refresh_stop_passing() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    h.idp.controls().revoke_all_refresh_tokens();
    // Refresh due but the access token still valid: keeps passing on a transient IdP failure,
    // but a refused refresh (revoked) ends the session.
    h.advance(6 * 60);
    let r = h
        .forward_auth("/", &[("cookie", &session), ("accept", "application/json")])
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(refreshes(&h, "ended").await, 1);
    assert_eq!(refreshes(&h, "refreshed").await, 0);
}

/// `portcullis_session_refreshes_total` counts what each needed refresh came to: the
/// dashboard's refresh panel and the refresh-failure alert read it.
#[tokio::test]
async fn refresh_outcomes_are_counted() {
    let h = Harness::start_with(|t| t.replace("refresh = \"5m\"", "refresh = \"1m\"")).await;
    let (session, _) = h.login("/").await;
    let json = [("cookie", session.as_str()), ("accept", "application/json")];
    h.advance(120); // refresh due (1m), access token (5m) still valid
    h.idp.controls().set_down(true);
    assert_eq!(h.forward_auth("/", &json).await.status(), 200);
    assert_eq!(refreshes(&h, "failed_kept").await, 1);
    h.advance(200); // 320 s: the access token expired, the IdP still down
    assert_eq!(h.forward_auth("/", &json).await.status(), 401);
    assert_eq!(refreshes(&h, "failed_refused").await, 1);
    h.idp.controls().set_down(false);
    assert_eq!(h.forward_auth("/", &json).await.status(), 200);
    assert_eq!(refreshes(&h, "refreshed").await, 1);
    assert_eq!(refreshes(&h, "ended").await, 0);
    assert_eq!(refreshes(&h, "store_unavailable").await, 0);
}

/// The value of `portcullis_session_refreshes_total{outcome}` on `/metrics`.
async fn refreshes(h: &Harness, outcome: &str) -> u64 {
    let m = h.get("/metrics", &[]).await.text().await.unwrap();
    let series = format!("portcullis_session_refreshes_total{{outcome=\"{outcome}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .unwrap_or_else(|| panic!("no {series} in {m}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn idp_down_during_refresh_keeps_passing_until_tokens_expire() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    h.idp.controls().set_down(true);
    h.advance(200); // refresh not yet due
    assert_eq!(
        h.forward_auth("/", &[("cookie", &session)]).await.status(),
        200
    );
    let h2 = h; // refresh due (tokens 200s old, refresh 5m): set refresh window
    h2.advance(110); // 310s: access token (300s) expired, IdP down
    assert_eq!(
        h2.forward_auth("/", &[("cookie", &session), ("accept", "application/json")])
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn concurrent_stale_requests_cause_one_refresh_grant() {
    let h = Harness::start().await;
    h.idp
        .controls()
        .revoke_refresh_token_on_use
        .store(true, Ordering::SeqCst);
    h.idp.controls().set_token_delay_ms(150);
    let (session, _) = h.login("/").await;
    h.advance(6 * 60);
    let before = h.idp.controls().refresh_grants();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = h.client.clone();
        let url = h.url("/oauth2/forward-auth");
        let cookie = session.clone();
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        h.idp.controls().refresh_grants() - before,
        1,
        "exactly one refresh grant"
    );
}

#[tokio::test]
async fn rotated_cookie_secret_still_opens_old_sessions() {
    let idp = portcullis_test_idp::TestIdp::start(Default::default()).await;
    let old = Harness::start_for(idp.clone(), |t| t, true).await;
    let (session, _) = old.login("/").await;
    let new_secret = "bmV3LXNlY3JldC1mb3Itcm90YXRpb24tdGVzdC0xMjM=";
    let rotated = Harness::start_for(
        idp.clone(),
        |t| t.replace(&format!("cookie_secret = \"{COOKIE_SECRET}\""), &format!("cookie_secret = \"{new_secret}\"\nprevious_cookie_secrets = [\"{COOKIE_SECRET}\"]")),
        true,
    )
    .await;
    assert_eq!(
        rotated
            .forward_auth("/", &[("cookie", &session)])
            .await
            .status(),
        200
    );
    let only_new = Harness::start_for(
        idp,
        |t| {
            t.replace(
                &format!("cookie_secret = \"{COOKIE_SECRET}\""),
                &format!("cookie_secret = \"{new_secret}\""),
            )
        },
        true,
    )
    .await;
    assert_eq!(
        only_new
            .forward_auth("/", &[("cookie", &session), ("accept", "application/json")])
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn a_refresh_that_failed_during_an_outage_is_retried_once_the_idp_is_back() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    h.advance(6 * 60); // refresh due, access token still valid for 0 s more: 360 > 300 → required
    h.idp.controls().set_down(true);
    let r = h
        .forward_auth("/", &[("cookie", &session), ("accept", "application/json")])
        .await;
    assert_eq!(r.status(), 401, "expired tokens and no refresh possible");
    assert!(
        set_cookies(&r).is_empty(),
        "an unreachable IdP does not destroy the session"
    );
    h.idp.controls().set_down(false);
    let before = h.idp.controls().refresh_grants();
    let r = h.forward_auth("/", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 200, "the failure was not cached");
    assert_eq!(h.idp.controls().refresh_grants() - before, 1);
}

/// Issue 15: a login whose identity can't be sent exactly as headers (here a username with a
/// line break) is refused at the callback, and a session cookie sealed before that rule
/// existed is refused and cleared: the request never passes with an identity header missing.
#[tokio::test]
async fn an_identity_that_cannot_be_sent_as_headers_gets_no_session() {
    let h = Harness::start().await;
    let mut user = portcullis_test_idp::TestUser::alice();
    user.preferred_username = "alice\r\nx-auth-request-user: admin".into();
    h.idp.set_user(user);
    let start = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    let state_cookie = cookie_pairs(&start);
    let callback = h.follow_idp(&location(&start)).await;
    let r = h.get(&callback, &[("cookie", &state_cookie)]).await;
    assert_ne!(r.status(), 302, "no sign-in");
    assert!(session_cookie(&r).is_empty(), "no session cookie");

    // An older cookie carrying such an identity.
    h.idp.set_user(portcullis_test_idp::TestUser::alice());
    let (good, _) = h.login("/").await;
    let gate = h.app.gate();
    let mut session = gate.cookies().read(gate.sealer(), &good).unwrap();
    session.identity.preferred_username = Some("alice\nsmith".into());
    let set = gate
        .cookies()
        .write(
            gate.sealer(),
            &session,
            portcullis::clock::Clock::now(&h.clock),
            Default::default(),
        )
        .unwrap();
    let old = set[0].split(';').next().unwrap().to_string();
    let r = h
        .forward_auth("/", &[("cookie", &old), ("accept", "application/json")])
        .await;
    assert_eq!(r.status(), 401);
    assert!(
        set_cookies(&r).iter().any(|c| c.contains("Max-Age=0")),
        "the cookie is cleared"
    );
}

/// The `name=value` pair of a session cookie header (`_portcullis=…`).
fn value_of(session: &str) -> &str {
    session
        .strip_prefix("_portcullis=")
        .expect("one unchunked cookie")
}

/// Bob's session, from a login of his own (the attacker, who controls a sibling host).
async fn bobs_session(h: &Harness) -> String {
    h.idp.set_user(portcullis_test_idp::TestUser::bob());
    let (bob, _) = h.login("/").await;
    h.idp.set_user(portcullis_test_idp::TestUser::alice());
    bob
}

async fn as_json_client(h: &Harness, cookie: &str) -> reqwest::Response {
    h.forward_auth("/", &[("cookie", cookie), ("accept", "application/json")])
        .await
}

/// Issue 15 (cookie tossing): a sibling host under `cookie_domain` sets a session cookie with
/// a longer `Path`; browsers send it before ours. A garbage one must not lock the user out.
#[tokio::test]
async fn a_garbage_session_cookie_tossed_before_ours_does_not_lock_the_user_out() {
    let h = Harness::start().await;
    let (alice, _) = h.login("/").await;
    for tossed in [
        "_portcullis=garbage".to_string(),
        "_portcullis=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        format!("_portcullis={}x", value_of(&alice)),
        "_portcullis=a; _portcullis=b; _portcullis=c; _portcullis=d; _portcullis=e".to_string(),
        "_portcullis_0=garbage".to_string(),
    ] {
        let cookie = format!("{tossed}; {alice}");
        let r = as_json_client(&h, &cookie).await;
        assert_eq!(r.status(), 200, "{tossed:.50}");
        assert_eq!(header(&r, "x-auth-request-user"), Some("a1b2c3-alice"));
        assert!(set_cookies(&r).is_empty(), "nothing cleared, nothing set");
    }
}

/// Issue 15 (login fixation): the attacker's own valid session, tossed next to the victim's,
/// must never win, whichever comes first. Both are refused and ours is cleared; the
/// attacker's session alone still works for the attacker.
#[tokio::test]
async fn another_users_valid_session_next_to_ours_never_wins() {
    let h = Harness::start().await;
    let (alice, _) = h.login("/").await;
    let bob = bobs_session(&h).await;
    for cookie in [format!("{bob}; {alice}"), format!("{alice}; {bob}")] {
        let r = as_json_client(&h, &cookie).await;
        assert_eq!(r.status(), 401, "neither session passes");
        assert!(header(&r, "x-auth-request-user").is_none());
        let cleared = set_cookies(&r);
        assert!(
            cleared.iter().any(|c| c.starts_with("_portcullis=;")
                && c.contains("Max-Age=0")
                && c.contains("Domain=example.com")
                && c.contains("Path=/")),
            "{cleared:?}"
        );
        let r = h
            .forward_auth("/", &[("cookie", &cookie), ("accept", BROWSER_ACCEPT)])
            .await;
        assert_eq!(r.status(), 302, "a browser is sent to sign in");
    }
    assert_eq!(
        header(&as_json_client(&h, &alice).await, "x-auth-request-user"),
        Some("a1b2c3-alice")
    );
    assert_eq!(
        header(&as_json_client(&h, &bob).await, "x-auth-request-user"),
        Some("d4e5f6-bob")
    );
}

/// Two sessions of the same user (an older login's cookie under another Path or Domain) are
/// no attack: the most recently refreshed one passes.
#[tokio::test]
async fn two_sessions_of_the_same_user_pass_with_the_newest() {
    let h = Harness::start().await;
    let (first, _) = h.login("/").await;
    h.advance(60);
    let (second, _) = h.login("/").await;
    assert_ne!(first, second);
    for cookie in [format!("{first}; {second}"), format!("{second}; {first}")] {
        let r = as_json_client(&h, &cookie).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-auth-request-user"), Some("a1b2c3-alice"));
    }
}

/// Tossing works on chunked sessions too: a stray `_portcullis_0` before ours, or an extra
/// chunk after our last one, must not hide the session.
#[tokio::test]
async fn tossed_chunks_do_not_hide_a_chunked_session() {
    let h = Harness::start().await;
    let (alice, _) = h.login("/").await;
    let gate = h.app.gate();
    let mut session = gate.cookies().read(gate.sealer(), &alice).unwrap();
    // Incompressible text, so the sealed session needs three chunks.
    let mut x: u32 = 0x2545_f491;
    session.access_token = Some(
        (0..9000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        [(x % 64) as usize],
                )
            })
            .collect(),
    );
    let now = portcullis::clock::Clock::now(&h.clock);
    let set = gate
        .cookies()
        .write(gate.sealer(), &session, now, Default::default())
        .unwrap();
    assert!(set.len() >= 3, "chunked: {set:?}");
    let chunked = set
        .iter()
        .map(|c| c.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("; ");
    assert_eq!(as_json_client(&h, &chunked).await.status(), 200);
    let n = set.len();
    for cookie in [
        format!("_portcullis_0=garbage; {chunked}"),
        format!("_portcullis_1=garbage; _portcullis_0=junk; {chunked}"),
        format!("{chunked}; _portcullis_{n}=extra"),
        format!("_portcullis_{n}=extra; _portcullis_0=x; {chunked}"),
        format!("_portcullis=garbage; {chunked}"),
    ] {
        let r = as_json_client(&h, &cookie).await;
        assert_eq!(r.status(), 200, "{cookie:.80}");
        assert_eq!(header(&r, "x-auth-request-user"), Some("a1b2c3-alice"));
    }
    // Bob's whole session next to alice's chunked one: refused.
    let bob = bobs_session(&h).await;
    assert_eq!(
        as_json_client(&h, &format!("{bob}; {chunked}"))
            .await
            .status(),
        401
    );
}

/// Signing out with a tossed session next to ours ends both: the intruder's session can't be
/// used again either.
#[tokio::test]
async fn sign_out_ends_every_session_the_browser_sent() {
    let h = Harness::start().await;
    let (alice, _) = h.login("/").await;
    let bob = bobs_session(&h).await;
    let r = h
        .get(
            "/oauth2/sign_out",
            &[("cookie", &format!("{bob}; {alice}"))],
        )
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(as_json_client(&h, &alice).await.status(), 401);
    assert_eq!(as_json_client(&h, &bob).await.status(), 401);
}

fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// `[headers]`: which tokens a pass hands upstream. The access token by default; the ID token
/// in `Authorization` with `authorization_token = "id"` (oauth2-proxy's
/// `--set-authorization-header`); a bearer request passes its own token either way.
#[tokio::test]
async fn the_answer_carries_the_tokens_the_headers_section_asks_for() {
    for (headers, access, authorization_typ) in [
        (
            "pass_access_token = true\npass_authorization_header = true\n",
            true,
            Some("Bearer"),
        ),
        (
            "pass_authorization_header = true\nauthorization_token = \"id\"\n",
            false,
            Some("ID"),
        ),
        ("", false, None),
    ] {
        let h = Harness::start_with(|t| format!("{t}[headers]\n{headers}")).await;
        let (session, _) = h.login("/").await;
        let r = h.forward_auth("/", &[("cookie", &session)]).await;
        assert_eq!(r.status(), 200, "{headers}");
        assert_eq!(
            header(&r, "x-auth-request-access-token").is_some(),
            access,
            "{headers}"
        );
        let authz = header(&r, "authorization").map(str::to_string);
        match authorization_typ {
            None => assert!(authz.is_none(), "{headers}"),
            Some(typ) => {
                let token = authz.as_deref().unwrap().strip_prefix("Bearer ").unwrap();
                assert_eq!(jwt_claims(token)["typ"], typ, "{headers}");
                if let Some(a) = header(&r, "x-auth-request-access-token") {
                    assert_eq!(a, token, "one access token in both headers");
                }
            }
        }
        // A bearer request's own token is what `Authorization` carries, in either mode.
        let bearer = h.idp.mint_access_token(
            &portcullis_test_idp::TestUser::alice(),
            serde_json::json!({}),
            "rsa-1",
        );
        let r = h
            .forward_auth("/", &[("authorization", &format!("Bearer {bearer}"))])
            .await;
        assert_eq!(r.status(), 200);
        if authorization_typ.is_some() {
            assert_eq!(
                header(&r, "authorization"),
                Some(format!("Bearer {bearer}").as_str())
            );
        }
    }
}

/// `oidc.email_claim`, `groups_claim`, `user_id_claim` and `[headers.claims]`: a session and
/// a bearer token of the same user answer with the same headers; `[authz]` reads the mapped
/// groups; a claim header is always sent (empty without the claim) and carries no line break.
#[tokio::test]
async fn mapped_claims_become_the_identity_and_claim_headers_for_sessions_and_bearers() {
    let config = |t: String| {
        t.replace(
            "[oidc]\n",
            "[oidc]\nemail_claim = \"upn\"\ngroups_claim = \"org.teams\"\nuser_id_claim = \"employee_id\"\n",
        ) + "[authz]\nallowed_groups = [\"payments\"]\n[headers.claims]\n\"X-Auth-Request-Tenant\" = \"tenant\"\n\"X-Realm-Roles\" = \"realm_access.roles\"\n\"X-Note\" = \"note\"\n\"X-Cost-Center\" = \"org.cost_center\"\n"
    };
    let h = Harness::start_with(config).await;
    let mut user = portcullis_test_idp::TestUser::alice();
    user.extra_claims = serde_json::json!({
        "upn": "alice@corp.example",
        "employee_id": 4711,
        "tenant": "acme",
        "note": "line\r\nX-Auth-Request-User: admin",
        "org": {"teams": ["payments", "a,b"]},
    });
    h.idp.set_user(user.clone());
    let (session, _) = h.login("/").await;
    let bearer = h
        .idp
        .mint_access_token(&user, serde_json::json!({}), "rsa-1");
    for (what, creds) in [
        ("session", ("cookie", session.clone())),
        ("bearer", ("authorization", format!("Bearer {bearer}"))),
    ] {
        let r = h.forward_auth("/", &[(creds.0, &creds.1)]).await;
        assert_eq!(r.status(), 200, "{what}");
        assert_eq!(header(&r, "x-auth-request-user"), Some("4711"), "{what}");
        assert_eq!(
            header(&r, "x-auth-request-email"),
            Some("alice@corp.example"),
            "{what}"
        );
        assert_eq!(
            header(&r, "x-auth-request-groups"),
            Some("payments,role:platform-user,role:portcullis:reader"),
            "{what}: a group name with a comma is left out, as from the standard claim"
        );
        assert_eq!(header(&r, "x-auth-request-tenant"), Some("acme"), "{what}");
        // realm_access is only in the access token: read from there for a session too.
        assert_eq!(header(&r, "x-realm-roles"), Some("platform-user"), "{what}");
        assert_eq!(
            header(&r, "x-note"),
            Some("line%0D%0AX-Auth-Request-User: admin"),
            "{what}"
        );
        assert_eq!(
            header(&r, "x-cost-center"),
            Some(""),
            "{what}: absent, sent empty"
        );
    }

    // The mapped groups decide: without "payments" in org.teams, access is denied.
    let mut outsider = user.clone();
    outsider.extra_claims["org"] = serde_json::json!({"teams": ["sales"]});
    let token = h
        .idp
        .mint_access_token(&outsider, serde_json::json!({}), "rsa-1");
    let r = h
        .forward_auth("/", &[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(r.status(), 403);

    // A public route's answer carries every claim header, empty.
    let h = Harness::start_with(|t| {
        config(t) + "[[rules]]\nname = \"health\"\npaths = [\"/health\"]\naction = \"public\"\n"
    })
    .await;
    let r = h.forward_auth("/health", &[]).await;
    assert_eq!(r.status(), 200);
    for name in [
        "x-auth-request-user",
        "x-auth-request-tenant",
        "x-realm-roles",
        "x-note",
    ] {
        assert_eq!(header(&r, name), Some(""), "{name}");
    }
}
