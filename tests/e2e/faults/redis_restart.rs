//! Redis, the shared session store, restarted while two kinds of traffic run: browser
//! sessions (which live in Redis) and bearer tokens (which do not).
//!
//! Expected, and asserted:
//! * while Redis is down, session requests get 503 (fail closed, never a pass, never a
//!   hang: every answer within Redis's command and connect timeouts), bearer requests keep
//!   passing;
//! * the 503s stop within 2 s of Redis accepting connections again, without restarting
//!   Portcullis (its connection manager reconnects);
//! * nothing is lost: the session written before the restart (Redis persists with an
//!   append-only file, fsync every second, as a production session store should) is valid
//!   afterwards.

use std::time::{Duration, Instant};

use super::cookie_header;
use crate::instance::{Instance, Settings};
use crate::redis_server::RedisServer;
use crate::support::env::Env;
use crate::support::keycloak::{self, ALICE};
use crate::support::load::{Load, Target};
use crate::support::{R, err};

#[tokio::test]
async fn faults_redis_restarted_under_load() -> R {
    let env = Env::load()?;
    let mut redis = RedisServer::start_persistent(format!("{}/redis-fault", env.run_dir))
        .ok_or_else(|| err("redis-server is not installed (scripts/setup installs it)"))?;
    let session = format!("store = \"redis\"\nredis_url = \"{}\"\n", redis.url());
    let p = Instance::start(
        &env,
        "portcullis-redis-fault",
        &Settings {
            session_toml: &session,
            // No refresh during the test: every session request reads Redis and nothing else.
            refresh: Some("1h"),
            ..Settings::default()
        },
    )
    .await?;
    let alice = p.browser()?;
    p.login(&alice, &env, ALICE).await?;
    let cookie = cookie_header(&alice, &p.url)?;
    let token = keycloak::service_account_token(&env).await?;
    let bearer = format!("Bearer {token}");
    let sessions = Target::forward_auth("session (Redis)", &p.url, ("cookie", &cookie));
    let tokens = Target::forward_auth("bearer", &p.url, ("authorization", &bearer));

    let load = Load::start(&[sessions, tokens], 3, Duration::from_millis(5))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let down_at = load.elapsed();
    redis.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart();
    let up_at = load.elapsed();
    let up = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let reports = load.stop().await?;
    for r in &reports {
        eprintln!("redis restart (down {down_at:.1?}, up {up_at:.1?}): {r}");
    }
    let (sessions, tokens) = (&reports[0], &reports[1]);

    // Bearer tokens do not touch Redis: no failure at all.
    assert_eq!(tokens.failures, 0, "{tokens}");
    // Sessions: only 503s, only while Redis was down (plus reconnecting), none hung.
    assert!(
        sessions
            .statuses
            .iter()
            .all(|(s, _)| *s == 200 || *s == 503),
        "only 200 and 503: {sessions}"
    );
    assert_eq!(
        sessions.failures,
        sessions
            .statuses
            .iter()
            .find(|(s, _)| *s == 503)
            .map_or(0, |(_, n)| *n),
        "every failure is a 503, none a socket error or timeout: {sessions}"
    );
    assert!(
        sessions.slowest < Duration::from_secs(2),
        "no request hung (command timeout 0.5 s, connect timeout 1 s): {sessions}"
    );
    let (first, last) = sessions.failure_window.ok_or_else(|| {
        err(format!(
            "Redis was down 3 s and no session request failed? {sessions}"
        ))
    })?;
    assert!(first >= down_at, "{sessions}");
    assert!(
        last <= up_at + Duration::from_secs(2),
        "503s stop within 2 s of Redis being back: {sessions}"
    );
    eprintln!(
        "redis restart: 503s for {:.1} s (Redis down for {:.1} s); recovered {:.1} s after it was back",
        sessions.outage_seconds(),
        (up_at - down_at).as_secs_f64(),
        last.saturating_sub(up_at).as_secs_f64()
    );
    // Nothing lost: the session from before the restart still passes.
    assert!(up.elapsed() > Duration::from_secs(2));
    let r = p
        .forward_auth(&alice, "/api/after-restart", "application/json")
        .await?;
    assert_eq!(r.status, 200, "the session survived: {}", r.describe());
    Ok(())
}
