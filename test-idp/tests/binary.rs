//! The `portcullis-test-idp` binary prints `issuer=<url>`, serves, and exits on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_prints_issuer_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis-test-idp"))
        .args(["--user", "bob"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let issuer = line
        .trim()
        .strip_prefix("issuer=")
        .expect("issuer= line")
        .to_owned();
    assert!(
        issuer.starts_with("http://127.0.0.1:") && issuer.ends_with("/realms/test"),
        "{issuer}"
    );

    let doc: serde_json::Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], issuer.as_str());

    let base = issuer.trim_end_matches("/realms/test");
    let token = reqwest::Client::new()
        .post(format!("{base}/test/mint"))
        .body("{}")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(token.split('.').count(), 3);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}
