//! The configuration as written: TOML plus `PORTCULLIS_*` environment overrides, before any
//! validation. Every key is listed once in [`KEYS`], which drives unknown-key detection and the
//! typing of environment values.

use serde::Deserialize;
use std::path::PathBuf;

/// The kind of value a key holds; environment values are converted accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Int,
    /// A number (`0.25`; an integer is taken as one).
    Float,
    /// A list of strings; from the environment, comma-separated.
    List,
    /// An array of tables (`[[bearer.issuers]]`); not settable from the environment.
    Tables,
    /// A table of strings (`[headers.claims]`); not settable from the environment.
    Map,
}

/// Every accepted key as (section, key, kind); section "" is the top level.
pub const KEYS: &[(&str, &str, Kind)] = &[
    ("", "listen", Kind::Str),
    ("", "metrics_listen", Kind::Str),
    ("", "public_url", Kind::Str),
    ("", "tls_cert_file", Kind::Str),
    ("", "tls_key_file", Kind::Str),
    ("", "log_format", Kind::Str),
    ("", "shutdown_grace", Kind::Str),
    ("", "trusted_proxies", Kind::List),
    ("", "max_connections", Kind::Int),
    ("", "rules", Kind::Tables),
    ("oidc", "issuer_url", Kind::Str),
    ("oidc", "client_id", Kind::Str),
    ("oidc", "client_secret", Kind::Str),
    ("oidc", "client_secret_file", Kind::Str),
    ("oidc", "scopes", Kind::List),
    ("oidc", "ca_file", Kind::Str),
    ("oidc", "timeout", Kind::Str),
    ("oidc", "email_claim", Kind::Str),
    ("oidc", "groups_claim", Kind::Str),
    ("oidc", "user_id_claim", Kind::Str),
    ("oidc", "prompt", Kind::Str),
    ("oidc", "login_hint", Kind::Str),
    ("oidc", "acr_values", Kind::Str),
    ("oidc", "kc_idp_hint", Kind::Str),
    ("session", "cookie_secret", Kind::Str),
    ("session", "cookie_secret_file", Kind::Str),
    ("session", "previous_cookie_secrets", Kind::List),
    ("session", "previous_cookie_secrets_file", Kind::Str),
    ("session", "cookie_name", Kind::Str),
    ("session", "cookie_domain", Kind::Str),
    ("session", "cookie_domains", Kind::List),
    ("session", "cookie_secure", Kind::Bool),
    ("session", "expire", Kind::Str),
    ("session", "refresh", Kind::Str),
    ("session", "cache_capacity", Kind::Int),
    ("session", "store", Kind::Str),
    ("session", "redis_url", Kind::Str),
    ("session", "redis_ca_file", Kind::Str),
    ("session", "redis_password_file", Kind::Str),
    ("session", "redis_mode", Kind::Str),
    ("session", "redis_urls", Kind::List),
    ("session", "redis_sentinel_master", Kind::Str),
    ("session", "redis_username", Kind::Str),
    ("session", "redis_sentinel_password_file", Kind::Str),
    ("redirect", "allowed_domains", Kind::List),
    ("authz", "email_domains", Kind::List),
    ("authz", "allowed_groups", Kind::List),
    ("authz", "allowed_roles", Kind::List),
    ("authz", "allowed_emails", Kind::List),
    ("authz", "skip_preflight", Kind::Bool),
    ("headers", "pass_access_token", Kind::Bool),
    ("headers", "pass_authorization_header", Kind::Bool),
    ("headers", "authorization_token", Kind::Str),
    ("headers", "claims", Kind::Map),
    ("bearer", "enabled", Kind::Bool),
    ("bearer", "audiences", Kind::List),
    ("bearer", "allowed_clients", Kind::List),
    ("bearer", "leeway", Kind::Str),
    ("bearer", "cache_capacity", Kind::Int),
    ("bearer", "cache_max_ttl", Kind::Str),
    ("bearer", "jwks_refetch_interval", Kind::Str),
    ("bearer", "issuers", Kind::Tables),
    ("pages", "templates_dir", Kind::Str),
    ("pages", "logo_url", Kind::Str),
    ("pages", "footer", Kind::Str),
    ("telemetry", "otlp_endpoint", Kind::Str),
    ("telemetry", "sampling_ratio", Kind::Float),
    ("telemetry", "service_name", Kind::Str),
];

/// Keys accepted inside each `[[bearer.issuers]]` table.
pub const ISSUER_KEYS: &[&str] = &["issuer_url", "audiences", "allowed_clients", "jwks_url"];

/// Keys accepted inside each `[[rules]]` table.
pub const RULE_KEYS: &[&str] = &[
    "name",
    "hosts",
    "paths",
    "methods",
    "action",
    "allowed_groups",
    "allowed_roles",
    "allowed_emails",
    "email_domains",
    "login_redirect",
];

/// The sections of [`KEYS`], in the order they appear.
pub const SECTIONS: &[&str] = &[
    "oidc",
    "session",
    "redirect",
    "authz",
    "headers",
    "bearer",
    "pages",
    "telemetry",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTop {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub public_url: Option<String>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub log_format: Option<String>,
    pub shutdown_grace: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub max_connections: Option<u64>,
    /// Read separately from the rest of the top level (see [`parse`]).
    #[serde(skip)]
    pub rules: Option<Vec<RawRule>>,
}

/// One `[[rules]]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: Option<String>,
    pub hosts: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub methods: Option<Vec<String>>,
    pub action: Option<String>,
    pub allowed_groups: Option<Vec<String>>,
    pub allowed_roles: Option<Vec<String>>,
    pub allowed_emails: Option<Vec<String>>,
    pub email_domains: Option<Vec<String>>,
    pub login_redirect: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    pub issuer_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scopes: Option<Vec<String>>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<String>,
    pub email_claim: Option<String>,
    pub groups_claim: Option<String>,
    pub user_id_claim: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub acr_values: Option<String>,
    pub kc_idp_hint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    pub cookie_secret: Option<String>,
    pub cookie_secret_file: Option<PathBuf>,
    pub previous_cookie_secrets: Option<Vec<String>>,
    pub previous_cookie_secrets_file: Option<PathBuf>,
    pub cookie_name: Option<String>,
    pub cookie_domain: Option<String>,
    pub cookie_domains: Option<Vec<String>>,
    pub cookie_secure: Option<bool>,
    pub expire: Option<String>,
    pub refresh: Option<String>,
    pub cache_capacity: Option<u64>,
    pub store: Option<String>,
    pub redis_url: Option<String>,
    pub redis_ca_file: Option<PathBuf>,
    pub redis_password_file: Option<PathBuf>,
    pub redis_mode: Option<String>,
    pub redis_urls: Option<Vec<String>>,
    pub redis_sentinel_master: Option<String>,
    pub redis_username: Option<String>,
    pub redis_sentinel_password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedirect {
    pub allowed_domains: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthz {
    pub email_domains: Option<Vec<String>>,
    pub allowed_groups: Option<Vec<String>>,
    pub allowed_roles: Option<Vec<String>>,
    pub allowed_emails: Option<Vec<String>>,
    pub skip_preflight: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    pub pass_access_token: Option<bool>,
    pub pass_authorization_header: Option<bool>,
    pub authorization_token: Option<String>,
    pub claims: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBearer {
    pub enabled: Option<bool>,
    pub audiences: Option<Vec<String>>,
    pub allowed_clients: Option<Vec<String>>,
    pub leeway: Option<String>,
    pub cache_capacity: Option<u64>,
    pub cache_max_ttl: Option<String>,
    pub jwks_refetch_interval: Option<String>,
    pub issuers: Option<Vec<RawIssuer>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    pub issuer_url: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub allowed_clients: Option<Vec<String>>,
    pub jwks_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPages {
    pub templates_dir: Option<PathBuf>,
    pub logo_url: Option<String>,
    pub footer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    pub otlp_endpoint: Option<String>,
    pub sampling_ratio: Option<f64>,
    pub service_name: Option<String>,
}

/// The whole raw configuration, one struct per section.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub top: RawTop,
    pub oidc: RawOidc,
    pub session: RawSession,
    pub redirect: RawRedirect,
    pub authz: RawAuthz,
    pub headers: RawHeaders,
    pub bearer: RawBearer,
    pub pages: RawPages,
    pub telemetry: RawTelemetry,
}

/// Parses TOML text, applies environment overrides, and reports every unknown key, unknown
/// environment variable and type error at once (each message names its key).
pub fn parse(text: &str, env: &[(String, String)]) -> Result<RawConfig, Vec<String>> {
    let mut problems = Vec::new();
    let mut table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            return Err(vec![format!(
                "config file is not valid TOML: {}",
                e.message()
            )]);
        }
    };
    apply_env(&mut table, env, &mut problems);
    find_unknown_keys(&table, &mut problems);

    let mut raw = RawConfig::default();
    let mut top = table.clone();
    for s in SECTIONS {
        top.remove(*s);
    }
    for (k, v) in top.iter() {
        if v.is_table() {
            problems.push(format!("{k}: unknown section"));
        }
    }
    top.retain(|_, v| !v.is_table());
    // Each rule is read on its own, so a type error names its rule and the others still load.
    let rules = top.remove("rules");
    raw.top = section(top, "", &mut problems);
    if let Some(toml::Value::Array(rules)) = rules {
        let mut parsed = Vec::with_capacity(rules.len());
        for (i, mut rule) in rules.into_iter().enumerate() {
            // Unknown keys were reported already (find_unknown_keys).
            if let Some(t) = rule.as_table_mut() {
                t.retain(|k, _| RULE_KEYS.contains(&k));
            }
            match RawRule::deserialize(rule) {
                Ok(r) => parsed.push(r),
                Err(e) => problems.push(format!("rules[{i}]: {}", e.message().trim())),
            }
        }
        raw.top.rules = Some(parsed);
    } else if rules.is_some() {
        problems.push("rules: must be an array of tables ([[rules]])".to_string());
    }
    let mut take = |name: &str| match table.remove(name) {
        Some(toml::Value::Table(t)) => t,
        Some(_) => {
            problems.push(format!("{name}: must be a table ([{name}])"));
            toml::Table::new()
        }
        None => toml::Table::new(),
    };
    let (o, s, r, a, h, b, pg, t) = (
        take("oidc"),
        take("session"),
        take("redirect"),
        take("authz"),
        take("headers"),
        take("bearer"),
        take("pages"),
        take("telemetry"),
    );
    raw.oidc = section(o, "oidc", &mut problems);
    raw.session = section(s, "session", &mut problems);
    raw.redirect = section(r, "redirect", &mut problems);
    raw.authz = section(a, "authz", &mut problems);
    raw.headers = section(h, "headers", &mut problems);
    raw.bearer = section(b, "bearer", &mut problems);
    raw.pages = section(pg, "pages", &mut problems);
    raw.telemetry = section(t, "telemetry", &mut problems);
    if problems.is_empty() {
        Ok(raw)
    } else {
        Err(problems)
    }
}

fn section<T: for<'de> Deserialize<'de> + Default>(
    table: toml::Table,
    name: &str,
    problems: &mut Vec<String>,
) -> T {
    // Unknown keys were reported already; drop them so type errors are still found.
    // Type errors are reported per key here, so each message names its key.
    let prefix = if name.is_empty() {
        String::new()
    } else {
        format!("{name}.")
    };
    let table: toml::Table = table
        .into_iter()
        .map(
            |(k, v)| match (KEYS.iter().find(|(s, key, _)| *s == name && *key == k), v) {
                // `sampling_ratio = 1` means 1.0.
                (Some((_, _, Kind::Float)), toml::Value::Integer(n)) => {
                    (k, toml::Value::Float(n as f64))
                }
                (_, v) => (k, v),
            },
        )
        .filter(
            |(k, v)| match KEYS.iter().find(|(s, key, _)| *s == name && key == k) {
                None => false,
                Some((_, _, kind)) => {
                    let ok = match kind {
                        Kind::Str => v.is_str(),
                        Kind::Bool => v.is_bool(),
                        Kind::Int => v.as_integer().is_some_and(|n| n >= 0),
                        Kind::Float => v.is_float() || v.is_integer(),
                        Kind::List => v
                            .as_array()
                            .is_some_and(|a| a.iter().all(toml::Value::is_str)),
                        Kind::Tables => v
                            .as_array()
                            .is_some_and(|a| a.iter().all(toml::Value::is_table)),
                        Kind::Map => v
                            .as_table()
                            .is_some_and(|t| t.values().all(toml::Value::is_str)),
                    };
                    if !ok {
                        let want = match kind {
                            Kind::Str => "a string",
                            Kind::Bool => "true or false",
                            Kind::Int => "a non-negative integer",
                            Kind::Float => "a number",
                            Kind::List => "a list of strings",
                            Kind::Tables => "an array of tables",
                            Kind::Map => "a table of strings",
                        };
                        problems.push(format!("{prefix}{k}: must be {want}"));
                    }
                    ok
                }
            },
        )
        .collect();
    match T::deserialize(toml::Value::Table(table)) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!("{prefix}{}", e.message().trim()));
            T::default()
        }
    }
}

fn find_unknown_keys(table: &toml::Table, problems: &mut Vec<String>) {
    for (k, v) in table {
        if SECTIONS.contains(&k.as_str()) {
            let Some(inner) = v.as_table() else { continue };
            for (ik, iv) in inner {
                if !KEYS.iter().any(|(s, key, _)| s == k && key == ik) {
                    problems.push(format!("{k}.{ik}: unknown key"));
                } else if k == "bearer" && ik == "issuers" {
                    for (i, issuer) in iv.as_array().into_iter().flatten().enumerate() {
                        for ek in issuer.as_table().into_iter().flat_map(|t| t.keys()) {
                            if !ISSUER_KEYS.contains(&ek.as_str()) {
                                problems.push(format!("bearer.issuers[{i}].{ek}: unknown key"));
                            }
                        }
                    }
                }
            }
        } else if !v.is_table() && !KEYS.iter().any(|(s, key, _)| s.is_empty() && key == k) {
            problems.push(format!("{k}: unknown key"));
        } else if k == "rules" {
            for (i, rule) in v.as_array().into_iter().flatten().enumerate() {
                for rk in rule.as_table().into_iter().flat_map(|t| t.keys()) {
                    if !RULE_KEYS.contains(&rk.as_str()) {
                        problems.push(format!("rules[{i}].{rk}: unknown key"));
                    }
                }
            }
        }
    }
}

/// `PORTCULLIS_<KEY>` sets a top-level key, `PORTCULLIS_<SECTION>_<KEY>` a key of a section,
/// e.g. `PORTCULLIS_OIDC_CLIENT_SECRET_FILE`. Lists are comma-separated. `PORTCULLIS_CONFIG`
/// (the config path) and `PORTCULLIS_LOG` (the log filter) are not keys.
fn apply_env(table: &mut toml::Table, env: &[(String, String)], problems: &mut Vec<String>) {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("PORTCULLIS_") else {
            continue;
        };
        if rest == "CONFIG" || rest == "LOG" {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        let found = KEYS.iter().find(|(s, k, kind)| {
            !matches!(kind, Kind::Tables | Kind::Map)
                && if s.is_empty() {
                    lower == *k
                } else {
                    lower == format!("{s}_{k}")
                }
        });
        let Some((section, key, kind)) = found else {
            problems.push(format!(
                "{name}: unknown environment variable (see README: Configuration)"
            ));
            continue;
        };
        let v = match kind {
            Kind::Str => toml::Value::String(value.clone()),
            Kind::Bool => match value.trim() {
                "true" | "1" => toml::Value::Boolean(true),
                "false" | "0" => toml::Value::Boolean(false),
                _ => {
                    problems.push(format!("{name}: expected true or false"));
                    continue;
                }
            },
            Kind::Int => match value.trim().parse::<i64>() {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => {
                    problems.push(format!("{name}: expected an integer"));
                    continue;
                }
            },
            Kind::Float => match value.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => toml::Value::Float(n),
                _ => {
                    problems.push(format!("{name}: expected a number"));
                    continue;
                }
            },
            Kind::List => toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
            Kind::Tables | Kind::Map => continue,
        };
        if section.is_empty() {
            table.insert(key.to_string(), v);
        } else {
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(t) = entry.as_table_mut() {
                t.insert(key.to_string(), v);
            }
        }
    }
}
