//! Where a browser may be sent after login or logout. An open redirect turns an SSO proxy into
//! a phishing tool, so anything doubtful falls back to `/` (RFC 9700 §4.11; OWASP "Unvalidated
//! Redirects"). Targets are either a same-site path (`/app?x=1`) or an absolute http(s) URL
//! whose host is in `redirect.allowed_domains`.

use url::{Host, Url};

/// `allowed_domains` entries: `app.example.com` (that host), `.example.com` (example.com and
/// all its subdomains); either may end in `:PORT` to allow only that port.
#[derive(Debug, Clone, Default)]
pub struct RedirectPolicy {
    rules: Vec<DomainRule>,
}

#[derive(Debug, Clone)]
struct DomainRule {
    /// Lowercase host without the leading dot.
    host: String,
    subdomains: bool,
    port: Option<u16>,
}

/// Where to go when a target is refused.
pub const FALLBACK: &str = "/";

impl RedirectPolicy {
    pub fn new(domains: Vec<String>) -> Result<Self, String> {
        let mut rules = Vec::new();
        for d in domains {
            let d = d.trim().to_ascii_lowercase();
            let (hostpart, port) = match d.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (
                    h.to_string(),
                    Some(p.parse::<u16>().map_err(|_| format!("{d:?}: bad port"))?),
                ),
                _ => (d.clone(), None),
            };
            let subdomains = hostpart.starts_with('.');
            let host = hostpart.trim_start_matches('.').to_string();
            // ".com" would allow every .com host: a bare label is only accepted as an exact
            // host (or "localhost").
            if subdomains && !host.contains('.') && host != "localhost" {
                return Err(format!("{d:?} covers a whole top-level domain"));
            }
            // ".com" would allow every .com host: a bare label is only accepted as an exact
            // host (or ".localhost" for local demos).
            if subdomains && !host.contains('.') && host != "localhost" {
                return Err(format!("{d:?} covers a whole top-level domain"));
            }
            if host.is_empty() || host.contains(['/', '@', '\\', '*', ' ']) {
                return Err(format!(
                    "{d:?} is not a domain (use app.example.com or .example.com)"
                ));
            }
            rules.push(DomainRule {
                host,
                subdomains,
                port,
            });
        }
        Ok(Self { rules })
    }

    /// Is this host (lowercase, as parsed from a URL) an allowed redirect host?
    pub fn host_allowed(&self, host: &str, port: Option<u16>) -> bool {
        self.rules.iter().any(|r| {
            let host_ok = host == r.host
                || (r.subdomains
                    && host.len() > r.host.len()
                    && host.ends_with(&r.host)
                    && host.as_bytes()[host.len() - r.host.len() - 1] == b'.');
            host_ok && r.port.is_none_or(|p| Some(p) == port)
        })
    }

    /// Returns the target to redirect to if it is safe, else `None`.
    pub fn check(&self, target: &str) -> Option<String> {
        if target.is_empty()
            // Longer targets would not fit the login-state cookie (and browsers drop cookies
            // over 4 KB): such a deep link lands on `/` rather than failing the login.
            || target.len() > 2048
            || target
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return None;
        }
        if let Some(rest) = target.strip_prefix('/') {
            // "//evil.com" and "/\evil.com" are protocol-relative to browsers.
            if rest.starts_with('/') {
                return None;
            }
            return Some(target.to_string());
        }
        // Compared as bytes: a non-ASCII host right after "http://" puts no character
        // boundary at byte 8.
        let scheme = |prefix: &str| {
            target
                .as_bytes()
                .get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
        };
        if !(scheme("https://") || scheme("http://")) {
            return None;
        }
        let url = Url::parse(target).ok()?;
        if !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = match url.host()? {
            Host::Domain(d) => d.to_string(),
            // IP literals only when listed exactly.
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => format!("[{ip}]"),
        };
        if !self.host_allowed(&host, url.port_or_known_default()) {
            return None;
        }
        // The URL parser's serialisation is what the browser will follow, so return that.
        Some(url.into())
    }

    /// [`check`](Self::check), or `/` when refused.
    pub fn or_fallback(&self, target: Option<&str>) -> String {
        target
            .and_then(|t| self.check(t))
            .unwrap_or_else(|| FALLBACK.to_string())
    }

    /// Rebuilds the URL of the original request from the proxy's `X-Forwarded-*` values,
    /// refusing hosts outside the allowed domains (a spoofed `X-Forwarded-Host` must never
    /// become a redirect target).
    pub fn forwarded_target(
        &self,
        proto: Option<&str>,
        host: Option<&str>,
        uri: Option<&str>,
    ) -> String {
        let uri = uri.filter(|u| u.starts_with('/')).unwrap_or("/");
        match host {
            Some(h) if !h.is_empty() => {
                let proto = match proto {
                    Some(p) if p.eq_ignore_ascii_case("http") => "http",
                    _ => "https",
                };
                self.or_fallback(Some(&format!("{proto}://{h}{uri}")))
            }
            _ => self.or_fallback(Some(uri)),
        }
    }
}

#[cfg(test)]
mod tests;
