//! `session.redis_mode = "sentinel"` and `"cluster"` against real `redis-server` topologies
//! (tests/common/redis_topologies.rs): a Sentinel failover under load must cost only a few seconds of
//! 503s and lose no acknowledged session; two replicas sharing a cluster must behave as one
//! service (login, sign-out, back-channel logout, one refresh grant).

use crate::redis_sessions::{advance_pair, replica_pair, status, wait_for_ready};
use crate::support::{BROWSER_ACCEPT, Harness, cookie_pairs, location, session_cookie};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../common/redis_topologies.rs"]
mod redis_topologies;
use redis_topologies::{DOWN_AFTER_MS, RedisCluster, SENTINEL_MASTER, SentinelSet};

fn urls_toml(urls: &[String]) -> String {
    let quoted: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// One browser login, not asserted: the callback's status, and the session cookie when it
/// set one (a login whose record could not be written answers 503 and sets none).
async fn try_login(h: &Harness) -> (u16, Option<String>) {
    let start = h.forward_auth("/", &[("accept", BROWSER_ACCEPT)]).await;
    if start.status() != 302 {
        return (start.status().as_u16(), None);
    }
    let state = cookie_pairs(&start);
    let callback = h.follow_idp(&location(&start)).await;
    let done = h.get(&callback, &[("cookie", &state)]).await;
    let status = done.status().as_u16();
    let session = (status == 302).then(|| session_cookie(&done));
    (status, session.filter(|s| !s.is_empty()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_under_load_costs_seconds_of_503_and_loses_no_acknowledged_session() {
    let Some(mut set) = SentinelSet::start() else {
        return;
    };
    let (a, b) = replica_pair(&format!(
        "redis_mode = \"sentinel\"\nredis_urls = {}\nredis_sentinel_master = \"{SENTINEL_MASTER}\"",
        urls_toml(&set.urls())
    ))
    .await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    // Sessions written (and, with WAIT, acknowledged by the replica) before the failover.
    let mut sessions = Vec::new();
    let started = Instant::now();
    for i in 0..10 {
        let h = if i % 2 == 0 { &a } else { &b };
        sessions.push(h.login("/").await.0);
    }
    eprintln!(
        "10 logins with WAIT for the replica: {:?} each",
        started.elapsed() / 10
    );
    let sessions = Arc::new(sessions);

    // Load: both replicas, every session in turn, as fast as they answer.
    let log: Arc<Mutex<Vec<(Duration, u16)>>> = Arc::default();
    let t0 = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (h, sessions, log, stop) = (
            if w % 2 == 0 { a.clone() } else { b.clone() },
            sessions.clone(),
            log.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let s = status(&h, &sessions[i % sessions.len()]).await;
                log.lock().unwrap().push((t0.elapsed(), s));
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    // Logins all along, on both replicas: each either completes (and its session must then
    // survive the failover: it was acknowledged by the replica, `WAIT`) or answers 503.
    type Login = (Duration, u16, Option<String>);
    let logins: Arc<Mutex<Vec<Login>>> = Arc::default();
    for w in 0..2 {
        let (h, logins, stop) = (
            if w == 0 { a.clone() } else { b.clone() },
            logins.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, session) = try_login(&h).await;
                logins.lock().unwrap().push((t0.elapsed(), status, session));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let old_master = set.master.port;
    let killed_at = t0.elapsed();
    set.master.kill();
    // Wait for the Sentinels to promote the replica, then for both Portcullis replicas to
    // serve again, then keep the load on a little longer.
    let deadline = Instant::now() + Duration::from_secs(30);
    while set.current_master_port() == Some(old_master) {
        assert!(Instant::now() < deadline, "the Sentinels did not fail over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let promoted_at = t0.elapsed();
    for h in [&a, &b] {
        wait_for_ready(h, 200).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let log = log.lock().unwrap().clone();
    let failed: Vec<&(Duration, u16)> = log.iter().filter(|(_, s)| *s != 200).collect();
    let other: Vec<&(Duration, u16)> = failed.iter().copied().filter(|(_, s)| *s != 503).collect();
    assert!(
        other.is_empty(),
        "only 200 or 503 while failing over: {other:?}"
    );
    let window = match (failed.first(), failed.last()) {
        (Some(first), Some(last)) => last.0 - first.0,
        _ => Duration::ZERO,
    };
    let last_503_after_kill = failed.last().map_or(Duration::ZERO, |l| l.0 - killed_at);
    eprintln!(
        "failover under load: {} requests, {} answered 503 over {window:?}; master killed at {killed_at:?}, \
         replica promoted {:?} later (down-after {DOWN_AFTER_MS} ms), last 503 {last_503_after_kill:?} after the kill",
        log.len(),
        failed.len(),
        promoted_at - killed_at,
    );
    assert!(window < Duration::from_secs(5), "503s for {window:?}");
    assert!(
        log.iter()
            .filter(|(at, s)| *at > last_503_after_kill + killed_at && *s == 200)
            .count()
            > 10,
        "requests pass again after the failover"
    );
    // Every session acknowledged before the failover works on both replicas, and a new
    // login (written to the new master) too.
    for s in sessions.iter() {
        assert_eq!(status(&a, s).await, 200);
        assert_eq!(status(&b, s).await, 200);
    }
    let (fresh, _) = b.login("/").await;
    assert_eq!(status(&a, &fresh).await, 200);

    let logins = logins.lock().unwrap().clone();
    let completed: Vec<&Login> = logins.iter().filter(|l| l.2.is_some()).collect();
    let refused: Vec<&Login> = logins.iter().filter(|l| l.2.is_none()).collect();
    let login_window = match (refused.first(), refused.last()) {
        (Some(first), Some(last)) => last.0 - first.0,
        _ => Duration::ZERO,
    };
    eprintln!(
        "logins during the failover: {} attempted, {} completed ({} after the kill), {} answered 503 over {login_window:?}",
        logins.len(),
        completed.len(),
        completed.iter().filter(|l| l.0 > killed_at).count(),
        refused.len(),
    );
    assert!(
        refused.iter().all(|l| l.1 == 503),
        "a login that cannot be stored answers 503: {:?}",
        refused.iter().map(|l| (l.0, l.1)).collect::<Vec<_>>()
    );
    assert!(
        login_window < Duration::from_secs(5),
        "logins refused for {login_window:?}"
    );
    assert!(
        completed.iter().any(|l| l.0 < killed_at) && completed.iter().any(|l| l.0 > promoted_at),
        "logins complete before and after the failover"
    );
    // Nothing acknowledged is lost: every completed login's session passes on both replicas.
    for (at, _, session) in &completed {
        let session = session.as_deref().unwrap_or_default();
        assert_eq!(
            status(&a, session).await,
            200,
            "the login completed at {at:?}"
        );
        assert_eq!(
            status(&b, session).await,
            200,
            "the login completed at {at:?}"
        );
    }
}

#[tokio::test]
async fn two_replicas_sharing_a_cluster_behave_as_one_service() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let (a, b) = replica_pair(&format!(
        "redis_mode = \"cluster\"\nredis_urls = {}",
        urls_toml(&cluster.urls())
    ))
    .await;

    // A login on A passes on B; its record is in the cluster.
    let (session, _) = a.login("/").await;
    assert_eq!(status(&b, &session).await, 200);
    assert_eq!(cluster.keys("portcullis:session:*").len(), 1);

    // Sign-out on B ends it on A.
    let out = b.get("/oauth2/sign_out", &[("cookie", &session)]).await;
    assert_eq!(out.status(), 302);
    assert!(
        cluster.keys("portcullis:session:*").is_empty(),
        "record deleted"
    );
    assert_eq!(status(&a, &session).await, 401);

    // Back-channel logout received by A ends B's session (by sid, then by sub).
    let (on_b, _) = b.login("/").await;
    a.idp
        .controls()
        .set_backchannel_logout_url(Some(&a.url("/oauth2/backchannel-logout")));
    let sid = a.idp.last_session_id().expect("IdP session");
    assert!(a.idp.logout_session(&sid).await);
    assert_eq!(a.idp.controls().last_backchannel_result(), Some(Ok(200)));
    assert_eq!(status(&b, &on_b).await, 401);
    let (s1, _) = a.login("/").await;
    advance_pair(&a, &b, 1);
    let token = a
        .idp
        .mint_logout_token(json!({"sid": null, "sub": "a1b2c3-alice"}));
    let resp = a
        .client
        .post(a.url("/oauth2/backchannel-logout"))
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(status(&b, &s1).await, 401);

    // Concurrent stale requests on both replicas: one refresh grant (the lock and the record
    // share a slot, so the waiters' pipeline is not cross-slot).
    advance_pair(&a, &b, 5);
    let (session, _) = a.login("/").await;
    let idp = a.idp.controls();
    idp.revoke_refresh_token_on_use
        .store(true, Ordering::SeqCst);
    idp.set_token_delay_ms(150);
    advance_pair(&a, &b, 6 * 60);
    let before = idp.refresh_grants();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let h = if i % 2 == 0 { &a } else { &b };
        let (client, url, cookie) = (
            h.client.clone(),
            h.url("/oauth2/forward-auth"),
            session.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(
        idp.refresh_grants() - before,
        1,
        "exactly one refresh grant"
    );
    assert_eq!(status(&b, &session).await, 200);
    assert_eq!(idp.refresh_grants() - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_failover_mid_run_is_survived_without_a_restart() {
    let Some(mut cluster) = RedisCluster::start() else {
        return;
    };
    let (a, b) = replica_pair(&format!(
        "redis_mode = \"cluster\"\nredis_urls = {}",
        urls_toml(&cluster.urls())
    ))
    .await;
    // Enough sessions that some live on every master.
    let mut sessions = Vec::new();
    for i in 0..12 {
        sessions.push(if i % 2 == 0 { &a } else { &b }.login("/").await.0);
    }
    let victim = cluster
        .nodes
        .iter()
        .position(|n| n.cli(&["ROLE"]).starts_with("master"))
        .expect("a master");
    let killed = Instant::now();
    cluster.nodes[victim].kill();
    // Until every session passes on both replicas again: only 200 or 503 on the way.
    let mut answers = 0;
    let mut unavailable = 0;
    loop {
        let mut all_pass = true;
        for s in &sessions {
            for h in [&a, &b] {
                let got = status(h, s).await;
                answers += 1;
                assert!(
                    got == 200 || got == 503,
                    "a session answered {got} during the failover"
                );
                if got == 503 {
                    unavailable += 1;
                    all_pass = false;
                }
            }
        }
        if all_pass {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "sessions on the failed master did not come back; the cluster says:\n{}",
            cluster.nodes[(victim + 1) % cluster.nodes.len()].cli(&["CLUSTER", "NODES"])
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "cluster master killed: every session passed again after {:?} ({unavailable} of {answers} answers were 503; cluster-node-timeout 2000 ms)",
        killed.elapsed()
    );
    // New logins land on the promoted replica too.
    let (fresh, _) = b.login("/").await;
    assert_eq!(status(&a, &fresh).await, 200);
}
