//! Reloading without a restart: an edited file and a ConfigMap-style symlink swap are applied,
//! a bad file is refused (the old configuration keeps serving, the refusal is counted), and
//! SIGHUP reloads the real binary.

use crate::support::*;
use portcullis::app::{App, CurrentApp};
use portcullis::clock::{Clock, ManualClock};
use portcullis::config::Config;
use portcullis::reload::ConfigReloader;
use portcullis_test_idp::{IdpOptions, TestIdp};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn rule(action: &str) -> String {
    format!("\n[[rules]]\nname = \"x\"\npaths = [\"/x/**\"]\naction = \"{action}\"\n")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-reload-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Served {
    idp: TestIdp,
    base: String,
    client: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Served {
    async fn status(&self, uri: &str) -> u16 {
        self.client
            .get(format!("{}/oauth2/forward-auth", self.base))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-host", "app.example.com")
            .header("x-forwarded-uri", uri)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits (bounded) until `uri` is answered `status`.
    async fn until(&self, uri: &str, status: u16) {
        for _ in 0..200 {
            if self.status(uri).await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{uri} never answered {status}:\n{}", self.metrics().await);
    }
}

async fn serve_watching(path: &Path, idp: TestIdp) -> Served {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = Config::load(path, &[]).unwrap();
    let clock = ManualClock::starting_now();
    idp.controls().set_fixed_now(Some(clock.now()));
    let clock: portcullis::clock::SharedClock = Arc::new(clock);
    let app = App::new(config, clock.clone()).unwrap();
    app.spawn_background();
    let current = CurrentApp::new(app);
    let reloader = ConfigReloader::new(path.to_path_buf(), Vec::new(), current.clone(), clock)
        .with_ready_timeout(Duration::from_secs(5));
    tokio::spawn(reloader.run(Duration::from_millis(50)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(portcullis::http::server::serve(
        current,
        listener,
        async {
            let _ = rx.await;
        },
        Duration::from_secs(1),
    ));
    let served = Served {
        idp,
        base,
        client: reqwest::Client::new(),
        _shutdown: tx,
    };
    for _ in 0..200 {
        let ready = served
            .client
            .get(format!("{}/ready", served.base))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return served;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never ready");
}

#[tokio::test]
async fn an_edited_file_is_applied_and_a_bad_one_refused() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let base = base_toml(&idp.issuer());
    let dir = temp_dir("edit");
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, format!("{base}{}", rule("deny"))).unwrap();
    let s = serve_watching(&path, idp).await;
    s.until("/x/1", 403).await;

    std::fs::write(&path, format!("{base}{}", rule("public"))).unwrap();
    s.until("/x/1", 200).await;
    assert!(
        s.metrics()
            .await
            .contains(r#"portcullis_config_reloads_total{outcome="applied"} 1"#)
    );

    // Two problems in one file: refused whole; the public rule keeps serving.
    let bad = format!("{base}{}", rule("public").replace("/x/**", "/x/**y")) + "typo = 1\n";
    std::fs::write(&path, bad).unwrap();
    for _ in 0..100 {
        if s.metrics()
            .await
            .contains(r#"portcullis_config_reloads_total{outcome="refused"} 1"#)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        s.metrics()
            .await
            .contains(r#"portcullis_config_reloads_total{outcome="refused"} 1"#)
    );
    assert_eq!(
        s.status("/x/1").await,
        200,
        "the old configuration keeps serving"
    );
    // Fixed again: applied.
    std::fs::write(&path, format!("{base}{}", rule("deny"))).unwrap();
    s.until("/x/1", 403).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_reload_needs_no_identity_provider() {
    // What discovery and the key fetch learnt is carried over: rules can be fixed while the
    // IdP is down.
    let idp = TestIdp::start(IdpOptions::default()).await;
    let base = base_toml(&idp.issuer());
    let dir = temp_dir("idp-down");
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, format!("{base}{}", rule("deny"))).unwrap();
    let s = serve_watching(&path, idp).await;
    s.until("/x/1", 403).await;
    s.idp.controls().set_down(true);
    std::fs::write(&path, format!("{base}{}", rule("public"))).unwrap();
    s.until("/x/1", 200).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_configmap_symlink_swap_is_applied() {
    // Kubernetes mounts a ConfigMap as NAME -> ..data/NAME, ..data -> ..TIMESTAMP, and an
    // update swaps ..data atomically.
    let idp = TestIdp::start(IdpOptions::default()).await;
    let base = base_toml(&idp.issuer());
    let dir = temp_dir("configmap");
    let write_version = |name: &str, action: &str| {
        let v = dir.join(name);
        std::fs::create_dir_all(&v).unwrap();
        std::fs::write(v.join("portcullis.toml"), format!("{base}{}", rule(action))).unwrap();
    };
    write_version("..v1", "deny");
    std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/portcullis.toml", dir.join("portcullis.toml")).unwrap();
    let s = serve_watching(&dir.join("portcullis.toml"), idp).await;
    s.until("/x/1", 403).await;
    write_version("..v2", "public");
    std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..v1")).unwrap();
    s.until("/x/1", 200).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn sighup_reloads_the_binary() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let dir = temp_dir("sighup");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = dir.join("client-secret");
    std::fs::write(&secret, "test-secret\n").unwrap();
    let toml = base_toml(&idp.issuer())
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace(
            "client_secret = \"test-secret\"",
            &format!("client_secret_file = \"{}\"", secret.display()),
        );
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, toml).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("--config")
        .arg(&path)
        .env_remove("PORTCULLIS_CONFIG")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let metrics = || async {
        match client.get(format!("{base}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    let mut up = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await {
            if r.status() == 200 {
                up = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "portcullis did not become ready");
    // Only a secret file changed (the config text did not): SIGHUP reloads it.
    std::fs::write(&secret, "rotated-secret\n").unwrap();
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut applied = false;
    for _ in 0..200 {
        if metrics()
            .await
            .contains(r#"portcullis_config_reloads_total{outcome="applied"} 1"#)
        {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(applied, "SIGHUP did not reload");
    std::fs::remove_dir_all(&dir).unwrap();
}
