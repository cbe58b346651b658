//! OIDC Back-Channel Logout and server-side sign-out.

use crate::support::*;
use portcullis::clock::Clock;
use serde_json::json;

async fn post_logout(h: &Harness, token: &str) -> reqwest::Response {
    h.client
        .post(h.url("/oauth2/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn idp_initiated_logout_ends_the_session_at_once() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    assert_eq!(
        h.forward_auth("/", &[("cookie", &session)]).await.status(),
        200
    );
    h.idp
        .controls()
        .set_backchannel_logout_url(Some(&h.url("/oauth2/backchannel-logout")));
    let sid = h.idp.last_session_id().expect("IdP session");
    assert!(h.idp.logout_session(&sid).await);
    assert_eq!(h.idp.controls().last_backchannel_result(), Some(Ok(200)));
    let r = h
        .forward_auth("/", &[("cookie", &session), ("accept", "application/json")])
        .await;
    assert_eq!(r.status(), 401);
    let m = h.get("/metrics", &[]).await.text().await.unwrap();
    assert!(m.contains("portcullis_backchannel_logouts_total 1"), "{m}");
}

#[tokio::test]
async fn logout_by_sub_ends_every_session_of_the_user() {
    let h = Harness::start().await;
    let (s1, _) = h.login("/").await;
    let (s2, _) = h.login("/").await;
    let token = h
        .idp
        .mint_logout_token(json!({"sid": null, "sub": "a1b2c3-alice"}));
    assert_eq!(post_logout(&h, &token).await.status(), 200);
    for s in [s1, s2] {
        assert_eq!(
            h.forward_auth("/", &[("cookie", &s), ("accept", "application/json")])
                .await
                .status(),
            401
        );
    }
    h.advance(5);
    let (s3, _) = h.login("/").await;
    assert_eq!(
        h.forward_auth("/", &[("cookie", &s3)]).await.status(),
        200,
        "a new login after the logout passes"
    );
}

#[tokio::test]
async fn bad_logout_tokens_get_400_json() {
    let h = Harness::start().await;
    let now = h.clock.now();
    let event = json!({"http://schemas.openid.net/event/backchannel-logout": {}});
    let good_claims = json!({"iss": h.idp.issuer(), "aud": "portcullis", "iat": now, "jti": "j-1", "sid": "s-1", "events": event});
    let cases: Vec<(&str, String)> = vec![
        (
            "with a nonce",
            h.idp.mint_logout_token(json!({"nonce": "n"})),
        ),
        (
            "without events",
            h.idp.mint_logout_token(json!({"events": null})),
        ),
        (
            "wrong event",
            h.idp
                .mint_logout_token(json!({"events": {"http://example.com/other": {}}})),
        ),
        (
            "wrong audience",
            h.idp.mint_logout_token(json!({"aud": "someone-else"})),
        ),
        (
            "wrong issuer",
            h.idp
                .mint_logout_token(json!({"iss": "https://evil.example.com"})),
        ),
        (
            "no sid nor sub",
            h.idp.mint_logout_token(json!({"sid": null, "sub": null})),
        ),
        ("no jti", h.idp.mint_logout_token(json!({"jti": null}))),
        (
            "unsigned",
            h.idp.sign_raw(
                json!({"alg": "none", "typ": "logout+jwt"}),
                good_claims.clone(),
                "rsa-1",
            ),
        ),
        (
            "signed by an unknown key",
            h.idp.sign_raw(
                json!({"alg": "RS256", "kid": "rsa-1", "typ": "logout+jwt"}),
                good_claims.clone(),
                "rsa-rogue",
            ),
        ),
        (
            "expired",
            h.idp
                .mint_logout_token(json!({"iat": now - 3600, "exp": now - 3000})),
        ),
        (
            "issued in the future",
            h.idp.mint_logout_token(json!({"iat": now + 3600})),
        ),
        (
            "an access token",
            h.idp
                .mint_access_token(&portcullis_test_idp::TestUser::alice(), json!({}), "rsa-1"),
        ),
        ("garbage", "garbage".into()),
    ];
    for (name, token) in cases {
        let r = post_logout(&h, &token).await;
        assert_eq!(r.status(), 400, "{name}");
        assert_eq!(
            header(&r, "content-type"),
            Some("application/json"),
            "{name}"
        );
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{name}");
    }
    // Missing parameter, wrong content type.
    let r = h
        .client
        .post(h.url("/oauth2/backchannel-logout"))
        .form(&[("other", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = h
        .client
        .post(h.url("/oauth2/backchannel-logout"))
        .body("logout_token=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_replayed_logout_token_is_refused() {
    let h = Harness::start().await;
    let token = h.idp.mint_logout_token(json!({"jti": "once-only"}));
    assert_eq!(post_logout(&h, &token).await.status(), 200);
    assert_eq!(post_logout(&h, &token).await.status(), 400);
}

#[tokio::test]
async fn after_sign_out_a_copied_cookie_no_longer_works() {
    let h = Harness::start().await;
    let (session, _) = h.login("/").await;
    let copy = session.clone();
    // Used once, so the decoded session is cached: the sign-out must still win.
    assert_eq!(
        h.forward_auth("/", &[("cookie", &copy)]).await.status(),
        200
    );
    assert_eq!(
        h.get("/oauth2/sign_out", &[("cookie", &session)])
            .await
            .status(),
        302
    );
    assert_eq!(
        h.forward_auth("/", &[("cookie", &copy), ("accept", "application/json")])
            .await
            .status(),
        401
    );
}
