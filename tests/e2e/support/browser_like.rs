//! A tiny scripted "browser" over HTTP: its own cookie jar, redirects
//! followed one hop at a time (so every hop can be inspected), and
//! `*.localhost` names resolved to 127.0.0.1 as browsers do.
//!
//! The jar sends `Secure` cookies over plain http to loopback hosts, like
//! Chromium and Firefox do for these "potentially trustworthy" origins:
//! Keycloak marks its cookies `Secure; SameSite=None` even over http.

use std::net::SocketAddr;
use std::sync::Mutex;

use reqwest::header::{self, HeaderMap, HeaderValue};
use url::Url;

use super::{R, err, snippet};

const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) portcullis-e2e";
const ACCEPT_HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[derive(Debug, Clone)]
struct StoredCookie {
    name: String,
    value: String,
    /// Host (host-only cookie) or domain (Domain attribute, no leading dot).
    domain: String,
    host_only: bool,
    path: String,
}

impl StoredCookie {
    fn matches(&self, url: &Url) -> bool {
        let host = url.host_str().unwrap_or_default();
        let domain_ok = if self.host_only {
            host.eq_ignore_ascii_case(&self.domain)
        } else {
            host.eq_ignore_ascii_case(&self.domain)
                || host
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", self.domain.to_ascii_lowercase()))
        };
        let path = url.path();
        let path_ok = path == self.path
            || (path.starts_with(&self.path)
                && (self.path.ends_with('/') || path[self.path.len()..].starts_with('/')));
        domain_ok && path_ok
    }
}

/// One HTTP answer, body read.
#[derive(Debug)]
pub struct Response {
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    /// The resolved `Location` of a redirect.
    pub fn location(&self) -> Option<Url> {
        let loc = self.headers.get(header::LOCATION)?.to_str().ok()?;
        self.url.join(loc).ok()
    }

    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Short description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {} (location: {:?}) body: {}",
            self.status,
            self.url,
            self.header("location"),
            snippet(&self.body)
        )
    }
}

/// A cookie-keeping HTTP client that does not follow redirects by itself.
pub struct BrowserLike {
    http: reqwest::Client,
    jar: Mutex<Vec<StoredCookie>>,
    /// Every URL requested, in order (for failure messages).
    pub history: Mutex<Vec<String>>,
}

impl BrowserLike {
    /// `hosts`: the `*.localhost` names this client must reach.
    pub fn new(hosts: &[&str]) -> R<Self> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(USER_AGENT);
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        for h in hosts {
            builder = builder.resolve(h, loopback);
        }
        Ok(Self {
            http: builder.build()?,
            jar: Mutex::new(Vec::new()),
            history: Mutex::new(Vec::new()),
        })
    }

    /// A client for the environment's two app hosts.
    pub fn for_env(env: &super::env::Env) -> R<Self> {
        let mut hosts = Vec::new();
        for (_, u) in env.front_ends() {
            hosts.push(Url::parse(u)?.host_str().unwrap_or_default().to_owned());
        }
        let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        Self::new(&refs)
    }

    fn cookie_header(&self, url: &Url) -> R<Option<HeaderValue>> {
        let jar = self.jar.lock().map_err(|_| err("cookie jar poisoned"))?;
        let mut matching: Vec<&StoredCookie> = jar.iter().filter(|c| c.matches(url)).collect();
        // Longer paths first, as browsers order them.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        if matching.is_empty() {
            return Ok(None);
        }
        let joined = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ");
        Ok(Some(HeaderValue::from_str(&joined)?))
    }

    fn store_cookies(&self, url: &Url, headers: &HeaderMap) -> R {
        let mut jar = self.jar.lock().map_err(|_| err("cookie jar poisoned"))?;
        for raw in headers.get_all(header::SET_COOKIE) {
            let Ok(raw) = raw.to_str() else { continue };
            let Ok(c) = cookie::Cookie::parse(raw.to_owned()) else {
                continue;
            };
            let (domain, host_only) = match c.domain() {
                Some(d) => (d.trim_start_matches('.').to_owned(), false),
                None => (url.host_str().unwrap_or_default().to_owned(), true),
            };
            let path = match c.path() {
                Some(p) if p.starts_with('/') => p.to_owned(),
                _ => {
                    let p = url.path();
                    match p.rfind('/') {
                        Some(0) | None => "/".to_owned(),
                        Some(i) => p[..i].to_owned(),
                    }
                }
            };
            let expired = c.max_age().is_some_and(|d| d.whole_seconds() <= 0)
                || c.expires_datetime()
                    .is_some_and(|t| t.unix_timestamp() < now_unix());
            jar.retain(|o| !(o.name == c.name() && o.domain == domain && o.path == path));
            if !expired {
                jar.push(StoredCookie {
                    name: c.name().to_owned(),
                    value: c.value().to_owned(),
                    domain,
                    host_only,
                    path,
                });
            }
        }
        Ok(())
    }

    /// Names of the cookies that would be sent to `url`.
    /// The `(name, value)` of every cookie the jar would send to `url`.
    pub fn cookies_for(&self, url: &str) -> R<Vec<(String, String)>> {
        let url = Url::parse(url)?;
        let jar = self.jar.lock().map_err(|_| err("cookie jar poisoned"))?;
        Ok(jar
            .iter()
            .filter(|c| c.matches(&url))
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect())
    }

    /// Sends one request (no redirect following) with browser-like headers.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
        extra: &[(&str, &str)],
    ) -> R<Response> {
        let url = Url::parse(url)?;
        if let Ok(mut h) = self.history.lock() {
            h.push(format!("{method} {url}"));
        }
        // Browser defaults first; `extra` replaces them (e.g. an API client's
        // `Accept: application/json`) rather than adding a second value.
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT_HTML));
        if let Some(c) = self.cookie_header(&url)? {
            headers.insert(header::COOKIE, c);
        }
        for (k, v) in extra {
            headers.insert(
                header::HeaderName::from_bytes(k.as_bytes())?,
                HeaderValue::from_str(v)?,
            );
        }
        let mut req = self.http.request(method, url.clone()).headers(headers);
        if let Some(form) = form {
            req = req.form(form);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.store_cookies(&url, &headers)?;
        let body = resp.text().await?;
        Ok(Response {
            url,
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, url: &str) -> R<Response> {
        self.send(reqwest::Method::GET, url, None, &[]).await
    }

    pub async fn get_with(&self, url: &str, extra: &[(&str, &str)]) -> R<Response> {
        self.send(reqwest::Method::GET, url, None, extra).await
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> R<Response> {
        self.send(reqwest::Method::POST, url, Some(form), &[]).await
    }

    /// Follows redirects from `resp` (with GET, as browsers do after a
    /// form POST) until a non-redirect answer; at most 15 hops.
    pub async fn follow(&self, mut resp: Response) -> R<Response> {
        for _ in 0..15 {
            if !resp.is_redirect() {
                return Ok(resp);
            }
            let next = resp
                .location()
                .ok_or_else(|| err(format!("redirect without Location: {}", resp.describe())))?;
            resp = self.get(next.as_str()).await?;
        }
        Err(err(format!(
            "too many redirects; history: {:?}",
            self.history.lock().map(|h| h.clone())
        )))
    }

    /// GET `url` and follow redirects.
    pub async fn navigate(&self, url: &str) -> R<Response> {
        let first = self.get(url).await?;
        self.follow(first).await
    }

    /// Requested URLs so far, for failure messages.
    pub fn trail(&self) -> String {
        self.history
            .lock()
            .map(|h| h.join("\n  -> "))
            .unwrap_or_default()
    }
}

#[allow(clippy::disallowed_methods)] // the test harness has no injected clock
fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The answer to a login callback while the IdP cannot be reached: 502 or 503, an HTML page
/// that says the identity provider is the problem.
pub fn assert_idp_error_page(cb: &Response) {
    assert!(
        cb.status == 502 || cb.status == 503,
        "callback while Keycloak is down: {}",
        cb.describe()
    );
    assert!(
        cb.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{}",
        cb.describe()
    );
    assert!(
        cb.body.contains("Sign-in failed") && cb.body.contains("identity provider"),
        "the page does not say the identity provider is the problem: {}",
        cb.describe()
    );
}
