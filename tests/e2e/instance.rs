//! A Portcullis of a test's own: the binary `scripts/e2e` built (`E2E_PORTCULLIS_BIN`), run
//! with a config the test writes (other `[authz]` rules, a short refresh interval), against
//! the run's Keycloak. Usually no reverse proxy in front: tests call `/oauth2/forward-auth`
//! directly with `X-Forwarded-*` headers, as Traefik does, and browsers sign in at its own
//! `/oauth2/start` and `/oauth2/callback`.
//!
//! Its public URL is `http://127.0.0.1:PORT`, which the realm's `portcullis` client accepts
//! as a redirect URI (`http://127.0.0.1:*`), unless the test puts it behind a Caddy of its
//! own ([`crate::caddy::Caddy`], the shipped Caddyfile) and names that as the public URL.
//! Keycloak's back-channel logout URL points at Portcullis A, never at these. The process is
//! killed when the value is dropped; its log is `$E2E_RUN_DIR/NAME.log`.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;

use crate::support::browser_like::{BrowserLike, Response};
use crate::support::env::Env;
use crate::support::{R, err, html, keycloak, snippet};

pub struct Instance {
    pub name: String,
    /// `http://127.0.0.1:PORT`: where it listens (its public URL unless
    /// [`Settings::public_url`] says otherwise).
    pub url: String,
    /// `127.0.0.1:PORT`, for a proxy in front of it.
    pub addr: String,
    pub log: String,
    child: Child,
}

/// Settings that differ between the tests' instances; everything else is the harness's
/// contract (see `portcullis_write_config` in scripts/lib/components.sh).
#[derive(Debug, Clone, Default)]
pub struct Settings<'a> {
    pub allowed_groups: &'a [&'a str],
    pub allowed_roles: &'a [&'a str],
    /// `session.refresh` ("30s" when `None`, as on the harness's instances).
    pub refresh: Option<&'a str>,
    /// `public_url` (its own `http://127.0.0.1:PORT` when `None`).
    pub public_url: Option<&'a str>,
    /// `session.cookie_domain` (none: a host cookie).
    pub cookie_domain: Option<&'a str>,
    /// `redirect.allowed_domains` (`["127.0.0.1"]` when empty).
    pub allowed_domains: &'a [&'a str],
    /// Top-level keys, e.g. `trusted_proxies = [...]`.
    pub top_toml: &'a str,
    /// Added to `[session]`, e.g. `store = "redis"`.
    pub session_toml: &'a str,
    /// `session.cookie_secret` (a fresh random one when `None`); replicas share one.
    pub cookie_secret: Option<&'a str>,
    /// The port to listen on (a free one when `None`); a restarted replica keeps its own.
    pub port: Option<u16>,
    /// Its file-descriptor limit (`prlimit --nofile`), instead of the inherited one.
    pub fd_limit: Option<u32>,
    /// Appended at the end, e.g. `[[rules]]` tables.
    pub extra_toml: &'a str,
}

fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

pub fn free_port() -> R<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

pub fn cookie_secret() -> R<String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(b))
}

impl Instance {
    /// Starts it and waits until `/ready` answers 200 (discovery and keys loaded).
    pub async fn start(env: &Env, name: &str, s: &Settings<'_>) -> R<Self> {
        let port = match s.port {
            Some(p) => p,
            None => free_port()?,
        };
        let url = format!("http://127.0.0.1:{port}");
        let cookie_domain = s
            .cookie_domain
            .map(|d| format!("cookie_domain = {d:?}\n"))
            .unwrap_or_default();
        let allowed_domains = if s.allowed_domains.is_empty() {
            &["127.0.0.1"][..]
        } else {
            s.allowed_domains
        };
        let config = format!(
            r#"listen = "127.0.0.1:{port}"
public_url = "{public_url}"
{top}

[oidc]
issuer_url = "{issuer}"
client_id = "portcullis"
client_secret = "portcullis-demo-secret"

[session]
cookie_secret = "{secret}"
cookie_secure = false
refresh = "{refresh}"
{cookie_domain}{session}
[redirect]
allowed_domains = {allowed_domains}

[authz]
allowed_groups = {groups}
allowed_roles = {roles}

[bearer]
enabled = true
audiences = ["portcullis"]
{extra}
"#,
            public_url = s.public_url.unwrap_or(&url),
            top = s.top_toml,
            issuer = env.keycloak_issuer,
            secret = match s.cookie_secret {
                Some(secret) => secret.to_owned(),
                None => cookie_secret()?,
            },
            session = s.session_toml,
            refresh = s.refresh.unwrap_or("30s"),
            allowed_domains = toml_list(allowed_domains),
            groups = toml_list(s.allowed_groups),
            roles = toml_list(s.allowed_roles),
            extra = s.extra_toml,
        );
        let config_path = format!("{}/{name}.toml", env.run_dir);
        std::fs::write(&config_path, config)?;
        let args = ["--config".to_owned(), config_path];
        Self::launch(env, name, port, &args, s.fd_limit).await
    }

    /// Started with a command line of its own (an oauth2-proxy one, say) instead of a native
    /// config file, listening on `port`; ready once `/ready` answers 200.
    pub async fn start_with_args(env: &Env, name: &str, port: u16, args: &[String]) -> R<Self> {
        Self::launch(env, name, port, args, None).await
    }

    async fn launch(
        env: &Env,
        name: &str,
        port: u16,
        args: &[String],
        fd_limit: Option<u32>,
    ) -> R<Self> {
        let bin = std::env::var("E2E_PORTCULLIS_BIN").map_err(|_| {
            err(
                "E2E_PORTCULLIS_BIN is not set: run the suite through scripts/e2e (it exports \
                 the binary it built)",
            )
        })?;
        let url = format!("http://127.0.0.1:{port}");
        let log = format!("{}/{name}.log", env.run_dir);
        // Appended to: a replica restarted under the same name keeps its earlier log.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = match fd_limit {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .env("RUST_LOG", "info,portcullis=debug");
        // Portcullis treats every PORTCULLIS_* variable as configuration and refuses unknown
        // ones; the harness's own (PORTCULLIS_BIN, ...) must not reach it.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PORTCULLIS_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| err(format!("cannot start {bin}: {e}")))?;
        let mut me = Self {
            name: name.to_owned(),
            url,
            addr: format!("127.0.0.1:{port}"),
            log,
            child,
        };
        me.wait_ready().await?;
        Ok(me)
    }

    async fn wait_ready(&mut self) -> R {
        let http = reqwest::Client::new();
        for _ in 0..120 {
            if let Some(status) = self.child.try_wait()? {
                return Err(err(format!(
                    "{} exited ({status}) before it was ready; log:\n{}",
                    self.name,
                    self.log_tail()
                )));
            }
            if let Ok(r) = http
                .get(format!("{}/ready", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(err(format!(
            "{} not ready after 30 s; log:\n{}",
            self.name,
            self.log_tail()
        )))
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> R<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, as Kubernetes sends it, then waits for it to exit (at most `within`).
    /// Returns how long it took and whether it exited with status 0.
    pub fn terminate(&mut self, within: Duration) -> R<(Duration, bool)> {
        let started = std::time::Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            return Err(err(format!("kill -TERM {} failed", self.child.id())));
        }
        while started.elapsed() < within {
            if let Some(exit) = self.child.try_wait()? {
                return Ok((started.elapsed(), exit.success()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(err(format!(
            "{} still running {within:?} after SIGTERM; log:\n{}",
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

    /// A client that reaches it (and Keycloak, also on 127.0.0.1).
    pub fn browser(&self) -> R<BrowserLike> {
        BrowserLike::new(&[])
    }

    /// Signs `user` in through its `/oauth2/start` at the HTTP level (Keycloak's real login
    /// form). Afterwards the browser holds the session cookie. Returns the last answer (the
    /// return address `/signed-in`, which this app-less instance answers with 404).
    pub async fn login(&self, b: &BrowserLike, env: &Env, user: (&str, &str)) -> R<Response> {
        let start = format!("{}/oauth2/start?rd=%2Fsigned-in", self.url);
        let last = keycloak::login_via(b, env, &start, user).await?;
        if last.url.as_str() != format!("{}/signed-in", self.url) {
            return Err(err(format!(
                "{}: login of {} ended at {} instead of the return address\n  trail: {}\n  log:\n{}",
                self.name,
                user.0,
                last.describe(),
                b.trail(),
                self.log_tail()
            )));
        }
        Ok(last)
    }

    /// Starts a login and submits Keycloak's form for `user`, stopping at Keycloak's redirect
    /// back to the callback (with a fresh authorization code). Returns the callback URL.
    pub async fn login_up_to_callback(&self, b: &BrowserLike, user: (&str, &str)) -> R<String> {
        let page = b
            .navigate(&format!("{}/oauth2/start?rd=%2Fsigned-in", self.url))
            .await?;
        if !html::is_keycloak_login(&page.body) {
            return Err(err(format!("no Keycloak login form: {}", page.describe())));
        }
        let action = page
            .url
            .join(&html::form_action(&page.body, "id=\"kc-form-login\"")?)?;
        let posted = b
            .post_form(
                action.as_str(),
                &[
                    ("username", user.0),
                    ("password", user.1),
                    ("credentialId", ""),
                ],
            )
            .await?;
        let back = posted
            .location()
            .filter(|l| {
                l.as_str()
                    .starts_with(&format!("{}/oauth2/callback", self.url))
            })
            .ok_or_else(|| {
                err(format!(
                    "Keycloak did not send the browser back to the callback: {}\n  trail: {}",
                    posted.describe(),
                    b.trail()
                ))
            })?;
        if !back.query_pairs().any(|(k, _)| k == "code") {
            return Err(err(format!("callback without code: {back}")));
        }
        Ok(back.to_string())
    }

    /// `GET /oauth2/forward-auth` as Traefik sends it for a request to
    /// `http://app.localhost/{uri}`, with the browser's cookies and the given `Accept`.
    pub async fn forward_auth(&self, b: &BrowserLike, uri: &str, accept: &str) -> R<Response> {
        b.get_with(
            &format!("{}/oauth2/forward-auth", self.url),
            &[
                ("accept", accept),
                ("x-forwarded-method", "GET"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "app.localhost"),
                ("x-forwarded-uri", uri),
            ],
        )
        .await
    }

    /// The value of one sample of `/metrics` (exact series text, labels included), 0 if
    /// absent.
    pub async fn metric(&self, series: &str) -> R<f64> {
        metric(&self.url, series).await
    }
}

/// `BASE/metrics`, the whole text.
pub async fn metrics_text(base: &str) -> R<String> {
    Ok(reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?)
}

/// One sample from `BASE/metrics`, e.g.
/// `portcullis_idp_requests_total{kind="refresh",outcome="ok"}`; 0 if absent.
pub async fn metric(base: &str, series: &str) -> R<f64> {
    let text = metrics_text(base).await?;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(series)
            && let Some(v) = rest.strip_prefix(' ')
        {
            return v
                .trim()
                .parse()
                .map_err(|_| err(format!("metric {series}: bad value in {}", snippet(line))));
        }
    }
    Ok(0.0)
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
