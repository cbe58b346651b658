//! Which command and which configuration a command line names, and what `convert` says.

use super::*;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn env(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn native(path: &str) -> Source {
    Source::Native(PathBuf::from(path))
}

#[test]
fn a_lone_native_config_runs_it_with_or_without_run() {
    for prefix in [&[][..], &["run"][..]] {
        for form in [
            &["--config", "p.toml"][..],
            &["-c", "p.toml"][..],
            &["--config=p.toml"][..],
        ] {
            let line = args(&[prefix, form].concat());
            assert_eq!(parse(&line, &[]), Action::Run(native("p.toml")), "{line:?}");
        }
        let line = args(prefix);
        let from_env = env(&[("PORTCULLIS_CONFIG", "/etc/p.toml")]);
        assert_eq!(parse(&line, &from_env), Action::Run(native("/etc/p.toml")));
        assert!(matches!(parse(&line, &[]), Action::Usage(u) if u.contains("--config FILE.toml")));
    }
    let line = args(&["check", "--config", "p.toml"]);
    assert_eq!(parse(&line, &[]), Action::Check(native("p.toml")));
}

#[test]
fn anything_else_is_an_oauth2_proxy_configuration_and_reaches_it_raw() {
    let cases: &[&[&str]] = &[
        &[
            "--provider=keycloak-oidc",
            "--client-id",
            "app",
            "--no-such-flag",
        ],
        &["--config", "oauth2-proxy.cfg"],
        &["--config=oauth2-proxy.cfg"],
        &["--config", "p.toml", "--cookie-secure=false"],
        &["-x"],
        &["stray"],
    ];
    for case in cases {
        let line = args(case);
        let raw = Source::OAuth2Proxy(line.clone());
        assert_eq!(parse(&line, &[]), Action::Run(raw), "{line:?}");
        let checked = parse(&args(&[&["check"][..], case].concat()), &[]);
        assert_eq!(checked, Action::Check(Source::OAuth2Proxy(line.clone())));
        let converted = parse(&args(&[&["convert"][..], case].concat()), &[]);
        assert_eq!(converted, Action::Convert(line));
    }
    // Any OAUTH2_PROXY_* variable makes even a native-looking command line oauth2-proxy's.
    let oauth2_env = env(&[("OAUTH2_PROXY_CLIENT_ID", "app")]);
    let line = args(&["--config", "p.toml"]);
    assert_eq!(
        parse(&line, &oauth2_env),
        Action::Run(Source::OAuth2Proxy(line))
    );
    assert_eq!(
        parse(&[], &oauth2_env),
        Action::Run(Source::OAuth2Proxy(Vec::new()))
    );
}

#[test]
fn help_and_version_print_and_a_bad_command_is_a_usage_error() {
    let Action::Print(short) = parse(&args(&["-h"]), &[]) else {
        panic!("-h: no help");
    };
    assert!(
        short.contains("check") && short.contains("convert"),
        "{short}"
    );
    for line in [&["--help"][..], &["--provider=oidc", "--help"], &["help"]] {
        let Action::Print(text) = parse(&args(line), &[]) else {
            panic!("{line:?}: no help");
        };
        for word in ["check", "convert", "oauth2-proxy", "OAUTH2_PROXY_", ".toml"] {
            assert!(text.contains(word), "{line:?}: {word} missing:\n{text}");
        }
    }
    for line in [&["help", "convert"][..], &["convert", "--help"]] {
        assert!(
            matches!(parse(&args(line), &[]), Action::Print(t) if t.contains("stdout")),
            "{line:?}"
        );
    }
    let version = parse(&args(&["--version"]), &[]);
    assert_eq!(
        version,
        Action::Print(format!("portcullis {}\n", env!("CARGO_PKG_VERSION")))
    );
    assert!(matches!(
        parse(&args(&["help", "nosuch"]), &[]),
        Action::Usage(_)
    ));
}

#[test]
fn convert_refuses_nothing_and_names_inline_secrets() {
    assert!(convert(&[], &[]).is_err());
    let line = args(&[
        "--provider=oidc",
        "--oidc-issuer-url=https://idp.example.com/realms/r",
        "--client-id=app",
        "--client-secret=s3cret",
        "--cookie-secret=0123456789abcdef0123456789abcdef",
        "--redirect-url=https://auth.example.com/oauth2/callback",
        "--email-domain=*",
    ]);
    let converted = convert(&line, &[]).unwrap();
    assert!(converted.toml.starts_with("# The native configuration"));
    let config = Config::from_toml(&converted.toml, &[]).unwrap();
    assert_eq!(config.oidc.client_id, "app");
    let notice = converted.notices.join("\n");
    assert!(notice.contains("oidc.client_secret (use oidc.client_secret_file)"));
    assert!(notice.contains("session.cookie_secret (use session.cookie_secret_file)"));
    // A translation that validation refuses is refused, naming the flag.
    let mut no_issuer = line.clone();
    no_issuer.remove(1);
    let problems = convert(&no_issuer, &[]).unwrap_err().join("\n");
    assert!(
        problems.contains("--oidc-issuer-url (oidc.issuer_url)"),
        "{problems}"
    );
}
