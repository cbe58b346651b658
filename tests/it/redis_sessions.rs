//! `session.store = "redis"`: two Portcullis replicas sharing one test IdP and one real
//! `redis-server` (started here on a free port, killed on drop). Sessions, sign-out, back-channel
//! logout and refresh must behave as one service; Redis going away must fail closed (503) and
//! coming back must heal without restarting Portcullis.

use crate::support::*;
use portcullis::clock::Clock;
use portcullis_test_idp::TestIdp;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[path = "../common/redis_server.rs"]
mod redis_server;
pub use redis_server::RedisServer;

/// Two replicas sharing one IdP, one clock reading and the session store `store` (the
/// `session.redis_*` lines), both ready.
pub async fn replica_pair(store: &str) -> (Harness, Harness) {
    let idp = TestIdp::start(Default::default()).await;
    let edit = |t: String| {
        t.replace(
            "refresh = \"5m\"",
            &format!("refresh = \"5m\"\nstore = \"redis\"\n{store}"),
        )
    };
    let a = Harness::start_for(idp.clone(), edit, true).await;
    let b = Harness::start_for(idp, edit, true).await;
    b.clock.set(a.clock.now());
    for h in [&a, &b] {
        wait_for_ready(h, 200).await;
    }
    (a, b)
}

/// Two replicas, one IdP, one Redis, one cookie secret, one clock reading.
struct Replicas {
    a: Harness,
    b: Harness,
    redis: RedisServer,
}

impl Replicas {
    async fn start() -> Option<Replicas> {
        let redis = RedisServer::start()?;
        let (a, b) = replica_pair(&format!("redis_url = \"{}\"", redis.url())).await;
        Some(Replicas { a, b, redis })
    }

    fn advance(&self, secs: u64) {
        advance_pair(&self.a, &self.b, secs);
    }
}

async fn ready_status(h: &Harness) -> u16 {
    h.get("/ready", &[]).await.status().as_u16()
}

/// Moves both replicas' clocks (and the IdP's) together.
pub fn advance_pair(a: &Harness, b: &Harness, secs: u64) {
    a.advance(secs);
    b.clock.set(a.clock.now());
}

pub async fn wait_for_ready(h: &Harness, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = ready_status(h).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/ready stayed {got}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn status(h: &Harness, cookie: &str) -> u16 {
    h.forward_auth("/", &[("cookie", cookie), ("accept", "application/json")])
        .await
        .status()
        .as_u16()
}

/// A back-channel logout of every session of alice (`sub`, no `sid`), received by `h`.
async fn logout_alice_by_sub(h: &Harness) {
    let token = h
        .idp
        .mint_logout_token(json!({"sid": null, "sub": "a1b2c3-alice"}));
    let resp = h
        .client
        .post(h.url("/oauth2/backchannel-logout"))
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn session_keys(redis: &RedisServer) -> Vec<String> {
    let mut c = redis.connection().await;
    redis::cmd("KEYS")
        .arg("portcullis:session:*")
        .query_async(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_login_on_one_replica_passes_on_the_other_with_a_small_opaque_cookie() {
    let Some(r) = Replicas::start().await else {
        return;
    };
    let start = r.a.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    let authorize = location(&start);
    let callback = r.a.follow_idp(&authorize).await;
    let resp =
        r.a.get(&callback, &[("cookie", &cookie_pairs(&start))])
            .await;
    assert_eq!(resp.status(), 302);
    let set: Vec<String> = set_cookies(&resp)
        .into_iter()
        .filter(|c| c.starts_with("_portcullis="))
        .collect();
    assert_eq!(set.len(), 1, "one session cookie, no chunks: {set:?}");
    let line = &set[0];
    eprintln!(
        "redis-mode Set-Cookie is {} bytes (value {} bytes)",
        line.len(),
        line.split(';').next().unwrap().len() - "_portcullis=".len()
    );
    assert!(line.len() < 400, "{line}");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Max-Age=43200"] {
        assert!(line.contains(attr), "{line} lacks {attr}");
    }
    assert!(!reveals_a_jwt(line), "no JWT in the cookie: {line}");
    let session = session_cookie(&resp);

    let on_b = r.b.forward_auth("/", &[("cookie", &session)]).await;
    assert_eq!(on_b.status(), 200);
    assert_eq!(header(&on_b, "x-auth-request-user"), Some("a1b2c3-alice"));
    assert_eq!(status(&r.a, &session).await, 200);

    // Redis holds one record: encrypted, living as long as the session.
    let keys = session_keys(&r.redis).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let mut c = r.redis.connection().await;
    let record: Vec<u8> = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut c)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&record);
    for secret in ["alice", "a1b2c3"] {
        assert!(!text.contains(secret), "{secret} readable in Redis");
    }
    assert!(!reveals_a_jwt(&text), "a token readable in Redis");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        ttl > 12 * 3600 * 1000 - 60_000 && ttl <= 12 * 3600 * 1000,
        "{ttl}"
    );
    // A cookie-store cookie (or any other value) is no session here.
    assert_eq!(
        status(&r.a, "_portcullis=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await,
        401
    );
}

#[tokio::test]
async fn back_channel_logout_received_by_one_replica_ends_the_session_on_the_other() {
    let Some(r) = Replicas::start().await else {
        return;
    };
    let (session, _) = r.a.login("/").await;
    assert_eq!(status(&r.b, &session).await, 200);
    r.a.idp
        .controls()
        .set_backchannel_logout_url(Some(&r.a.url("/oauth2/backchannel-logout")));
    let sid = r.a.idp.last_session_id().expect("IdP session");
    assert!(r.a.idp.logout_session(&sid).await);
    assert_eq!(r.a.idp.controls().last_backchannel_result(), Some(Ok(200)));
    assert_eq!(status(&r.b, &session).await, 401);
    assert_eq!(status(&r.a, &session).await, 401);

    // By `sub`: every session of the user, on every replica; a later login passes.
    let (s1, _) = r.a.login("/").await;
    let (s2, _) = r.b.login("/").await;
    r.advance(1);
    logout_alice_by_sub(&r.a).await;
    for s in [&s1, &s2] {
        assert_eq!(status(&r.b, s).await, 401);
        assert_eq!(status(&r.a, s).await, 401);
    }
    r.advance(5);
    let (s3, _) = r.b.login("/").await;
    assert_eq!(status(&r.a, &s3).await, 200);
}

#[tokio::test]
async fn sign_out_on_one_replica_ends_the_session_on_the_other() {
    let Some(r) = Replicas::start().await else {
        return;
    };
    let (session, _) = r.a.login("/").await;
    assert_eq!(session_keys(&r.redis).await.len(), 1);
    let out = r.b.get("/oauth2/sign_out", &[("cookie", &session)]).await;
    assert_eq!(out.status(), 302);
    assert!(
        location(&out).contains("id_token_hint="),
        "the IdP logout gets the ID token from Redis"
    );
    assert!(
        set_cookies(&out)
            .iter()
            .any(|c| c.starts_with("_portcullis=;") && c.contains("Max-Age=0"))
    );
    assert!(session_keys(&r.redis).await.is_empty(), "record deleted");
    assert_eq!(status(&r.a, &session).await, 401);
    assert_eq!(status(&r.b, &session).await, 401);
}

/// A counter's value on a replica's `/metrics`.
async fn counter(h: &Harness, name: &str) -> u64 {
    let text = h.get("/metrics", &[]).await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// How many reads (`GET`, `MGET`) the Redis server has answered.
async fn reads(redis: &RedisServer) -> u64 {
    let mut c = redis.connection().await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_get:") || l.starts_with("cmdstat_mget:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Sends `cookie` to `h` until it is served from the opened sessions' cache (tracking starts
/// at the first ping after connecting), then checks that further requests read nothing.
async fn until_cached(h: &Harness, redis: &RedisServer, cookie: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let hits = counter(h, "portcullis_session_cache_hits_total").await;
        assert_eq!(status(h, cookie).await, 200);
        if counter(h, "portcullis_session_cache_hits_total").await > hits {
            break;
        }
        assert!(Instant::now() < deadline, "never served from the cache");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = reads(redis).await;
    for _ in 0..20 {
        assert_eq!(status(h, cookie).await, 200);
    }
    assert_eq!(
        reads(redis).await,
        before,
        "a cached session reads nothing from Redis"
    );
}

/// Polls `h` with `cookie` until it is refused; how long that took.
async fn until_refused(h: &Harness, cookie: &str) -> Duration {
    let started = Instant::now();
    loop {
        let got = status(h, cookie).await;
        if got == 401 {
            return started.elapsed();
        }
        assert_eq!(got, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still passing after 2 s"
        );
    }
}

/// The longest a sign-out or back-channel logout on one replica may take to end the session
/// another replica serves from its cache (Redis pushes the invalidation before it answers the
/// write; the rest is the push crossing a socket).
const PROPAGATION_BOUND: Duration = Duration::from_millis(250);

#[tokio::test]
async fn a_session_cached_on_one_replica_ends_within_milliseconds_of_a_logout_on_the_other() {
    let Some(r) = Replicas::start().await else {
        return;
    };
    // Sign-out on B: A's cached copy goes with the record.
    let (session, _) = r.a.login("/").await;
    until_cached(&r.a, &r.redis, &session).await;
    let out = r.b.get("/oauth2/sign_out", &[("cookie", &session)]).await;
    assert_eq!(out.status(), 302);
    let sign_out = until_refused(&r.a, &session).await;

    // Back-channel logout (by `sub`) received by A: B's cached copy goes with the revocation.
    r.advance(1);
    let (again, _) = r.a.login("/").await;
    until_cached(&r.b, &r.redis, &again).await;
    r.advance(1);
    logout_alice_by_sub(&r.a).await;
    let backchannel = until_refused(&r.b, &again).await;
    eprintln!(
        "cached session refused on the other replica {sign_out:?} after a sign-out, \
         {backchannel:?} after a back-channel logout"
    );
    assert!(sign_out < PROPAGATION_BOUND, "{sign_out:?}");
    assert!(backchannel < PROPAGATION_BOUND, "{backchannel:?}");

    // Redis going away ends the cache as soon as the replica notices (the connection's
    // end, at the latest the next ping): a cached session then fails closed. Until then it
    // is as current as Redis was when it went: every write Redis took pushed its
    // invalidation before answering.
    r.advance(5);
    let (third, _) = r.b.login("/").await;
    until_cached(&r.a, &r.redis, &third).await;
    let mut redis = r.redis;
    redis.stop();
    let stopped = Instant::now();
    let mut passed = 0;
    let refused = loop {
        let got = status(&r.a, &third).await;
        if got != 200 {
            break got;
        }
        passed += 1;
        assert!(
            stopped.elapsed() < Duration::from_secs(2),
            "cache still used"
        );
    };
    eprintln!(
        "after Redis stopped: {passed} requests passed from the cache, then {refused} \
         {:?} after the stop",
        stopped.elapsed()
    );
    assert_eq!(refused, 503);
}

#[tokio::test]
async fn an_acl_user_without_client_tracking_still_works_reading_redis_every_time() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut c = redis.connection().await;
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("portcullis")
        .arg("on")
        .arg(">pw-for-tests")
        .arg("~*")
        .arg("+@all")
        .arg("-client|tracking")
        .query_async(&mut c)
        .await
        .unwrap();
    let url = redis
        .url()
        .replace("redis://", "redis://portcullis:pw-for-tests@");
    let (a, b) = replica_pair(&format!("redis_url = \"{url}\"")).await;
    let (session, _) = a.login("/").await;
    let before = reads(&redis).await;
    for _ in 0..5 {
        assert_eq!(status(&a, &session).await, 200);
    }
    assert!(
        reads(&redis).await >= before + 5,
        "every request read Redis"
    );
    assert_eq!(counter(&a, "portcullis_session_cache_hits_total").await, 0);
    let out = b.get("/oauth2/sign_out", &[("cookie", &session)]).await;
    assert_eq!(out.status(), 302);
    assert_eq!(status(&a, &session).await, 401);
}

#[tokio::test]
async fn concurrent_stale_requests_on_both_replicas_cause_one_refresh_grant() {
    let Some(r) = Replicas::start().await else {
        return;
    };
    let idp = r.a.idp.controls();
    idp.revoke_refresh_token_on_use
        .store(true, Ordering::SeqCst);
    idp.set_token_delay_ms(150);
    let (session, _) = r.a.login("/").await;
    r.advance(6 * 60);
    let before = idp.refresh_grants();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let h = if i % 2 == 0 { &r.a } else { &r.b };
        let client = h.client.clone();
        let url = h.url("/oauth2/forward-auth");
        let cookie = session.clone();
        tasks.push(tokio::spawn(async move {
            let resp = client
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), session_cookie(&resp))
        }));
    }
    for t in tasks {
        let (s, new_cookie) = t.await.unwrap();
        assert_eq!(s, 200);
        assert!(
            new_cookie.is_empty(),
            "the cookie does not change on refresh"
        );
    }
    assert_eq!(
        idp.refresh_grants() - before,
        1,
        "exactly one refresh grant"
    );
    // The rewritten session is fresh on both replicas: no further grant.
    assert_eq!(status(&r.a, &session).await, 200);
    assert_eq!(status(&r.b, &session).await, 200);
    assert_eq!(idp.refresh_grants() - before, 1);
    // And the next refresh (with the rotated refresh token) works too.
    r.advance(6 * 60);
    assert_eq!(status(&r.b, &session).await, 200);
    assert_eq!(idp.refresh_grants() - before, 2);
    let m = r.b.get("/metrics", &[]).await.text().await.unwrap();
    assert!(
        m.contains("portcullis_session_store_duration_seconds_count"),
        "{m}"
    );
}

#[tokio::test]
async fn redis_down_fails_closed_quickly_and_recovery_needs_no_restart() {
    let Some(mut r) = Replicas::start().await else {
        return;
    };
    let (session, _) = r.a.login("/").await;
    assert_eq!(status(&r.b, &session).await, 200);

    r.redis.stop();
    for h in [&r.a, &r.b] {
        let started = Instant::now();
        let resp = h
            .forward_auth("/", &[("cookie", &session), ("accept", BROWSER_ACCEPT)])
            .await;
        let took = started.elapsed();
        eprintln!("with Redis stopped, forward-auth answered in {took:?}");
        assert_eq!(resp.status(), 503);
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert!(
            set_cookies(&resp).is_empty(),
            "the cookie is kept for when Redis is back"
        );
        assert!(resp.text().await.unwrap().contains("Try again in a moment"));
    }
    for h in [&r.a, &r.b] {
        wait_for_ready(h, 503).await;
    }
    // A browser without a session is still sent to log in (no store needed for that)...
    let fresh = r.a.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(fresh.status(), 302);
    // ...but signing out fails closed.
    let out = r.b.get("/oauth2/sign_out", &[("cookie", &session)]).await;
    assert_eq!(out.status(), 503);
    let m = r.a.get("/metrics", &[]).await.text().await.unwrap();
    assert!(
        !m.contains("portcullis_session_store_errors_total 0"),
        "{m}"
    );

    r.redis.restart();
    for h in [&r.a, &r.b] {
        wait_for_ready(h, 200).await;
    }
    // Redis ran without persistence: the old session is gone (401, not 503); a new login
    // works on both replicas.
    assert_eq!(status(&r.a, &session).await, 401);
    let (again, _) = r.b.login("/").await;
    assert_eq!(status(&r.a, &again).await, 200);
    assert_eq!(status(&r.b, &again).await, 200);
}
