//! The binary's command line and configuration contract: `run` (the default), `check` and
//! `convert`; exit 64 listing every problem by key or flag.

use crate::support::{becomes_ready, free_port, portcullis, temp_file};
use std::process::Command;

/// The same problems whether the binary is started or asked to `check` the file.
#[test]
fn invalid_config_exits_64_listing_every_problem_at_startup_and_in_check() {
    for command in [&[][..], &["check"]] {
        let file = temp_file(
            "bad.toml",
            "public_url = \"nope\"\ntypo_key = 1\n[oidc]\nclient_id = \"\"\n[session]\ncookie_secret = \"short\"\n",
        );
        let out = portcullis()
            .args(command)
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{command:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("typo_key: unknown key"), "{err}");
        let fixed = "public_url = \"nope\"\n[oidc]\nclient_id = \"\"\n[session]\ncookie_secret = \"short\"\n";
        let file = temp_file("bad.toml", fixed);
        let out = portcullis()
            .args(command)
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{command:?}");
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
                "{command:?}: {key} not reported:\n{err}"
            );
        }
        assert!(!err.contains("short"), "secret value echoed:\n{err}");
        assert!(
            out.stdout.is_empty(),
            "{command:?}: said something on stdout"
        );
    }
}

#[test]
fn config_from_env_var_path_and_missing_file() {
    let out = portcullis()
        .env("PORTCULLIS_CONFIG", "/nonexistent/portcullis.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
    for command in [&[][..], &["check"]] {
        let out = portcullis().args(command).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{command:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--config FILE.toml"), "{command:?}: {err}");
    }
}

#[tokio::test]
async fn serves_with_json_logs_and_shuts_down_gracefully_on_sigterm() {
    let idp = portcullis_test_idp::TestIdp::start(Default::default()).await;
    let port = free_port();
    let toml = crate::support::base_toml(&idp.issuer()).replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\"\nlog_format = \"json\""),
    );
    let file = temp_file("json-logs.toml", &toml);
    let mut child = portcullis()
        .arg("--config")
        .arg(&file)
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

/// The command line oauth2-proxy's Keycloak documentation shows (plus what a forward-auth
/// deployment adds), for the test IdP and a Portcullis on `port`.
fn oauth2_proxy_flags(issuer: &str, port: u16) -> Vec<String> {
    vec![
        "--provider=keycloak-oidc".to_string(),
        "--client-id=portcullis".into(),
        "--client-secret=test-secret".into(),
        format!("--redirect-url=http://127.0.0.1:{port}/oauth2/callback"),
        format!("--oidc-issuer-url={issuer}"),
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
        "--allowed-group=admins".into(),
    ]
}

/// oauth2-proxy's list flags, whose environment and `.cfg` names are plural.
const LIST_FLAGS: [&str; 4] = [
    "email-domain",
    "upstream",
    "skip-auth-route",
    "allowed-group",
];

/// The same settings as an oauth2-proxy `.cfg` file (TOML, the flags' snake_case names).
fn as_cfg(args: &[String]) -> String {
    let mut cfg = String::from("# oauth2-proxy.cfg\n");
    for a in args {
        let (k, v) = a.trim_start_matches("--").split_once('=').unwrap();
        let key = k.replace('-', "_");
        let line = if LIST_FLAGS.contains(&k) {
            format!("{key}s = [{v:?}]")
        } else if v == "true" || v == "false" {
            format!("{key} = {v}")
        } else {
            format!("{key} = {v:?}")
        };
        cfg.push_str(&line);
        cfg.push('\n');
    }
    cfg
}

/// How the oauth2-proxy deployment's settings reach the binary.
#[derive(Debug, Clone, Copy)]
enum Setup {
    /// Its command line, unchanged.
    Flags,
    /// The same settings as `OAUTH2_PROXY_*` variables.
    Environment,
    /// The same settings in an oauth2-proxy `.cfg` file, `--config FILE.cfg`.
    CfgFile,
    /// `portcullis convert` of its command line, started as a native `--config FILE.toml`.
    Converted,
}

/// An oauth2-proxy deployment's command line against the test IdP, given as flags, as
/// environment, as a `.cfg` file, and converted to a native file by `portcullis convert`: one
/// test body, four setups. The binary starts, gets ready, sends a browser to the IdP with
/// oauth2-proxy's client id, completes the login, passes `/oauth2/auth` with the session and
/// its groups, lets a bearer token through (`--skip-jwt-bearer-tokens`) with the identity
/// headers, refuses a user outside `--allowed-group`, and keeps `--skip-auth-route` public.
#[tokio::test]
async fn an_oauth2_proxy_configuration_behaves_the_same_as_flags_environment_or_converted() {
    let idp = portcullis_test_idp::TestIdp::start(Default::default()).await;
    let as_env = |args: &[String]| -> Vec<(String, String)> {
        args.iter()
            .map(|a| {
                let (k, v) = a.trim_start_matches("--").split_once('=').unwrap();
                let mut name = format!("OAUTH2_PROXY_{}", k.replace('-', "_").to_uppercase());
                if LIST_FLAGS.contains(&k) {
                    name.push('S');
                }
                (name, v.to_string())
            })
            .collect()
    };
    for setup in [
        Setup::Flags,
        Setup::Environment,
        Setup::CfgFile,
        Setup::Converted,
    ] {
        let port = free_port();
        let flags = oauth2_proxy_flags(&idp.issuer(), port);
        let mut cmd = portcullis();
        cmd.stderr(std::process::Stdio::piped());
        // What the flags without effect are said to do (stderr of the binary, or of convert).
        let mut notices = String::new();
        match setup {
            Setup::Flags => {
                cmd.args(&flags);
            }
            Setup::Environment => {
                cmd.envs(as_env(&flags));
            }
            Setup::CfgFile => {
                let file = temp_file(&format!("oauth2-proxy-{port}.cfg"), &as_cfg(&flags));
                cmd.arg("--config").arg(file);
            }
            Setup::Converted => {
                let out = portcullis().arg("convert").args(&flags).output().unwrap();
                notices = String::from_utf8_lossy(&out.stderr).into_owned();
                assert_eq!(out.status.code(), Some(0), "convert: {notices}");
                let toml = String::from_utf8(out.stdout).unwrap();
                let native = portcullis::config::Config::from_toml(&toml, &[]);
                assert!(
                    native.is_ok(),
                    "convert's output is refused: {native:?}\n{toml}"
                );
                let file = temp_file(&format!("converted-{port}.toml"), &toml);
                cmd.arg("--config").arg(file);
            }
        }
        let mut child = cmd.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let ready = becomes_ready(&client, &base).await;
        assert!(ready, "{setup:?}: the binary became ready");
        // A browser without a session goes to the IdP, as oauth2-proxy's client.
        let start = client
            .get(format!("{base}/oauth2/start?rd=/app"))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 302, "{setup:?}");
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
        // The login completes, and the session passes /oauth2/auth with alice's groups.
        let state = crate::support::cookie_pairs(&start);
        let at_idp = client.get(&location).send().await.unwrap();
        assert_eq!(at_idp.status(), 302, "{setup:?}");
        let callback = crate::support::location(&at_idp);
        assert!(
            callback.starts_with(&format!("{base}/oauth2/callback?")),
            "{callback}"
        );
        let done = client
            .get(&callback)
            .header("cookie", &state)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 302, "{setup:?}: the callback");
        assert_eq!(crate::support::location(&done), "/app");
        let session = crate::support::session_cookie(&done);
        let r = client
            .get(format!("{base}/oauth2/auth"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{setup:?}: the session passes");
        let groups = crate::support::header(&r, "x-auth-request-groups").unwrap_or("");
        assert!(
            groups.split(',').any(|g| g == "admins"),
            "{setup:?}: {groups}"
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
        assert_eq!(r.status(), 202, "{setup:?}");
        assert!(r.headers().contains_key("x-auth-request-user"));
        // Bob is in no group: --allowed-group=admins refuses him.
        let bob = idp.mint_access_token(
            &portcullis_test_idp::TestUser::bob(),
            serde_json::json!({}),
            "rsa-1",
        );
        let r = client
            .get(format!("{base}/oauth2/auth"))
            .header("authorization", format!("Bearer {bob}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{setup:?}: outside --allowed-group");
        let r = client
            .get(format!("{base}/oauth2/auth"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{setup:?}");
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
        match setup {
            Setup::Converted => {
                let native = !logs.contains("compatibility mode");
                assert!(
                    native,
                    "the converted file started in compatibility mode:\n{logs}"
                );
            }
            Setup::Flags | Setup::Environment | Setup::CfgFile => notices = logs.clone(),
        }
        // The flags without effect are named, with what Portcullis does instead.
        assert!(
            notices.contains("--reverse-proxy: no effect"),
            "{setup:?}: {notices}"
        );
        assert!(
            !logs.contains("test-secret"),
            "{setup:?}: a secret in the logs:\n{logs}"
        );
    }
}

/// `check` on a good configuration, native or oauth2-proxy's: exit 0 and one line on stdout,
/// although the listen port is taken and the IdP does not exist (neither is touched).
#[test]
fn check_accepts_a_good_configuration_without_listening_or_calling_the_idp() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let issuer = "http://127.0.0.1:9/realms/nowhere";
    let toml =
        crate::support::base_toml(issuer).replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let file = temp_file("check-ok.toml", &toml);
    let flags = oauth2_proxy_flags(issuer, port);
    let mut native = portcullis();
    native.args(["check", "--config"]).arg(&file);
    let mut from_env = portcullis();
    from_env.arg("check").env("PORTCULLIS_CONFIG", &file);
    let mut oauth2_proxy = portcullis();
    oauth2_proxy.arg("check").args(&flags);
    let runs = [
        ("--config FILE.toml", native),
        ("PORTCULLIS_CONFIG", from_env),
        ("oauth2-proxy flags", oauth2_proxy),
    ];
    for (setup, mut cmd) in runs {
        let out = cmd.output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(0), "{setup}: {stderr}");
        assert_eq!(stdout.lines().count(), 1, "{setup}: {stdout}");
        assert!(stdout.contains("configuration OK"), "{setup}: {stdout}");
        if setup == "oauth2-proxy flags" {
            // The notices, as at startup.
            assert!(stderr.contains("--reverse-proxy: no effect"), "{stderr}");
        }
    }
}

/// `check` reads and parses what startup reads after validation (the certificates, the CA
/// bundle) and reports every problem of it together.
#[test]
fn check_reports_the_problems_startup_finds_past_validation() {
    // A broken certificate, and a file holding no certificate at all.
    for bad_pem in [
        temp_file(
            "bad-ca.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n",
        ),
        temp_file("no-cert.pem", "this is not a certificate\n"),
    ] {
        check_reports_startup_problems(&bad_pem);
    }
}

fn check_reports_startup_problems(bad_pem: &std::path::Path) {
    let toml = crate::support::base_toml("https://idp.example.com/realms/r")
        .replace(
            "listen = \"127.0.0.1:0\"",
            "listen = \"127.0.0.1:0\"\ntls_cert_file = \"/nonexistent/tls.crt\"\ntls_key_file = \"/nonexistent/tls.key\"",
        )
        .replace(
            "[oidc]",
            &format!("[oidc]\nca_file = \"{}\"", bad_pem.display()),
        );
    let file = temp_file("check-startup.toml", &toml);
    let out = portcullis()
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("/nonexistent/tls.crt"), "{err}");
    assert!(err.contains("oidc.ca_file: not a PEM bundle"), "{err}");
    assert!(out.stdout.is_empty());
}

/// Started, checked or converted, an oauth2-proxy command line with unknown and refused
/// flags exits 64 naming every one.
#[test]
fn unknown_and_refused_oauth2_proxy_flags_exit_64_naming_every_one() {
    for command in [&[][..], &["check"], &["convert"]] {
        let out = portcullis()
            .args(command)
            .args([
                "--provider=oidc",
                "--no-such-flag=1",
                "--also-unknown",
                "--ssl-insecure-skip-verify=true",
                "--api-route=^/api(/v[0-9]+)?$",
            ])
            .env("OAUTH2_PROXY_BOGUS_SETTING", "x")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{command:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for name in [
            "--no-such-flag",
            "--also-unknown",
            "--ssl-insecure-skip-verify",
            "--api-route",
            "OAUTH2_PROXY_BOGUS_SETTING",
        ] {
            assert!(err.contains(name), "{command:?}: {name} not named:\n{err}");
        }
        let bare_usage = err.to_lowercase().contains("usage:");
        assert!(!bare_usage, "{command:?}: a bare usage line:\n{err}");
        assert!(
            out.stdout.is_empty(),
            "{command:?}: printed a configuration"
        );
    }
}

#[test]
fn help_documents_the_commands_and_both_configurations() {
    let out = portcullis().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "check",
        "convert",
        "oauth2-proxy",
        "OAUTH2_PROXY_",
        "PORTCULLIS_CONFIG",
        "config/example.toml",
        "docs/deploy.md",
    ] {
        assert!(help.contains(word), "{word} missing:\n{help}");
    }
    let out = portcullis().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let version = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        version.trim(),
        format!("portcullis {}", env!("CARGO_PKG_VERSION"))
    );
    // A command line clap refuses is a usage error: 64, as for a bad configuration.
    let out = portcullis()
        .args(["help", "no-such-command"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}
