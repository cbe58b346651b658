use super::*;
use std::io::Write;

const MINIMAL: &str = r#"
public_url = "https://auth.example.com"
[oidc]
issuer_url = "https://kc.example.com/realms/platform"
client_id = "portcullis"
client_secret = "s3cret"
[session]
cookie_secret = "q2J1dW1seS1ub3QtYS1yZWFsLXNlY3JldC0xMjM0NTY="
"#;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn example_file_parses_and_documents_every_key() {
    let text = include_str!("../../config/example.toml");
    let cfg = Config::from_toml(text, &[]).expect("config/example.toml must be valid");
    assert_eq!(cfg.redirect_uri, "https://auth.example.com/oauth2/callback");
    assert_eq!(cfg.session.cookie_name, "_portcullis");
    assert_eq!(cfg.session.refresh, Some(Duration::from_secs(300)));
    // Every key must appear in the example, commented out or not.
    for (section, key, _) in KEYS {
        let needle = if *key == "issuers" {
            "[[bearer.issuers]]".to_string()
        } else if *key == "rules" {
            "[[rules]]".to_string()
        } else if *key == "claims" {
            "[headers.claims]".to_string()
        } else {
            format!("{key} =")
        };
        assert!(
            text.contains(&needle),
            "config/example.toml does not document {section}.{key}"
        );
    }
}

#[test]
fn example_file_documents_every_rule_key() {
    let text = include_str!("../../config/example.toml");
    for key in raw::RULE_KEYS {
        assert!(
            text.contains(&format!("{key} =")),
            "config/example.toml does not document rules.{key}"
        );
    }
    let cfg = Config::from_toml(text, &[]).unwrap();
    let redirects: Vec<bool> = cfg.rules.rules().iter().map(|r| r.login_redirect).collect();
    assert_eq!(redirects, [true, true, false]);
    let bad = format!(
        "{MINIMAL}\n[[rules]]\nname = \"p\"\naction = \"public\"\nlogin_redirect = false\n"
    );
    let problems = Config::from_toml(&bad, &[]).unwrap_err();
    assert_eq!(
        problems,
        ["rules[0].login_redirect: applies only to \"authenticate\" rules, not \"public\""]
    );
}

#[test]
fn rules_are_validated_and_every_problem_named() {
    let text = format!(
        r#"trusted_proxies = ["10.0.0.0/8", "127.0.0.1", "::1/128", "nope"]
{MINIMAL}
[authz]
allowed_emails = ["not-an-address"]
[[rules]]
name = "ok"
paths = ["/a/**"]
action = "public"
[[rules]]
name = "ok"
[[rules]]
paths = ["relative", "/a//b", "/x/**y"]
hosts = ["*.example.com", "ok.example.com:443"]
methods = ["GE T"]
action = "allow"
[[rules]]
name = "bad name!"
hosts = []
[[rules]]
name = "lists-on-deny"
action = "deny"
allowed_groups = ["x"]
[[rules]]
name = "bad-role"
allowed_roles = ["a:b:c"]
"#
    );
    let problems = Config::from_toml(&text, &[]).unwrap_err();
    let all = problems.join("\n");
    for needle in [
        "trusted_proxies[3]:",
        "authz.allowed_emails:",
        "rules[1].name: \"ok\" is used by an earlier rule",
        "rules[2].name: is required",
        "rules[2].paths[0]:",
        "rules[2].paths[1]:",
        "rules[2].paths[2]:",
        "rules[2].hosts[0]:",
        "rules[2].hosts[1]:",
        "rules[2].methods[0]:",
        "rules[2].action:",
        "rules[3].name:",
        "rules[3].hosts: is empty",
        "rules[4].action:",
        "rules[5].allowed_roles:",
    ] {
        assert!(all.contains(needle), "{needle} not reported:\n{all}");
    }
    // Mistakes in the file's shape are reported per rule (and before validation).
    let text = format!(
        "{MINIMAL}\n[[rules]]\nname = \"a\"\nsurprise = 1\n[[rules]]\nname = \"typed\"\npaths = \"/a\"\n"
    );
    let all = Config::from_toml(&text, &[]).unwrap_err().join("\n");
    assert!(all.contains("rules[0].surprise: unknown key"), "{all}");
    assert!(all.contains("rules[1]: invalid type"), "{all}");
    assert_eq!(all.matches("surprise").count(), 1, "{all}");
}

#[test]
fn rule_lists_replace_authz_together_and_domains_inherit() {
    let text = format!(
        r#"{MINIMAL}
[authz]
email_domains = ["example.com"]
allowed_groups = ["staff"]
[[rules]]
name = "by-role"
allowed_roles = ["admin"]
[[rules]]
name = "inherits"
paths = ["/b/**"]
"#
    );
    let cfg = Config::from_toml(&text, &[]).unwrap();
    let [by_role, inherits] = cfg.rules.rules() else {
        panic!("two rules")
    };
    let staff = crate::identity::Identity {
        email: Some("s@example.com".into()),
        email_verified: true,
        groups: vec!["staff".into()],
        ..Default::default()
    };
    let admin_elsewhere = crate::identity::Identity {
        email: Some("a@example.org".into()),
        email_verified: true,
        realm_roles: vec!["admin".into()],
        ..Default::default()
    };
    let check = |r: &crate::rules::Rule, id| match &r.action {
        crate::rules::Action::Authenticate(p) => p.check(id).is_ok(),
        _ => panic!("authenticate"),
    };
    // The rule's roles replace [authz]'s groups: staff alone no longer passes.
    assert!(!check(by_role, &staff));
    // email_domains is inherited: an admin from another domain is refused.
    assert!(!check(by_role, &admin_elsewhere));
    assert!(check(inherits, &staff));
}

#[test]
fn defaults() {
    let cfg = Config::from_toml(MINIMAL, &[]).unwrap();
    assert_eq!(cfg.listen.to_string(), "0.0.0.0:4180");
    assert_eq!(cfg.oidc.scopes, vec!["openid", "profile", "email"]);
    assert!(cfg.session.cookie_secure);
    assert_eq!(cfg.session.expire, Duration::from_secs(12 * 3600));
    assert_eq!(cfg.bearer.issuers.len(), 1);
    assert_eq!(cfg.bearer.issuers[0].audiences, vec!["portcullis"]);
    assert!(format!("{cfg:?}").contains("Secret(..)"));
    assert!(!format!("{cfg:?}").contains("s3cret"));
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let text = r#"
listen = "nope"
bogus = 1
[oidc]
issuer_url = "not a url"
scopes = ["profile"]
unknown_thing = true
[session]
cookie_secret = "dG9vIHNob3J0"
expire = "forever"
[authz]
allowed_roles = ["a:b:c"]
[[bearer.issuers]]
issuer_url = "https://other"
mystery = 1
"#;
    let errs = Config::from_toml(text, &[]).unwrap_err();
    let all = errs.join("\n");
    for key in ["bogus", "oidc.unknown_thing", "bearer.issuers[0].mystery"] {
        assert!(
            all.contains(&format!("{key}: unknown key")),
            "{key} missing in:\n{all}"
        );
    }
    let errs = Config::from_toml(
        &text
            .replace("bogus = 1\n", "")
            .replace("unknown_thing = true\n", "")
            .replace("mystery = 1\n", ""),
        &[],
    )
    .unwrap_err();
    let all = errs.join("\n");
    for key in [
        "listen:",
        "public_url:",
        "oidc.issuer_url:",
        "oidc.client_id:",
        "oidc.client_secret:",
        "oidc.scopes:",
        "session.cookie_secret:",
        "session.expire:",
        "authz.allowed_roles:",
        "bearer.issuers[0].audiences:",
    ] {
        assert!(all.contains(key), "{key} missing in:\n{all}");
    }
}

#[test]
fn type_errors_name_the_key() {
    let errs =
        Config::from_toml(&format!("{MINIMAL}\n[bearer]\nenabled = \"yes\"\n"), &[]).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.starts_with("bearer.") && e.contains("enabled")),
        "{errs:?}"
    );
}

#[test]
fn env_overrides_file_values() {
    let cfg = Config::from_toml(
        MINIMAL,
        &env(&[
            ("PORTCULLIS_OIDC_CLIENT_ID", "from-env"),
            ("PORTCULLIS_SESSION_COOKIE_SECURE", "false"),
            ("PORTCULLIS_AUTHZ_ALLOWED_GROUPS", "admins, ops"),
            ("PORTCULLIS_LISTEN", "127.0.0.1:9000"),
            ("PORTCULLIS_CONFIG", "/ignored"),
            ("OTHER_VAR", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.oidc.client_id, "from-env");
    assert!(!cfg.session.cookie_secure);
    assert_eq!(cfg.listen.to_string(), "127.0.0.1:9000");
    let errs =
        Config::from_toml(MINIMAL, &env(&[("PORTCULLIS_OIDC_CLIENT_SECRTE", "typo")])).unwrap_err();
    assert!(
        errs[0].contains("PORTCULLIS_OIDC_CLIENT_SECRTE"),
        "{errs:?}"
    );
}

#[test]
fn secrets_from_files_tolerate_trailing_newline() {
    let dir = std::env::temp_dir().join(format!("portcullis-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("client-secret");
    std::fs::File::create(&secret)
        .unwrap()
        .write_all(b"from-file\n")
        .unwrap();
    let cookie = dir.join("cookie-secret");
    std::fs::File::create(&cookie)
        .unwrap()
        .write_all(b"q2J1dW1seS1ub3QtYS1yZWFsLXNlY3JldC0xMjM0NTY=\n")
        .unwrap();
    let text = MINIMAL
        .replace(
            "client_secret = \"s3cret\"",
            &format!("client_secret_file = {:?}", secret),
        )
        .replace(
            "cookie_secret = \"q2J1dW1seS1ub3QtYS1yZWFsLXNlY3JldC0xMjM0NTY=\"",
            &format!("cookie_secret_file = {:?}", cookie),
        );
    let cfg = Config::from_toml(&text, &[]).unwrap();
    assert_eq!(cfg.oidc.client_secret.expose(), "from-file");
    assert_eq!(cfg.session.keys.expose().len(), 1);
    let both = MINIMAL.to_string().replace(
        "[session]",
        &format!("client_secret_file = {:?}\n[session]", secret),
    );
    assert!(
        Config::from_toml(&both, &[])
            .unwrap_err()
            .iter()
            .any(|e| e.contains("not both"))
    );
    let missing = text.replace(&format!("{:?}", secret), "\"/nonexistent/secret\"");
    assert!(
        Config::from_toml(&missing, &[])
            .unwrap_err()
            .iter()
            .any(|e| e.starts_with("oidc.client_secret_file:"))
    );
}

#[test]
fn account_audience_is_refused() {
    let errs = Config::from_toml(
        &format!("{MINIMAL}\n[bearer]\naudiences = [\"account\"]\n"),
        &[],
    )
    .unwrap_err();
    assert!(errs.iter().any(|e| e.starts_with("bearer.audiences")));
}

#[test]
fn refresh_zero_means_never() {
    let cfg = Config::from_toml(
        &MINIMAL.replace("[session]", "[session]\nrefresh = \"0s\""),
        &[],
    )
    .unwrap();
    assert_eq!(cfg.session.refresh, None);
}

#[test]
fn session_store_defaults_to_cookie_and_redis_needs_a_url() {
    let cfg = Config::from_toml(MINIMAL, &[]).unwrap();
    assert_eq!(cfg.session.store, StoreConfig::Cookie);
    let errs = Config::from_toml(
        &MINIMAL.replace("[session]", "[session]\nstore = \"redis\""),
        &[],
    )
    .unwrap_err();
    assert!(
        errs.iter().any(|e| e.starts_with("session.redis_url:")),
        "{errs:?}"
    );
    for (extra, key) in [
        ("store = \"memcached\"", "session.store:"),
        (
            "store = \"redis\"\nredis_url = \"http://redis:6379\"",
            "session.redis_url:",
        ),
        (
            "store = \"redis\"\nredis_url = \"redis://redis:6379\"\nredis_ca_file = \"/etc/hosts\"",
            "session.redis_ca_file:",
        ),
        ("redis_url = \"redis://redis:6379\"", "session.redis_url:"),
        (
            "store = \"redis\"\nredis_url = \"redis://r:6379\"\nredis_password_file = \"/nonexistent/pw\"",
            "session.redis_password_file:",
        ),
    ] {
        let errs = Config::from_toml(
            &MINIMAL.replace("[session]", &format!("[session]\n{extra}")),
            &[],
        )
        .unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with(key)), "{extra}: {errs:?}");
    }
}

#[test]
fn redis_store_with_password_file_and_secret_kept_out_of_debug() {
    let dir = std::env::temp_dir().join(format!("portcullis-redis-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pw = dir.join("redis-password");
    std::fs::File::create(&pw)
        .unwrap()
        .write_all(b"hunter2\n")
        .unwrap();
    let text = MINIMAL.replace(
        "[session]",
        &format!(
            "[session]\nstore = \"redis\"\nredis_url = \"rediss://:inline-pw@redis.svc:6380/2\"\nredis_password_file = {pw:?}"
        ),
    );
    let cfg = Config::from_toml(&text, &[]).unwrap();
    let StoreConfig::Redis(r) = &cfg.session.store else {
        panic!("redis store expected");
    };
    let RedisTopology::Standalone(url) = &r.topology else {
        panic!("standalone expected");
    };
    assert_eq!(url.host_str(), Some("redis.svc"));
    assert_eq!(r.password.as_ref().unwrap().expose(), "hunter2");
    let debug = format!("{cfg:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("inline-pw"),
        "{debug}"
    );
    let from_env = Config::from_toml(
        MINIMAL,
        &env(&[
            ("PORTCULLIS_SESSION_STORE", "redis"),
            ("PORTCULLIS_SESSION_REDIS_URL", "redis://127.0.0.1:6379"),
        ]),
    )
    .unwrap();
    assert!(matches!(from_env.session.store, StoreConfig::Redis(_)));
}

#[test]
fn redis_sentinel_and_cluster_modes() {
    let dir = std::env::temp_dir().join(format!("portcullis-redis-ha-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pw = dir.join("sentinel-password");
    std::fs::write(&pw, "s3ntinel\n").unwrap();
    let with = |extra: &str| {
        MINIMAL.replace(
            "[session]",
            &format!("[session]\nstore = \"redis\"\n{extra}"),
        )
    };
    let cfg = Config::from_toml(
        &with(&format!(
            "redis_mode = \"sentinel\"\nredis_urls = [\"redis://s0:26379\", \"redis://s1:26379\"]\nredis_sentinel_master = \"mymaster\"\nredis_username = \"portcullis\"\nredis_sentinel_password_file = {pw:?}"
        )),
        &[],
    )
    .unwrap();
    let StoreConfig::Redis(r) = &cfg.session.store else {
        panic!("redis store expected");
    };
    let RedisTopology::Sentinel {
        sentinels,
        master,
        sentinel_password,
    } = &r.topology
    else {
        panic!("sentinel expected: {r:?}");
    };
    assert_eq!(sentinels.len(), 2);
    assert_eq!(master, "mymaster");
    assert_eq!(sentinel_password.as_ref().unwrap().expose(), "s3ntinel");
    assert_eq!(r.username.as_deref(), Some("portcullis"));
    assert!(!format!("{cfg:?}").contains("s3ntinel"));

    let from_env = Config::from_toml(
        MINIMAL,
        &env(&[
            ("PORTCULLIS_SESSION_STORE", "redis"),
            ("PORTCULLIS_SESSION_REDIS_MODE", "cluster"),
            (
                "PORTCULLIS_SESSION_REDIS_URLS",
                "rediss://c0:6379,rediss://c1:6379",
            ),
        ]),
    )
    .unwrap();
    let StoreConfig::Redis(r) = &from_env.session.store else {
        panic!("redis store expected");
    };
    assert!(matches!(&r.topology, RedisTopology::Cluster(nodes) if nodes.len() == 2));
    assert!(r.topology.tls());

    for (extra, key) in [
        ("redis_mode = \"replicated\"", "session.redis_mode:"),
        (
            "redis_mode = \"sentinel\"\nredis_sentinel_master = \"m\"",
            "session.redis_urls:",
        ),
        (
            "redis_mode = \"sentinel\"\nredis_urls = [\"redis://s0:26379\"]",
            "session.redis_sentinel_master:",
        ),
        (
            "redis_mode = \"cluster\"\nredis_urls = []",
            "session.redis_urls:",
        ),
        (
            "redis_mode = \"cluster\"\nredis_urls = [\"http://c0:6379\"]",
            "session.redis_urls:",
        ),
        (
            "redis_mode = \"cluster\"\nredis_urls = [\"redis://c0:6379\", \"rediss://c1:6379\"]",
            "session.redis_urls:",
        ),
        (
            "redis_mode = \"cluster\"\nredis_urls = [\"redis://c0:6379\"]\nredis_url = \"redis://r:6379\"",
            "session.redis_url:",
        ),
        (
            "redis_mode = \"cluster\"\nredis_urls = [\"redis://c0:6379\"]\nredis_sentinel_master = \"m\"",
            "session.redis_sentinel_master:",
        ),
        (
            "redis_url = \"redis://r:6379\"\nredis_urls = [\"redis://c0:6379\"]",
            "session.redis_urls:",
        ),
        (
            "redis_url = \"redis://r:6379\"\nredis_username = \" \"",
            "session.redis_username:",
        ),
        (
            "redis_mode = \"cluster\"\nredis_urls = [\"redis://c0:6379\"]\nredis_ca_file = \"/etc/hosts\"",
            "session.redis_ca_file:",
        ),
    ] {
        let errs = Config::from_toml(&with(extra), &[]).unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with(key)), "{extra}: {errs:?}");
    }
    let errs = Config::from_toml(
        &MINIMAL.replace("[session]", "[session]\nredis_mode = \"cluster\""),
        &[],
    )
    .unwrap_err();
    assert!(
        errs.iter().any(|e| e.starts_with("session.redis_mode:")),
        "{errs:?}"
    );
}

/// The configurations shipped in deploy/kubernetes must be accepted by this binary (the
/// manifest checker only reads them as TOML). Mounted files are replaced by temp files.
#[test]
fn shipped_kubernetes_configs_are_valid() {
    let dir = std::env::temp_dir().join(format!("portcullis-k8s-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "q2J1dW1seS1ub3QtYS1yZWFsLXNlY3JldC0xMjM0NTY=\n").unwrap();
    let ca = dir.join("ca.crt");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for (name, text) in [
        (
            "base",
            include_str!("../../deploy/kubernetes/base/portcullis.toml"),
        ),
        (
            "overlays/local",
            include_str!("../../deploy/kubernetes/overlays/local/portcullis.toml"),
        ),
        (
            "overlays/ha-redis",
            include_str!("../../deploy/kubernetes/overlays/ha-redis/portcullis.toml"),
        ),
        (
            "overlays/redis-sentinel",
            include_str!("../../deploy/kubernetes/overlays/redis-sentinel/portcullis.toml"),
        ),
    ] {
        let mut t = text.to_string();
        for f in ["client-secret", "cookie-secret", "redis-password"] {
            t = t.replace(
                &format!("/run/secrets/portcullis/{f}"),
                secret.to_str().unwrap(),
            );
        }
        t = t.replace("/etc/portcullis/ca/ca.crt", ca.to_str().unwrap());
        if let Err(problems) = Config::from_toml(&t, &[]) {
            panic!(
                "deploy/kubernetes/{name}/portcullis.toml is refused by Portcullis:\n{}",
                problems.join("\n")
            );
        }
    }
}

#[test]
fn claim_names_and_claim_headers_are_validated_and_every_problem_named() {
    let with = |oidc: &str, headers: &str| {
        MINIMAL.replace("[oidc]\n", &format!("[oidc]\n{oidc}\n")) + "[headers.claims]\n" + headers
    };
    let cfg = Config::from_toml(
        &with(
            "email_claim = \"upn\"\ngroups_claim = \"realm_access.roles\"\nuser_id_claim = \"employee_id\"",
            "\"X-Auth-Request-Tenant\" = \"tenant\"\n\"X-Org-Unit\" = \"org.unit\"\n",
        ),
        &[],
    )
    .unwrap();
    assert_eq!(cfg.claims.email.as_str(), "upn");
    assert_eq!(cfg.claims.groups.as_str(), "realm_access.roles");
    assert_eq!(cfg.claims.user_id.as_str(), "employee_id");
    let headers: Vec<(&str, &str)> = cfg
        .claims
        .headers
        .iter()
        .map(|(h, c)| (h.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            ("x-auth-request-tenant", "tenant"),
            ("x-org-unit", "org.unit")
        ]
    );
    assert!(!cfg.claims.is_standard());
    assert!(
        Config::from_toml(MINIMAL, &[])
            .unwrap()
            .claims
            .is_standard()
    );

    let problems = Config::from_toml(
        &with(
            "email_claim = \"\"\ngroups_claim = \"a..b\"",
            "\"X-Auth-Request-User\" = \"upn\"\n\"x-forwarded-user\" = \"upn\"\n\"Authorization\" = \"t\"\n\"bad header\" = \"t\"\n\"X-Ok\" = \".t\"\n\"X-Dup\" = \"a\"\n\"x-dup\" = \"b\"\n",
        ),
        &[],
    )
    .unwrap_err();
    let text = problems.join("\n");
    for needle in [
        "oidc.email_claim",
        "oidc.groups_claim",
        "headers.claims.\"X-Auth-Request-User\"",
        "headers.claims.\"x-forwarded-user\"",
        "headers.claims.\"Authorization\"",
        "headers.claims.\"bad header\": is not a valid header name",
        "headers.claims.\"X-Ok\"",
        "is named twice",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    let typed = Config::from_toml(&with("", "\"X-Num\" = 1\n"), &[]).unwrap_err();
    assert_eq!(typed, ["headers.claims: must be a table of strings"]);
}

#[test]
fn pages_are_read_at_load_and_every_problem_names_its_key_and_file() {
    use crate::pages::Page;
    let page = Page {
        status: 403,
        title: "Access denied",
        message: "m",
        sign_in_again_url: None,
        request_id: None,
    };
    // The shipped example directory, with a logo and a footer, the footer from the environment.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/pages");
    let text = format!(
        "{MINIMAL}[pages]\ntemplates_dir = {example:?}\nlogo_url = \"https://assets.example.com/logo.svg\"\n"
    );
    let cfg =
        Config::from_toml(&text, &env(&[("PORTCULLIS_PAGES_FOOTER", "Acme <help>")])).unwrap();
    let html = cfg.pages.render(&page);
    assert!(
        html.contains("Acme platform"),
        "the example template is used"
    );
    assert!(
        html.contains("<footer>Acme &lt;help&gt;</footer>"),
        "{html}"
    );
    assert!(
        cfg.pages
            .content_security_policy()
            .contains("img-src https://assets.example.com;")
    );
    // Without [pages]: the built-in page.
    let plain = Config::from_toml(MINIMAL, &[]).unwrap();
    assert!(plain.pages.render(&page).contains("· Portcullis</title>"));

    let dir = std::env::temp_dir().join(format!("portcullis-cfg-pages-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong_type = format!("{MINIMAL}[pages]\nfooter = 7\n");
    let errs = Config::from_toml(&wrong_type, &[]).unwrap_err();
    assert!(
        errs.iter().any(|e| e == "pages.footer: must be a string"),
        "{errs:?}"
    );
    std::fs::write(dir.join("error.html"), "<p>{{message}}</p>{{.Footer}}").unwrap();
    let bad = format!(
        "{MINIMAL}[pages]\ntemplates_dir = {dir:?}\nlogo_url = \"http://assets.example.com/logo.svg\"\n"
    );
    let errs = Config::from_toml(&bad, &[]).unwrap_err();
    let file = dir.join("error.html");
    assert!(
        errs.iter().any(|e| e.starts_with(&format!(
            "pages.templates_dir: {}: line 1: {{{{.Footer}}}} is oauth2-proxy's Go template syntax",
            file.display()
        ))),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("pages.logo_url: must be an https:// URL or a path")),
        "{errs:?}"
    );
    std::fs::remove_file(&file).unwrap();
    let errs = Config::from_toml(&bad, &[]).unwrap_err();
    assert!(
        errs.iter().any(|e| e.starts_with(&format!(
            "pages.templates_dir: cannot read {}",
            file.display()
        ))),
        "{errs:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cookie_domains_are_one_list_and_checked() {
    let with = |session: &str| MINIMAL.replace("[session]\n", &format!("[session]\n{session}\n"));
    let cfg = Config::from_toml(
        &with("cookie_domains = [\".Example.com\", \"example.org\"]"),
        &[],
    )
    .unwrap();
    assert_eq!(
        cfg.session.cookie_domains.all(),
        ["example.com", "example.org"]
    );
    let one = Config::from_toml(&with("cookie_domain = \"example.com\""), &[]).unwrap();
    assert_eq!(one.session.cookie_domains.all(), ["example.com"]);
    assert!(
        Config::from_toml(MINIMAL, &[])
            .unwrap()
            .session
            .cookie_domains
            .is_empty()
    );
    let both = Config::from_toml(
        &with("cookie_domain = \"example.com\"\ncookie_domains = [\"example.org\"]"),
        &[],
    )
    .unwrap_err();
    assert_eq!(
        both,
        ["session.cookie_domains: set either cookie_domain or cookie_domains, not both"]
    );
    let bad =
        Config::from_toml(&with("cookie_domains = [\"example.com/x\", \"a b\"]"), &[]).unwrap_err();
    assert_eq!(bad.len(), 2, "{bad:?}");
}

#[test]
fn telemetry_is_off_without_an_endpoint_and_validated_with_one() {
    assert_eq!(Config::from_toml(MINIMAL, &[]).unwrap().telemetry, None);
    let with =
        |section: &str| Config::from_toml(&format!("{MINIMAL}\n[telemetry]\n{section}"), &[]);
    let t = with("otlp_endpoint = \"http://otel-collector.observability:4318\"\n")
        .unwrap()
        .telemetry
        .unwrap();
    assert_eq!(
        t.traces_url.as_str(),
        "http://otel-collector.observability:4318/v1/traces",
        "OTLP/HTTP's base-URL convention"
    );
    assert_eq!(
        (t.sampling_ratio, t.service_name.as_str()),
        (1.0, "portcullis")
    );
    let t = with(
        "otlp_endpoint = \"https://collector.example.com/otlp/v1/traces\"\nsampling_ratio = 0\nservice_name = \"sso\"\n",
    )
    .unwrap()
    .telemetry
    .unwrap();
    assert_eq!(
        t.traces_url.as_str(),
        "https://collector.example.com/otlp/v1/traces"
    );
    assert_eq!((t.sampling_ratio, t.service_name.as_str()), (0.0, "sso"));
    // From the environment, a number.
    let t = Config::from_toml(
        MINIMAL,
        &env(&[
            ("PORTCULLIS_TELEMETRY_OTLP_ENDPOINT", "http://c:4318/"),
            ("PORTCULLIS_TELEMETRY_SAMPLING_RATIO", "0.25"),
        ]),
    )
    .unwrap()
    .telemetry
    .unwrap();
    assert_eq!(
        (t.traces_url.as_str(), t.sampling_ratio),
        ("http://c:4318/v1/traces", 0.25)
    );
    let bad = Config::from_toml(
        MINIMAL,
        &env(&[("PORTCULLIS_TELEMETRY_SAMPLING_RATIO", "lots")]),
    )
    .unwrap_err();
    assert!(
        bad.iter()
            .any(|e| e.starts_with("PORTCULLIS_TELEMETRY_SAMPLING_RATIO: expected a number")),
        "{bad:?}"
    );

    for (section, key) in [
        (
            "otlp_endpoint = \"collector:4318\"\n",
            "telemetry.otlp_endpoint:",
        ),
        (
            "otlp_endpoint = \"http://u:p@c:4318\"\n",
            "telemetry.otlp_endpoint:",
        ),
        (
            "otlp_endpoint = \"http://c:4318\"\nsampling_ratio = 1.5\n",
            "telemetry.sampling_ratio:",
        ),
        (
            "otlp_endpoint = \"http://c:4318\"\nsampling_ratio = \"all\"\n",
            "telemetry.sampling_ratio:",
        ),
        (
            "otlp_endpoint = \"http://c:4318\"\nservice_name = \" \"\n",
            "telemetry.service_name:",
        ),
        ("otlp = \"http://c:4318\"\n", "telemetry.otlp: unknown key"),
    ] {
        let errs = with(section).unwrap_err();
        assert!(
            errs.iter().any(|e| e.starts_with(key)),
            "{section}: {errs:?}"
        );
    }
}
