//! The harness: a test IdP, a Portcullis server on a free port with a manual clock, and an
//! HTTP client that never follows redirects (every hop is asserted).

use portcullis::app::App;
use portcullis::clock::{Clock, ManualClock};
use portcullis::config::Config;
use portcullis_test_idp::{IdpOptions, TestIdp};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;

pub const PUBLIC_URL: &str = "https://auth.example.com";
pub const COOKIE_SECRET: &str = "q2J1dW1seS1ub3QtYS1yZWFsLXNlY3JldC0xMjM0NTY=";
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

pub struct Harness {
    pub idp: TestIdp,
    pub app: Arc<App>,
    pub base: String,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub fn base_toml(issuer: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
public_url = "{PUBLIC_URL}"
[oidc]
issuer_url = "{issuer}"
client_id = "portcullis"
client_secret = "test-secret"
timeout = "2s"
[session]
cookie_secret = "{COOKIE_SECRET}"
cookie_domain = "example.com"
expire = "12h"
refresh = "5m"
[redirect]
allowed_domains = [".example.com"]
[bearer]
audiences = ["portcullis"]
jwks_refetch_interval = "2s"
"#
    )
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(|t| t).await
    }

    /// Starts with the base config transformed by `edit` (append sections, replace lines).
    pub async fn start_with(edit: impl FnOnce(String) -> String) -> Harness {
        let idp = TestIdp::start(IdpOptions::default()).await;
        Self::start_for(idp, edit, true).await
    }

    pub async fn start_for(
        idp: TestIdp,
        edit: impl FnOnce(String) -> String,
        wait_ready: bool,
    ) -> Harness {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config =
            Config::from_toml(&edit(base_toml(&idp.issuer())), &[]).expect("test config is valid");
        let clock = ManualClock::starting_now();
        idp.controls().set_fixed_now(Some(clock.now()));
        let app = App::new(config, Arc::new(clock.clone())).expect("app builds");
        app.spawn_background();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(portcullis::http::server::serve(
            portcullis::app::CurrentApp::new(app.clone()),
            listener,
            async {
                let _ = rx.await;
            },
            std::time::Duration::from_secs(1),
        ));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let h = Harness {
            idp,
            app,
            base,
            clock,
            client,
            _shutdown: tx,
        };
        if wait_ready {
            h.wait_ready().await;
        }
        h
    }

    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if self.app.oidc().is_ready() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("portcullis never became ready");
    }

    /// Moves our clock and the IdP's together.
    pub fn advance(&self, secs: u64) {
        self.clock.advance(secs);
        self.idp.controls().set_fixed_now(Some(self.clock.now()));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .headers(header_map(headers))
            .send()
            .await
            .unwrap()
    }

    /// What Traefik sends for a browser navigating to https://app.example.com{uri}.
    pub async fn forward_auth(&self, uri: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut h = vec![
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", uri),
            ("x-forwarded-for", "203.0.113.7"),
        ];
        h.extend_from_slice(extra);
        self.get("/oauth2/forward-auth", &h).await
    }

    /// Runs the whole browser login for `uri` and returns (session cookie header, final redirect).
    pub async fn login(&self, uri: &str) -> (String, String) {
        let start = self.forward_auth(uri, &[("accept", BROWSER_ACCEPT)]).await;
        assert_eq!(start.status(), 302);
        let state_cookie = cookie_pairs(&start);
        let authorize = location(&start);
        let callback = self.follow_idp(&authorize).await;
        let resp = self.get(&callback, &[("cookie", &state_cookie)]).await;
        assert_eq!(
            resp.status(),
            302,
            "callback failed: {:?}",
            resp.text().await
        );
        let final_location = location(&resp);
        let session = session_cookie(&resp);
        assert!(!session.is_empty(), "no session cookie set");
        (session, final_location)
    }

    /// GETs the IdP authorize URL; returns the callback path+query it redirects to.
    pub async fn follow_idp(&self, authorize: &str) -> String {
        let resp = self.client.get(authorize).send().await.unwrap();
        assert_eq!(resp.status(), 302, "IdP did not redirect");
        let to = location(&resp);
        let rest = to
            .strip_prefix(PUBLIC_URL)
            .expect("IdP redirects to our public URL");
        rest.to_string()
    }
}

pub fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            // from_bytes: lets tests send UTF-8 (obs-text), as some clients do.
            HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    map
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .expect("Location header")
        .to_str()
        .unwrap()
        .to_string()
}

pub fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// Whether `text` carries a readable JWT: a base64url `{"…` header, a dot, and a `{"…`
/// payload. A bare "eyJ" is not enough: three characters turn up by chance in about one
/// random ciphertext of a thousand characters in 260.
pub fn reveals_a_jwt(text: &str) -> bool {
    let b64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices("eyJ").any(|(at, _)| {
        let rest = &text[at..];
        let header_end = rest.find(|c: char| !b64url(c)).unwrap_or(rest.len());
        rest[header_end..].starts_with(".eyJ")
    })
}

/// `name=value` pairs of every non-deleting Set-Cookie, joined like a Cookie header.
pub fn cookie_pairs(r: &reqwest::Response) -> String {
    set_cookies(r)
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The session cookie(s) of a response, as a Cookie header.
pub fn session_cookie(r: &reqwest::Response) -> String {
    set_cookies(r)
        .iter()
        .filter(|c| {
            c.starts_with("_portcullis=")
                || c.starts_with("_portcullis_0=")
                || c.starts_with("_portcullis_1=")
        })
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

// The binary, for tests of what it writes and serves as a process.

/// The binary, without a `PORTCULLIS_CONFIG` from the environment the tests run in.
pub fn portcullis() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env_remove("PORTCULLIS_CONFIG");
    cmd
}

/// `text` in a file `name` of this test run's directory.
pub fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `/ready` at `base` answers 200 within 5 s.
pub async fn becomes_ready(client: &reqwest::Client, base: &str) -> bool {
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

/// The client the proxy saw: Traefik (127.0.0.1, trusted) forwards it in `X-Forwarded-For`.
pub const CLIENT: &str = "198.51.100.7";

pub struct Running {
    child: std::process::Child,
    pub base: String,
    pub metrics: String,
    pub client: reqwest::Client,
    pub idp: TestIdp,
}

impl Running {
    /// A decision for `https://app.example.com{uri}`, as Traefik asks for it.
    pub async fn forward_auth(&self, uri: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .client
            .get(format!("{}/oauth2/forward-auth", self.base))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example.com")
            .header("x-forwarded-uri", uri)
            .header("x-forwarded-for", format!("203.0.113.66, {CLIENT}"));
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// `path` on Portcullis' own host, from the client.
    pub async fn get(&self, path: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .header("host", "auth.example.com")
            .header("x-forwarded-for", CLIENT);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// A whole browser login for `uri`: (session cookie, the callback's code).
    pub async fn login(&self, uri: &str) -> (String, String) {
        let start = self.forward_auth(uri, &[("accept", BROWSER_ACCEPT)]).await;
        assert_eq!(start.status(), 302);
        let state = cookie_pairs(&start);
        let at_idp = self.client.get(location(&start)).send().await.unwrap();
        let callback = location(&at_idp);
        let callback = callback.strip_prefix(PUBLIC_URL).unwrap().to_string();
        let code = url::Url::parse(&format!("http://x{callback}"))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let done = self.get(&callback, &[("cookie", &state)]).await;
        assert_eq!(done.status(), 302, "the callback");
        (session_cookie(&done), code)
    }

    /// Two refusals by the access policy: bob's bearer token outside the default rule's
    /// group, and `session` on the path the `closed` rule denies. Returns bob's token.
    pub async fn refused_by_policy(&self, session: &str) -> String {
        let bob = self.idp.mint_access_token(
            &portcullis_test_idp::TestUser::bob(),
            serde_json::json!({}),
            "rsa-1",
        );
        let r = self
            .forward_auth("/api", &[("authorization", &format!("Bearer {bob}"))])
            .await;
        assert_eq!(r.status(), 403);
        let r = self.forward_auth("/closed/x", &[("cookie", session)]).await;
        assert_eq!(r.status(), 403);
        bob
    }

    /// Stops the process and returns every line it wrote to stderr.
    pub fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let mut logs = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut logs).unwrap();
        logs
    }
}

/// The binary with JSON logs on a free port (and a metrics port), trusting 127.0.0.1 as its
/// proxy, sessions refreshed after 1 s, `admins` only by default and `/closed/**` denied;
/// `edit` changes its configuration (adds sections, replaces lines).
pub async fn start_binary(idp: TestIdp, edit: impl FnOnce(String) -> String) -> Running {
    let (port, metrics_port) = (free_port(), free_port());
    let toml = base_toml(&idp.issuer())
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!(
                "listen = \"127.0.0.1:{port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\
                 log_format = \"json\"\ntrusted_proxies = [\"127.0.0.1/32\"]"
            ),
        )
        .replace("refresh = \"5m\"", "refresh = \"1s\"")
        + "[authz]\nallowed_groups = [\"admins\"]\n\
           [[rules]]\nname = \"closed\"\npaths = [\"/closed/**\"]\naction = \"deny\"\n";
    let toml = edit(toml);
    let file = temp_file(&format!("binary-{port}.toml"), &toml);
    let child = portcullis()
        .arg("--config")
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let running = Running {
        child,
        base: format!("http://127.0.0.1:{port}"),
        metrics: format!("http://127.0.0.1:{metrics_port}"),
        client,
        idp,
    };
    assert!(
        becomes_ready(&running.client, &running.base).await,
        "the binary became ready"
    );
    running
}
