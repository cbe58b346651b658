//! oauth2-proxy's own configuration, accepted as it is: its command-line flags (`--flag=value`,
//! `--flag value`, repeated list flags), its `OAUTH2_PROXY_*` environment (plural names for
//! lists) and its `--config` `.cfg` file (TOML with the flags' snake_case names). Precedence
//! is oauth2-proxy's: flags, then environment, then the file.
//!
//! The settings are translated into the native configuration (a TOML table of the keys in
//! [`super::raw::KEYS`]), which then goes through the same validation as a native file. Every
//! flag oauth2-proxy documents is in [`FLAGS`] with what Portcullis does with it: maps it
//! onto a native key, accepts it as having no effect here (and says why), or refuses it. An
//! unknown or refused flag is a problem; every problem is reported at once.
//!
//! Pure: the caller passes the arguments, the environment and a file reader.

use base64::Engine;
use std::path::Path;

/// How a flag's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Bool,
    /// Repeatable on the command line; comma-separated in the environment; an array in the
    /// `.cfg` file. The environment and file names are plural (`email_domains`).
    List,
}

/// What Portcullis does with a flag.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// Sets a native key, converted by [`convert`].
    Key(&'static str),
    /// Accepted and without effect here, for this reason (printed on stderr when set).
    NoEffect(&'static str),
    /// Not accepted: what to do instead.
    Refused(&'static str),
}

struct Flag {
    name: &'static str,
    kind: Kind,
    action: Action,
}

const fn flag(name: &'static str, kind: Kind, action: Action) -> Flag {
    Flag { name, kind, action }
}

use Action::{Key, NoEffect, Refused};
use Kind::{Bool, List, Str};

/// Every flag handled in compatibility mode. Anything else is unknown.
const FLAGS: &[Flag] = &[
    flag(
        "config",
        Str,
        NoEffect("read as the oauth2-proxy .cfg file"),
    ),
    flag("provider", Str, Key("provider")),
    flag("oidc-issuer-url", Str, Key("oidc.issuer_url")),
    flag("client-id", Str, Key("oidc.client_id")),
    flag("client-secret", Str, Key("oidc.client_secret")),
    flag("client-secret-file", Str, Key("oidc.client_secret_file")),
    flag("scope", Str, Key("oidc.scopes")),
    flag("provider-ca-file", List, Key("oidc.ca_file")),
    flag("code-challenge-method", Str, Key("code_challenge_method")),
    flag("cookie-secret", Str, Key("session.cookie_secret")),
    flag("cookie-secret-file", Str, Key("session.cookie_secret_file")),
    flag("cookie-name", Str, Key("session.cookie_name")),
    flag("cookie-domain", List, Key("session.cookie_domain")),
    flag("cookie-secure", Bool, Key("session.cookie_secure")),
    flag("cookie-expire", Str, Key("session.expire")),
    flag("cookie-refresh", Str, Key("session.refresh")),
    flag("cookie-samesite", Str, Key("cookie_samesite")),
    flag("cookie-httponly", Bool, Key("cookie_httponly")),
    flag("session-store-type", Str, Key("session.store")),
    flag("redis-connection-url", Str, Key("session.redis_url")),
    flag("redis-ca-path", Str, Key("session.redis_ca_file")),
    flag("email-domain", List, Key("authz.email_domains")),
    flag("allowed-group", List, Key("authz.allowed_groups")),
    flag("allowed-role", List, Key("authz.allowed_roles")),
    flag("skip-auth-preflight", Bool, Key("authz.skip_preflight")),
    flag("whitelist-domain", List, Key("redirect.allowed_domains")),
    flag("redirect-url", Str, Key("public_url")),
    flag("http-address", Str, Key("listen")),
    flag("https-address", Str, Key("https_address")),
    flag("tls-cert-file", Str, Key("tls_cert_file")),
    flag("tls-key-file", Str, Key("tls_key_file")),
    flag("pass-access-token", Bool, Key("headers.pass_access_token")),
    flag("skip-jwt-bearer-tokens", Bool, Key("bearer.enabled")),
    flag("oidc-extra-audience", List, Key("bearer.audiences")),
    flag(
        "skip-provider-button",
        Bool,
        NoEffect("Portcullis never shows a provider button: it goes straight to the IdP"),
    ),
    flag(
        "silence-ping-logging",
        Bool,
        NoEffect("Portcullis does not log /ping and /ready requests"),
    ),
    flag(
        "show-debug-on-error",
        Bool,
        NoEffect("error pages never show internals; the log has the details"),
    ),
    flag(
        "upstream",
        List,
        NoEffect(
            "Portcullis is a forward-auth service and proxies nothing (static:// and file:///dev/null only)",
        ),
    ),
    flag(
        "reverse-proxy",
        Bool,
        NoEffect(
            "X-Forwarded-* headers are trusted only from trusted_proxies (PORTCULLIS_TRUSTED_PROXIES), never from anyone",
        ),
    ),
    flag(
        "insecure-oidc-skip-nonce",
        Bool,
        NoEffect("the nonce is always sent and checked"),
    ),
    flag(
        "ssl-insecure-skip-verify",
        Bool,
        Refused(
            "Portcullis always verifies the IdP's certificate; give its CA with --provider-ca-file",
        ),
    ),
    flag(
        "insecure-oidc-allow-unverified-email",
        Bool,
        Refused("not supported yet: remove it (unverified emails are not trusted)"),
    ),
    flag(
        "pass-authorization-header",
        Bool,
        Key("headers.pass_authorization_header"),
    ),
    flag(
        "set-authorization-header",
        Bool,
        Key("headers.pass_authorization_header"),
    ),
    flag(
        "set-xauthrequest",
        Bool,
        NoEffect(
            "Portcullis always answers with X-Auth-Request-User, -Email, -Preferred-Username and -Groups (and -Access-Token with --pass-access-token)",
        ),
    ),
    flag(
        "pass-user-headers",
        Bool,
        NoEffect(
            "it sets headers on proxied requests, and Portcullis proxies nothing: the identity is in the X-Auth-Request-* answer headers",
        ),
    ),
    flag("extra-jwt-issuers", List, Key("bearer.issuers")),
    flag("prompt", Str, Key("oidc.prompt")),
    flag("acr-values", Str, Key("oidc.acr_values")),
    flag(
        "approval-prompt",
        Str,
        NoEffect("it is OAuth 2's approval_prompt; OpenID Connect logins use --prompt"),
    ),
    flag("oidc-email-claim", Str, Key("oidc.email_claim")),
    flag("oidc-groups-claim", Str, Key("oidc.groups_claim")),
    flag("user-id-claim", Str, Key("oidc.user_id_claim")),
    flag("skip-auth-route", List, Key("rules")),
    flag("skip-auth-regex", List, Key("rules")),
    flag("api-route", List, Key("api_rules")),
    flag("redis-password", Str, Key("redis_password")),
    flag("footer", Str, Key("pages.footer")),
    flag(
        "custom-templates-dir",
        Str,
        NoEffect(
            "its Go templates are not read; the pages keep Portcullis' built-in look. Rewrite error.html with Portcullis' placeholders (docs/pages.md) and set PORTCULLIS_PAGES_TEMPLATES_DIR",
        ),
    ),
    flag(
        "banner",
        Str,
        NoEffect(
            "it brands the sign-in page, and Portcullis shows none (it goes straight to the IdP); PORTCULLIS_PAGES_LOGO_URL and --footer brand the error pages",
        ),
    ),
    flag(
        "custom-sign-in-logo",
        Str,
        NoEffect(
            "it brands the sign-in page, and Portcullis shows none (it goes straight to the IdP); PORTCULLIS_PAGES_LOGO_URL puts a logo on the error pages",
        ),
    ),
    flag("metrics-address", Str, Key("metrics_listen")),
    // Every other flag oauth2-proxy v7.15 defines (src/config/oauth2_proxy/flags.tsv; a test
    // keeps this table complete).
    flag("keycloak-group", List, Key("authz.allowed_groups")),
    flag("trusted-proxy-ip", List, Key("trusted_proxies")),
    flag(
        "force-code-challenge-method",
        Str,
        Key("code_challenge_method"),
    ),
    flag(
        "authenticated-emails-file",
        Str,
        Key("authenticated_emails_file"),
    ),
    flag(
        "prefer-email-to-user",
        Bool,
        NoEffect(
            "it changes X-Forwarded-User on proxied requests, and Portcullis proxies nothing (X-Auth-Request-User is the user id claim)",
        ),
    ),
    flag("redis-username", Str, Key("redis_username")),
    flag("cookie-path", Str, Key("cookie_path")),
    flag("ping-path", Str, Key("ping_path")),
    flag("ready-path", Str, Key("ready_path")),
    flag("proxy-prefix", Str, Key("proxy_prefix")),
    flag("allow-query-semicolons", Bool, NoEffect(PROXIES_NOTHING)),
    flag("disable-keep-alives", Bool, NoEffect(PROXIES_NOTHING)),
    flag("flush-interval", Str, NoEffect(PROXIES_NOTHING)),
    flag("pass-host-header", Bool, NoEffect(PROXIES_NOTHING)),
    flag("proxy-websockets", Bool, NoEffect(PROXIES_NOTHING)),
    flag("upstream-timeout", Str, NoEffect(PROXIES_NOTHING)),
    flag(
        "ssl-upstream-insecure-skip-verify",
        Bool,
        NoEffect(PROXIES_NOTHING),
    ),
    flag("pass-basic-auth", Bool, NoEffect(PROXIES_NOTHING)),
    flag("basic-auth-password", Str, NoEffect(PROXIES_NOTHING)),
    flag(
        "skip-auth-strip-headers",
        Bool,
        NoEffect("the identity headers in Portcullis' answer always replace a client's own copies"),
    ),
    flag("auth-logging", Bool, NoEffect(LOGS)),
    flag("auth-logging-format", Str, NoEffect(LOGS)),
    flag("request-logging", Bool, NoEffect(LOGS)),
    flag("request-logging-format", Str, NoEffect(LOGS)),
    flag("standard-logging", Bool, NoEffect(LOGS)),
    flag("standard-logging-format", Str, NoEffect(LOGS)),
    flag("errors-to-info-log", Bool, NoEffect(LOGS)),
    flag("exclude-logging-path", List, NoEffect(LOGS)),
    flag("logging-filename", Str, NoEffect(LOGS)),
    flag("logging-compress", Bool, NoEffect(LOGS)),
    flag("logging-local-time", Bool, NoEffect(LOGS)),
    flag("logging-max-age", Str, NoEffect(LOGS)),
    flag("logging-max-backups", Str, NoEffect(LOGS)),
    flag("logging-max-size", Str, NoEffect(LOGS)),
    flag(
        "request-id-header",
        Str,
        NoEffect("not yet: Portcullis does not log request ids"),
    ),
    flag(
        "cookie-csrf-expire",
        Str,
        NoEffect("a login attempt's state cookie lives 10 minutes"),
    ),
    flag(
        "cookie-csrf-per-request",
        Bool,
        NoEffect("every login attempt has a state cookie of its own already (parallel tabs work)"),
    ),
    flag(
        "cookie-csrf-per-request-limit",
        Str,
        NoEffect("at most 5 pending login attempts per browser are kept"),
    ),
    flag(
        "cookie-csrf-samesite",
        Str,
        NoEffect("the state cookie is SameSite=Lax, which the login redirect needs"),
    ),
    flag(
        "encode-state",
        Bool,
        NoEffect("the state is already URL-safe random text"),
    ),
    flag(
        "display-htpasswd-form",
        Bool,
        NoEffect("Portcullis shows no sign-in form: users sign in at the IdP"),
    ),
    flag(
        "provider-display-name",
        Str,
        NoEffect("Portcullis shows no sign-in page"),
    ),
    flag(
        "gcp-healthchecks",
        Bool,
        NoEffect("/ping and /ready are always served"),
    ),
    flag(
        "ping-user-agent",
        Str,
        NoEffect("health checks use /ping; a User-Agent gets no special answer"),
    ),
    flag(
        "real-client-ip-header",
        Str,
        NoEffect("the client address is read from X-Forwarded-For sent by trusted_proxies"),
    ),
    flag(
        "force-https",
        Bool,
        NoEffect(
            "redirecting http to https is the proxy's job (e.g. a Traefik entryPoint redirection)",
        ),
    ),
    flag(
        "session-cookie-minimal",
        Bool,
        NoEffect(
            "Portcullis keeps only the tokens it needs (the refresh token, and the others only when they are passed upstream)",
        ),
    ),
    flag(
        "skip-claims-from-profile-url",
        Bool,
        NoEffect("Portcullis reads claims from the ID and access tokens only"),
    ),
    flag(
        "oidc-enabled-signing-alg",
        List,
        NoEffect(
            "ID tokens must be signed with an asymmetric algorithm (RS*, PS*, ES*, EdDSA); HS* and none are always refused",
        ),
    ),
    flag(
        "tls-min-version",
        Str,
        NoEffect("HTTPS is rustls: TLS 1.2 and 1.3 only"),
    ),
    flag(
        "tls-cipher-suite",
        List,
        NoEffect("HTTPS is rustls: its safe cipher suites only"),
    ),
    flag(
        "use-system-trust-store",
        Bool,
        NoEffect("--provider-ca-file is trusted in addition to the system's roots"),
    ),
    flag(
        "backend-logout-url",
        Str,
        NoEffect(
            "sign-out ends the IdP session through its end_session_endpoint (RP-initiated logout)",
        ),
    ),
    flag(
        "bearer-token-login-fallback",
        Bool,
        NoEffect("an invalid bearer token gets 401 (browsers are not sent to log in with one)"),
    ),
    flag(
        "force-json-errors",
        Bool,
        Refused(
            "not translated: mark the API paths with [[rules]] login_redirect = false (--api-route); errors are JSON for clients that do not ask for HTML",
        ),
    ),
    flag(
        "auth-request-response-mode",
        Str,
        Refused("Portcullis always uses response_mode=query; remove it"),
    ),
    flag("login-url", Str, Refused(DISCOVERY)),
    flag("redeem-url", Str, Refused(DISCOVERY)),
    flag("profile-url", Str, Refused(DISCOVERY)),
    flag("validate-url", Str, Refused(DISCOVERY)),
    flag("oidc-jwks-url", Str, Refused(DISCOVERY)),
    flag("skip-oidc-discovery", Bool, Refused(DISCOVERY)),
    flag(
        "oidc-public-key-file",
        List,
        Refused(
            "keys come from the issuer's JWKS (discovery); for another issuer use --extra-jwt-issuers",
        ),
    ),
    flag(
        "oidc-audience-claim",
        List,
        Refused("the audience is always the aud claim (and azp); remove it"),
    ),
    flag(
        "insecure-oidc-skip-issuer-verification",
        Bool,
        Refused("the issuer is always verified against discovery; give the exact issuer URL"),
    ),
    flag(
        "relative-redirect-url",
        Bool,
        Refused("--redirect-url must be an absolute URL: Portcullis' callback has one address"),
    ),
    flag(
        "trusted-ip",
        List,
        Refused(
            "letting addresses bypass authentication is not supported (addresses can be forged behind proxies); make paths public with --skip-auth-route",
        ),
    ),
    flag(
        "htpasswd-file",
        Str,
        Refused("htpasswd logins are not supported: users sign in at the IdP"),
    ),
    flag(
        "htpasswd-user-group",
        List,
        Refused("htpasswd logins are not supported: users sign in at the IdP"),
    ),
    flag(
        "set-basic-auth",
        Bool,
        Refused("not supported: the identity is in the X-Auth-Request-* answer headers"),
    ),
    flag(
        "signature-key",
        Str,
        Refused("GAP-Signature signs proxied requests, and Portcullis proxies nothing"),
    ),
    flag(
        "metrics-secure-address",
        Str,
        Refused(
            "not supported yet: metrics_listen (--metrics-address) serves plain HTTP; in the mesh, Linkerd encrypts it",
        ),
    ),
    flag(
        "metrics-tls-cert-file",
        Str,
        Refused(
            "not supported yet: metrics_listen (--metrics-address) serves plain HTTP; in the mesh, Linkerd encrypts it",
        ),
    ),
    flag(
        "metrics-tls-key-file",
        Str,
        Refused(
            "not supported yet: metrics_listen (--metrics-address) serves plain HTTP; in the mesh, Linkerd encrypts it",
        ),
    ),
    flag("redis-use-sentinel", Bool, Key("redis_use_sentinel")),
    flag(
        "redis-sentinel-master-name",
        Str,
        Key("session.redis_sentinel_master"),
    ),
    flag(
        "redis-sentinel-connection-urls",
        List,
        Key("redis_sentinel_connection_urls"),
    ),
    flag(
        "redis-sentinel-password",
        Str,
        Refused(REDIS_SENTINEL_PASSWORD),
    ),
    flag("redis-use-cluster", Bool, Key("redis_use_cluster")),
    flag(
        "redis-cluster-connection-urls",
        List,
        Key("redis_cluster_connection_urls"),
    ),
    flag(
        "redis-connection-idle-timeout",
        Str,
        NoEffect(
            "Portcullis keeps one multiplexed connection per replica and reconnects by itself",
        ),
    ),
    flag(
        "redis-insecure-skip-tls-verify",
        Bool,
        Refused("Redis' certificate is always verified; give its CA with --redis-ca-path"),
    ),
    flag("pubjwk-url", Str, Refused(OTHER_PROVIDER)),
    flag("jwt-key", Str, Refused(OTHER_PROVIDER)),
    flag("jwt-key-file", Str, Refused(OTHER_PROVIDER)),
    flag("resource", Str, Refused(OTHER_PROVIDER)),
    flag("azure-tenant", Str, Refused(OTHER_PROVIDER)),
    flag("azure-graph-group-field", Str, Refused(OTHER_PROVIDER)),
    flag("entra-id-allowed-tenant", List, Refused(OTHER_PROVIDER)),
    flag(
        "entra-id-federated-token-auth",
        Bool,
        Refused(OTHER_PROVIDER),
    ),
    flag("bitbucket-repository", Str, Refused(OTHER_PROVIDER)),
    flag("bitbucket-team", Str, Refused(OTHER_PROVIDER)),
    flag("bitbucket-workspace", Str, Refused(OTHER_PROVIDER)),
    flag("github-org", Str, Refused(OTHER_PROVIDER)),
    flag("github-repo", Str, Refused(OTHER_PROVIDER)),
    flag("github-team", Str, Refused(OTHER_PROVIDER)),
    flag("github-token", Str, Refused(OTHER_PROVIDER)),
    flag("github-user", List, Refused(OTHER_PROVIDER)),
    flag("gitlab-group", List, Refused(OTHER_PROVIDER)),
    flag("gitlab-project", List, Refused(OTHER_PROVIDER)),
    flag("google-admin-api-user-scope", Str, Refused(OTHER_PROVIDER)),
    flag("google-admin-email", Str, Refused(OTHER_PROVIDER)),
    flag("google-group", List, Refused(OTHER_PROVIDER)),
    flag("google-service-account-json", Str, Refused(OTHER_PROVIDER)),
    flag("google-target-principal", Str, Refused(OTHER_PROVIDER)),
    flag(
        "google-use-application-default-credentials",
        Str,
        Refused(OTHER_PROVIDER),
    ),
    flag("google-use-organization-id", Str, Refused(OTHER_PROVIDER)),
];

/// Why the upstream-proxying flags do nothing here.
const PROXIES_NOTHING: &str = "Portcullis is a forward-auth service and proxies nothing";
/// Why the logging flags do nothing here.
const LOGS: &str =
    "Portcullis logs to stderr (JSON with log_format = \"json\"; levels with PORTCULLIS_LOG)";
/// Why the endpoint flags are refused.
const DISCOVERY: &str = "Portcullis reads every endpoint from the issuer's OIDC discovery document (--oidc-issuer-url); remove it";
/// Why the Sentinels' inline password is refused.
const REDIS_SENTINEL_PASSWORD: &str = "put the Sentinels' password in a file and name it with session.redis_sentinel_password_file (a Kubernetes Secret mount)";
/// Why other providers' flags are refused.
const OTHER_PROVIDER: &str = "an option of another oauth2-proxy provider: Portcullis speaks OpenID Connect (keycloak-oidc, oidc)";
/// What Portcullis does with every flag in [`FLAGS`], as the Markdown table of
/// `docs/oauth2-proxy-flags.md` (a test keeps that file equal to this).
pub fn compatibility_table() -> String {
    let mut rows: Vec<(&str, String, String)> = FLAGS
        .iter()
        .map(|f| {
            let (verdict, what) = match f.action {
                Key(k) => ("translated", translated_as(k)),
                NoEffect(why) => ("accepted, no effect", why.to_string()),
                Refused(why) => ("refused (exit 64)", why.to_string()),
            };
            (f.name, verdict.to_string(), what)
        })
        .collect();
    rows.sort();
    let mut out = String::from("| flag | Portcullis | what it does here |\n| --- | --- | --- |\n");
    for (name, verdict, what) in rows {
        out.push_str(&format!(
            "| `--{name}` | {verdict} | {} |\n",
            what.replace('|', "\\|")
        ));
    }
    out
}

/// How a [`Key`] action reads in the compatibility table.
fn translated_as(key: &str) -> String {
    let text = match key {
        "provider" => "checked: keycloak-oidc or oidc (OpenID Connect)",
        "code_challenge_method" => "checked: S256 only (PKCE S256 is always used)",
        "cookie_samesite" => "checked: lax only",
        "cookie_httponly" => "checked: true only (cookies are always HttpOnly)",
        "cookie_path" => "checked: / only",
        "ping_path" => "checked: /ping only",
        "ready_path" => "checked: /ready only",
        "proxy_prefix" => "checked: /oauth2 only",
        "public_url" => "`public_url` (the URL without /oauth2/callback)",
        "https_address" => "`listen`, serving HTTPS (with --tls-cert-file/--tls-key-file)",
        "redis_password" => "into `session.redis_url` (cluster: into each of `session.redis_urls`)",
        "redis_username" => {
            "into `session.redis_url` (Redis 6 ACL user); Sentinel or cluster: `session.redis_username`"
        }
        "redis_use_sentinel" => "`session.redis_mode = \"sentinel\"`",
        "redis_use_cluster" => "`session.redis_mode = \"cluster\"`",
        "redis_sentinel_connection_urls" => "`session.redis_urls` (with --redis-use-sentinel)",
        "redis_cluster_connection_urls" => "`session.redis_urls` (with --redis-use-cluster)",
        "rules" => "public `[[rules]]` (anchored plain paths only; other regexes refused)",
        "api_rules" => "`[[rules]]` with `login_redirect = false` (anchored plain paths only)",
        "authenticated_emails_file" => "`authz.allowed_emails` (the file's lines)",
        "bearer.issuers" => "`[[bearer.issuers]]` (ISSUER=AUDIENCE)",
        "headers.pass_authorization_header" => {
            "`headers.pass_authorization_header` with `authorization_token = \"id\"`"
        }
        other => return format!("`{other}`"),
    };
    text.to_string()
}

/// The native configuration an oauth2-proxy setup comes to, and what was said about it.
#[derive(Debug)]
pub struct Translated {
    /// The native configuration, as TOML text.
    pub toml: String,
    /// Lines for stderr: flags without effect here, secrets stretched.
    pub notices: Vec<String>,
}

/// Whether this invocation is oauth2-proxy's rather than native: any argument other than a
/// native `--config FILE.toml`, or any `OAUTH2_PROXY_*` variable in the environment.
pub fn is_oauth2_proxy_invocation(args: &[String], env: &[(String, String)]) -> bool {
    if env.iter().any(|(k, _)| k.starts_with("OAUTH2_PROXY_")) {
        return true;
    }
    match args {
        [] => false,
        [flag, path] if flag == "--config" || flag == "-c" => !path.ends_with(".toml"),
        [one] => {
            let native = one
                .strip_prefix("--config=")
                .is_some_and(|p| p.ends_with(".toml"));
            !native
        }
        _ => true,
    }
}

/// One setting, as found: its flag spelling (for messages) and its values.
struct Setting {
    flag: &'static Flag,
    values: Vec<String>,
}

/// Translates oauth2-proxy flags, environment and `.cfg` file into native configuration.
/// `Err` lists every problem (unknown flags, refused flags, unreadable files, bad values).
pub fn translate(
    args: &[String],
    env: &[(String, String)],
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Translated, Vec<String>> {
    let mut problems = Vec::new();
    let from_flags = parse_args(args, &mut problems);
    let from_env = parse_env(env, &mut problems);
    let cfg_path = find(&from_flags, "config")
        .or_else(|| find(&from_env, "config"))
        .and_then(|s| s.values.last().cloned());
    let from_file = match cfg_path {
        None => Vec::new(),
        Some(path) => match read_file(Path::new(&path)) {
            Ok(text) => parse_cfg(&text, &mut problems),
            Err(e) => {
                problems.push(format!("--config: cannot read {path}: {e}"));
                Vec::new()
            }
        },
    };
    // Flags win over the environment, the environment over the file.
    let mut settings: Vec<Setting> = Vec::new();
    for source in [from_flags, from_env, from_file] {
        for s in source {
            if !settings.iter().any(|t| t.flag.name == s.flag.name) {
                settings.push(s);
            }
        }
    }
    // Booleans as Go's strconv.ParseBool reads them (`1`, `t`, `TRUE`, `True`…), so that no
    // spelling of `true` slips past a refused flag or turns a setting off.
    for s in &mut settings {
        if s.flag.kind != Kind::Bool {
            continue;
        }
        for v in &mut s.values {
            match go_bool(v) {
                Some(b) => *v = b.to_string(),
                None => problems.push(format!("--{}: {v:?} is not true or false", s.flag.name)),
            }
        }
    }
    // One listener: HTTPS wins when both addresses are given, so it is set last. The Redis
    // address lists need the mode (--redis-use-*), and the Redis password goes into the
    // connection URL(s): so after those.
    settings.sort_by_key(|s| match s.flag.name {
        "https-address" | "redis-sentinel-connection-urls" | "redis-cluster-connection-urls" => 1,
        "redis-password" | "redis-username" => 2,
        _ => 0,
    });
    let mut table = toml::Table::new();
    let mut notices = Vec::new();
    for s in &settings {
        match s.flag.action {
            // `--ssl-insecure-skip-verify=false` or an empty value asks for nothing.
            Action::Refused(why) if set_to_something(s) => {
                problems.push(format!("--{}: {why}", s.flag.name));
            }
            Action::Refused(_) => {}
            Action::NoEffect(why) => {
                if s.flag.name != "config" && set_to_something(s) {
                    notices.push(format!("--{}: no effect in Portcullis: {why}", s.flag.name));
                }
                if s.flag.name == "upstream" {
                    for u in &s.values {
                        // `file:///dev/null` is the oauth2-proxy Helm chart's default.
                        if !u.starts_with("static://") && u != "file:///dev/null" {
                            problems.push(format!(
                                "--upstream {u}: Portcullis proxies nothing; only static:// upstreams (forward-auth) are accepted"
                            ));
                        }
                    }
                }
            }
            Action::Key(key) => {
                if let Err(why) = convert(key, s, &mut table, &mut notices, read_file) {
                    problems.push(format!("--{}: {why}", s.flag.name));
                }
            }
        }
    }
    // oauth2-proxy requires a listed address *and* an allowed group or role; `[authz]` lets
    // any of them in, so translating both would let a listed address in without the group.
    let lists = ["authz.allowed_groups", "authz.allowed_roles"];
    if get(&table, "authz.allowed_emails").is_some()
        && lists.iter().any(|k| get(&table, k).is_some())
    {
        problems.push("--authenticated-emails-file: can't be combined with --allowed-group or --allowed-role (oauth2-proxy requires both; Portcullis' [authz] lets either in): drop one, or write the policy natively".into());
    }
    // oauth2-proxy accepts tokens for the client id and the extra audiences; the native key
    // replaces the client-id default, so the client id is put back first.
    let client_id = table.get("oidc").and_then(|o| o.get("client_id")).cloned();
    if let (Some(id), Some(toml::Value::Table(bearer))) = (client_id, table.get_mut("bearer")) {
        if let Some(toml::Value::Array(auds)) = bearer.get_mut("audiences") {
            auds.insert(0, id);
        }
    }
    keep_cookies_secure(&mut table, &mut notices, &mut problems);
    if problems.is_empty() {
        Ok(Translated {
            toml: table.to_string(),
            notices,
        })
    } else {
        Err(problems)
    }
}

/// The flag whose native key is `key`, for messages about a translated configuration.
pub fn flag_for_key(key: &str) -> Option<&'static str> {
    FLAGS.iter().find_map(|f| match f.action {
        Action::Key(k) if k == key => Some(f.name),
        _ => None,
    })
}

fn find<'a>(settings: &'a [Setting], name: &str) -> Option<&'a Setting> {
    settings.iter().find(|s| s.flag.name == name)
}

/// A boolean in any spelling Go's `strconv.ParseBool` accepts.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn set_to_something(s: &Setting) -> bool {
    match s.flag.kind {
        Kind::Bool => s.values.last().is_some_and(|v| v == "true"),
        _ => s.values.iter().any(|v| !v.is_empty()),
    }
}

fn lookup(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name)
}

/// Adds one value of `flag` (a repeated list flag accumulates; any other flag's last value
/// wins, as with Go's pflag).
fn push(settings: &mut Vec<Setting>, flag: &'static Flag, value: String) {
    match settings.iter_mut().find(|s| s.flag.name == flag.name) {
        Some(s) if flag.kind == Kind::List => s.values.push(value),
        Some(s) => s.values = vec![value],
        None => settings.push(Setting {
            flag,
            values: vec![value],
        }),
    }
}

fn parse_args(args: &[String], problems: &mut Vec<String>) -> Vec<Setting> {
    let mut settings = Vec::new();
    let mut unknown = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            problems.push(format!(
                "{arg}: unexpected argument (oauth2-proxy flags start with --)"
            ));
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(flag) = lookup(name) else {
            unknown.push(format!("--{name}"));
            // `--unknown value`: skip the value too, so it is not read as a flag.
            if inline.is_none() && args.get(i).is_some_and(|a| !a.starts_with('-')) {
                i += 1;
            }
            continue;
        };
        let value = match (inline, flag.kind) {
            (Some(v), _) => v,
            (None, Kind::Bool) => "true".to_string(),
            (None, _) => match args.get(i) {
                Some(v) => {
                    i += 1;
                    v.clone()
                }
                None => {
                    problems.push(format!("--{name}: needs a value"));
                    continue;
                }
            },
        };
        // Booleans are checked with the other sources' (Go's spellings: `go_bool`).
        push(&mut settings, flag, value);
    }
    if !unknown.is_empty() {
        problems.push(format!(
            "unknown flags: {} (not oauth2-proxy flags Portcullis knows; see `portcullis --help` and the oauth2-proxy compatibility table in docs/deploy.md)",
            unknown.join(", ")
        ));
    }
    settings
}

/// The name a flag has in the environment and the `.cfg` file: snake_case, plural for lists.
fn file_name(flag: &Flag) -> String {
    let snake = flag.name.replace('-', "_");
    match (flag.kind, flag.name) {
        // Already plural, or singular in oauth2-proxy's own names.
        (
            Kind::List,
            "extra-jwt-issuers"
            | "skip-auth-regex"
            | "redis-sentinel-connection-urls"
            | "redis-cluster-connection-urls",
        ) => snake,
        (Kind::List, _) => format!("{snake}s"),
        _ => snake,
    }
}

fn parse_env(env: &[(String, String)], problems: &mut Vec<String>) -> Vec<Setting> {
    let mut settings = Vec::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("OAUTH2_PROXY_") else {
            continue;
        };
        let name = rest.to_ascii_lowercase();
        let Some(flag) = FLAGS.iter().find(|f| file_name(f) == name) else {
            problems.push(format!(
                "{k}: not an oauth2-proxy setting Portcullis knows (remove it)"
            ));
            continue;
        };
        if flag.kind == Kind::List {
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                push(&mut settings, flag, item.to_string());
            }
        } else {
            push(&mut settings, flag, v.clone());
        }
    }
    settings
}

fn parse_cfg(text: &str, problems: &mut Vec<String>) -> Vec<Setting> {
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!(
                "--config: not an oauth2-proxy .cfg file: {}",
                e.message()
            ));
            return Vec::new();
        }
    };
    let mut settings = Vec::new();
    for (k, v) in table {
        let Some(flag) = FLAGS.iter().find(|f| file_name(f) == k) else {
            problems.push(format!(
                "--config: {k}: not an oauth2-proxy setting Portcullis knows"
            ));
            continue;
        };
        let values: Option<Vec<String>> = match (&v, flag.kind) {
            (toml::Value::Array(items), Kind::List) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect(),
            (toml::Value::String(s), _) => Some(vec![s.clone()]),
            (toml::Value::Boolean(b), Kind::Bool) => Some(vec![b.to_string()]),
            (toml::Value::Integer(n), Kind::Str) => Some(vec![n.to_string()]),
            _ => None,
        };
        match values {
            Some(vs) => {
                for value in vs {
                    push(&mut settings, flag, value);
                }
            }
            None => problems.push(format!("--config: {k}: wrong type")),
        }
    }
    settings
}

/// `--cookie-secure=false`: harmless where browsers reach Portcullis over https (the cookies
/// stay Secure, and say so), allowed on a loopback http URL (a laptop), refused anywhere else:
/// the session cookie would cross the network in cleartext.
fn keep_cookies_secure(
    table: &mut toml::Table,
    notices: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    let insecure = table
        .get("session")
        .and_then(|s| s.get("cookie_secure"))
        .and_then(toml::Value::as_bool)
        == Some(false);
    if !insecure {
        return;
    }
    let public = table
        .get("public_url")
        .and_then(toml::Value::as_str)
        .and_then(|u| url::Url::parse(u).ok());
    let loopback = |u: &url::Url| match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match public {
        Some(u) if u.scheme() == "https" => {
            set(table, "session.cookie_secure", toml::Value::Boolean(true));
            notices.push(
                "--cookie-secure=false: the cookies stay Secure: browsers reach Portcullis over https, so nothing needs them insecure".into(),
            );
        }
        Some(u) if loopback(&u) => {}
        _ => problems.push(
            "--cookie-secure=false: refused: the session cookie would cross the network in cleartext; serve Portcullis over https (or on localhost)".into(),
        ),
    }
}

/// The value at a dotted native key (`section.key`), if set.
fn get<'t>(table: &'t toml::Table, key: &str) -> Option<&'t toml::Value> {
    match key.split_once('.') {
        None => table.get(key),
        Some((section, k)) => table.get(section)?.get(k),
    }
}

fn set(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_string(), value);
        }
        Some((section, k)) => {
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                t.insert(k.to_string(), value);
            }
        }
    }
}

fn last(s: &Setting) -> String {
    s.values.last().cloned().unwrap_or_default()
}

/// Go durations (`168h0m0s`, `1h`, `0`) to humantime text.
fn go_duration(text: &str) -> Result<String, &'static str> {
    let t = text.trim();
    if t == "0" || t.is_empty() {
        return Ok("0s".into());
    }
    humantime::parse_duration(t)
        .map(|d| format!("{}s", d.as_secs()))
        .map_err(|_| "must be a duration like 168h0m0s")
}

/// oauth2-proxy accepts a cookie secret of 16, 24 or 32 bytes, given raw or base64. The
/// native key wants 32 bytes; a shorter secret is stretched with HKDF-SHA256.
fn cookie_key(secret: &str, notices: &mut Vec<String>) -> Result<String, &'static str> {
    let s = secret.trim();
    let decoded = super::decode_base64(s).filter(|b| matches!(b.len(), 16 | 24 | 32));
    let bytes = match decoded {
        Some(b) => b,
        None if matches!(s.len(), 16 | 24 | 32) => s.as_bytes().to_vec(),
        None => return Err("must be 16, 24 or 32 bytes, raw or base64 (openssl rand -base64 32)"),
    };
    let key = if bytes.len() == 32 {
        bytes
    } else {
        notices.push(format!(
            "--cookie-secret: {} bytes, stretched to 32 with HKDF-SHA256; a 32-byte random secret (openssl rand -base64 32) has more entropy than any stretch can add",
            bytes.len()
        ));
        stretch(&bytes)?
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}

fn stretch(secret: &[u8]) -> Result<Vec<u8>, &'static str> {
    use aws_lc_rs::hkdf;
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"portcullis/oauth2-proxy-cookie-secret")
        .extract(secret);
    let okm = prk
        .expand(&[b"cookie key"], Len32)
        .map_err(|_| "cannot derive a key")?;
    let mut out = vec![0u8; 32];
    okm.fill(&mut out).map_err(|_| "cannot derive a key")?;
    Ok(out)
}

fn convert(
    key: &str,
    s: &Setting,
    table: &mut toml::Table,
    notices: &mut Vec<String>,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<(), String> {
    let value = last(s);
    let text = |v: String| toml::Value::String(v);
    match key {
        "provider" => {
            if !matches!(value.as_str(), "keycloak-oidc" | "oidc" | "keycloak") {
                return Err(format!(
                    "{value:?} is not supported: Portcullis speaks OpenID Connect (keycloak-oidc, oidc)"
                ));
            }
        }
        "code_challenge_method" => {
            if value != "S256" {
                return Err("only S256 (Portcullis always uses PKCE with S256)".into());
            }
        }
        "cookie_samesite" => {
            if !matches!(value.to_ascii_lowercase().as_str(), "" | "lax") {
                return Err(
                    "only lax: Portcullis' cookies are SameSite=Lax, which the login redirect needs"
                        .into(),
                );
            }
        }
        "cookie_httponly" => {
            if value != "true" {
                return Err("Portcullis' cookies are always HttpOnly".into());
            }
        }
        "oidc.scopes" => {
            let scopes: Vec<toml::Value> =
                value.split_whitespace().map(|v| text(v.into())).collect();
            set(table, key, toml::Value::Array(scopes));
        }
        "oidc.ca_file" => {
            if s.values.len() > 1 {
                return Err(
                    "only one CA file is supported; put the certificates in one bundle".into(),
                );
            }
            set(table, key, text(value));
        }
        "session.cookie_domain" => {
            // Several: the longest one that holds the request's host wins, as in oauth2-proxy.
            let domains: Vec<String> = s
                .values
                .iter()
                .flat_map(|v| v.split(','))
                .map(|d| d.trim().trim_start_matches('.').to_string())
                .filter(|d| !d.is_empty())
                .collect();
            match domains.as_slice() {
                [one] => set(table, key, text(one.clone())),
                _ => set(
                    table,
                    "session.cookie_domains",
                    toml::Value::Array(domains.into_iter().map(text).collect()),
                ),
            }
        }
        "session.cookie_secret" => {
            set(table, key, text(cookie_key(&value, notices)?));
        }
        "session.cookie_secret_file" => {
            let secret =
                read_file(Path::new(&value)).map_err(|e| format!("cannot read {value}: {e}"))?;
            set(
                table,
                "session.cookie_secret",
                text(cookie_key(&secret, notices)?),
            );
        }
        "session.expire" | "session.refresh" => {
            set(table, key, text(go_duration(&value)?));
        }
        "session.store" => {
            if !matches!(value.as_str(), "cookie" | "redis") {
                return Err("must be cookie or redis".into());
            }
            set(table, key, text(value));
        }
        "headers.pass_authorization_header" => {
            // As oauth2-proxy: `Authorization: Bearer <ID token>` (a bearer request's own
            // token). Either flag set to true turns it on.
            if value == "true" {
                set(table, key, toml::Value::Boolean(true));
                set(table, "headers.authorization_token", text("id".into()));
            }
        }
        "session.cookie_secure"
        | "authz.skip_preflight"
        | "headers.pass_access_token"
        | "bearer.enabled" => {
            set(table, key, toml::Value::Boolean(value == "true"));
        }
        "authz.email_domains"
        | "authz.allowed_groups"
        | "authz.allowed_roles"
        | "redirect.allowed_domains"
        | "bearer.audiences"
        | "trusted_proxies" => {
            let items: Vec<toml::Value> = s
                .values
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                // oauth2-proxy's `*.example.com` is the native `.example.com`.
                .map(|v| match (key, v.strip_prefix("*.")) {
                    ("redirect.allowed_domains", Some(rest)) => format!(".{rest}"),
                    _ => v.to_string(),
                })
                .map(text)
                .collect();
            // --keycloak-group adds to --allowed-group.
            let mut all = get(table, key)
                .and_then(toml::Value::as_array)
                .cloned()
                .unwrap_or_default();
            all.extend(items);
            set(table, key, toml::Value::Array(all));
        }
        "authenticated_emails_file" => {
            let list =
                read_file(Path::new(&value)).map_err(|e| format!("cannot read {value}: {e}"))?;
            let emails = list
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| text(l.to_string()))
                .collect();
            set(table, "authz.allowed_emails", toml::Value::Array(emails));
        }
        "cookie_path" | "ping_path" | "ready_path" | "proxy_prefix" => {
            let fixed = match key {
                "cookie_path" => "/",
                "ping_path" => "/ping",
                "ready_path" => "/ready",
                _ => "/oauth2",
            };
            if value.trim_end_matches('/') != fixed.trim_end_matches('/') {
                return Err(format!(
                    "only {fixed}: Portcullis serves it at that fixed path; remove the flag"
                ));
            }
        }
        "public_url" => {
            // oauth2-proxy takes the callback URL; Portcullis the URL it is reached at.
            let url = url::Url::parse(&value).map_err(|_| "must be an absolute URL".to_string())?;
            let path = url.path().trim_end_matches('/');
            let base = path.strip_suffix("/oauth2/callback").ok_or_else(|| {
                "must end in /oauth2/callback (Portcullis serves the callback there)".to_string()
            })?;
            let mut public = url.clone();
            public.set_path(if base.is_empty() { "/" } else { base });
            set(table, key, text(public.to_string()));
        }
        // One listener: HTTPS wins when both are given (`--https-address` is set last). Like
        // oauth2-proxy, no HTTPS without a certificate: its Helm chart always passes
        // `--https-address`.
        "listen" | "https_address" | "metrics_listen" => {
            if key == "https_address" && get(table, "tls_cert_file").is_none() {
                notices.push(format!(
                    "--https-address {value}: not served without --tls-cert-file (as in oauth2-proxy)"
                ));
                return Ok(());
            }
            let addr = value
                .trim_start_matches("http://")
                .trim_start_matches("https://");
            let addr = match addr.strip_prefix(':') {
                Some(port) => format!("0.0.0.0:{port}"),
                None => addr.to_string(),
            };
            set(
                table,
                if key == "metrics_listen" {
                    key
                } else {
                    "listen"
                },
                text(addr),
            );
        }
        "bearer.issuers" => {
            // `issuer=audience`, repeated: one [[bearer.issuers]] per issuer.
            let mut issuers: Vec<(String, Vec<String>)> = Vec::new();
            for pair in s.values.iter().flat_map(|v| v.split(',')).map(str::trim) {
                let Some((iss, aud)) = pair
                    .split_once('=')
                    .filter(|(i, a)| !i.is_empty() && !a.is_empty())
                else {
                    return Err(format!("{pair:?} must be ISSUER_URL=AUDIENCE"));
                };
                match issuers.iter_mut().find(|(i, _)| i == iss) {
                    Some((_, auds)) => auds.push(aud.to_string()),
                    None => issuers.push((iss.to_string(), vec![aud.to_string()])),
                }
            }
            let tables = issuers
                .into_iter()
                .map(|(iss, auds)| {
                    let mut t = toml::Table::new();
                    t.insert("issuer_url".into(), text(iss));
                    t.insert(
                        "audiences".into(),
                        toml::Value::Array(auds.into_iter().map(text).collect()),
                    );
                    toml::Value::Table(t)
                })
                .collect();
            set(table, key, toml::Value::Array(tables));
        }
        "rules" | "api_rules" => {
            let route_kind = if key == "rules" {
                RouteKind::SkipAuth
            } else {
                RouteKind::Api
            };
            let mut rules = match table.get("rules") {
                Some(toml::Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            // Public routes go before API routes, whichever flag came first: in oauth2-proxy
            // a skip-auth route passes whether or not it is also an API route.
            let at = rules
                .iter()
                .position(|r| r.get("login_redirect").is_some())
                .filter(|_| route_kind == RouteKind::SkipAuth)
                .unwrap_or(rules.len());
            for (i, route) in s.values.iter().enumerate() {
                rules.insert(at + i, route_rule(route, route_kind, rules.len(), notices)?);
            }
            table.insert("rules".into(), toml::Value::Array(rules));
        }
        "pages.footer" => {
            // oauth2-proxy: "-" hides its default footer; Portcullis has none by default.
            if value == "-" || value.trim().is_empty() {
                return Ok(());
            }
            if value.contains('<') {
                notices.push(
                    "--footer: shown as plain text: Portcullis escapes markup in the footer (docs/pages.md)".into(),
                );
            }
            set(table, key, text(value));
        }
        "redis_use_sentinel" | "redis_use_cluster" => {
            if value == "true" {
                let mode = if key == "redis_use_sentinel" {
                    "sentinel"
                } else {
                    "cluster"
                };
                set(table, "session.redis_mode", text(mode.into()));
            }
        }
        "redis_sentinel_connection_urls" | "redis_cluster_connection_urls" => {
            // oauth2-proxy reads each list only in its mode.
            let mode = if key == "redis_sentinel_connection_urls" {
                "sentinel"
            } else {
                "cluster"
            };
            if redis_mode(table) == Some(mode) {
                let urls = s
                    .values
                    .iter()
                    .flat_map(|v| v.split(','))
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| text(v.to_string()))
                    .collect();
                set(table, "session.redis_urls", toml::Value::Array(urls));
            } else {
                notices.push(format!(
                    "--{}: ignored without --redis-use-{mode}, as oauth2-proxy does",
                    s.flag.name
                ));
            }
        }
        "redis_username" if redis_mode(table).is_some() => {
            set(table, "session.redis_username", text(value));
        }
        "redis_password" if redis_mode(table) == Some("sentinel") => {
            return Err("with --redis-use-sentinel, put the password in a file and name it with session.redis_password_file (a Kubernetes Secret mount)".into());
        }
        "redis_password" if redis_mode(table) == Some("cluster") => {
            // Every seed node's URL carries it (any of them may be the first one reached).
            let urls = get(table, "session.redis_urls")
                .and_then(toml::Value::as_array)
                .cloned()
                .ok_or("needs --redis-cluster-connection-urls")?;
            let mut with = Vec::new();
            for u in urls {
                let mut parsed = u
                    .as_str()
                    .and_then(|u| url::Url::parse(u).ok())
                    .ok_or("--redis-cluster-connection-urls holds a value that is not a URL")?;
                parsed
                    .set_password(Some(&value))
                    .map_err(|_| "cannot be put in --redis-cluster-connection-urls")?;
                with.push(text(parsed.to_string()));
            }
            set(table, "session.redis_urls", toml::Value::Array(with));
        }
        "redis_password" | "redis_username" => {
            // The native store reads the password from a file or the URL: here, the URL (and
            // the Redis 6 ACL user with it).
            let url = table
                .get("session")
                .and_then(|t| t.get("redis_url"))
                .and_then(toml::Value::as_str)
                .ok_or("needs --redis-connection-url")?;
            let mut parsed =
                url::Url::parse(url).map_err(|_| "--redis-connection-url is not a URL")?;
            let put = if key == "redis_password" {
                parsed.set_password(Some(&value))
            } else {
                parsed.set_username(&value)
            };
            put.map_err(|_| "cannot be put in --redis-connection-url")?;
            set(table, "session.redis_url", text(parsed.to_string()));
        }
        _ => set(table, key, text(value)),
    }
    Ok(())
}

/// `session.redis_mode` as translated so far (`None`: standalone).
fn redis_mode(table: &toml::Table) -> Option<&str> {
    get(table, "session.redis_mode").and_then(toml::Value::as_str)
}

/// Which oauth2-proxy route list a regex comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    /// `--skip-auth-route` / `--skip-auth-regex`: a public rule.
    SkipAuth,
    /// `--api-route`: an `authenticate` rule (with `[authz]`'s lists) that answers 401
    /// instead of a login redirect (`login_redirect = false`).
    Api,
}

/// An oauth2-proxy `--skip-auth-route` (`[METHOD=]REGEX`) or `--api-route` as a `[[rules]]`
/// table, when the regex is an anchored plain path: `^/health$` (that path), `^/static/` or
/// `^/static/.*` (everything under it). Other regexes can't be read as rule globs exactly and
/// are refused: guessing could make more of an app public (or less reachable) than meant.
fn route_rule(
    route: &str,
    kind: RouteKind,
    index: usize,
    notices: &mut Vec<String>,
) -> Result<toml::Value, String> {
    let (flag, action, advice) = match kind {
        RouteKind::SkipAuth => ("skip-auth-route", "public", "action = \"public\""),
        RouteKind::Api => ("api-route", "authenticate", "login_redirect = false"),
    };
    let (method, regex) = match route.split_once('=') {
        Some((m, r)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => (Some(m), r),
        _ => (None, route),
    };
    let refuse = |why: &str| -> Result<toml::Value, String> {
        Err(format!(
            "{route:?}: {why}; write it as a [[rules]] entry with {advice} and a path glob"
        ))
    };
    let Some(body) = regex.strip_prefix('^') else {
        return refuse("only anchored regexes (^/path) are translated");
    };
    let (body, exact) = match body.strip_suffix('$') {
        Some(b) => (b, true),
        None => (body.strip_suffix(".*").unwrap_or(body), false),
    };
    let mut path = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('.' | '-' | '/' | '_' | '~')) => path.push(e),
                _ => return refuse("only \\. \\- \\/ escapes are translated"),
            },
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => {
                return refuse("regex operators other than a final .* or $ are not translated");
            }
            c => path.push(c),
        }
    }
    if !path.starts_with('/') {
        return refuse("the path must start with /");
    }
    let glob = if exact {
        path.clone()
    } else {
        if !path.ends_with('/') {
            notices.push(format!(
                "--{flag} {route:?}: read as {}/** (the path and everything under it), not every path that merely starts with {path}",
                path.trim_end_matches('/')
            ));
        }
        format!("{}/**", path.trim_end_matches('/'))
    };
    let mut t = toml::Table::new();
    t.insert(
        "name".into(),
        toml::Value::String(format!("{flag}-{}", index + 1)),
    );
    t.insert(
        "paths".into(),
        toml::Value::Array(vec![toml::Value::String(glob)]),
    );
    if let Some(m) = method {
        t.insert(
            "methods".into(),
            toml::Value::Array(vec![toml::Value::String(m.to_string())]),
        );
    }
    t.insert("action".into(), toml::Value::String(action.into()));
    if kind == RouteKind::Api {
        t.insert("login_redirect".into(), toml::Value::Boolean(false));
    }
    Ok(toml::Value::Table(t))
}

#[cfg(test)]
mod tests;
