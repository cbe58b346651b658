//! The binary's configuration contract: exit 64 listing every problem by key.

use std::process::Command;

#[test]
fn invalid_config_exits_64_listing_every_problem() {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "public_url = \"nope\"\ntypo_key = 1\n[oidc]\nclient_id = \"\"\n[session]\ncookie_secret = \"short\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(&file)
        .env_remove("PORTCULLIS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("typo_key: unknown key"), "{err}");
    let fixed =
        "public_url = \"nope\"\n[oidc]\nclient_id = \"\"\n[session]\ncookie_secret = \"short\"\n";
    std::fs::write(&file, fixed).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "public_url",
        "oidc.issuer_url",
        "oidc.client_id",
        "oidc.client_secret",
        "session.cookie_secret",
    ] {
        assert!(
            err.contains(&format!("{key}:")),
            "{key} not reported:\n{err}"
        );
    }
    assert!(!err.contains("short"), "secret value echoed:\n{err}");
}

#[test]
fn config_from_env_var_path_and_missing_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .env("PORTCULLIS_CONFIG", "/nonexistent/portcullis.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .env_remove("PORTCULLIS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[tokio::test]
async fn serves_with_json_logs_and_shuts_down_gracefully_on_sigterm() {
    let idp = portcullis_test_idp::TestIdp::start(Default::default()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("portcullis-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ok.toml");
    let toml = crate::support::base_toml(&idp.issuer()).replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\"\nlog_format = \"json\""),
    );
    std::fs::write(&file, toml).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(&file)
        .env_remove("PORTCULLIS_CONFIG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
        {
            if r.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "the binary became ready");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "did not exit after SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let mut logs = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    let first = logs.lines().next().unwrap_or("");
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "JSON log line: {first}"
    );
    assert!(
        !logs.contains("test-secret") && !logs.contains("q2J1dW1seS"),
        "secrets in logs"
    );
}
