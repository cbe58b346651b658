//! Redirect targets (`rd` of `/oauth2/start` and `/oauth2/sign_out`) and the return address
//! rebuilt from `X-Forwarded-Proto/Host/Uri`, checked against the fixture's
//! `redirect.allowed_domains` (`.example.com`, `app.example.org:8443`, `localhost`, `[::1]`,
//! `127.0.0.1`).
//!
//! Input: line 1 is a target; lines 2–4 (optional; `-` = header not sent) the forwarded proto,
//! host and URI.
//!
//! Checks: nothing panics; an accepted target is a same-site path (one `/`, never `//`) or an
//! absolute http(s) URL without credentials whose host is allowed, has no control character,
//! whitespace or `\`, and is accepted again unchanged (what the browser follows is what was
//! checked); an absolute http(s) URL that satisfies all of that is accepted; the forwarded
//! return address is always a target the policy accepts, or `/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::login::redirect_policy::{FALLBACK, RedirectPolicy};
use portcullis_fuzz::{config, optional};
use url::{Host, Url};

/// The host of `url` as `RedirectPolicy::host_allowed` expects it.
fn host_of(url: &Url) -> Option<String> {
    Some(match url.host()? {
        Host::Domain(d) => d.to_string(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => format!("[{ip}]"),
    })
}

fn has_bad_char(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// What an accepted target must look like.
fn assert_safe(policy: &RedirectPolicy, target: &str) {
    assert!(!has_bad_char(target), "{target:?}");
    if let Some(rest) = target.strip_prefix('/') {
        assert!(!rest.starts_with('/'), "protocol-relative: {target:?}");
        return;
    }
    let url = Url::parse(target).expect("an accepted absolute target is a URL");
    assert!(matches!(url.scheme(), "http" | "https"), "{target:?}");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{target:?}"
    );
    let host = host_of(&url).expect("an accepted absolute target has a host");
    assert!(
        policy.host_allowed(&host, url.port_or_known_default()),
        "{target:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = &config().redirect;
    let mut lines = text.split('\n');
    let target = lines.next().unwrap_or("");

    match policy.check(target) {
        Some(out) => {
            assert_safe(policy, &out);
            assert_eq!(
                policy.check(&out).as_deref(),
                Some(out.as_str()),
                "not stable"
            );
        }
        None => {
            // The absolute URLs the policy promises to accept.
            let promised = target.len() <= 2048
                && !has_bad_char(target)
                && (starts_with_ignore_case(target, "https://")
                    || starts_with_ignore_case(target, "http://"))
                && Url::parse(target).is_ok_and(|u| {
                    u.username().is_empty()
                        && u.password().is_none()
                        && host_of(&u)
                            .is_some_and(|h| policy.host_allowed(&h, u.port_or_known_default()))
                });
            assert!(!promised, "an allowed target was refused: {target:?}");
        }
    }

    let proto = lines.next().and_then(optional);
    let host = lines.next().and_then(optional);
    let uri = lines.next().and_then(optional);
    let back = policy.forwarded_target(proto, host, uri);
    if back != FALLBACK {
        assert_eq!(policy.check(&back).as_deref(), Some(back.as_str()));
    }
});
