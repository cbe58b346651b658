use super::*;

fn denied<'a>(again: Option<&'a str>) -> Page<'a> {
    Page {
        status: 403,
        title: "Access denied",
        message: "You are signed in as bob, but your account is not allowed to open this application.",
        sign_in_again_url: again,
        request_id: None,
    }
}

fn builtin() -> Pages {
    Pages::load(None, None, None).unwrap()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-pages-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_builtin_page_escapes_everything_dynamic() {
    let p = builtin().render(&Page {
        status: 403,
        title: "<t>",
        message: "you are <script>alert('x')</script> & \"q\"",
        sign_in_again_url: None,
        request_id: None,
    });
    assert!(!p.contains("<script>"));
    assert!(p.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
    assert!(p.contains("<title>&lt;t&gt; · Portcullis</title>"));
    assert!(p.contains("HTTP 403"));
    // Nothing that is not set shows up.
    assert!(!p.contains("Sign in as someone else"));
    assert!(!p.contains("<img"));
    assert!(!p.contains("<footer"));
}

#[test]
fn the_403_page_links_to_sign_out_with_the_refused_address_encoded() {
    let public = Url::parse("https://auth.example.com").unwrap();
    let again = sign_in_again_url(&public, "https://app.example.com/reports?q=a b&x=<y>");
    assert_eq!(
        again,
        "https://auth.example.com/oauth2/sign_out?rd=https%3A%2F%2Fapp.example.com%2Freports%3Fq%3Da+b%26x%3D%3Cy%3E"
    );
    let p = builtin().render(&denied(Some(&again)));
    assert!(
        p.contains(&format!("<a href=\"{again}\">Sign in as someone else</a>")),
        "{p}"
    );
    // A public URL with a path prefix keeps it.
    let prefixed = Url::parse("https://example.com/auth/").unwrap();
    assert_eq!(
        sign_in_again_url(&prefixed, "/"),
        "https://example.com/auth/oauth2/sign_out?rd=%2F"
    );
}

#[test]
fn a_template_escapes_every_value_in_text_and_attributes() {
    let t = Template::parse(
        "<p title=\"{{message}}\">{{ message }}</p><a href=\"{{sign_in_again_url}}\">{{title}}</a>",
    )
    .unwrap();
    let pages = Pages::new(t, None, None);
    let p = pages.render(&Page {
        status: 403,
        title: "<b>bold</b>",
        message: "\" onmouseover=\"alert(1)",
        sign_in_again_url: Some("https://auth.example.com/oauth2/sign_out?rd=%2F&x=\"><script>"),
        request_id: None,
    });
    assert_eq!(
        p,
        "<p title=\"&quot; onmouseover=&quot;alert(1)\">&quot; onmouseover=&quot;alert(1)</p>\
         <a href=\"https://auth.example.com/oauth2/sign_out?rd=%2F&amp;x=&quot;&gt;&lt;script&gt;\">&lt;b&gt;bold&lt;/b&gt;</a>"
    );
}

#[test]
fn sections_show_only_when_their_variable_is_set() {
    let t = Template::parse(
        "[{{#sign_in_again_url}}<a href=\"{{sign_in_again_url}}\">again</a>{{#footer}}+{{footer}}{{/footer}}{{/sign_in_again_url}}]",
    )
    .unwrap();
    let plain = Pages::new(t.clone(), None, None);
    assert_eq!(plain.render(&denied(None)), "[]");
    assert_eq!(
        plain.render(&denied(Some("/x"))),
        "[<a href=\"/x\">again</a>]"
    );
    let footed = Pages::new(t, None, Some("Acme & Co".into()));
    assert_eq!(
        footed.render(&denied(Some("/x"))),
        "[<a href=\"/x\">again</a>+Acme &amp; Co]"
    );
}

#[test]
fn unknown_placeholders_and_broken_syntax_are_refused_with_their_line() {
    for (text, line, says) in [
        ("<p>{{mesage}}</p>", 1, "unknown placeholder {{mesage}}"),
        (
            "a\nb\n<h1>{{.Title}}</h1>",
            3,
            "oauth2-proxy's Go template syntax",
        ),
        (
            "{{define \"error.html\"}}",
            1,
            "oauth2-proxy's Go template syntax",
        ),
        ("\n{{{message}}}", 2, "unescaped output is not supported"),
        ("<p>{{message</p>", 1, "without a closing"),
        ("x\n{{#footer}}\n<p>", 2, "{{#footer}} is never closed"),
        ("{{/footer}}", 1, "{{/footer}} without a {{#footer}}"),
        (
            "{{#footer}}\n{{#logo_url}}\n{{/footer}}",
            3,
            "{{/footer}} closes {{#logo_url}} (line 2)",
        ),
        ("{{}}", 1, "unknown placeholder {{}}"),
    ] {
        let e = Template::parse(text).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.why.contains(says), "{text:?}: {e}");
        // Every refusal lists the variables that exist.
        if e.why.contains("placeholder") || e.why.contains("syntax") {
            assert!(e.why.contains("{{sign_in_again_url}}"), "{e}");
        }
    }
}

#[test]
fn the_logo_is_an_https_url_or_a_path_and_the_only_image_the_page_may_load() {
    for ok in ["https://cdn.example.com/logo.svg", "/static/logo.png"] {
        assert!(Logo::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://cdn.example.com/logo.svg",
        "//cdn.example.com/logo.svg",
        "javascript:alert(1)",
        "data:image/svg+xml,<svg/>",
        "https://user:pw@cdn.example.com/logo.svg",
        "logo.svg",
        "/static/my logo.png",
        "/\\evil.com/x.png",
    ] {
        assert!(Logo::parse(bad).is_err(), "{bad}");
    }
    let https = Pages::new(
        Template::parse(BUILTIN_TEMPLATE).unwrap(),
        Some(Logo::parse("https://cdn.example.com:8443/brand/logo.svg").unwrap()),
        None,
    );
    assert_eq!(
        https.content_security_policy(),
        "default-src 'none'; style-src 'unsafe-inline'; img-src https://cdn.example.com:8443; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    assert!(https.render(&denied(None)).contains(
        "<img class=\"logo\" src=\"https://cdn.example.com:8443/brand/logo.svg\" alt=\"\">"
    ));
    let path = Pages::new(
        Template::parse(BUILTIN_TEMPLATE).unwrap(),
        Some(Logo::parse("/static/logo.png").unwrap()),
        None,
    );
    assert!(path.content_security_policy().contains("img-src 'self';"));
    assert!(!builtin().content_security_policy().contains("img-src"));
}

#[test]
fn the_footer_is_plain_text() {
    let p = Pages::load(None, None, Some("<a href=x>Help</a> · Acme".into()))
        .unwrap()
        .render(&denied(None));
    assert!(
        p.contains("<footer>&lt;a href=x&gt;Help&lt;/a&gt; · Acme</footer>"),
        "{p}"
    );
    let long = "x".repeat(MAX_FOOTER_CHARS + 1);
    let e = Pages::load(None, None, Some(long)).unwrap_err();
    assert_eq!(e[0].0, "footer");
}

#[test]
fn a_templates_dir_is_read_once_and_every_problem_names_the_file() {
    let dir = temp_dir("ok");
    std::fs::write(
        dir.join(TEMPLATE_FILE),
        "<h1>{{title}}</h1>{{#logo_url}}<img src=\"{{logo_url}}\">{{/logo_url}}<small>{{footer}}</small>",
    )
    .unwrap();
    let pages = Pages::load(Some(&dir), Some("/logo.svg"), Some("Acme".into())).unwrap();
    // The file is not read again: deleting it changes nothing.
    std::fs::remove_file(dir.join(TEMPLATE_FILE)).unwrap();
    assert_eq!(
        pages.render(&denied(None)),
        "<h1>Access denied</h1><img src=\"/logo.svg\"><small>Acme</small>"
    );

    let missing = Pages::load(Some(&dir), None, None).unwrap_err();
    assert_eq!(missing[0].0, "templates_dir");
    assert!(
        missing[0].1.contains(&format!(
            "cannot read {}",
            dir.join(TEMPLATE_FILE).display()
        )),
        "{missing:?}"
    );

    std::fs::write(dir.join(TEMPLATE_FILE), "<h1>{{title}}</h1>\n{{nope}}").unwrap();
    let invalid = Pages::load(Some(&dir), None, None).unwrap_err();
    assert!(
        invalid[0].1.starts_with(&format!(
            "{}: line 2: unknown placeholder {{{{nope}}}}",
            dir.join(TEMPLATE_FILE).display()
        )),
        "{invalid:?}"
    );

    // A logo or footer the template never shows is a mistake, said at startup.
    std::fs::write(dir.join(TEMPLATE_FILE), "<h1>{{title}}</h1>").unwrap();
    let unused = Pages::load(Some(&dir), Some("/logo.svg"), Some("Acme".into())).unwrap_err();
    let keys: Vec<_> = unused.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["logo_url", "footer"], "{unused:?}");
    assert!(unused[0].1.contains("add {{logo_url}}"), "{unused:?}");

    std::fs::write(
        dir.join(TEMPLATE_FILE),
        "x".repeat(MAX_TEMPLATE_BYTES as usize + 1),
    )
    .unwrap();
    let big = Pages::load(Some(&dir), None, None).unwrap_err();
    assert!(big[0].1.contains("larger than 64 KiB"), "{big:?}");

    std::fs::write(dir.join(TEMPLATE_FILE), [0xff, 0xfe, b'x']).unwrap();
    let binary = Pages::load(Some(&dir), None, None).unwrap_err();
    assert!(binary[0].1.contains("cannot read"), "{binary:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_shipped_example_template_is_valid_and_shows_every_variable() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/pages"));
    let t = read_template(dir).expect("config/pages/error.html must be a valid template");
    let builtin = Template::parse(BUILTIN_TEMPLATE).unwrap();
    for (name, v) in VARIABLES {
        assert!(
            t.uses(*v),
            "config/pages/error.html does not show {{{{{name}}}}}"
        );
        assert!(
            builtin.uses(*v),
            "the built-in page does not show {{{{{name}}}}}"
        );
    }
    // And docs/pages.md documents each of them.
    let docs = include_str!("../../docs/pages.md");
    for (name, _) in VARIABLES {
        assert!(
            docs.contains(&format!("`{{{{{name}}}}}`")),
            "docs/pages.md does not document {{{{{name}}}}}"
        );
    }
}
