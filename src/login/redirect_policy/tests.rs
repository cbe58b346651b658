use super::*;

fn policy() -> RedirectPolicy {
    RedirectPolicy::new(vec![
        ".example.com".into(),
        "app.other.org".into(),
        "ports.test:8443".into(),
    ])
    .unwrap()
}

#[test]
fn accepts_safe_targets() {
    let p = policy();
    for ok in [
        "/",
        "/app?x=1&y=2#frag",
        "https://example.com/",
        "https://a.example.com/path?q=1",
        "http://deep.a.example.com:8080/x",
        "https://APP.other.org/",
        "https://ports.test:8443/",
    ] {
        assert!(p.check(ok).is_some(), "should accept {ok}");
    }
    assert_eq!(
        p.check("https://APP.other.org/x").unwrap(),
        "https://app.other.org/x"
    );
}

#[test]
fn refuses_open_redirects() {
    let p = policy();
    for bad in [
        "",
        "//evil.com",
        "//evil.com/path",
        "/\\evil.com",
        "\\\\evil.com",
        "/\t/evil.com",
        "https://evil.com/",
        "https://evilexample.com/",
        "https://example.com.evil.com/",
        "https://example.com@evil.com/",
        "https://user:pw@a.example.com/",
        "https://evil.com#.example.com",
        "https://evil.com?.example.com",
        "https://evil.com\\.example.com",
        "https://evil.com%2f.example.com",
        "https:evil.com",
        "https:/evil.com",
        "javascript:alert(1)",
        "data:text/html,x",
        "ftp://a.example.com/",
        " https://a.example.com/",
        "https://a.example.com/\r\nSet-Cookie: x=y",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://2130706433/",
        "https://other.org/",
        "https://ports.test/",
        "https://ports.test:9999/",
        "https://a.example.com\u{3002}evil.com/",
        "example.com",
        "https://%65vil.com/",
    ] {
        assert_eq!(p.check(bad), None, "should refuse {bad:?}");
    }
}

#[test]
fn forwarded_host_outside_allowed_domains_never_becomes_target() {
    let p = policy();
    assert_eq!(
        p.forwarded_target(Some("https"), Some("app.example.com"), Some("/a?b=c")),
        "https://app.example.com/a?b=c"
    );
    assert_eq!(
        p.forwarded_target(Some("https"), Some("evil.com"), Some("/a")),
        "/"
    );
    assert_eq!(
        p.forwarded_target(Some("https"), Some("evil.com/@a.example.com"), Some("/")),
        "/"
    );
    assert_eq!(
        p.forwarded_target(None, None, Some("/only/path")),
        "/only/path"
    );
    assert_eq!(
        p.forwarded_target(Some("javascript"), Some("app.example.com"), Some("/")),
        "https://app.example.com/"
    );
}

#[test]
fn bad_rules_are_config_errors() {
    assert!(RedirectPolicy::new(vec!["*.example.com".into()]).is_err());
    assert!(RedirectPolicy::new(vec!["example.com:notaport".into()]).is_err());
    assert!(RedirectPolicy::new(vec![".com".into()]).is_err());
    assert!(RedirectPolicy::new(vec![".localhost".into(), "intranet".into()]).is_ok());
}

#[test]
fn accepts_an_international_host_right_after_http() {
    // Found by fuzz/fuzz_targets/redirect.rs: the scheme was compared on the first 8 bytes as
    // a string, which is no character boundary when a non-ASCII host follows "http://".
    let p = policy();
    assert_eq!(
        p.check("http://ünicode.example.com/").as_deref(),
        Some("http://xn--nicode-2ya.example.com/")
    );
    assert_eq!(
        p.check("https://ünicode.example.com/").as_deref(),
        Some("https://xn--nicode-2ya.example.com/")
    );
    assert_eq!(p.check("http://ünicode.evil.com/"), None);
}
