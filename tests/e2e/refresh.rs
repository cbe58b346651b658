//! Scenario 5: session refresh against Keycloak (access tokens live 60 s in this realm).
//!
//! One session, one wait: past the access token's lifetime the session still passes because
//! Portcullis refreshed it (its `/metrics` count a successful refresh grant, and Keycloak's
//! user session shows the activity); after an admin ends the user's Keycloak sessions, which
//! invalidates their refresh tokens, the next refresh is refused (`invalid_grant`) and the
//! session stops passing.
//!
//! A Portcullis of its own with `refresh = "5s"`: the harness's instance A also receives
//! Keycloak's back-channel logout, which would end the session before any refresh is tried.
//! (`http_login::http_session_survives_access_token_expiry` covers A behind Caddy.)

use std::time::Duration;

use crate::instance::{Instance, Settings};
use crate::support::browser_like::{BrowserLike, Response};
use crate::support::env::Env;
use crate::support::keycloak::{ALICE, Admin};
use crate::support::{R, err};

const REFRESH_OK: &str = r#"portcullis_idp_requests_total{kind="refresh",outcome="ok"}"#;
const REFRESH_ERROR: &str = r#"portcullis_idp_requests_total{kind="refresh",outcome="error"}"#;

async fn api(p: &Instance, b: &BrowserLike) -> R<Response> {
    p.forward_auth(b, "/api/items", "application/json").await
}

/// `lastAccess` (ms) of alice's Keycloak session started for this login (the newest one).
async fn keycloak_last_access(admin: &Admin, user: &str) -> R<i64> {
    let sessions = admin.sessions(user).await?;
    sessions
        .iter()
        .filter_map(|s| Some((s["start"].as_i64()?, s["lastAccess"].as_i64()?)))
        .max()
        .map(|(_, last)| last)
        .ok_or_else(|| err("alice has no Keycloak session"))
}

#[tokio::test]
async fn refresh_keeps_the_session_past_token_expiry_until_keycloak_revokes_it() -> R {
    if std::env::var_os("E2E_SKIP_SLOW").is_some() {
        return Err(err("E2E_SKIP_SLOW is set; run this test without it"));
    }
    let env = Env::load()?;
    let p = Instance::start(
        &env,
        "portcullis-refresh",
        &Settings {
            refresh: Some("5s"),
            ..Settings::default()
        },
    )
    .await?;
    let admin = Admin::connect(&env).await?;
    let alice = admin.user_id("alice").await?;

    let b = p.browser()?;
    p.login(&b, &env, ALICE).await?;
    let first = api(&p, &b).await?;
    assert_eq!(first.status, 200, "right after login: {}", first.describe());
    let ok_before = p.metric(REFRESH_OK).await?;
    let seen_before = keycloak_last_access(&admin, &alice).await?;

    // Past the access token's 60 s lifetime (plus Portcullis' clock leeway of none: the
    // session's access expiry is the token's exp).
    tokio::time::sleep(Duration::from_secs(65)).await;
    let later = api(&p, &b).await?;
    assert_eq!(
        later.status,
        200,
        "65 s after login (access token expired): {}\n  log:\n{}",
        later.describe(),
        p.log_tail()
    );
    assert!(
        later.header("set-cookie").is_some(),
        "a refreshed session is handed back as a new cookie: {}",
        later.describe()
    );
    let ok_after = p.metric(REFRESH_OK).await?;
    assert!(
        ok_after > ok_before,
        "no successful refresh grant counted ({REFRESH_OK}: {ok_before} -> {ok_after})"
    );
    // (The admin token of a minute ago has expired too.)
    let admin = Admin::connect(&env).await?;
    let seen_after = keycloak_last_access(&admin, &alice).await?;
    assert!(
        seen_after >= seen_before + 60_000,
        "Keycloak's session of alice saw no activity at the refresh \
         (lastAccess {seen_before} -> {seen_after} ms)"
    );

    // An admin ends alice's Keycloak sessions: her refresh token is dead from now on.
    admin.logout_user(&alice).await?;
    let errors_before = p.metric(REFRESH_ERROR).await?;
    // Until the next refresh the sealed cookie alone decides (no IdP call per request)...
    let soon = api(&p, &b).await?;
    assert_eq!(
        soon.status,
        200,
        "tokens refreshed less than 5 s ago are used without asking Keycloak: {}",
        soon.describe()
    );
    // ...and the next refresh (due after 5 s) is refused: the session is over.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let refused = api(&p, &b).await?;
    assert_eq!(
        refused.status,
        401,
        "after Keycloak revoked the session's refresh token: {}\n  log:\n{}",
        refused.describe(),
        p.log_tail()
    );
    assert!(
        p.metric(REFRESH_ERROR).await? > errors_before,
        "the refused refresh grant was not counted ({REFRESH_ERROR})"
    );
    // The dead cookie is deleted, and a browser is sent to sign in again.
    assert!(
        refused.headers.get_all("set-cookie").iter().any(|c| c
            .to_str()
            .is_ok_and(|c| c.to_ascii_lowercase().contains("max-age=0"))),
        "dead session cookie not cleared: {}",
        refused.describe()
    );
    let nav = p.forward_auth(&b, "/page", "text/html,*/*;q=0.8").await?;
    assert_eq!(nav.status, 302, "{}", nav.describe());
    assert!(
        nav.header("location")
            .is_some_and(|l| l.starts_with(&env.keycloak_issuer)),
        "not sent to Keycloak: {}",
        nav.describe()
    );
    Ok(())
}
