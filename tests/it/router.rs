//! Ring 2: the router, called in process through the tower service (`Endpoints`) with
//! `oneshot`, no socket between test and service: every endpoint, and every status each can
//! answer. The test IdP still listens on 127.0.0.1:0 (discovery, keys, token exchange).

use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use portcullis::app::CurrentApp;
use portcullis::http::service::Endpoints;
use portcullis_test_idp::TestUser;
use std::net::{IpAddr, Ipv4Addr};
use tower::ServiceExt;

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const JSON: (&str, &str) = ("accept", "application/json");

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

async fn send(
    h: &Harness,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let svc = Endpoints::new(CurrentApp::new(h.app.clone()), Some(PEER));
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = svc
        .oneshot(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// What Traefik sends for a request to `https://app.example.com{uri}`, plus `extra`.
fn forwarded<'a>(uri: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("x-forwarded-method", "GET"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-uri", uri),
    ];
    h.extend_from_slice(extra);
    h
}

fn expect(a: &Answer, status: u16, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.body);
}

#[tokio::test]
async fn every_endpoint_and_every_status_it_answers() {
    let h = Harness::start_with(|t| {
        format!(
            "{t}\n[[rules]]\nname = \"open\"\npaths = [\"/public/**\"]\naction = \"public\"\n\n\
             [[rules]]\nname = \"closed\"\npaths = [\"/closed/**\"]\naction = \"deny\"\n"
        )
    })
    .await;
    let token = h
        .idp
        .mint_access_token(&TestUser::alice(), serde_json::json!({}), "rsa-1");
    let bearer = format!("Bearer {token}");
    let auth = ("authorization", bearer.as_str());

    // Health and metrics.
    expect(&send(&h, "GET", "/ping", &[], "").await, 200, "ping");
    expect(&send(&h, "HEAD", "/ping", &[], "").await, 200, "ping HEAD");
    expect(&send(&h, "GET", "/ready", &[], "").await, 200, "ready");
    let m = send(&h, "GET", "/metrics", &[], "").await;
    expect(&m, 200, "metrics");
    assert!(m.body.contains("portcullis_requests_total"));
    expect(&send(&h, "POST", "/ping", &[], "").await, 405, "POST /ping");
    expect(
        &send(&h, "DELETE", "/metrics", &[], "").await,
        405,
        "DELETE /metrics",
    );
    expect(
        &send(&h, "GET", "/nope", &[], "").await,
        404,
        "unknown path",
    );

    // Traefik / Caddy: /oauth2/forward-auth.
    let fa = "/oauth2/forward-auth";
    expect(
        &send(&h, "GET", fa, &forwarded("/x", &[auth]), "").await,
        200,
        "bearer",
    );
    let browser = send(
        &h,
        "GET",
        fa,
        &forwarded("/x", &[("accept", BROWSER_ACCEPT)]),
        "",
    )
    .await;
    expect(&browser, 302, "browser without a session");
    assert!(
        browser.headers["location"]
            .to_str()
            .unwrap()
            .starts_with(&h.idp.issuer())
    );
    let api = send(&h, "GET", fa, &forwarded("/x", &[JSON]), "").await;
    expect(&api, 401, "API client without credentials");
    assert!(api.headers.contains_key("www-authenticate"));
    let bad = send(
        &h,
        "GET",
        fa,
        &forwarded("/x", &[("authorization", "Bearer a.b.c")]),
        "",
    )
    .await;
    expect(&bad, 401, "bad token");
    assert!(
        bad.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let public = send(&h, "GET", fa, &forwarded("/public/page", &[JSON]), "").await;
    expect(&public, 200, "public rule");
    assert_eq!(public.headers["x-auth-request-user"], "");
    expect(
        &send(&h, "GET", fa, &forwarded("/closed/x", &[auth]), "").await,
        403,
        "deny rule",
    );
    let narrowed = format!("{fa}?allowed_groups=nobody");
    expect(
        &send(&h, "GET", &narrowed, &forwarded("/x", &[auth]), "").await,
        403,
        "constraint",
    );
    let broken = format!("{fa}?allowed_nothing=x");
    expect(
        &send(&h, "GET", &broken, &forwarded("/x", &[auth]), "").await,
        400,
        "bad constraint",
    );
    expect(
        &send(&h, "GET", fa, &forwarded("/a%zz", &[auth]), "").await,
        400,
        "bad path",
    );

    // nginx: /oauth2/auth.
    expect(
        &send(&h, "GET", "/oauth2/auth", &forwarded("/x", &[auth]), "").await,
        202,
        "nginx pass",
    );
    expect(
        &send(&h, "GET", "/oauth2/auth", &forwarded("/x", &[JSON]), "").await,
        401,
        "nginx 401",
    );
    expect(
        &send(
            &h,
            "GET",
            "/oauth2/auth",
            &forwarded("/closed/x", &[auth]),
            "",
        )
        .await,
        403,
        "nginx 403",
    );

    // Envoy: /oauth2/ext-authz/<path>.
    let envoy = [("host", "app.example.com"), auth];
    expect(
        &send(&h, "GET", "/oauth2/ext-authz/x", &envoy, "").await,
        200,
        "envoy pass",
    );
    expect(
        &send(&h, "GET", "/oauth2/ext-authz/closed/x", &envoy, "").await,
        403,
        "envoy deny",
    );
    expect(
        &send(&h, "GET", "/oauth2/ext-authzx", &envoy, "").await,
        404,
        "envoy prefix only",
    );

    // Sign-in, sign-out, userinfo.
    let start = send(&h, "GET", "/oauth2/start?rd=%2Finbox", &[], "").await;
    expect(&start, 302, "start");
    assert!(
        start.headers["location"]
            .to_str()
            .unwrap()
            .starts_with(&h.idp.issuer())
    );
    expect(
        &send(&h, "POST", "/oauth2/start", &[], "").await,
        405,
        "POST start",
    );
    let sign_in = send(&h, "GET", "/oauth2/sign_in", &[], "").await;
    expect(&sign_in, 302, "sign_in (nginx error_page 401)");
    assert!(
        sign_in.headers["location"]
            .to_str()
            .unwrap()
            .starts_with(&h.idp.issuer())
    );
    expect(
        &send(&h, "POST", "/oauth2/sign_in", &[], "").await,
        405,
        "POST sign_in",
    );
    expect(
        &send(&h, "GET", "/oauth2/callback?code=c&state=s", &[], "").await,
        400,
        "callback without its state cookie",
    );
    expect(
        &send(&h, "GET", "/oauth2/sign_out", &[], "").await,
        302,
        "sign out",
    );
    expect(
        &send(&h, "GET", "/oauth2/userinfo", &[auth], "").await,
        200,
        "userinfo",
    );
    expect(
        &send(&h, "GET", "/oauth2/userinfo", &[], "").await,
        401,
        "userinfo without credentials",
    );

    // Back-channel logout: only POST, only a valid logout token.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    expect(
        &send(
            &h,
            "POST",
            "/oauth2/backchannel-logout",
            &form,
            "logout_token=x.y.z",
        )
        .await,
        400,
        "bad logout token",
    );
    expect(
        &send(&h, "POST", "/oauth2/backchannel-logout", &form, "").await,
        400,
        "no logout token",
    );
    expect(
        &send(&h, "GET", "/oauth2/backchannel-logout", &[], "").await,
        404,
        "GET back-channel",
    );
}

#[tokio::test]
async fn a_caller_outside_trusted_proxies_gets_403_from_every_decision_endpoint() {
    let h = Harness::start_with(|t| format!("trusted_proxies = [\"10.0.0.0/8\"]\n{t}")).await;
    for path in [
        "/oauth2/forward-auth",
        "/oauth2/auth",
        "/oauth2/ext-authz/x",
    ] {
        expect(
            &send(&h, "GET", path, &forwarded("/x", &[JSON]), "").await,
            403,
            path,
        );
    }
    // Everything else does not care who asks.
    expect(&send(&h, "GET", "/ping", &[], "").await, 200, "ping");
}

/// `/ready` is 503 while the session store can't be reached (decisions then answer 503 for
/// sessions: `redis_sessions::redis_down_fails_closed_quickly_and_recovery_needs_no_restart`,
/// which needs a real Redis to make a session first).
#[tokio::test]
async fn ready_is_503_while_the_session_store_is_unreachable() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = Harness::start_for(
        portcullis_test_idp::TestIdp::start(Default::default()).await,
        |t| {
            t.replace(
                "[session]\n",
                &format!(
                    "[session]\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}/0\"\n"
                ),
            )
        },
        false,
    )
    .await;
    expect(
        &send(&h, "GET", "/ready", &[], "").await,
        503,
        "ready without Redis",
    );
    expect(
        &send(&h, "GET", "/ping", &[], "").await,
        200,
        "alive all the same",
    );
}
