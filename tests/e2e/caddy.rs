//! A Caddy of a test's own: the shipped `deploy/caddy/Caddyfile` (`E2E_CADDYFILE`), unchanged,
//! with only its environment placeholders set, in front of a Portcullis of the test's own
//! ([`crate::instance::Instance`]) and the run's echo app. Several of them with different
//! `APP_HOST`s put several apps in front of one Portcullis. The process is killed when the
//! value is dropped; its log is `$E2E_RUN_DIR/NAME.log`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::env::Env;
use crate::support::{R, err};

pub struct Caddy {
    pub name: String,
    /// `http://HOST:PORT`, the app's public URL.
    pub url: String,
    pub log: String,
    child: Child,
}

/// What differs between the tests' Caddy instances.
#[derive(Debug, Clone)]
pub struct Site<'a> {
    /// `APP_HOST`, e.g. `a.apps.localhost`.
    pub host: &'a str,
    /// `PROXY_PORT` (chosen by the test, so a Portcullis can name the URL before it starts).
    pub port: u16,
    /// `PORTCULLIS_ADDR`, `127.0.0.1:PORT` of the Portcullis behind it.
    pub portcullis: &'a str,
    /// `PORTCULLIS_AUTH_QUERY`: per-app constraints for the check, e.g.
    /// `allowed_groups=admins` (no `?`), or empty.
    pub auth_query: &'a str,
}

impl Caddy {
    /// Starts it and waits until it answers HTTP.
    pub async fn start(env: &Env, name: &str, site: &Site<'_>) -> R<Self> {
        let caddyfile = std::env::var("E2E_CADDYFILE").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/caddy/Caddyfile").to_owned()
        });
        let upstream = env
            .app_url
            .strip_prefix("http://")
            .ok_or_else(|| err(format!("E2E_APP_URL {} is not http://", env.app_url)))?;
        let home = format!("{}/{name}", env.run_dir);
        for dir in ["data", "config"] {
            std::fs::create_dir_all(format!("{home}/{dir}"))?;
        }
        let log = format!("{}/{name}.log", env.run_dir);
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new("caddy");
        // The harness's own PORTCULLIS_* variables must not fill the Caddyfile's placeholders.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PORTCULLIS_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(["run", "--adapter", "caddyfile", "--config", &caddyfile])
            .env("HOME", &home)
            .env("XDG_DATA_HOME", format!("{home}/data"))
            .env("XDG_CONFIG_HOME", format!("{home}/config"))
            .env("APP_HOST", site.host)
            .env("PROXY_PORT", site.port.to_string())
            .env("BIND_ADDR", "127.0.0.1")
            .env("PORTCULLIS_ADDR", site.portcullis)
            .env("APP_UPSTREAM", upstream)
            .env("PORTCULLIS_AUTH_QUERY", site.auth_query)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = cmd
            .spawn()
            .map_err(|e| err(format!("cannot start caddy: {e}")))?;
        let mut me = Self {
            name: name.to_owned(),
            url: format!("http://{}:{}", site.host, site.port),
            log,
            child,
        };
        me.wait_listening(site.port).await?;
        Ok(me)
    }

    async fn wait_listening(&mut self, port: u16) -> R {
        let http = reqwest::Client::new();
        for _ in 0..80 {
            if let Some(status) = self.child.try_wait()? {
                return Err(err(format!(
                    "{} exited ({status}); log:\n{}",
                    self.name,
                    self.log_tail()
                )));
            }
            // Any answer means it listens (the site itself needs a session).
            if http
                .get(format!("http://127.0.0.1:{port}/"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(err(format!(
            "{} not listening after 20 s; log:\n{}",
            self.name,
            self.log_tail()
        )))
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
