//! `session.cookie_domains`: the parent domains Portcullis' cookies may be set for, and which
//! one a cookie gets. As in oauth2-proxy, the longest domain the browser's host is in wins. A
//! host in none of them, or unknown, is treated as `public_url`'s host: a proxy that sends
//! Portcullis its service name as `Host` still gets the shared domain (and a browser ignores a
//! `Domain` its host is not in, so nothing is set for a host outside every domain).
//!
//! A login's cookies must reach its callback, so a login started on a host whose domain does
//! not also hold `public_url`'s host is sent back to that host's own `/oauth2/callback`
//! ([`CookieDomains::own_callback_host`]): the proxy routes `/oauth2/` to Portcullis on every
//! app host (as oauth2-proxy deployments do), and the IdP lists each such callback URL.

use crate::rules::host::normal_host;

/// The configured domains (lowercase, no leading dot), longest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieDomains {
    longest_first: Vec<String>,
    /// `public_url`'s host (normalised): where logins call back unless a domain says otherwise.
    public_host: String,
}

/// The cookie scope of one answer: the request's `Cookie` header (to clear chunks it carried)
/// and the host the browser talked to (to pick the domain).
#[derive(Debug, Clone, Copy, Default)]
pub struct CookieContext<'a> {
    pub header: Option<&'a str>,
    /// As the browser sent it (`Host`, or the proxy's `X-Forwarded-Host`), port included.
    pub host: Option<&'a str>,
}

impl<'a> CookieContext<'a> {
    pub fn new(header: Option<&'a str>, host: Option<&'a str>) -> Self {
        Self { header, host }
    }
}

/// Whether `host` is `domain` or one of its subdomains (both normalised).
fn within(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

impl CookieDomains {
    /// `domains` as validated (lowercase, no leading dot); `public_host`: `public_url`'s host.
    pub fn new(mut domains: Vec<String>, public_host: &str) -> Self {
        domains.sort_by_key(|d| std::cmp::Reverse(d.len()));
        domains.dedup();
        Self {
            longest_first: domains,
            public_host: public_host.to_ascii_lowercase(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.longest_first.is_empty()
    }

    /// The domains, longest first.
    pub fn all(&self) -> &[String] {
        &self.longest_first
    }

    /// The `Domain` attribute for a cookie in an answer to `host` (raw, port allowed): the
    /// longest configured domain the host is in; for a host in none (or `None`, or unusable),
    /// the one `public_url`'s host is in; `None` (host-only) when that is in none either.
    pub fn for_host(&self, host: Option<&str>) -> Option<&str> {
        let normal = host.and_then(normal_host);
        let longest = |host: &str| {
            self.longest_first
                .iter()
                .find(|d| within(host, d))
                .map(String::as_str)
        };
        normal
            .as_deref()
            .and_then(longest)
            .or_else(|| longest(&self.public_host))
    }

    /// For a login started on `host`: `Some(host)` (normalised, port kept) when its cookies
    /// can't reach `public_url`'s callback (its domain does not hold `public_url`'s host), so
    /// the login must call back on that host; `None` to use `public_url`'s callback (also for
    /// a host in no domain).
    pub fn own_callback_host(&self, host: Option<&str>) -> Option<String> {
        let raw = host?.trim_ascii();
        let normal = normal_host(raw)?;
        let domain = self.longest_first.iter().find(|d| within(&normal, d))?;
        if within(&self.public_host, domain) {
            return None;
        }
        // Keep the port (a non-default one is part of the callback URL), lowercase the rest.
        let port = raw.rsplit_once(':').map(|(_, p)| p).filter(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !raw.ends_with(']')
        });
        Some(match port {
            Some(p) => format!("{normal}:{p}"),
            None => normal.into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(list: &[&str]) -> CookieDomains {
        CookieDomains::new(
            list.iter().map(|d| d.to_string()).collect(),
            "auth.example.com",
        )
    }

    #[test]
    fn the_longest_domain_the_host_is_in_wins() {
        let d = domains(&["example.com", "apps.example.com", "example.org"]);
        assert_eq!(
            d.for_host(Some("grafana.apps.example.com")),
            Some("apps.example.com")
        );
        assert_eq!(
            d.for_host(Some("App.Example.COM:8443")),
            Some("example.com")
        );
        assert_eq!(d.for_host(Some("example.org")), Some("example.org"));
        assert_eq!(d.for_host(Some("wiki.example.org.")), Some("example.org"));
        assert_eq!(
            d.for_host(Some("notexample.org")),
            Some("example.com"),
            "a suffix is not a subdomain: as public_url's host"
        );
        assert_eq!(
            d.own_callback_host(Some("notexample.org")),
            None,
            "nor for the callback"
        );
        assert_eq!(
            d.for_host(Some("example.net")),
            Some("example.com"),
            "in no domain: as public_url's host (a proxy sending a service name as Host)"
        );
        assert_eq!(
            CookieDomains::new(vec!["example.org".into()], "auth.example.com").for_host(None),
            None,
            "public_url's host in no domain either: host-only"
        );
        // Unknown or unusable: as for public_url's host.
        assert_eq!(d.for_host(None), Some("example.com"));
        assert_eq!(
            d.for_host(Some("evil.com@app.example.org")),
            Some("example.com")
        );
        assert_eq!(domains(&[]).for_host(Some("app.example.com")), None);
    }

    #[test]
    fn a_login_calls_back_on_its_own_host_only_when_the_public_host_is_outside_its_domain() {
        let d = domains(&["example.com", "apps.example.com", "example.org"]);
        assert_eq!(d.own_callback_host(Some("app.example.com")), None);
        assert_eq!(
            d.own_callback_host(Some("Wiki.Example.org:8443"))
                .as_deref(),
            Some("wiki.example.org:8443")
        );
        assert_eq!(
            d.own_callback_host(Some("grafana.apps.example.com"))
                .as_deref(),
            Some("grafana.apps.example.com")
        );
        assert_eq!(
            d.own_callback_host(Some("example.net")),
            None,
            "in no domain"
        );
        assert_eq!(
            d.own_callback_host(Some("a.example.org/x")),
            None,
            "unusable"
        );
        assert_eq!(d.own_callback_host(None), None);
        assert_eq!(domains(&[]).own_callback_host(Some("a.example.org")), None);
    }
}
