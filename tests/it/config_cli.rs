//! The binary's configuration contract: exit 64 listing every problem by key.

use std::process::Command;

/// Whether `/ready` at `base` answers 200 within 5 s.
async fn becomes_ready(client: &reqwest::Client, base: &str) -> bool {
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await
            && r.status() == 200
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

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
    let ready = becomes_ready(&client, &format!("http://127.0.0.1:{port}")).await;
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

/// An oauth2-proxy deployment's command line, unchanged, against the test IdP: the binary
/// starts, gets ready, turns a browser away to the IdP with oauth2-proxy's client id, and
/// lets a bearer token through `/oauth2/auth` (`--skip-jwt-bearer-tokens`) with the identity
/// headers; the same settings from the environment behave the same.
#[tokio::test]
async fn starts_from_an_oauth2_proxy_command_line_or_environment() {
    let idp = portcullis_test_idp::TestIdp::start(Default::default()).await;
    let flags = |port: u16| {
        vec![
            "--provider=keycloak-oidc".to_string(),
            "--client-id=portcullis".into(),
            "--client-secret=test-secret".into(),
            format!("--redirect-url=http://127.0.0.1:{port}/oauth2/callback"),
            format!("--oidc-issuer-url={}", idp.issuer()),
            "--email-domain=*".into(),
            // 32 characters, not base64: taken raw, as oauth2-proxy does.
            "--cookie-secret=0123456789abcdef0123456789abcde!".into(),
            "--cookie-secure=false".into(),
            format!("--http-address=127.0.0.1:{port}"),
            "--upstream=static://202".into(),
            "--reverse-proxy=true".into(),
            "--set-xauthrequest=true".into(),
            "--skip-jwt-bearer-tokens=true".into(),
            "--code-challenge-method=S256".into(),
            "--skip-auth-route=GET=^/health$".into(),
        ]
    };
    let as_env = |args: &[String]| -> Vec<(String, String)> {
        args.iter()
            .map(|a| {
                let (k, v) = a.trim_start_matches("--").split_once('=').unwrap();
                let mut name = format!("OAUTH2_PROXY_{}", k.replace('-', "_").to_uppercase());
                if k == "email-domain" || k == "upstream" || k == "skip-auth-route" {
                    name.push('S');
                }
                (name, v.to_string())
            })
            .collect()
    };
    for from_env in [false, true] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.env_remove("PORTCULLIS_CONFIG")
            .stderr(std::process::Stdio::piped());
        if from_env {
            cmd.envs(as_env(&flags(port)));
        } else {
            cmd.args(flags(port));
        }
        let mut child = cmd.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let ready = becomes_ready(&client, &base).await;
        assert!(ready, "from_env={from_env}: the binary became ready");
        // A browser without a session goes to the IdP, as oauth2-proxy's client.
        let start = client
            .get(format!("{base}/oauth2/start?rd=/app"))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 302);
        let location = start.headers()["location"].to_str().unwrap().to_string();
        assert!(
            location.starts_with(&idp.authorization_endpoint()),
            "{location}"
        );
        assert!(location.contains("client_id=portcullis"), "{location}");
        assert!(
            location.contains("code_challenge_method=S256"),
            "{location}"
        );
        // A bearer token passes /oauth2/auth with the identity headers.
        let token = idp.mint_access_token(
            &portcullis_test_idp::TestUser::alice(),
            serde_json::json!({}),
            "rsa-1",
        );
        let r = client
            .get(format!("{base}/oauth2/auth"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "from_env={from_env}");
        assert!(r.headers().contains_key("x-auth-request-user"));
        let r = client
            .get(format!("{base}/oauth2/auth"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        // `--skip-auth-route=GET=^/health$` became a public rule: that path passes without
        // credentials, its neighbours and other methods do not.
        let forwarded = |method: &'static str, uri: &'static str| {
            client
                .get(format!("{base}/oauth2/forward-auth"))
                .header("x-forwarded-method", method)
                .header("x-forwarded-proto", "http")
                .header("x-forwarded-host", "127.0.0.1")
                .header("x-forwarded-uri", uri)
                .send()
        };
        assert_eq!(forwarded("GET", "/health").await.unwrap().status(), 200);
        assert_eq!(forwarded("GET", "/health/x").await.unwrap().status(), 401);
        assert_eq!(forwarded("POST", "/health").await.unwrap().status(), 401);
        let _ = child.kill();
        let _ = child.wait();
        let mut logs = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut logs).unwrap();
        // The flags without effect are named, with what Portcullis does instead.
        assert!(logs.contains("--reverse-proxy: no effect"), "{logs}");
        assert!(
            !logs.contains("test-secret"),
            "a secret in the logs:\n{logs}"
        );
    }
}

#[test]
fn unknown_and_refused_oauth2_proxy_flags_exit_64_naming_every_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "--provider=oidc",
            "--no-such-flag=1",
            "--also-unknown",
            "--ssl-insecure-skip-verify=true",
            "--api-route=^/api",
        ])
        .env_remove("PORTCULLIS_CONFIG")
        .env("OAUTH2_PROXY_BOGUS_SETTING", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for name in [
        "--no-such-flag",
        "--also-unknown",
        "--ssl-insecure-skip-verify",
        "--api-route",
        "OAUTH2_PROXY_BOGUS_SETTING",
    ] {
        assert!(err.contains(name), "{name} not named:\n{err}");
    }
    assert!(!err.contains("usage:"), "a bare usage line:\n{err}");
}
