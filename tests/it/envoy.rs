//! Envoy ext_authz (HTTP service with `path_prefix: /oauth2/ext-authz`): the check request keeps
//! the original method, path and Host; only 200 allows; denials go to the client as they are.

use crate::support::*;

async fn check(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let url = h.url(&format!("/oauth2/ext-authz{path}"));
    h.client
        .request(method, url)
        .headers(header_map(headers))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn envoy_check_requests_get_forward_auth_answers() {
    let h = Harness::start().await;
    let host = [("host", "app.example.com"), ("accept", BROWSER_ACCEPT)];
    let r = check(&h, reqwest::Method::GET, "/mail/inbox?page=2", &host).await;
    assert_eq!(r.status(), 302);
    let state = cookie_pairs(&r);
    let cb = h.follow_idp(&location(&r)).await;
    let done = h.get(&cb, &[("cookie", &state)]).await;
    assert_eq!(location(&done), "https://app.example.com/mail/inbox?page=2");
    let session = session_cookie(&done);
    let r = check(
        &h,
        reqwest::Method::GET,
        "/mail/inbox",
        &[("host", "app.example.com"), ("cookie", &session)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-auth-request-user"), Some("a1b2c3-alice"));
    // Non-GET originals are checked too, and never redirected.
    let r = check(&h, reqwest::Method::POST, "/api/send", &host).await;
    assert_eq!(r.status(), 401);
    let r = check(
        &h,
        reqwest::Method::DELETE,
        "/api/item/1",
        &[("host", "app.example.com"), ("cookie", &session)],
    )
    .await;
    assert_eq!(r.status(), 200);
    // A spoofed Host outside the allowed domains never becomes the post-login target.
    let r = check(
        &h,
        reqwest::Method::GET,
        "/x",
        &[("host", "evil.com"), ("accept", BROWSER_ACCEPT)],
    )
    .await;
    let state = cookie_pairs(&r);
    let cb = h.follow_idp(&location(&r)).await;
    assert_eq!(location(&h.get(&cb, &[("cookie", &state)]).await), "/");
    // The prefix alone, or a look-alike path, is not the ext_authz endpoint.
    assert_eq!(h.get("/oauth2/ext-authzX/y", &[]).await.status(), 404);
}
