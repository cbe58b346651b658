//! Connection floods against the binary, with its default `max_connections` (2,048):
//! * 8,000 idle keep-alive connections and 1,500 slowloris connections at once
//!   (`tools/conn-flood/conn_flood.py`): a normal client keeps being served (every request,
//!   p99 under 100 ms), memory stays within the shipped Deployment's 128 MiB limit, and
//!   comes back after the flood;
//! * a flood beyond the process's file-descriptor limit (`ulimit -n` 256): accepting fails
//!   with EMFILE, idle connections make room, nothing crashes, and afterwards it serves as
//!   before.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::memory_kib;
use crate::instance::{Instance, Settings};
use crate::support::env::Env;
use crate::support::{R, err};

/// The shipped Deployment's memory limit (deploy/kubernetes/base/deployment.yaml).
const MEMORY_LIMIT_KIB: u64 = 128 * 1024;

/// Runs `tools/conn-flood/conn_flood.py` against `p` and returns its JSON result.
fn flood(p: &Instance, idle: u32, slowloris: u32, settle: u32) -> R<Value> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tools/conn-flood/conn_flood.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .args(["--url", &p.url, "--pid", &p.pid().to_string()])
        .args([
            "--idle",
            &idle.to_string(),
            "--slowloris",
            &slowloris.to_string(),
        ])
        .args(["--hold", "3", "--settle", &settle.to_string()])
        .output()?;
    if !out.status.success() {
        return Err(err(format!(
            "conn_flood.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| err(format!("conn_flood.py output ({e}): {stdout}")))
}

fn alive_and_ready(p: &mut Instance) -> R {
    if let Some(status) = p.exited()? {
        return Err(err(format!(
            "{} exited ({status}); log:\n{}",
            p.name,
            p.log_tail()
        )));
    }
    Ok(())
}

async fn ready(p: &Instance) -> R<u16> {
    Ok(reqwest::Client::new()
        .get(format!("{}/ready", p.url))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .status()
        .as_u16())
}

#[tokio::test]
async fn faults_connection_flood_does_not_starve_normal_clients_or_exhaust_memory() -> R {
    let env = Env::load()?;
    let mut p = Instance::start(&env, "portcullis-flood", &Settings::default()).await?;
    let result = flood(&p, 8000, 1500, 15)?;
    let (_, peak) = memory_kib(p.pid())?;
    eprintln!("connection flood (8,000 idle + 1,500 slowloris): {result}; VmHWM {peak} KiB");
    alive_and_ready(&mut p)?;
    let normal = &result["normal_during_flood"];
    assert_eq!(
        normal["errors"], 0,
        "a normal client is always served: {result}"
    );
    assert_eq!(normal["ok"], 200, "{result}");
    let p99 = normal["p99_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(
        p99 < 100.0,
        "normal client p99 {p99} ms under the flood: {result}"
    );
    assert!(
        peak < MEMORY_LIMIT_KIB,
        "peak RSS {peak} KiB within the Deployment's limit ({MEMORY_LIMIT_KIB} KiB)"
    );
    let rss = &result["rss_kib"];
    let (baseline, after) = (
        rss["baseline"].as_u64().unwrap_or(0),
        rss["after"].as_u64().unwrap_or(u64::MAX),
    );
    assert!(
        after <= baseline + 16 * 1024,
        "memory comes back after the flood: {baseline} KiB before, {after} KiB after: {result}"
    );
    assert_eq!(ready(&p).await?, 200);
    Ok(())
}

#[tokio::test]
async fn faults_connection_flood_beyond_the_fd_limit_degrades_and_recovers() -> R {
    let env = Env::load()?;
    let mut p = Instance::start(
        &env,
        "portcullis-fd-limit",
        &Settings {
            fd_limit: Some(256),
            ..Settings::default()
        },
    )
    .await?;
    let result = flood(&p, 1000, 0, 3)?;
    eprintln!("connection flood beyond the fd limit (1,000 idle, ulimit -n 256): {result}");
    alive_and_ready(&mut p)?;
    let log = std::fs::read_to_string(&p.log)?;
    assert!(
        log.contains("accept failed"),
        "the flood did reach the fd limit (else this test proves nothing); log:\n{}",
        p.log_tail()
    );
    // Idle connections made room: the normal client was served during the flood.
    let normal = &result["normal_during_flood"];
    let ok = normal["ok"].as_u64().unwrap_or(0);
    assert!(
        ok >= 190,
        "a normal client was served during the flood: {result}"
    );
    assert_eq!(ready(&p).await?, 200, "serves as before after the flood");
    Ok(())
}
