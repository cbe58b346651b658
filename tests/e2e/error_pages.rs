//! Scenario 8: the pages a person sees when sign-in fails or access is denied, rendered by a
//! real headless Chromium. Screenshots go to `$E2E_RUN_DIR/screenshots/` (kept with
//! `E2E_KEEP=1`, or when the suite fails).

use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::instance::{Instance, Settings};
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

#[tokio::test]
async fn error_page_access_denied_in_chromium() -> R {
    let env = Env::load()?;
    let p = Instance::start(
        &env,
        "portcullis-denied-page",
        &Settings {
            allowed_groups: &["admins"],
            ..Settings::default()
        },
    )
    .await?;
    // bob signs in with Chromium; the return address is the forward-auth endpoint itself,
    // whose answer is exactly what Traefik or Caddy pass on to the browser.
    let start = format!("{}/oauth2/start?rd=%2Foauth2%2Fforward-auth", p.url);
    let landing = format!("{}/oauth2/forward-auth", p.url);
    with_browser(&env, "access-denied", async |c| {
        c.goto(&start).await?;
        wait_for_url(c, &env.keycloak_issuer, "redirect to Keycloak").await?;
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Id("username"))
            .await?
            .send_keys("bob")
            .await?;
        c.find(Locator::Id("password"))
            .await?
            .send_keys("bob-password")
            .await?;
        c.find(Locator::Id("kc-login")).await?.click().await?;
        wait_for_url(c, &landing, "return to Portcullis").await?;
        let text = visible_text(c).await?;
        screenshot(c, &env, "access-denied").await?;
        assert!(
            text.contains("Access denied"),
            "heading missing; visible text: {text:?}"
        );
        assert!(
            text.contains("You are signed in as bob"),
            "does not name the account; visible text: {text:?}"
        );
        assert!(
            text.contains("Ask its owner for access"),
            "no hint what to do; visible text: {text:?}"
        );
        Ok(())
    })
    .await
}
