//! Host names of forwarded requests (`X-Forwarded-Host`, `Host`) and the host patterns of
//! access rules (`grafana.example.com`, `.example.com`).
//!
//! A host is compared in a normal form (RFC 3986 §3.2.2, §6.2.2.1): without its port
//! (§3.2.3), without one trailing dot (the root of the DNS), in lowercase. Only plain DNS
//! names (letters, digits, `-`, `_`, `.`) and bracketed IPv6 literals are usable: a value that
//! holds anything else (userinfo `@`, `%` escapes, several comma-separated values, ...) is
//! refused rather than guessed at.

use std::borrow::Cow;

/// The host part of an access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `grafana.example.com` (or `[::1]`): that host only. Stored in normal form.
    Exact(String),
    /// `.example.com`: `example.com` and every subdomain of it. Stored in normal form,
    /// without the leading dot.
    Domain(String),
}

impl HostPattern {
    /// Parses a host pattern of the configuration: case-insensitive (stored lowercase), one
    /// trailing dot ignored; a leading dot makes it a [`HostPattern::Domain`]. Ports, `*`,
    /// empty labels and characters other than letters, digits, `-`, `_` and `.` are refused
    /// with a message that says what to write.
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        let error = |message: &str| format!("{s:?}: {message}");
        if s.contains('*') {
            return Err(error(
                "wildcards are not supported: omit hosts to match any host; use .example.com \
                 for a domain and its subdomains",
            ));
        }
        if s.starts_with('[') {
            return match normal_host(s) {
                Some(host) if host.len() == s.len() => Ok(HostPattern::Exact(host.into_owned())),
                _ => Err(error(
                    "an IPv6 literal is written in brackets without a port, as [::1]",
                )),
            };
        }
        let (domain, name) = match s.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Err(error(
                "empty host: write a host name such as grafana.example.com, or .example.com \
                 for a domain and its subdomains",
            ));
        }
        if name.contains(':') {
            return Err(error(
                "ports are not part of a host pattern: write the host alone, it matches every \
                 port",
            ));
        }
        if let Some(bad) = name.chars().find(|&c| c != '.' && !is_name_byte(c)) {
            return Err(error(&format!(
                "{bad:?} is not allowed in a host name: use letters, digits, '-', '_' and '.'"
            )));
        }
        if name.split('.').any(str::is_empty) {
            return Err(error("empty label (..): separate labels with a single dot"));
        }
        let name = name.to_ascii_lowercase();
        Ok(if domain {
            HostPattern::Domain(name)
        } else {
            HostPattern::Exact(name)
        })
    }

    /// Whether `normal_host`, the output of [`normal_host`], matches. ASCII case is ignored,
    /// so a host not yet lowercased matches too. `Domain("example.com")` matches
    /// `example.com` and `a.b.example.com`, not `badexample.com`.
    pub fn matches(&self, normal_host: &str) -> bool {
        match self {
            HostPattern::Exact(host) => normal_host.eq_ignore_ascii_case(host),
            HostPattern::Domain(domain) => {
                let Some(split) = normal_host.len().checked_sub(domain.len()) else {
                    return false;
                };
                let (head, tail) = normal_host.as_bytes().split_at(split);
                tail.eq_ignore_ascii_case(domain.as_bytes())
                    && (head.is_empty() || head.last() == Some(&b'.'))
            }
        }
    }
}

/// The normal form of a `Host` or `X-Forwarded-Host` value: ASCII whitespace trimmed, the
/// port removed (`host:8443` → `host`, `[::1]:8080` → `[::1]`), one trailing dot removed,
/// lowercase. Borrowed from `raw` unless it held uppercase letters.
///
/// `None` when the value is unusable: empty, several values (`,`), an empty label, a
/// non-numeric port, or a character other than letters, digits, `-`, `_`, `.` (inside the
/// brackets of an IPv6 literal: hex digits, `:`, `.`), which refuses `@`, `/`, `\`, `%` and
/// spaces. An empty port (`host:`) is allowed, as RFC 3986 §3.2.3 does.
pub fn normal_host(raw: &str) -> Option<Cow<'_, str>> {
    let value = raw.trim_ascii();
    let host = if let Some(inside) = value.strip_prefix('[') {
        let close = inside.find(']')?;
        let (address, after) = inside.split_at(close);
        let valid = address.contains(':')
            && address
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !valid || !port_ok(after.strip_prefix(']')?) {
            return None;
        }
        value.get(..close + 2)?
    } else {
        let (name, port) = match value.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        };
        if !port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        let valid = name
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(is_name_byte));
        if !valid {
            return None;
        }
        name
    };
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

/// What may follow the `]` of an IPv6 literal: nothing, or `:` and a numeric port.
fn port_ok(after: &str) -> bool {
    match after.strip_prefix(':') {
        Some(port) => port.bytes().all(|b| b.is_ascii_digit()),
        None => after.is_empty(),
    }
}

/// The characters of a DNS label as used in host names: letters, digits, `-` and `_`.
fn is_name_byte(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn normal_hosts() {
        let cases: &[(&str, Option<&str>)] = &[
            ("grafana.example.com", Some("grafana.example.com")),
            ("Grafana.Example.COM", Some("grafana.example.com")),
            ("grafana.example.com:8443", Some("grafana.example.com")),
            ("grafana.example.com.", Some("grafana.example.com")),
            ("grafana.example.com.:443", Some("grafana.example.com")),
            ("  grafana.example.com\t", Some("grafana.example.com")),
            ("localhost", Some("localhost")),
            ("my_host-1", Some("my_host-1")),
            ("10.0.0.1:80", Some("10.0.0.1")),
            ("host:", Some("host")),
            ("[::1]", Some("[::1]")),
            ("[::1]:8080", Some("[::1]")),
            ("[2001:DB8::1]", Some("[2001:db8::1]")),
            ("[::ffff:10.0.0.1]", Some("[::ffff:10.0.0.1]")),
            ("", None),
            ("   ", None),
            (".", None),
            ("example.com..", None),
            (".example.com", None),
            ("a..b", None),
            ("a.example.com,b.example.com", None),
            ("host:port", None),
            ("host:80:81", None),
            ("host:-1", None),
            ("user@host", None),
            ("host/path", None),
            ("host\\x", None),
            ("host%2ecom", None),
            ("ho st", None),
            ("h\u{e9}te", None),
            ("*.example.com", None),
            ("[::1", None),
            ("[]", None),
            ("[abc]", None),
            ("[::1]x", None),
            ("[::1]:x", None),
            ("[::1%eth0]", None),
            ("[v1.x]", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(normal_host(raw).as_deref(), *expected, "{raw:?}");
        }
    }

    #[test]
    fn normal_hosts_are_borrowed() {
        for raw in [
            "example.com",
            "example.com:80",
            "example.com.",
            " example.com ",
            "[::1]:1",
        ] {
            assert!(
                matches!(normal_host(raw), Some(Cow::Borrowed(_))),
                "{raw:?}"
            );
        }
        assert!(matches!(normal_host("Example.com"), Some(Cow::Owned(_))));
    }

    #[test]
    fn patterns() {
        let ok: &[(&str, HostPattern)] = &[
            (
                "grafana.example.com",
                HostPattern::Exact("grafana.example.com".into()),
            ),
            (
                "Grafana.Example.com.",
                HostPattern::Exact("grafana.example.com".into()),
            ),
            (".example.com", HostPattern::Domain("example.com".into())),
            (".EXAMPLE.com.", HostPattern::Domain("example.com".into())),
            ("localhost", HostPattern::Exact("localhost".into())),
            ("[::1]", HostPattern::Exact("[::1]".into())),
        ];
        for (s, expected) in ok {
            assert_eq!(&HostPattern::parse(s).unwrap(), expected, "{s:?}");
        }
        let bad: &[(&str, &str)] = &[
            ("*", "omit hosts to match any host; use .example.com"),
            ("*.example.com", "omit hosts to match any host"),
            ("", "empty host"),
            (".", "empty host"),
            ("example.com:443", "ports"),
            ("[::1]:443", "IPv6"),
            ("a..b", "empty label"),
            ("..example.com", "empty label"),
            ("example.com..", "empty label"),
            ("exa mple.com", "not allowed"),
            ("user@example.com", "not allowed"),
            ("example.com/", "not allowed"),
            ("ex%41mple.com", "not allowed"),
        ];
        for (s, needle) in bad {
            let message = HostPattern::parse(s).unwrap_err();
            assert!(message.contains(needle), "{s:?}: {message}");
        }
    }

    #[test]
    fn matching() {
        let domain = HostPattern::parse(".example.com").unwrap();
        for host in [
            "example.com",
            "x.example.com",
            "a.b.example.com",
            "X.Example.com",
        ] {
            assert!(domain.matches(host), "{host}");
        }
        for host in [
            "badexample.com",
            "example.com.evil",
            "xample.com",
            "com",
            "",
            ".com",
        ] {
            assert!(!domain.matches(host), "{host}");
        }
        let exact = HostPattern::parse("grafana.example.com").unwrap();
        assert!(exact.matches("grafana.example.com"));
        for host in ["x.grafana.example.com", "example.com", "grafana.example.co"] {
            assert!(!exact.matches(host), "{host}");
        }
        let from_header = normal_host("Grafana.EXAMPLE.com.:443").unwrap();
        assert!(exact.matches(&from_header));
        assert!(domain.matches(&from_header));
    }
}
