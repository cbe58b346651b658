//! Keycloak killed (SIGKILL, a crash) and started again while traffic runs: the restart a
//! node failure or an upgrade causes. Unlike `z2_keycloak_outage` (a frozen IdP), this is a
//! real restart: the process is gone, connections are refused, and it comes back after its
//! full start-up (tens of seconds) on the same database (`scripts/lib/keycloak.sh`,
//! `keycloak_restart`).
//!
//! Asserted:
//! * no session and no bearer request fails, for the whole outage: the signing keys are
//!   cached, and a session whose refresh falls due keeps passing while its access token is
//!   valid (the realm's access tokens live 10 minutes here, longer than the restart; with
//!   Keycloak's default of 5 minutes an outage longer than that ends sessions whose token
//!   expired, by design: Portcullis never extends a session the IdP has not confirmed);
//! * a login under way when Keycloak died gets a clear 502/503 page at the callback;
//! * after Keycloak is back, without restarting Portcullis: sessions refresh again and a new
//!   login works.
//!
//! Disruptive for everything else: runs last (`z3_`; libtest runs tests in name order).

use std::time::{Duration, Instant};

use crate::faults::cookie_header;
use crate::instance::{Instance, Settings};
use crate::support::browser_like::assert_idp_error_page;
use crate::support::env::Env;
use crate::support::keycloak::{self, ALICE, Admin, BOB};
use crate::support::load::{Load, Target};
use crate::support::{R, err};

const REFRESH_OK: &str = r#"portcullis_idp_requests_total{kind="refresh",outcome="ok"}"#;

/// Kills Keycloak and starts it again (returns once it is started, not ready).
fn kill_and_restart_keycloak(env: &Env) -> R {
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib");
    let status = std::process::Command::new("bash")
        .args([
            "-c",
            r#"source "$1/common.sh" && source "$1/keycloak.sh" && keycloak_restart KILL"#,
            "keycloak-restart",
            lib,
        ])
        .env("RUN_DIR", &env.run_dir)
        .status()?;
    if !status.success() {
        return Err(err(format!("keycloak_restart failed: {status}")));
    }
    Ok(())
}

#[tokio::test]
async fn z3_keycloak_killed_and_restarted_under_load() -> R {
    let env = Env::load()?;
    Admin::connect(&env)
        .await?
        .set_access_token_lifespan(600)
        .await?;
    let p = Instance::start(
        &env,
        "portcullis-kc-restart",
        &Settings {
            refresh: Some("20s"),
            ..Settings::default()
        },
    )
    .await?;
    let alice = p.browser()?;
    p.login(&alice, &env, ALICE).await?;
    let cookie = cookie_header(&alice, &p.url)?;
    let bob = p.browser()?;
    let callback = p.login_up_to_callback(&bob, BOB).await?;
    let seen = keycloak::service_account_token(&env).await?;
    let unseen = keycloak::service_account_token(&env).await?;
    let (seen, unseen) = (format!("Bearer {seen}"), format!("Bearer {unseen}"));
    let targets = [
        Target::forward_auth("session", &p.url, ("cookie", &cookie)),
        Target::forward_auth("bearer", &p.url, ("authorization", &seen)),
    ];
    // Light load: Keycloak's start-up needs the CPU.
    let load = Load::start(&targets, 2, Duration::from_millis(20))?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let killed = Instant::now();
    kill_and_restart_keycloak(&env)?;

    // While it starts: the login under way gets a page; a never-seen token passes.
    let cb = bob.get(&callback).await?;
    assert_idp_error_page(&cb);
    let api = p.browser()?;
    let r = api
        .get_with(
            &format!("{}/oauth2/forward-auth", p.url),
            &[("authorization", &unseen), ("accept", "application/json")],
        )
        .await?;
    assert_eq!(
        r.status,
        200,
        "a new token, checked with the cached keys: {}",
        r.describe()
    );

    let refreshed_before = p.metric(REFRESH_OK).await?;
    let down = keycloak::wait_serving(&env, Duration::from_secs(300)).await?;
    eprintln!("keycloak restart: down (SIGKILL to serving again) for {down:.1?}");

    // Back: a new login works without restarting Portcullis...
    let carol = p.browser()?;
    let mut login_ok = None;
    for _ in 0..20 {
        if p.login(&carol, &env, BOB).await.is_ok() {
            login_ok = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let login_ok = login_ok.ok_or_else(|| err("no login within 20 s of Keycloak being back"))?;
    // ...and alice's session refreshes again (refresh = 20s, the load keeps asking).
    let deadline = Instant::now() + Duration::from_secs(40);
    while p.metric(REFRESH_OK).await? <= refreshed_before {
        if Instant::now() > deadline {
            return Err(err(format!(
                "alice's session did not refresh within 40 s of Keycloak being back; log:\n{}",
                p.log_tail()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let reports = load.stop().await?;
    for r in &reports {
        eprintln!("keycloak restart: {r}");
        assert_eq!(
            r.failures, 0,
            "no request fails while Keycloak restarts: {r}"
        );
    }
    eprintln!(
        "keycloak restart: logins unavailable for {login_ok:.1?} (kill to first successful login)"
    );
    Ok(())
}
