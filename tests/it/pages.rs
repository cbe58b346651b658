//! The pages a browser sees, through the real server: the 403 page's "Sign in as someone
//! else" (sign-out, then back to the refused address, which starts a fresh login), and
//! `[pages]` templates used for every page.

use crate::support::*;
use std::collections::HashMap;

/// The `href` of the page's "Sign in as someone else" link, HTML-unescaped.
fn sign_in_again_href(body: &str) -> Option<String> {
    let link = body.find(">Sign in as someone else</a>")?;
    let start = body[..link].rfind("href=\"")? + "href=\"".len();
    Some(body[start..link - 1].replace("&amp;", "&"))
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn the_403_page_signs_out_and_returns_to_the_refused_address_for_a_fresh_login() {
    let h = Harness::start_with(|t| t + "[authz]\nallowed_groups = [\"ops\"]\n").await;
    let (session, _) = h.login("/reports?q=1&tab=2").await;
    let browser = [("cookie", session.as_str()), ("accept", BROWSER_ACCEPT)];
    let r = h.forward_auth("/reports?q=1&tab=2", &browser).await;
    assert_eq!(r.status(), 403);
    assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        header(&r, "content-security-policy"),
        Some(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("You are signed in as alice"), "{body}");
    let again = sign_in_again_href(&body).unwrap_or_else(|| panic!("no sign-in link: {body}"));
    assert_eq!(
        again,
        "https://auth.example.com/oauth2/sign_out?rd=https%3A%2F%2Fapp.example.com%2Freports%3Fq%3D1%26tab%3D2"
    );

    // Following it: the session ends, and the IdP's logout returns to the refused address.
    let path = again.strip_prefix(PUBLIC_URL).unwrap();
    let out = h.get(path, &[("cookie", &session)]).await;
    assert_eq!(out.status(), 302);
    let logout = location(&out);
    assert!(
        logout.starts_with(&h.idp.end_session_endpoint()),
        "{logout}"
    );
    assert_eq!(
        query(&logout)["post_logout_redirect_uri"],
        "https://app.example.com/reports?q=1&tab=2"
    );
    assert!(
        set_cookies(&out)
            .iter()
            .any(|c| c.starts_with("_portcullis=;") && c.contains("Max-Age=0")),
        "the session cookie is cleared"
    );
    // Back at the refused address, with the cleared cookie or a copy of the old one: a new
    // login starts, returning there.
    for cookie in ["", session.as_str()] {
        let back = h
            .forward_auth(
                "/reports?q=1&tab=2",
                &[("cookie", cookie), ("accept", BROWSER_ACCEPT)],
            )
            .await;
        assert_eq!(back.status(), 302, "cookie {cookie:?}");
        assert!(location(&back).starts_with(&h.idp.authorization_endpoint()));
        let callback = h.follow_idp(&location(&back)).await;
        let state = cookie_pairs(&back);
        let done = h.get(&callback, &[("cookie", &state)]).await;
        assert_eq!(location(&done), "https://app.example.com/reports?q=1&tab=2");
    }
}

#[tokio::test]
async fn the_sign_in_again_link_never_leaves_the_allowed_domains() {
    let h = Harness::start_with(|t| t + "[authz]\nallowed_groups = [\"ops\"]\n").await;
    let (session, _) = h.login("/").await;
    // A spoofed X-Forwarded-Host: the link returns to our own `/`, not to evil.com.
    let r = h
        .get(
            "/oauth2/forward-auth",
            &[
                ("cookie", &session),
                ("accept", BROWSER_ACCEPT),
                ("x-forwarded-method", "GET"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.com"),
                ("x-forwarded-uri", "/phish"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    let again = sign_in_again_href(&r.text().await.unwrap()).unwrap();
    assert_eq!(again, "https://auth.example.com/oauth2/sign_out?rd=%2F");
    // And an rd edited into the link is checked again by sign-out.
    let edited = "/oauth2/sign_out?rd=https%3A%2F%2Fevil.com%2Fphish";
    let out = h.get(edited, &[("cookie", &session)]).await;
    assert_eq!(
        query(&location(&out))["post_logout_redirect_uri"],
        "https://auth.example.com/"
    );
    // An API client is told in plain text, without a page.
    let (session, _) = h.login("/").await;
    let api = h
        .forward_auth(
            "/x",
            &[("cookie", &session), ("accept", "application/json")],
        )
        .await;
    assert_eq!(api.status(), 403);
    assert_eq!(
        header(&api, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        api.text()
            .await
            .unwrap()
            .starts_with("You are signed in as alice")
    );
    // A deny rule is no one's to get around: no link.
    let h = Harness::start_with(|t| {
        t + "[[rules]]\nname = \"closed\"\npaths = [\"/closed/**\"]\naction = \"deny\"\n"
    })
    .await;
    let (session, _) = h.login("/").await;
    let r = h
        .forward_auth(
            "/closed/x",
            &[("cookie", &session), ("accept", BROWSER_ACCEPT)],
        )
        .await;
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("This address is not open to anyone."),
        "{body}"
    );
    assert!(sign_in_again_href(&body).is_none(), "{body}");
}

#[tokio::test]
async fn a_templates_dir_gives_every_page_its_look() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config/pages");
    let h = Harness::start_with(|t| {
        format!(
            "{t}[authz]\nallowed_groups = [\"ops\"]\n[pages]\ntemplates_dir = {dir:?}\n\
             logo_url = \"https://assets.example.com/brand/logo.svg\"\nfooter = \"Acme & friends\"\n"
        )
    })
    .await;
    let (session, _) = h.login("/").await;
    let denied = h
        .forward_auth("/x", &[("cookie", &session), ("accept", BROWSER_ACCEPT)])
        .await;
    assert_eq!(denied.status(), 403);
    assert_eq!(header(&denied, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&denied, "x-content-type-options"), Some("nosniff"));
    assert_eq!(
        header(&denied, "content-security-policy"),
        Some(
            "default-src 'none'; style-src 'unsafe-inline'; img-src https://assets.example.com; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    );
    // The page quotes the request id the answer carries.
    let id = header(&denied, "x-request-id").unwrap().to_string();
    let status_line = format!("<p class=\"status\">Error 403 · request id {id}</p>");
    let body = denied.text().await.unwrap();
    for part in [
        "<title>Access denied · Acme platform</title>",
        "<img src=\"https://assets.example.com/brand/logo.svg\" alt=\"\">",
        status_line.as_str(),
        "You are signed in as alice",
        "<footer>Acme &amp; friends</footer>",
        "<a class=\"again\" href=\"https://auth.example.com/oauth2/sign_out?rd=https%3A%2F%2Fapp.example.com%2Fx\">",
    ] {
        assert!(body.contains(part), "{part:?} missing from {body}");
    }
    // A failed sign-in, in the same look, without the sign-in link.
    let failed = h
        .get(
            "/oauth2/callback?code=c&state=s",
            &[("accept", BROWSER_ACCEPT)],
        )
        .await;
    assert_eq!(failed.status(), 400);
    let body = failed.text().await.unwrap();
    assert!(
        body.contains("<title>Sign-in failed · Acme platform</title>"),
        "{body}"
    );
    assert!(
        body.contains("<footer>Acme &amp; friends</footer>"),
        "{body}"
    );
    assert!(!body.contains("Sign in as someone else"), "{body}");
}
