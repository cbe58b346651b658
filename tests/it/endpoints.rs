//! Health, readiness, metrics, userinfo, and answers to malformed requests.

use crate::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn ping_ready_metrics() {
    let h = Harness::start().await;
    assert_eq!(h.get("/ping", &[]).await.status(), 200);
    assert_eq!(h.get("/ready", &[]).await.status(), 200);
    let _ = h.forward_auth("/", &[]).await;
    let m = h.get("/metrics", &[]).await.text().await.unwrap();
    assert!(
        m.contains(
            "portcullis_requests_total{endpoint=\"forward_auth\",decision=\"unauthenticated\"} 1"
        ),
        "{m}"
    );
    assert!(m.contains("portcullis_idp_requests_total{kind=\"discovery\",outcome=\"ok\"}"));
    assert!(m.contains("portcullis_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn not_ready_while_the_idp_is_down_then_ready_without_restart() {
    let idp = portcullis_test_idp::TestIdp::start(Default::default()).await;
    idp.stop().await;
    let h = Harness::start_for(idp, |t| t, false).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(h.get("/ready", &[]).await.status(), 503);
    assert_eq!(h.get("/ping", &[]).await.status(), 200);
    // A browser can't log in yet: a clear 503 page.
    let r = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(r.status(), 503);
    h.idp.restart().await;
    h.wait_ready().await;
    assert_eq!(h.get("/ready", &[]).await.status(), 200);
    assert_eq!(
        h.forward_auth("/", &[("accept", BROWSER_ACCEPT)])
            .await
            .status(),
        302
    );
}

#[tokio::test]
async fn userinfo_returns_the_user_or_401() {
    let h = Harness::start().await;
    assert_eq!(h.get("/oauth2/userinfo", &[]).await.status(), 401);
    let (session, _) = h.login("/").await;
    let r = h.get("/oauth2/userinfo", &[("cookie", &session)]).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["user"], "a1b2c3-alice");
    assert_eq!(v["email"], "alice@example.com");
    assert_eq!(v["preferredUsername"], "alice");
    assert!(
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "admins")
    );
}

#[tokio::test]
async fn traefik_preserve_request_method_is_answered_like_get() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    let r = h
        .client
        .post(h.url("/oauth2/forward-auth"))
        .header("cookie", &session)
        .header("x-forwarded-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h.client.put(h.url("/oauth2/auth")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let h = Harness::start().await;
    assert_eq!(h.get("/nope", &[]).await.status(), 404);
    let r = h
        .client
        .delete(h.url("/oauth2/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn oversized_headers_get_431_and_the_server_survives() {
    let h = Harness::start().await;
    let huge = "a".repeat(64 * 1024);
    let addr = h.base.strip_prefix("http://").unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /oauth2/forward-auth HTTP/1.1\r\nHost: x\r\nCookie: _portcullis={huge}\r\n\r\n"
    );
    let _ = s.write_all(req.as_bytes()).await;
    let mut buf = vec![0u8; 256];
    let n = s.read(&mut buf).await.unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    assert_eq!(h.get("/ping", &[]).await.status(), 200);
}

#[tokio::test]
async fn garbage_requests_never_crash_the_server() {
    let h = Harness::start().await;
    let addr = h.base.strip_prefix("http://").unwrap().to_string();
    for junk in [
        &b"\x00\x01\x02\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /oauth2/forward-auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let _ = s.write_all(junk).await;
        let mut buf = vec![0u8; 64];
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s.read(&mut buf)).await;
    }
    assert_eq!(h.get("/ping", &[]).await.status(), 200);
}

#[tokio::test]
async fn idp_outage_after_start_is_reported_but_sessions_keep_passing() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    let start = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    let state = cookie_pairs(&start);
    let cb = h.follow_idp(&location(&start)).await;
    h.idp.stop().await;
    // A login that needs the IdP now gets a clear 502 page.
    let r = h.get(&cb, &[("cookie", &state)]).await;
    assert_eq!(r.status(), 502);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("identity provider is not answering")
    );
    // Existing sessions keep passing; readiness stays up but says it is degraded.
    assert_eq!(
        h.forward_auth("/", &[("cookie", &session)]).await.status(),
        200
    );
    let r = h.get("/ready", &[]).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("identity provider unreachable")
    );
    let m = h.get("/metrics", &[]).await.text().await.unwrap();
    assert!(m.contains("portcullis_idp_up 0"), "{m}");
    // New visitors get a clear 503 page here rather than an error at the IdP.
    let r = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("not available"));
}

#[tokio::test]
async fn an_unreachable_extra_bearer_issuer_never_blocks_logins() {
    let h = Harness::start_with(|t| {
        t + "[[bearer.issuers]]\nissuer_url = \"http://127.0.0.1:9/realms/gone\"\naudiences = [\"x\"]\n"
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await; // a few failed discoveries
    assert_eq!(
        h.forward_auth("/", &[("accept", BROWSER_ACCEPT)])
            .await
            .status(),
        302
    );
    assert_eq!(h.get("/ready", &[]).await.text().await.unwrap(), "ready");
}
