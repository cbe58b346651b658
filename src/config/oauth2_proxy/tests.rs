//! The translation of oauth2-proxy settings, without a process: flags, environment and
//! `.cfg` file, precedence, every problem at once, and the result validated as a native
//! configuration.

use super::*;
use crate::config::Config;

const SECRET_32: &str = "q0XSvUiyKtmJQmk3aQHpeDRQl9AvIdhIM5sTzV2phys=";

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

fn no_file(_: &Path) -> std::io::Result<String> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no such file",
    ))
}

fn config(t: &Translated) -> Config {
    Config::from_toml(&t.toml, &[]).unwrap_or_else(|p| panic!("{p:?}\n{}", t.toml))
}

/// The Keycloak OIDC provider's command line from oauth2-proxy's documentation, as a
/// Traefik forward-auth deployment runs it.
const KEYCLOAK_TRAEFIK: &str = "--provider=keycloak-oidc --client-id=portcullis \
    --client-secret=s3cret --redirect-url=https://auth.example.com/oauth2/callback \
    --oidc-issuer-url=https://kc.example.com/realms/demo --email-domain=* \
    --allowed-role=admin --allowed-role=portcullis:viewer --allowed-group=/staff \
    --code-challenge-method=S256 --http-address=0.0.0.0:4180 --reverse-proxy=true \
    --upstream=static://202 --set-xauthrequest=true --skip-provider-button \
    --cookie-secure=true --cookie-expire=168h0m0s --cookie-refresh=1m";

#[test]
fn the_documented_keycloak_command_line_becomes_a_native_configuration() {
    let line = format!("{KEYCLOAK_TRAEFIK} --cookie-secret={SECRET_32}");
    let t = translate(&args(&line), &[], &no_file).unwrap();
    let c = config(&t);
    assert_eq!(c.oidc.issuer_url, "https://kc.example.com/realms/demo");
    assert_eq!(c.oidc.client_id, "portcullis");
    assert_eq!(c.oidc.client_secret.expose(), "s3cret");
    assert_eq!(c.public_url.as_str(), "https://auth.example.com/");
    assert_eq!(c.redirect_uri, "https://auth.example.com/oauth2/callback");
    assert_eq!(c.listen.to_string(), "0.0.0.0:4180");
    assert_eq!(c.session.expire.as_secs(), 168 * 3600);
    assert_eq!(c.session.refresh.map(|d| d.as_secs()), Some(60));
    // Flags without effect are named on stderr, with the reason.
    for f in [
        "--reverse-proxy",
        "--upstream",
        "--set-xauthrequest",
        "--skip-provider-button",
    ] {
        assert!(
            t.notices.iter().any(|n| n.starts_with(f)),
            "{f}: {:?}",
            t.notices
        );
    }
    let toml: toml::Table = t.toml.parse().unwrap();
    assert_eq!(
        toml["authz"]["allowed_roles"].as_array().unwrap().len(),
        2,
        "repeated list flags accumulate"
    );
    assert_eq!(toml["authz"]["allowed_groups"][0].as_str(), Some("/staff"));
}

#[test]
fn the_environment_and_a_cfg_file_give_the_same_configuration() {
    let env: Vec<(String, String)> = [
        ("OAUTH2_PROXY_PROVIDER", "keycloak-oidc"),
        ("OAUTH2_PROXY_CLIENT_ID", "portcullis"),
        ("OAUTH2_PROXY_CLIENT_SECRET", "s3cret"),
        (
            "OAUTH2_PROXY_REDIRECT_URL",
            "https://auth.example.com/oauth2/callback",
        ),
        (
            "OAUTH2_PROXY_OIDC_ISSUER_URL",
            "https://kc.example.com/realms/demo",
        ),
        ("OAUTH2_PROXY_EMAIL_DOMAINS", "example.com,example.org"),
        ("OAUTH2_PROXY_COOKIE_SECRET", SECRET_32),
        ("OAUTH2_PROXY_SKIP_JWT_BEARER_TOKENS", "true"),
        ("PATH", "/usr/bin"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let from_env = translate(&[], &env, &no_file).unwrap();
    let cfg = format!(
        "provider = \"keycloak-oidc\"\nclient_id = \"portcullis\"\nclient_secret = \"s3cret\"\n\
         redirect_url = \"https://auth.example.com/oauth2/callback\"\n\
         oidc_issuer_url = \"https://kc.example.com/realms/demo\"\n\
         email_domains = [\"example.com\", \"example.org\"]\ncookie_secret = \"{SECRET_32}\"\n\
         skip_jwt_bearer_tokens = true\nupstreams = [\"static://202\"]\n"
    );
    let read = |p: &Path| {
        assert_eq!(p, Path::new("/etc/oauth2-proxy.cfg"));
        Ok(cfg.clone())
    };
    let from_file = translate(&args("--config=/etc/oauth2-proxy.cfg"), &[], &read).unwrap();
    let (a, b) = (config(&from_env), config(&from_file));
    assert_eq!(a.oidc.issuer_url, b.oidc.issuer_url);
    assert_eq!(a.public_url, b.public_url);
    assert!(a.bearer.enabled && b.bearer.enabled);
    assert_eq!(a.bearer.issuers[0].audiences, ["portcullis"]);
    let (ta, tb): (toml::Table, toml::Table) = (
        from_env.toml.parse().unwrap(),
        from_file.toml.parse().unwrap(),
    );
    assert_eq!(ta, tb);
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let env = vec![
        ("OAUTH2_PROXY_CLIENT_ID".to_string(), "from-env".to_string()),
        (
            "OAUTH2_PROXY_COOKIE_NAME".to_string(),
            "env_cookie".to_string(),
        ),
    ];
    let read = |_: &Path| {
        Ok(
            "client_id = \"from-file\"\ncookie_name = \"file_cookie\"\nscope = \"openid email\"\n"
                .to_string(),
        )
    };
    let t = translate(&args("--config /x.cfg --client-id from-flag"), &env, &read).unwrap();
    let toml: toml::Table = t.toml.parse().unwrap();
    assert_eq!(toml["oidc"]["client_id"].as_str(), Some("from-flag"));
    assert_eq!(toml["session"]["cookie_name"].as_str(), Some("env_cookie"));
    assert_eq!(toml["oidc"]["scopes"].as_array().unwrap().len(), 2);
}

#[test]
fn extra_audiences_add_to_the_client_id() {
    let t = translate(
        &args("--client-id=portcullis --oidc-extra-audience=api --oidc-extra-audience=cli"),
        &[],
        &no_file,
    )
    .unwrap();
    let toml: toml::Table = t.toml.parse().unwrap();
    let auds: Vec<&str> = toml["bearer"]["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(auds, ["portcullis", "api", "cli"]);
}

#[test]
fn every_unknown_and_refused_flag_is_reported_at_once() {
    let line = "--provider=github --client-id x --made-up-flag=1 --another-one value \
                --ssl-insecure-skip-verify --api-route=^/api(/v[0-9]+)?$ \
                --code-challenge-method=plain --cookie-samesite=none";
    let env = vec![("OAUTH2_PROXY_NOT_A_SETTING".to_string(), "1".to_string())];
    let problems = translate(&args(line), &env, &no_file).unwrap_err();
    let all = problems.join("\n");
    for expected in [
        "--made-up-flag",
        "--another-one",
        "--ssl-insecure-skip-verify",
        "--api-route: \"^/api(/v[0-9]+)?$\": regex operators other than a final .* or $ are not translated; write it as a [[rules]] entry with login_redirect = false",
        "--provider",
        "--code-challenge-method",
        "--cookie-samesite",
        "OAUTH2_PROXY_NOT_A_SETTING",
    ] {
        assert!(all.contains(expected), "{expected} missing from:\n{all}");
    }
    // `--another-one value`: the value is not mistaken for a flag or an argument.
    assert!(!all.contains("value: unexpected"), "{all}");
}

#[test]
fn cookie_secrets_of_16_24_or_32_bytes_raw_or_base64_are_accepted() {
    let mut notices = Vec::new();
    // Not base64 (`!`), so taken as 32 raw bytes. A 32-character base64 string would be
    // decoded first (to 24 bytes), as oauth2-proxy does.
    let raw32 = "0123456789abcdef0123456789abcde!";
    let raw16 = "0123456789abcdef";
    let b64_24 = base64::engine::general_purpose::STANDARD.encode([7u8; 24]);
    for s in [SECRET_32, raw32, raw16, b64_24.as_str()] {
        let key = cookie_key(s, &mut notices).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&key)
            .unwrap();
        assert_eq!(bytes.len(), 32, "{s}");
    }
    // The two shorter secrets were stretched, and said so.
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(notices.iter().all(|n| n.contains("HKDF")));
    // Stretching is deterministic (every replica derives the same key) and keyed by the secret.
    assert_eq!(stretch(b"0123456789abcdef"), stretch(b"0123456789abcdef"));
    assert_ne!(stretch(b"0123456789abcdef"), stretch(b"0123456789abcdeg"));
    assert!(cookie_key("too-short", &mut notices).is_err());
}

#[test]
fn a_bad_value_names_its_oauth2_proxy_flag() {
    let line = format!("{KEYCLOAK_TRAEFIK} --cookie-secret={SECRET_32}").replace(
        "--oidc-issuer-url=https://kc.example.com/realms/demo",
        "--oidc-issuer-url=not-a-url",
    );
    let (_, problems) = match Config::from_oauth2_proxy(&args(&line), &[]) {
        Ok(_) => panic!("a bad issuer URL must be refused"),
        Err(p) => ((), p),
    };
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("--oidc-issuer-url (oidc.issuer_url):")),
        "{problems:?}"
    );
}

#[test]
fn the_redirect_url_must_be_the_callback() {
    let problems = translate(
        &args("--redirect-url=https://auth.example.com/somewhere"),
        &[],
        &no_file,
    )
    .unwrap_err();
    assert!(problems[0].contains("/oauth2/callback"), "{problems:?}");
    let t = translate(
        &args("--redirect-url=https://apps.example.com/auth/oauth2/callback"),
        &[],
        &no_file,
    )
    .unwrap();
    let toml: toml::Table = t.toml.parse().unwrap();
    assert_eq!(
        toml["public_url"].as_str(),
        Some("https://apps.example.com/auth")
    );
}

#[test]
fn native_and_oauth2_proxy_invocations_are_told_apart() {
    let none: Vec<(String, String)> = Vec::new();
    assert!(!is_oauth2_proxy_invocation(
        &args("--config /etc/p.toml"),
        &none
    ));
    assert!(!is_oauth2_proxy_invocation(
        &args("--config=/etc/p.toml"),
        &none
    ));
    assert!(!is_oauth2_proxy_invocation(&[], &none));
    assert!(is_oauth2_proxy_invocation(
        &args("--config /etc/oauth2-proxy.cfg"),
        &none
    ));
    assert!(is_oauth2_proxy_invocation(&args("--provider=oidc"), &none));
    let env = vec![("OAUTH2_PROXY_CLIENT_ID".to_string(), "x".to_string())];
    assert!(is_oauth2_proxy_invocation(&[], &env));
}

#[test]
fn cookie_secure_false_is_kept_safe_or_refused() {
    let https = "--redirect-url=https://auth.example.com/oauth2/callback --cookie-secure=false";
    let t = translate(&args(https), &[], &no_file).unwrap();
    let toml: toml::Table = t.toml.parse().unwrap();
    assert_eq!(toml["session"]["cookie_secure"].as_bool(), Some(true));
    assert!(
        t.notices
            .iter()
            .any(|n| n.starts_with("--cookie-secure=false"))
    );
    let laptop = "--redirect-url=http://127.0.0.1:4180/oauth2/callback --cookie-secure=false";
    let t = translate(&args(laptop), &[], &no_file).unwrap();
    let toml: toml::Table = t.toml.parse().unwrap();
    assert_eq!(toml["session"]["cookie_secure"].as_bool(), Some(false));
    let cleartext = "--redirect-url=http://auth.example.com/oauth2/callback --cookie-secure=false";
    let problems = translate(&args(cleartext), &[], &no_file).unwrap_err();
    assert!(problems[0].contains("cleartext"), "{problems:?}");
}

#[test]
fn whitelist_wildcards_become_subdomain_entries() {
    let t = translate(
        &args("--whitelist-domain=*.example.com --whitelist-domain=app.example.org:8443"),
        &[],
        &no_file,
    )
    .unwrap();
    let toml: toml::Table = t.toml.parse().unwrap();
    let d: Vec<&str> = toml["redirect"]["allowed_domains"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(d, [".example.com", "app.example.org:8443"]);
}

#[test]
fn set_authorization_header_sends_the_id_token_as_oauth2_proxy_does() {
    for flag in [
        "--set-authorization-header",
        "--pass-authorization-header=true",
    ] {
        let t = translate(&args(flag), &[], &no_file).unwrap();
        let toml: toml::Table = t.toml.parse().unwrap();
        assert_eq!(
            toml["headers"]["pass_authorization_header"].as_bool(),
            Some(true)
        );
        assert_eq!(toml["headers"]["authorization_token"].as_str(), Some("id"));
    }
    let t = translate(&args("--set-authorization-header=false"), &[], &no_file).unwrap();
    assert!(!t.toml.contains("authorization"), "{}", t.toml);
}

#[test]
fn plain_skip_auth_routes_become_public_rules_and_others_are_refused() {
    let mut notices = Vec::new();
    let rule = |r: &str, n: &mut Vec<String>| {
        route_rule(r, RouteKind::SkipAuth, 0, n).map(|v| v.to_string())
    };
    let exact = rule("^/health$", &mut notices).unwrap();
    assert!(
        exact.contains("paths = [\"/health\"]") && exact.contains("action = \"public\""),
        "{exact}"
    );
    let under = rule("GET=^/static/", &mut notices).unwrap();
    assert!(
        under.contains("\"/static/**\"") && under.contains("methods = [\"GET\"]"),
        "{under}"
    );
    assert!(
        rule("^/assets/.*", &mut notices)
            .unwrap()
            .contains("\"/assets/**\"")
    );
    assert!(
        rule("^/v1\\.0/ping$", &mut notices)
            .unwrap()
            .contains("\"/v1.0/ping\"")
    );
    assert!(notices.is_empty(), "{notices:?}");
    // A prefix without a trailing slash is made narrower, and says so.
    assert!(
        rule("^/docs", &mut notices)
            .unwrap()
            .contains("\"/docs/**\"")
    );
    assert_eq!(notices.len(), 1);
    for refused in [
        "/health",
        "^/(a|b)$",
        "^/x.y$",
        "^/api/v[0-9]+/",
        ".*",
        "^/a/.*/b",
    ] {
        assert!(
            rule(refused, &mut notices).is_err(),
            "{refused} must be refused"
        );
    }
    // Translated rules validate as native rules.
    let line = format!(
        "{KEYCLOAK_TRAEFIK} --cookie-secret={SECRET_32} --skip-auth-route=^/health$ --skip-auth-route=GET=^/static/"
    );
    let t = translate(&args(&line), &[], &no_file).unwrap();
    let c = config(&t);
    assert_eq!(c.rules.rules().len(), 2);
}

#[test]
fn extra_jwt_issuers_become_bearer_issuers() {
    let t = translate(
        &args(
            "--extra-jwt-issuers=https://a.example.com=api,https://b.example.com=cli --extra-jwt-issuers=https://a.example.com=web",
        ),
        &[],
        &no_file,
    )
    .unwrap();
    let toml: toml::Table = t.toml.parse().unwrap();
    let issuers = toml["bearer"]["issuers"].as_array().unwrap();
    assert_eq!(issuers.len(), 2);
    assert_eq!(
        issuers[0]["issuer_url"].as_str(),
        Some("https://a.example.com")
    );
    assert_eq!(issuers[0]["audiences"].as_array().unwrap().len(), 2);
    assert!(translate(&args("--extra-jwt-issuers=no-audience"), &[], &no_file).is_err());
}

#[test]
fn the_redis_password_goes_into_the_connection_url() {
    let t = translate(
        &args("--redis-password=p@ss:w/rd --redis-connection-url=redis://redis.example:6379/0"),
        &[],
        &no_file,
    )
    .unwrap();
    let toml: toml::Table = t.toml.parse().unwrap();
    let url = url::Url::parse(toml["session"]["redis_url"].as_str().unwrap()).unwrap();
    assert_eq!(
        percent_encoding::percent_decode_str(url.password().unwrap())
            .decode_utf8()
            .unwrap(),
        "p@ss:w/rd"
    );
    assert_eq!(url.host_str(), Some("redis.example"));
    assert!(translate(&args("--redis-password=x"), &[], &no_file).is_err());
}

#[test]
fn redis_sentinel_and_cluster_flags_choose_the_mode() {
    let table = |line: &str| -> toml::Table {
        translate(&args(line), &[], &no_file)
            .unwrap()
            .toml
            .parse()
            .unwrap()
    };
    let t = table(
        "--redis-sentinel-connection-urls=redis://s0:26379,redis://s1:26379 --redis-use-sentinel \
         --redis-sentinel-master-name=mymaster --redis-username=portcullis",
    );
    assert_eq!(t["session"]["redis_mode"].as_str(), Some("sentinel"));
    assert_eq!(t["session"]["redis_urls"].as_array().unwrap().len(), 2);
    assert_eq!(
        t["session"]["redis_sentinel_master"].as_str(),
        Some("mymaster")
    );
    assert_eq!(t["session"]["redis_username"].as_str(), Some("portcullis"));
    let t = table(
        "--redis-password=pw --redis-use-cluster=true \
         --redis-cluster-connection-urls=redis://c0:6379 --redis-cluster-connection-urls=redis://c1:6379",
    );
    assert_eq!(t["session"]["redis_mode"].as_str(), Some("cluster"));
    let urls: Vec<&str> = t["session"]["redis_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(urls, ["redis://:pw@c0:6379", "redis://:pw@c1:6379"]);
    // Lists of the other mode are ignored, as oauth2-proxy ignores them.
    let ignored = translate(
        &args("--redis-use-sentinel=false --redis-sentinel-connection-urls=redis://s0:26379 --redis-connection-url=redis://r:6379"),
        &[],
        &no_file,
    )
    .unwrap();
    assert!(!ignored.toml.contains("redis_urls"), "{}", ignored.toml);
    assert!(
        ignored
            .notices
            .iter()
            .any(|n| n.contains("ignored without --redis-use-sentinel"))
    );
    for refused in [
        "--redis-use-sentinel --redis-sentinel-password=x",
        "--redis-use-sentinel --redis-sentinel-connection-urls=redis://s0:26379 --redis-password=x",
    ] {
        let errs = translate(&args(refused), &[], &no_file).unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("_file")),
            "{refused}: {errs:?}"
        );
    }
}

#[test]
fn api_routes_answer_401_with_the_default_policy_after_the_public_routes() {
    let line = "--provider=keycloak-oidc --client-id=x --client-secret=y \
                --oidc-issuer-url=https://kc.example.com/realms/r \
                --cookie-secret=0123456789abcdef0123456789abcdef \
                --redirect-url=https://auth.example.com/oauth2/callback \
                --allowed-group=staff \
                --api-route=^/api/ --skip-auth-route=^/api/health$ --api-route=^/graphql$";
    let t = translate(&args(line), &[], &no_file).unwrap();
    let rules: toml::Table = t.toml.parse().unwrap();
    let rules = rules["rules"].as_array().unwrap();
    let summary: Vec<(String, String, Option<bool>)> = rules
        .iter()
        .map(|r| {
            (
                r["paths"][0].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
                r.get("login_redirect").and_then(toml::Value::as_bool),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("/api/health".to_string(), "public".to_string(), None),
            (
                "/api/**".to_string(),
                "authenticate".to_string(),
                Some(false)
            ),
            (
                "/graphql".to_string(),
                "authenticate".to_string(),
                Some(false)
            ),
        ]
    );
    // The API rules set no lists of their own: [authz] (--allowed-group) applies to them.
    let config = crate::config::Config::from_toml(&t.toml, &[]).unwrap();
    let api = &config.rules.rules()[1];
    assert!(!api.login_redirect);
    assert!(
        matches!(&api.action, crate::rules::Action::Authenticate(p) if p.check(&crate::identity::Identity { sub: "u".into(), ..Default::default() }).is_err())
    );
}

#[test]
fn the_footer_is_translated_and_the_sign_in_page_branding_is_accepted_without_effect() {
    let base = format!(
        "--provider=oidc --client-id=portcullis --client-secret=s3cret \
         --redirect-url=https://auth.example.com/oauth2/callback \
         --oidc-issuer-url=https://kc.example.com/realms/demo --cookie-secret={SECRET_32}"
    );
    let line = format!(
        "{base} --footer=<b>Acme</b> --banner=Welcome --custom-sign-in-logo=/etc/logo.png \
         --custom-templates-dir=/etc/oauth2-proxy/templates"
    );
    let t = translate(&args(&line), &[], &no_file).unwrap();
    let c = config(&t);
    let page = crate::pages::Page {
        status: 403,
        title: "t",
        message: "m",
        sign_in_again_url: None,
        request_id: None,
    };
    assert!(
        c.pages
            .render(&page)
            .contains("<footer>&lt;b&gt;Acme&lt;/b&gt;</footer>")
    );
    for f in [
        "--footer: shown as plain text",
        "--banner: no effect",
        "--custom-sign-in-logo: no effect",
        "--custom-templates-dir: no effect in Portcullis: its Go templates are not read",
    ] {
        assert!(
            t.notices.iter().any(|n| n.starts_with(f)),
            "{f}: {:?}",
            t.notices
        );
    }
    // "-" hides oauth2-proxy's default footer; Portcullis has none.
    let t = translate(&args(&format!("{base} --footer=-")), &[], &no_file).unwrap();
    assert!(!config(&t).pages.render(&page).contains("<footer"));
    // From the environment too.
    let env = vec![("OAUTH2_PROXY_FOOTER".to_string(), "Acme".to_string())];
    let t = translate(&args(&base), &env, &no_file).unwrap();
    assert!(
        config(&t)
            .pages
            .render(&page)
            .contains("<footer>Acme</footer>")
    );
}

/// Every flag oauth2-proxy v7.15 defines (`flags.tsv`, from tools/oauth2-proxy-flags) has a
/// row in FLAGS, read as the same kind of value; `docs/oauth2-proxy-flags.md` is the table
/// of them all (`UPDATE_FLAG_TABLE=1 cargo test --lib flag_table` rewrites it).
#[test]
fn every_oauth2_proxy_flag_has_a_row_and_the_flag_table_is_current() {
    let mut missing = Vec::new();
    for line in include_str!("flags.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let mut columns = line.split('\t');
        let (name, go_type, cfg_name) = (
            columns.next().unwrap(),
            columns.next().unwrap(),
            columns.next().unwrap(),
        );
        match lookup(name) {
            None => missing.push(name.to_string()),
            Some(f) => {
                // The .cfg name, and OAUTH2_PROXY_ + it upper-cased in the environment.
                assert_eq!(file_name(f), cfg_name, "--{name}'s .cfg/environment name");
                let want = match go_type {
                    "Bool" => Kind::Bool,
                    "StringSlice" => Kind::List,
                    _ => Kind::Str,
                };
                assert_eq!(f.kind, want, "--{name} is a {go_type} in oauth2-proxy");
            }
        }
    }
    assert!(missing.is_empty(), "no row in FLAGS for: {missing:?}");
    let table = format!(
        "# oauth2-proxy flags in Portcullis\n\n\
         Every flag oauth2-proxy v7.15 defines, and what `portcullis` does with it when started \
         with oauth2-proxy's command line, `OAUTH2_PROXY_*` environment or `.cfg` file \
         ([deploy.md](deploy.md#migrating-from-oauth2-proxy)). Generated from the `FLAGS` table \
         in `src/config/oauth2_proxy.rs`; a test keeps it current. A flag not listed is unknown \
         and refused (exit 64).\n\n{}",
        compatibility_table()
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/oauth2-proxy-flags.md");
    if std::env::var_os("UPDATE_FLAG_TABLE").is_some() {
        std::fs::write(path, &table).unwrap();
    }
    let current = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        current == table,
        "docs/oauth2-proxy-flags.md is out of date: UPDATE_FLAG_TABLE=1 cargo test --lib flag_table"
    );
}

#[test]
fn the_other_flags_are_translated_or_checked() {
    let emails = |p: &Path| -> std::io::Result<String> {
        assert_eq!(p, Path::new("/etc/emails"));
        Ok("# staff\nalice@example.com\n\n bob@example.com \n".into())
    };
    let line = "--provider=oidc --client-id=x --client-secret=y \
                --oidc-issuer-url=https://kc.example.com/realms/r \
                --cookie-secret=0123456789abcdef0123456789abcdef \
                --redirect-url=https://auth.example.com/oauth2/callback \
                --trusted-proxy-ip=10.0.0.0/8 \
                --authenticated-emails-file=/etc/emails --prefer-email-to-user \
                --redis-username=portcullis --redis-password=pw \
                --redis-connection-url=redis://redis:6379 --session-store-type=redis \
                --cookie-path=/ --ping-path=/ping --proxy-prefix=/oauth2 \
                --request-logging=false --force-https";
    let t = translate(&args(line), &[], &emails).unwrap();
    let c = config(&t);
    assert_eq!(c.rules.rules().len(), 0);
    assert_eq!(
        c.claims.user_id.as_str(),
        "sub",
        "--prefer-email-to-user changes only X-Forwarded-User, which Portcullis never sets"
    );
    assert!(
        t.notices
            .iter()
            .any(|n| n.starts_with("--prefer-email-to-user: no effect"))
    );
    assert_eq!(c.trusted_proxies.len(), 1);
    let table: toml::Table = t.toml.parse().unwrap();
    assert_eq!(
        table["authz"]["allowed_emails"].as_array().unwrap(),
        &vec![
            toml::Value::String("alice@example.com".into()),
            toml::Value::String("bob@example.com".into())
        ]
    );
    assert_eq!(
        table["session"]["redis_url"].as_str(),
        Some("redis://portcullis:pw@redis:6379")
    );
    assert!(
        t.notices
            .iter()
            .any(|n| n.starts_with("--force-https: no effect"))
    );
    // oauth2-proxy requires a listed address *and* a group: [authz] can't say that.
    let both = format!("{line} --allowed-group=staff");
    let problems = translate(&args(&both), &[], &emails).unwrap_err();
    assert!(
        problems[0].starts_with("--authenticated-emails-file: can't be combined"),
        "{problems:?}"
    );
    let groups = line.replace(
        "--authenticated-emails-file=/etc/emails",
        "--allowed-group=a --keycloak-group=b",
    );
    let t = translate(&args(&groups), &[], &emails).unwrap();
    let table: toml::Table = t.toml.parse().unwrap();
    assert_eq!(
        table["authz"]["allowed_groups"].as_array().unwrap().len(),
        2,
        "--keycloak-group adds to --allowed-group"
    );
    let bad = format!("{line} --ping-path=/healthz --cookie-path=/app --trusted-ip=10.0.0.1");
    let problems = translate(&args(&bad), &[], &emails).unwrap_err().join("\n");
    for flag in ["--ping-path", "--cookie-path", "--trusted-ip"] {
        assert!(problems.contains(flag), "{flag}: {problems}");
    }
}

/// What the oauth2-proxy Helm chart renders by default: both addresses, a metrics address, the
/// `.cfg` from its ConfigMap (`upstreams = ["file:///dev/null"]`) and the secrets in the
/// environment; explicit `false` values of refused flags ask for nothing.
#[test]
fn the_oauth2_proxy_helm_charts_defaults_start() {
    let cfg = "email_domains = [ \"*\" ]\nupstreams = [ \"file:///dev/null\" ]\n\
               provider = \"keycloak-oidc\"\noidc_issuer_url = \"https://kc.example.com/realms/r\"\n\
               redirect_url = \"https://auth.example.com/oauth2/callback\"\n\
               ssl_insecure_skip_verify = false\nredis_use_sentinel = false\n";
    let read = |p: &Path| -> std::io::Result<String> {
        assert_eq!(p, Path::new("/etc/oauth2_proxy/oauth2_proxy.cfg"));
        Ok(cfg.to_string())
    };
    let line = "--http-address=0.0.0.0:4180 --https-address=0.0.0.0:4443 \
                --metrics-address=0.0.0.0:44180 --config=/etc/oauth2_proxy/oauth2_proxy.cfg";
    let env: Vec<(String, String)> = [
        ("OAUTH2_PROXY_CLIENT_ID", "portcullis"),
        ("OAUTH2_PROXY_CLIENT_SECRET", "s3cret"),
        ("OAUTH2_PROXY_COOKIE_SECRET", SECRET_32),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let t = translate(&args(line), &env, &read).unwrap();
    let c = config(&t);
    assert_eq!(
        c.listen.to_string(),
        "0.0.0.0:4180",
        "no HTTPS without a certificate"
    );
    assert!(c.tls.is_none());
    assert!(
        t.notices.iter().any(|n| n.starts_with("--https-address")),
        "{:?}",
        t.notices
    );
    // The chart's Service and ServiceMonitor scrape the metrics port.
    assert_eq!(
        c.metrics_listen.map(|a| a.to_string()).as_deref(),
        Some("0.0.0.0:44180")
    );
}

/// Go's boolean spellings from every source; a refused flag spelled `1` or `TRUE` is still
/// refused, and anything else is a problem.
#[test]
fn booleans_are_read_as_go_reads_them() {
    let base = "--provider=oidc --client-id=x --client-secret=y \
                --oidc-issuer-url=https://kc.example.com/realms/r \
                --cookie-secret=0123456789abcdef0123456789abcdef \
                --redirect-url=https://auth.example.com/oauth2/callback";
    for env_value in ["1", "TRUE", "True", "t"] {
        let env = vec![(
            "OAUTH2_PROXY_SSL_INSECURE_SKIP_VERIFY".to_string(),
            env_value.to_string(),
        )];
        let problems = translate(&args(base), &env, &no_file).unwrap_err();
        assert!(
            problems[0].starts_with("--ssl-insecure-skip-verify:"),
            "{problems:?}"
        );
    }
    let env = vec![(
        "OAUTH2_PROXY_SKIP_JWT_BEARER_TOKENS".to_string(),
        "True".to_string(),
    )];
    let t = translate(&args(base), &env, &no_file).unwrap();
    assert!(config(&t).bearer.enabled);
    let t = translate(
        &args(&format!("{base} --skip-jwt-bearer-tokens=0")),
        &[],
        &no_file,
    )
    .unwrap();
    assert!(!config(&t).bearer.enabled);
    let problems =
        translate(&args(&format!("{base} --cookie-secure=yes")), &[], &no_file).unwrap_err();
    assert_eq!(problems, ["--cookie-secure: \"yes\" is not true or false"]);
}
