//! Scenario 7: Keycloak stops answering while Portcullis runs, then comes back.
//!
//! The outage is simulated by freezing Keycloak's process group (SIGSTOP, then SIGCONT; the
//! pid is the harness's `$E2E_RUN_DIR/keycloak.pid`): connections are still accepted by the
//! kernel but never answered, so every call Portcullis makes runs into its `oidc.timeout`
//! (5 s). That is the harder case of an unavailable IdP (a refused connection fails at once),
//! and resuming is instant, where a real restart of Keycloak takes 30-190 s on the CI machine
//! and, with its in-memory database, would come back with new keys and user ids.
//!
//! While Keycloak is frozen:
//! * an existing session whose refresh is due keeps passing (the failed refresh is
//!   transient, the access token is still valid);
//! * bearer tokens keep passing: one already verified (token cache) and one never seen
//!   (signature checked with the cached JWKS);
//! * a login that was under way (Keycloak already sent the browser back with a code) gets a
//!   clear 502 page at the callback, not a hang or a 500;
//! * `/ready` is recorded and reported (see the note at the assertion).
//!
//! After Keycloak resumes, new logins work again and the old session refreshes, without
//! restarting Portcullis.
//!
//! Disruptive for everything else, hence the `z2_` prefix: it runs last (libtest runs tests
//! in name order).

use std::time::{Duration, Instant};

use crate::instance::{Instance, Settings};
use crate::support::browser_like::{BrowserLike, Response, assert_idp_error_page};
use crate::support::env::Env;
use crate::support::keycloak::{self, ALICE, BOB};
use crate::support::{R, err};

const REFRESH_OK: &str = r#"portcullis_idp_requests_total{kind="refresh",outcome="ok"}"#;
const REFRESH_ERROR: &str = r#"portcullis_idp_requests_total{kind="refresh",outcome="error"}"#;

/// Keycloak frozen with SIGSTOP for as long as this value lives (SIGCONT on drop, also when
/// an assertion fails, so the harness can still stop it).
struct Frozen {
    pgid: String,
}

fn signal(sig: &str, pgid: &str) -> R {
    let status = std::process::Command::new("kill")
        .args([sig, "--", &format!("-{pgid}")])
        .status()?;
    if !status.success() {
        return Err(err(format!("kill {sig} -{pgid} failed: {status}")));
    }
    Ok(())
}

impl Frozen {
    fn keycloak(env: &Env) -> R<Self> {
        let file = format!("{}/keycloak.pid", env.run_dir);
        let pgid = std::fs::read_to_string(&file)
            .map_err(|e| {
                err(format!(
                    "{file}: {e} (Keycloak not started by scripts/e2e?)"
                ))
            })?
            .trim()
            .to_owned();
        if pgid.is_empty() || !pgid.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err(format!("{file}: not a pid: {pgid:?}")));
        }
        signal("-STOP", &pgid)?;
        Ok(Self { pgid })
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(e) = signal("-CONT", &self.pgid) {
            eprintln!("could not resume Keycloak: {e}");
        }
    }
}

/// `/ready`: status and body.
async fn ready(base: &str) -> R<(u16, String)> {
    let r = reqwest::Client::new()
        .get(format!("{base}/ready"))
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await?))
}

async fn bearer(p: &Instance, b: &BrowserLike, token: &str) -> R<Response> {
    let auth = format!("Bearer {token}");
    b.get_with(
        &format!("{}/oauth2/forward-auth", p.url),
        &[("authorization", &auth), ("accept", "application/json")],
    )
    .await
}

#[tokio::test]
async fn z2_keycloak_outage_and_recovery() -> R {
    let env = Env::load()?;
    let p = Instance::start(
        &env,
        "portcullis-outage",
        &Settings {
            refresh: Some("5s"),
            ..Settings::default()
        },
    )
    .await?;

    // Before the outage: alice's session, bob half-way through a login, two tokens.
    let alice = p.browser()?;
    p.login(&alice, &env, ALICE).await?;
    let logged_in = Instant::now();
    let bob = p.browser()?;
    let callback = p.login_up_to_callback(&bob, BOB).await?;
    let api = p.browser()?;
    let seen = keycloak::service_account_token(&env).await?;
    let unseen = keycloak::service_account_token(&env).await?;
    let r = bearer(&p, &api, &seen).await?;
    assert_eq!(r.status, 200, "bearer before the outage: {}", r.describe());
    // alice's session is due for refresh (refresh = 5s), its access token valid for ~50 s.
    if let Some(rest) = Duration::from_secs(6).checked_sub(logged_in.elapsed()) {
        tokio::time::sleep(rest).await;
    }

    let before = ready(&p.url).await?;
    assert_eq!(
        before,
        (200, "ready".to_owned()),
        "/ready before the outage"
    );
    let refresh_errors = p.metric(REFRESH_ERROR).await?;

    let frozen = Frozen::keycloak(&env)?;
    let outage = Instant::now();

    // The session passes: the refresh runs into the timeout and is not held against it.
    let t = Instant::now();
    let s = p
        .forward_auth(&alice, "/api/items", "application/json")
        .await?;
    let took = t.elapsed();
    assert_eq!(
        s.status,
        200,
        "existing session while Keycloak is down: {}\n  log:\n{}",
        s.describe(),
        p.log_tail()
    );
    assert!(
        p.metric(REFRESH_ERROR).await? > refresh_errors,
        "no failed refresh attempt counted: was the session not due? (answered in {took:?})"
    );
    eprintln!("session with a due refresh answered in {took:?} while Keycloak was down");

    // Bearer tokens: cached, and verified with the cached keys.
    for (what, token) in [("verified before", &seen), ("never seen", &unseen)] {
        let r = bearer(&p, &api, token).await?;
        assert_eq!(
            r.status,
            200,
            "bearer token ({what}) while Keycloak is down: {}",
            r.describe()
        );
    }

    // The login under way: the code can't be exchanged; a clear page, not a hang or a 500.
    let t = Instant::now();
    let cb = bob.get(&callback).await?;
    let took = t.elapsed();
    assert_idp_error_page(&cb);
    assert!(
        took < Duration::from_secs(15),
        "callback took {took:?} (oidc.timeout is 5 s)"
    );

    // A visitor without a session is still sent to Keycloak: Portcullis does not probe the
    // IdP per request, so the browser meets the outage at Keycloak, not at Portcullis.
    let nav = p
        .forward_auth(&p.browser()?, "/", "text/html,*/*;q=0.8")
        .await?;
    eprintln!(
        "new visitor while Keycloak is down: {} (Location {:?})",
        nav.status,
        nav.header("location").map(|l| l.split('?').next())
    );

    // /ready reports the outage. (Portcullis answers 200 "ready (degraded): ..." rather than
    // 503, so an IdP outage doesn't take every replica out of service; either way the
    // probe must say the IdP is unreachable.) The same in the metrics.
    let (status, body) = ready(&p.url).await?;
    eprintln!("/ready while Keycloak is down: {status} {body:?}");
    assert!(
        status == 503 || body.contains("unreachable"),
        "/ready does not report the IdP outage: {status} {body:?}"
    );
    assert_eq!(
        p.metric("portcullis_idp_up").await?,
        0.0,
        "portcullis_idp_up"
    );
    eprintln!("Keycloak was frozen for {:?}", outage.elapsed());

    drop(frozen);
    keycloak::wait_serving(&env, Duration::from_secs(60)).await?;
    // Portcullis refuses new logins with a 503 page while it believes the IdP is down; such a
    // refusal wakes its health probe, which notices the recovery within about a second.
    let probe = p.browser()?;
    let refused = p.forward_auth(&probe, "/", "text/html").await?;
    eprintln!(
        "first login attempt right after the recovery: {}",
        refused.status
    );
    let mut recovered = false;
    for _ in 0..40 {
        if ready(&p.url).await?.1 == "ready" {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "/ready did not report the recovery within 10 s");

    // Back: a new login works without restarting Portcullis...
    let again = p.browser()?;
    p.login(&again, &env, BOB).await?;
    let r = p
        .forward_auth(&again, "/api/items", "application/json")
        .await?;
    assert_eq!(
        r.status,
        200,
        "bob's new login after recovery: {}",
        r.describe()
    );
    assert_eq!(
        ready(&p.url).await?,
        (200, "ready".to_owned()),
        "/ready after recovery"
    );
    assert_eq!(
        p.metric("portcullis_idp_up").await?,
        1.0,
        "portcullis_idp_up"
    );

    // ...and alice's session, due since before the outage, is refreshed at Keycloak again.
    let (ok0, err0) = (p.metric(REFRESH_OK).await?, p.metric(REFRESH_ERROR).await?);
    let t = Instant::now();
    let s = p
        .forward_auth(&alice, "/api/items", "application/json")
        .await?;
    let took = t.elapsed();
    assert_eq!(s.status, 200, "alice after recovery: {}", s.describe());
    let (ok1, err1) = (p.metric(REFRESH_OK).await?, p.metric(REFRESH_ERROR).await?);
    assert!(
        ok1 > ok0,
        "alice's due session was not refreshed after Keycloak came back (answered in \
         {took:?}; refresh grants ok {ok0} -> {ok1}, failed {err0} -> {err1}: unchanged \
         counts mean Portcullis did not even call Keycloak, i.e. it answered from a cached \
         failure of the outage)\n  log:\n{}",
        p.log_tail()
    );
    Ok(())
}
