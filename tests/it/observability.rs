//! What the binary tells operators, read from the process itself: one audit line per
//! security-relevant outcome (JSON logs, target `audit`) with the request's id, client address,
//! host and path; request ids taken, made and returned; no token, cookie, code or secret in any
//! line; and the separate metrics listener (`metrics_listen`).

use crate::support::{BROWSER_ACCEPT, CLIENT, header, start_binary};
use portcullis_test_idp::{TestIdp, TestUser};
use serde_json::Value;
use std::time::Duration;

/// The audit lines of `logs`, parsed.
fn audit_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "audit")
        .collect()
}

fn find<'a>(lines: &'a [Value], event: &str, reason: Option<&str>) -> &'a Value {
    lines
        .iter()
        .find(|l| l["event"] == event && reason.is_none_or(|r| l["reason"] == r))
        .unwrap_or_else(|| panic!("no audit line {event} {reason:?} in {lines:#?}"))
}

#[tokio::test]
async fn every_security_outcome_is_one_audit_line_without_secrets() {
    let idp = TestIdp::start(Default::default()).await;
    let p = start_binary(idp, |t| t).await;
    let alice = TestUser::alice();

    // A login, and the proxy's request id on a decision.
    let (session, code) = p.login("/deep?token=query-secret").await;
    let r = p
        .forward_auth(
            "/x",
            &[("cookie", &session), ("x-request-id", "trace-me-1")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-request-id"), Some("trace-me-1"));
    // A forged id (a space, quotes) is replaced, never echoed.
    let r = p
        .forward_auth("/x", &[("cookie", &session), ("x-request-id", "a \"b\"")])
        .await;
    let made = header(&r, "x-request-id").unwrap();
    assert_eq!(made.len(), 32, "{made}");

    // A callback that matches no login: refused, and the page quotes the request id.
    let failed = p
        .get(
            "/oauth2/callback?code=stolen-code&state=forged",
            &[("accept", BROWSER_ACCEPT)],
        )
        .await;
    assert_eq!(failed.status(), 400);
    let failed_id = header(&failed, "x-request-id").unwrap().to_string();
    let page = failed.text().await.unwrap();
    assert!(page.contains(&failed_id), "{page}");

    // A bearer token with a broken signature; bob's token, outside the allowed group; a path
    // closed to everyone.
    let good = p
        .idp
        .mint_access_token(&alice, serde_json::json!({}), "rsa-1");
    let tampered = format!("{}AAAA", &good[..good.len() - 4]);
    let r = p
        .forward_auth("/api", &[("authorization", &format!("Bearer {tampered}"))])
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("request id: "));
    let bob = p.refused_by_policy(&session).await;

    // Sign-out; a second login ended by the IdP's back-channel logout; a third whose refresh
    // the IdP refuses.
    let r = p.get("/oauth2/sign_out", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 302);
    let (second, _) = p.login("/").await;
    let sid = p.idp.last_session_id().unwrap();
    let status = p
        .idp
        .send_backchannel_logout(
            &format!("{}/oauth2/backchannel-logout", p.base),
            serde_json::json!({ "sid": sid }),
        )
        .await;
    assert_eq!(status, Ok(200));
    let (third, _) = p.login("/").await;
    p.idp.controls().revoke_all_refresh_tokens();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = p.forward_auth("/x", &[("cookie", &third)]).await;
    assert_eq!(r.status(), 401, "the refused refresh ends the session");

    let logs = p.stop();
    let lines = audit_lines(&logs);
    // Shown with --nocapture: one line of each kind, as operators read them.
    for l in &lines {
        println!("{l}");
    }

    let ok = find(&lines, "login.succeeded", None);
    assert_eq!(ok["user"], alice.sub.as_str());
    assert_eq!(ok["client_ip"], CLIENT, "{ok}");
    assert_eq!(ok["host"], "auth.example.com");
    assert_eq!(
        ok["path"], "/oauth2/callback",
        "the query (code, state) is not logged"
    );
    assert!(ok["sid"].is_string());

    let failed = find(&lines, "login.failed", Some("state_mismatch"));
    assert_eq!(failed["request_id"], failed_id.as_str());

    let refused = find(&lines, "bearer.refused", Some("signature"));
    assert_eq!(refused["host"], "app.example.com");
    assert_eq!(refused["path"], "/api");
    assert_eq!(
        refused["client_ip"], CLIENT,
        "the first untrusted address from the right"
    );

    let denied = find(&lines, "request.denied", Some("group_or_role"));
    assert_eq!(denied["user"], TestUser::bob().sub.as_str());
    assert_eq!(denied["rule"], "(default)");
    let closed = find(&lines, "request.denied", Some("deny_rule"));
    assert_eq!(closed["rule"], "closed");
    assert_eq!(closed["path"], "/closed/x");

    let out = find(&lines, "sign_out", None);
    assert_eq!(out["user"], alice.sub.as_str());
    let bcl = find(&lines, "logout.backchannel", None);
    assert_eq!(bcl["sid"], sid.as_str());
    let refresh = find(&lines, "session.refresh_failed", Some("idp_refused"));
    assert_eq!(refresh["user"], alice.sub.as_str());
    assert_eq!(refresh["still_valid"], false);

    // Every audit line names its request, as the span of every line of that request does.
    for l in &lines {
        let id = l["request_id"].as_str().unwrap_or_else(|| panic!("{l}"));
        assert_eq!(l["span"]["request_id"], id, "{l}");
    }

    // Nothing that grants access or proves a login is written anywhere.
    let cookie_value = |c: &str| c.split_once('=').map(|(_, v)| v.to_string()).unwrap();
    for (what, secret) in [
        ("session cookie", cookie_value(&session)),
        ("second session cookie", cookie_value(&second)),
        ("third session cookie", cookie_value(&third)),
        ("authorization code", code),
        ("forged code", "stolen-code".to_string()),
        ("bearer token", good[..40].to_string()),
        ("bob's token", bob[..40].to_string()),
        ("client secret", "test-secret".to_string()),
        ("query", "query-secret".to_string()),
    ] {
        assert!(
            !logs.contains(&secret),
            "the {what} is in the logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn metrics_listen_serves_metrics_and_probes_apart_from_the_main_listener() {
    let idp = TestIdp::start(Default::default()).await;
    let p = start_binary(idp, |t| t).await;
    let get = |url: String| {
        let client = p.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let r = get(format!("{}/metrics", p.metrics)).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("portcullis_requests_total")
    );
    for path in ["/ping", "/ready"] {
        assert_eq!(get(format!("{}{path}", p.metrics)).await.status(), 200);
        assert_eq!(get(format!("{}{path}", p.base)).await.status(), 200);
    }
    // Not on the port Traefik calls; and no decision on the metrics port.
    assert_eq!(get(format!("{}/metrics", p.base)).await.status(), 404);
    assert_eq!(
        get(format!("{}/oauth2/forward-auth", p.metrics))
            .await
            .status(),
        404
    );
    let logs = p.stop();
    assert!(
        logs.contains("metrics, /ping and /ready listening"),
        "{logs}"
    );
}
