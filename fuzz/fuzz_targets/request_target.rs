//! The forwarded request → access-rule target → verdict: `X-Forwarded-Host` through
//! `normal_host`, `X-Forwarded-Uri` through `forwarded_path` (every reading a server may
//! serve), the method, and the fixture's `[[rules]]` (public, deny, host, domain, glob and
//! method matchers, `skip_preflight`).
//!
//! Input: line 1 is the URI, lines 2–3 (optional; `-` = header not sent) the host and the
//! method, line 4 `preflight` to send CORS preflight headers.
//!
//! Checks: nothing panics; every reading is in RFC 3986 normal form (starts with `/`, visible
//! ASCII, escapes in upper case and only of bytes that must be escaped, no dot segment), and
//! re-normalising a clean reading gives itself; a normal host is its own normal form and
//! matches itself as a rule host; an uncertain request is never `public` (save a preflight);
//! the verdict is at least as strict as the verdict for each reading alone.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::authz::AuthzPolicy;
use portcullis::rules::host::{HostPattern, normal_host};
use portcullis::rules::path::{ForwardedPath, forwarded_path};
use portcullis::rules::{Decider, Policies, RequestTarget, TargetPath, Verdict};
use portcullis_fuzz::{config, optional};
use std::borrow::Cow;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The syntactic marks of the normal form.
fn assert_normal(reading: &str) {
    let bytes = reading.as_bytes();
    assert_eq!(bytes.first(), Some(&b'/'), "{reading:?}");
    for (i, &b) in bytes.iter().enumerate() {
        assert!((0x21..=0x7E).contains(&b), "{reading:?}");
        assert!(!matches!(b, b'?' | b'#' | b'\\'), "{reading:?}");
        if b == b'%' {
            let escaped = match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => h << 4 | l,
                _ => panic!("bad or lower-case escape in {reading:?}"),
            };
            // Unreserved bytes are never escaped, save the dots of a `%2E` / `%2E%2E` segment.
            assert!(!is_unreserved(escaped) || escaped == b'.', "{reading:?}");
        }
    }
    for segment in reading.split('/').skip(1) {
        assert!(
            segment != "." && segment != "..",
            "dot segment in {reading:?}"
        );
        assert!(
            !segment.contains("%2E") || segment == "%2E" || segment == "%2E%2E",
            "an escaped dot outside a dot segment in {reading:?}"
        );
    }
}

/// The policies a verdict requires, or `None` for `public` and `Some(None)` for `deny`.
fn required<'r>(v: &Verdict<'r>) -> Option<Option<Vec<&'r AuthzPolicy>>> {
    match v {
        Verdict::Public(_) => None,
        Verdict::Deny(_) => Some(None),
        Verdict::Authenticate { policies, .. } => Some(Some(match policies {
            Policies::One(p) => vec![*p],
            Policies::All(all) => all.clone(),
        })),
    }
}

/// Whether `overall` is at least as strict as `one`.
fn at_least_as_strict(overall: &Verdict<'_>, one: &Verdict<'_>) -> bool {
    match (required(overall), required(one)) {
        (_, None) | (Some(None), _) => true,
        (None, Some(_)) => {
            matches!(overall, Verdict::Public(Decider::Preflight))
                && !matches!(one, Verdict::Deny(_))
        }
        (Some(Some(_)), Some(None)) => false,
        (Some(Some(all)), Some(Some(needed))) => needed
            .iter()
            .all(|p| all.iter().any(|q| std::ptr::eq(*p, *q))),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let uri = lines.next().unwrap_or("");
    let host = lines.next().and_then(optional);
    let method = lines.next().and_then(optional);
    let preflight = lines.next() == Some("preflight");

    if let Ok(path) = forwarded_path(uri) {
        for reading in path.readings() {
            assert_normal(reading);
        }
        if let ForwardedPath::Clean(clean) = &path {
            assert_eq!(
                forwarded_path(clean),
                Ok(ForwardedPath::Clean(Cow::Borrowed(&**clean))),
                "re-normalising {clean:?} (from {uri:?})"
            );
        }
        if let ForwardedPath::Ambiguous(all) = &path {
            assert!(all.len() >= 2 && all.windows(2).all(|w| w[0] < w[1]));
        }
    }

    if let Some(h) = host.and_then(normal_host) {
        assert!(!h.bytes().any(|b| b.is_ascii_uppercase()), "{h:?}");
        assert_eq!(
            normal_host(&h).as_deref(),
            Some(&*h),
            "not its own normal form"
        );
        if let Ok(pattern) = HostPattern::parse(&h) {
            assert!(pattern.matches(&h), "{h:?} does not match itself");
        }
    }

    let rules = &config().rules;
    let Ok(target) = RequestTarget::new(host, method, Some(uri), preflight) else {
        return;
    };
    let verdict = rules.evaluate(&target);
    let _ = rules.label(verdict.decider());
    let uncertain = target.host.is_none()
        || target.method.is_none()
        || !matches!(target.path, TargetPath::Clean(_));
    if uncertain {
        assert!(
            !matches!(verdict, Verdict::Public(d) if d != Decider::Preflight),
            "an uncertain request got a public rule: {target:?}"
        );
    }
    let readings: Vec<String> = match &target.path {
        TargetPath::Ambiguous(all) => all.clone(),
        _ => Vec::new(),
    };
    for reading in readings {
        let one = RequestTarget {
            path: TargetPath::Clean(Cow::Borrowed(&reading)),
            ..target.clone()
        };
        let alone = rules.evaluate(&one);
        assert!(
            at_least_as_strict(&verdict, &alone),
            "{verdict:?} is more permissive than {alone:?} for the reading {reading:?}"
        );
    }
    let _ = RequestTarget::new(host, method, None, preflight).map(|t| rules.evaluate(&t));
});
