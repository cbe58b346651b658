//! A rolling restart: two Portcullis replicas behind nginx (the shipped
//! `deploy/nginx/nginx.conf`, its upstream listing both), steady load through nginx, and each
//! replica in turn gets SIGTERM, exits, and is started again on its port — with the shipped
//! shutdown settings (`shutdown_grace` 10 s). No request may fail.
//!
//! What makes that hold: on SIGTERM Portcullis stops accepting, answers every request it has
//! already read, and closes its idle keep-alive connections; nginx retries a request whose
//! upstream connection was refused or closed before an answer on the other replica
//! (`proxy_next_upstream error`, its default). In Kubernetes the preStop sleep additionally
//! takes the pod out of the Service before SIGTERM; here, with no endpoints controller, the
//! replica is signalled while nginx still sends it traffic, the harder case.
//!
//! nginx marks a replica that refused a connection as failed for `fail_timeout` (10 s) and,
//! when every replica is marked failed, answers 502 without trying: so the second replica
//! is restarted only after the first has been back for longer than that, as a rolling
//! update waits for readiness.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::cookie_header;
use crate::instance::{Instance, Settings, cookie_secret, free_port, metrics_text};
use crate::support::env::Env;
use crate::support::keycloak::{self, ALICE};
use crate::support::load::{Load, Target};
use crate::support::{R, err};

/// nginx from the shipped template, with one `server` line per replica in the `portcullis`
/// upstream. Killed on drop.
struct Nginx {
    port: u16,
    prefix: String,
    child: Child,
}

impl Nginx {
    async fn start(env: &Env, replicas: &[&str]) -> R<Self> {
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/nginx/nginx.conf"
        ))?;
        let port = free_port()?;
        let prefix = format!("{}/nginx-replicas", env.run_dir);
        std::fs::create_dir_all(format!("{prefix}/tmp"))?;
        let servers = replicas
            .iter()
            .map(|a| format!("server {a};"))
            .collect::<Vec<_>>()
            .join("\n        ");
        let upstream = env
            .app_url
            .strip_prefix("http://")
            .ok_or_else(|| err("E2E_APP_URL is not http://"))?;
        let one_server = "server ${PORTCULLIS_ADDR};";
        if !template.contains(one_server) {
            return Err(err(format!(
                "deploy/nginx/nginx.conf no longer has `{one_server}`"
            )));
        }
        let conf = template
            .replace(one_server, &servers)
            .replace("${NGINX_PREFIX}", &prefix)
            .replace("${BIND_ADDR}", "127.0.0.1")
            .replace("${PROXY_PORT}", &port.to_string())
            .replace("${APP_HOST}", "replicas.localhost")
            .replace("${APP_UPSTREAM}", upstream);
        let path = format!("{prefix}/nginx.conf");
        std::fs::write(&path, conf)?;
        let child = Command::new("nginx")
            .args([
                "-p",
                &prefix,
                "-c",
                &path,
                "-e",
                &format!("{prefix}/error.log"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| err(format!("cannot start nginx: {e}")))?;
        let me = Self {
            port,
            prefix,
            child,
        };
        for _ in 0..80 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(me);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(err(format!(
            "nginx did not listen; see {}/error.log",
            me.prefix
        )))
    }
}

impl Drop for Nginx {
    /// SIGTERM, so the master stops its worker (SIGKILL would leave the worker running).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Requests this replica let through (every endpoint).
async fn allowed(p: &Instance) -> R<f64> {
    let text = metrics_text(&p.url).await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("portcullis_requests_total{") && l.contains("decision=\"allowed\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// SIGTERM to `replica` under load, then the same replica started again on its port.
async fn restart(env: &Env, replica: &mut Instance, settings: &Settings<'_>) -> R {
    let (took, clean) = replica.terminate(Duration::from_secs(15))?;
    eprintln!(
        "replica shutdown: {} exited {} after {took:.2?}",
        replica.name,
        if clean { "cleanly" } else { "with an error" }
    );
    assert!(
        clean,
        "{} exits 0 on SIGTERM; log:\n{}",
        replica.name,
        replica.log_tail()
    );
    assert!(
        took < Duration::from_secs(11),
        "within shutdown_grace: {took:?}"
    );
    *replica = Instance::start(env, &replica.name.clone(), settings).await?;
    Ok(())
}

#[tokio::test]
async fn faults_rolling_restart_behind_nginx_fails_no_request() -> R {
    let env = Env::load()?;
    let secret = cookie_secret()?;
    let (port_a, port_b) = (free_port()?, free_port()?);
    let settings_a = Settings {
        cookie_secret: Some(&secret),
        port: Some(port_a),
        refresh: Some("1h"),
        ..Settings::default()
    };
    let settings_b = Settings {
        port: Some(port_b),
        ..settings_a.clone()
    };
    let mut a = Instance::start(&env, "portcullis-replica-a", &settings_a).await?;
    let mut b = Instance::start(&env, "portcullis-replica-b", &settings_b).await?;
    let nginx = Nginx::start(&env, &[&a.addr, &b.addr]).await?;
    let front = format!("http://127.0.0.1:{}", nginx.port);

    let alice = a.browser()?;
    a.login(&alice, &env, ALICE).await?;
    let cookie = cookie_header(&alice, &a.url)?;
    let bearer = format!("Bearer {}", keycloak::service_account_token(&env).await?);
    let app = |name, header: (&str, &str)| Target {
        name,
        url: format!("{front}/api/rolling"),
        headers: vec![
            ("accept".into(), "application/json".into()),
            (header.0.into(), header.1.into()),
        ],
        ok: &[200],
    };
    let targets = [
        app("session via nginx", ("cookie", &cookie)),
        app("bearer via nginx", ("authorization", &bearer)),
    ];

    let load = Load::start(&targets, 4, Duration::from_millis(2))?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    restart(&env, &mut a, &settings_a).await?;
    // Longer than nginx's fail_timeout (10 s), so it sends to the new `a` again.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let served_by_new_a = allowed(&a).await?;
    restart(&env, &mut b, &settings_b).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reports = load.stop().await?;
    for r in &reports {
        eprintln!("rolling restart: {r}");
    }
    for r in &reports {
        assert_eq!(
            r.failures, 0,
            "no request fails during a rolling restart: {r}"
        );
        assert!(r.requests > 100, "the load ran: {r}");
    }
    assert!(
        served_by_new_a > 0.0,
        "the restarted replica took traffic before the other was restarted"
    );
    Ok(())
}
