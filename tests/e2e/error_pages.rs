//! Scenario 8: the pages a person sees when sign-in fails or access is denied, rendered by a
//! real headless Chromium, in the built-in look and in a `[pages]` template with a logo and a
//! footer; "Sign in as someone else" on the 403 page is clicked through to Keycloak's login
//! form and a sign-in as another user. Screenshots go to `$E2E_RUN_DIR/screenshots/`;
//! `scripts/e2e` keeps them in `.e2e/artifacts/screenshots/` after every run.

use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::caddy::{Caddy, Site};
use crate::instance::{Instance, Settings, free_port};
use crate::support::Echo;
use crate::support::chromium::chromium;
use crate::support::env::Env;
use crate::support::{R, err};

async fn screenshot(c: &Client, env: &Env, name: &str) -> R<String> {
    let dir = format!("{}/screenshots", env.run_dir);
    std::fs::create_dir_all(&dir)?;
    let path = format!("{dir}/{name}.png");
    std::fs::write(&path, c.screenshot().await?)?;
    eprintln!("screenshot: {path}");
    Ok(path)
}

/// The page's visible text (what a person reads, markup excluded).
async fn visible_text(c: &Client) -> R<String> {
    Ok(c.find(Locator::Css("body")).await?.text().await?)
}

async fn wait_for_url(c: &Client, prefix: &str, what: &str) -> R {
    for _ in 0..120 {
        if c.current_url().await?.as_str().starts_with(prefix) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(err(format!(
        "{what}: browser stayed at {} (wanted {prefix}…)",
        c.current_url().await?
    )))
}

/// Runs `f` with a browser, always closing it; on failure a screenshot is saved.
async fn with_browser<F>(env: &Env, label: &str, f: F) -> R
where
    F: AsyncFnOnce(&Client) -> R,
{
    let c = chromium(env, label, (1024, 640)).await?;
    let outcome = f(&c).await;
    if outcome.is_err() {
        let _ = screenshot(&c, env, &format!("{label}-failure")).await;
    }
    let closed = c.close().await;
    outcome?;
    closed?;
    Ok(())
}

#[tokio::test]
async fn error_page_bad_callback_state_in_chromium() -> R {
    let env = Env::load()?;
    let url = format!("{}/oauth2/callback?state=bogus&code=x", env.caddy_url);
    with_browser(&env, "bad-state", async |c| {
        c.goto(&url).await?;
        let text = visible_text(c).await?;
        screenshot(c, &env, "callback-bad-state").await?;
        assert!(!c.title().await?.trim().is_empty(), "page has no title");
        assert!(
            text.contains("Sign-in failed"),
            "heading missing; visible text: {text:?}"
        );
        assert!(
            text.contains("This sign-in link is invalid or has expired"),
            "explanation missing; visible text: {text:?}"
        );
        assert!(
            text.contains("Start again from the application"),
            "no hint what to do; visible text: {text:?}"
        );
        // Nothing internal leaks to the person (the reason is in Portcullis' log).
        for leak in ["StateMismatch", "state matches no login", "error:", "panic"] {
            assert!(!text.contains(leak), "page shows {leak:?}: {text:?}");
        }
        Ok(())
    })
    .await
}

/// A Portcullis of the test's own behind a Caddy of its own (the shipped Caddyfile) at
/// `http://app.localhost:PORT`, its public URL: the 403 page reaches the browser the way
/// Caddy passes it on, and its sign-in link comes back through Caddy. Only group `admins`
/// is allowed (alice is in it, bob is not); `/static/**` is public (the logo).
async fn app_behind_caddy(env: &Env, name: &str, pages_toml: &str) -> R<(Instance, Caddy)> {
    let port = free_port()?;
    let public_url = format!("http://app.localhost:{port}");
    let extra = format!(
        "{pages_toml}\n[[rules]]\nname = \"logo\"\npaths = [\"/static/**\"]\naction = \"public\"\n"
    );
    let p = Instance::start(
        env,
        &format!("portcullis-{name}"),
        &Settings {
            allowed_groups: &["admins"],
            public_url: Some(&public_url),
            allowed_domains: &["app.localhost"],
            extra_toml: &extra,
            ..Settings::default()
        },
    )
    .await?;
    let caddy = Caddy::start(
        env,
        &format!("caddy-{name}"),
        &Site {
            host: "app.localhost",
            port,
            portcullis: &p.addr,
            auth_query: "",
        },
    )
    .await?;
    Ok((p, caddy))
}

/// Fills in and submits Keycloak's login form (the browser is on it).
async fn keycloak_login(c: &Client, user: &str, password: &str) -> R {
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Id("username"))
        .await?
        .send_keys(user)
        .await?;
    c.find(Locator::Id("password"))
        .await?
        .send_keys(password)
        .await?;
    c.find(Locator::Id("kc-login")).await?.click().await?;
    Ok(())
}

/// bob opens `app/reports?q=1` and is refused; the 403 page names him and offers to sign in
/// as someone else. Returns that address.
async fn bob_is_refused(c: &Client, env: &Env, app: &str) -> R<String> {
    let refused = format!("{app}/reports?q=1");
    c.goto(&refused).await?;
    wait_for_url(c, &env.keycloak_issuer, "redirect to Keycloak").await?;
    keycloak_login(c, "bob", "bob-password").await?;
    wait_for_url(c, &refused, "return to the refused address").await?;
    let text = visible_text(c).await?;
    for says in [
        "Access denied",
        "You are signed in as bob",
        "Ask its owner for access",
        "Sign in as someone else",
        "403",
    ] {
        assert!(
            text.contains(says),
            "{says:?} missing; visible text: {text:?}"
        );
    }
    Ok(refused)
}

/// Clicks "Sign in as someone else": sign-out (Portcullis and Keycloak), back to the refused
/// address, a fresh login: Keycloak asks who signs in. alice does, and lands where bob was
/// refused.
async fn sign_in_as_someone_else(c: &Client, env: &Env, refused: &str, shot: &str) -> R {
    c.find(Locator::LinkText("Sign in as someone else"))
        .await?
        .click()
        .await?;
    wait_for_url(c, &env.keycloak_issuer, "sign-out, then the login form").await?;
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Id("username"))
        .await?;
    screenshot(c, env, shot).await?;
    // The login is a fresh one, for the refused address: Keycloak's session is gone too.
    let at = c.current_url().await?;
    assert!(
        at.path().ends_with("/protocol/openid-connect/auth")
            || at.path().contains("/login-actions/"),
        "not Keycloak's login form: {at}"
    );
    keycloak_login(c, "alice", "alice-password").await?;
    wait_for_url(c, refused, "alice lands on the refused address").await?;
    let echo = Echo::parse(&visible_text(c).await?)?;
    assert_eq!(echo.path, "/reports");
    assert_eq!(echo.query, "q=1");
    assert_eq!(
        echo.headers
            .get("x-auth-request-preferred-username")
            .map(String::as_str),
        Some("alice")
    );
    Ok(())
}

#[tokio::test]
async fn error_page_access_denied_offers_sign_in_as_someone_else_in_chromium() -> R {
    let env = Env::load()?;
    let (p, caddy) = app_behind_caddy(&env, "denied-page", "").await?;
    let outcome = with_browser(&env, "access-denied", async |c| {
        let refused = bob_is_refused(c, &env, &caddy.url).await?;
        screenshot(c, &env, "access-denied").await?;
        sign_in_as_someone_else(c, &env, &refused, "access-denied-then-keycloak-login").await
    })
    .await;
    outcome.map_err(|e| err(format!("{e}\n  portcullis log:\n{}", p.log_tail())))
}

#[tokio::test]
async fn error_pages_in_a_custom_template_with_logo_and_footer_in_chromium() -> R {
    let env = Env::load()?;
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/config/pages");
    let pages = format!(
        "[pages]\ntemplates_dir = {templates:?}\nlogo_url = \"/static/e2e-logo.svg\"\n\
         footer = \"Acme platform team · ask in #platform-help\"\n"
    );
    let (p, caddy) = app_behind_caddy(&env, "branded-pages", &pages).await?;
    let outcome = with_browser(&env, "branded", async |c| {
        // A failed sign-in, on the app's host (Caddy routes /oauth2/* to Portcullis).
        c.goto(&format!("{}/oauth2/callback?state=bogus&code=x", caddy.url))
            .await?;
        let text = visible_text(c).await?;
        assert!(text.contains("Sign-in failed"), "visible text: {text:?}");
        assert!(text.contains("Error 400"), "visible text: {text:?}");
        assert!(!text.contains("Sign in as someone else"), "{text:?}");
        assert_branded(c).await?;
        screenshot(c, &env, "branded-callback-bad-state").await?;

        let refused = bob_is_refused(c, &env, &caddy.url).await?;
        assert_branded(c).await?;
        screenshot(c, &env, "branded-access-denied").await?;
        sign_in_as_someone_else(
            c,
            &env,
            &refused,
            "branded-access-denied-then-keycloak-login",
        )
        .await
    })
    .await;
    outcome.map_err(|e| err(format!("{e}\n  portcullis log:\n{}", p.log_tail())))
}

/// The page is the example template's, its logo loaded (the only image the CSP allows, from
/// the page's own host), its footer shown.
async fn assert_branded(c: &Client) -> R {
    let title = c.title().await?;
    assert!(title.ends_with("· Acme platform"), "title {title:?}");
    let text = visible_text(c).await?;
    assert!(
        text.contains("Acme platform team · ask in #platform-help"),
        "footer missing; visible text: {text:?}"
    );
    // Wait for the image: naturalWidth stays 0 for one that did not load (or was blocked).
    for _ in 0..40 {
        let width = c
            .execute(
                "const i = document.querySelector('header img'); return i && i.complete ? i.naturalWidth : -1;",
                vec![],
            )
            .await?;
        match width.as_i64() {
            Some(w) if w > 0 => return Ok(()),
            Some(0) => return Err(err("the logo did not load (naturalWidth 0)")),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Err(err("the logo never finished loading"))
}
