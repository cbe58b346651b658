//! Scenario 1: a real headless Chromium, driven through chromedriver,
//! signs in through each front end.

use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::support::chromium::chromium;
use crate::support::env::Env;
use crate::support::keycloak::Admin;
use crate::support::{Echo, R, err};

/// Waits until the browser's URL starts with `prefix`.
async fn wait_for_url(c: &Client, prefix: &str, what: &str) -> R<String> {
    for _ in 0..120 {
        let url = c.current_url().await?;
        if url.as_str().starts_with(prefix) {
            return Ok(url.to_string());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(err(format!(
        "{what}: browser stayed at {} (wanted {prefix}…)",
        c.current_url().await?
    )))
}

async fn sign_in_and_read(c: &Client, env: &Env, base: &str) -> R<Echo> {
    let deep = format!("{base}/dashboard?tab=usage&range=7d");
    c.goto(&deep).await?;
    wait_for_url(c, &env.keycloak_issuer, "redirect to Keycloak").await?;
    let user = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Id("username"))
        .await?;
    user.send_keys("alice").await?;
    c.find(Locator::Id("password"))
        .await?
        .send_keys("alice-password")
        .await?;
    c.find(Locator::Id("kc-login")).await?.click().await?;
    let landed = wait_for_url(c, &format!("{base}/dashboard"), "return to the app").await?;
    assert_eq!(landed, deep, "query string lost on the way back");
    // Chromium shows the JSON body as text.
    let text = c.find(Locator::Css("body")).await?.text().await?;
    Echo::parse(&text)
}

async fn run(front: &str) -> R {
    let env = Env::load()?;
    let base = env
        .front_ends()
        .iter()
        .find(|(n, _)| *n == front)
        .map(|(_, u)| (*u).to_owned())
        .ok_or_else(|| err("front end"))?;
    let c = chromium(&env, front, (1280, 900)).await?;
    let outcome = sign_in_and_read(&c, &env, &base).await;
    if outcome.is_err()
        && let Ok(png) = c.screenshot().await
    {
        let path = format!("{}/browser-{front}-failure.png", env.run_dir);
        let _ = std::fs::write(&path, png);
        eprintln!("screenshot: {path}");
    }
    let closed = c.close().await;
    let echo = outcome?;
    closed?;
    let alice = Admin::connect(&env).await?.user_id("alice").await?;
    echo.assert_alice(&alice);
    assert!(
        echo.header("x-auth-request-groups")
            .unwrap_or_default()
            .split(',')
            .any(|g| g == "admins"),
        "groups: {:?}",
        echo.header("x-auth-request-groups")
    );
    Ok(())
}

#[tokio::test]
async fn browser_login_through_caddy() -> R {
    run("caddy").await
}

#[tokio::test]
async fn browser_login_through_nginx() -> R {
    run("nginx").await
}
