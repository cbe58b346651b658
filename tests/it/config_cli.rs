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
