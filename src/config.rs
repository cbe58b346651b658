//! Validated configuration. [`Config::load`] reads the TOML file named by `--config` (or
//! `PORTCULLIS_CONFIG`), applies `PORTCULLIS_*` environment overrides, reads secrets from
//! `*_file` keys, and reports **every** problem at once, each naming its key.

pub mod oauth2_proxy;
mod raw;

pub use raw::{KEYS, Kind};

use crate::authz::AuthzPolicy;
use crate::identity::{ClaimMapping, ClaimPath};
use crate::login::auth_params::AuthParams;
use crate::login::redirect_policy::RedirectPolicy;
use crate::pages::Pages;
use crate::rules::glob::PathGlob;
use crate::rules::host::HostPattern;
use crate::rules::{AccessRules, Action, Rule};
use crate::secret::Secret;
use crate::session::cookie_domains::CookieDomains;
use base64::Engine;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// `max_connections` when unset: what fits the shipped Deployment's 128 MiB memory limit with
/// room to spare. An idle keep-alive connection costs about 28 KiB (README: Reliability), so
/// 2,048 of them take 56 MiB on top of a baseline of 10–40 MiB (caches full).
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;

/// The path every login returns to, relative to `public_url` (RFC 6749 §3.1.2).
pub const CALLBACK_PATH: &str = "/oauth2/callback";

/// Sign-out, relative to `public_url` (it ends the session, then goes to `rd`).
pub const SIGN_OUT_PATH: &str = "/oauth2/sign_out";

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `metrics_listen`: a second, plain-HTTP listener for `/metrics`, `/ping` and `/ready`
    /// (then `/metrics` is not served on `listen`). Read at start-up.
    pub metrics_listen: Option<SocketAddr>,
    /// Externally visible base URL of Portcullis; the redirect URI is derived from it.
    pub public_url: Url,
    /// `public_url` + `/oauth2/callback`.
    pub redirect_uri: String,
    /// Serve HTTPS with these PEM files (reloaded when they change).
    pub tls: Option<TlsFiles>,
    /// Emit JSON logs instead of text.
    pub log_json: bool,
    /// How long in-flight requests may finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Most connections served at once; beyond it, accepting waits.
    pub max_connections: usize,
    pub oidc: OidcConfig,
    pub session: SessionConfig,
    pub redirect: RedirectPolicy,
    /// `[[rules]]`, with `[authz]` for requests no rule matches.
    pub rules: AccessRules,
    /// Callers allowed to ask for decisions (TCP peer address); empty = any.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub headers: HeaderConfig,
    /// Which claims are the email, groups and user id, and `[headers.claims]`.
    pub claims: ClaimMapping,
    pub bearer: BearerConfig,
    /// `[pages]`: the look of the HTML pages (template read at load, logo, footer).
    pub pages: Pages,
    /// `[telemetry]`: where OpenTelemetry traces go; `None` (no `otlp_endpoint`): no traces.
    /// Read at start-up.
    pub telemetry: Option<TelemetryConfig>,
}

/// `[telemetry]`: traces exported with OTLP over HTTP (protobuf).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// The collector's traces URL: `otlp_endpoint` with `/v1/traces` appended, unless it
    /// already ends so (OTLP/HTTP's `OTEL_EXPORTER_OTLP_ENDPOINT` convention).
    pub traces_url: Url,
    /// Share of new traces kept (0 to 1); a request that arrives with a sampled
    /// `traceparent` is always traced, one with an unsampled one never (parent-based).
    pub sampling_ratio: f64,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Must equal the `issuer` in the discovery document exactly (OIDC Discovery §4.3).
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Secret<String>,
    pub scopes: Vec<String>,
    /// Extra CA bundle (PEM) trusted for calls to the IdP.
    pub ca_file: Option<PathBuf>,
    /// Timeout of every call to the IdP.
    pub timeout: Duration,
    /// `prompt`, `login_hint`, `acr_values`, `kc_idp_hint` sent with every login.
    pub auth_params: AuthParams,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// AES-256-GCM keys: the first encrypts, all decrypt (rotation).
    pub keys: Secret<Vec<[u8; 32]>>,
    pub cookie_name: String,
    /// `session.cookie_domains` (or the one `cookie_domain`), and `public_url`'s host.
    pub cookie_domains: CookieDomains,
    pub cookie_secure: bool,
    /// Absolute session lifetime.
    pub expire: Duration,
    /// Refresh tokens once they are older than this; `None` = never.
    pub refresh: Option<Duration>,
    /// Opened sessions kept in memory (`session.cache_capacity`; see `session/session_cache.rs`).
    pub cache_capacity: u64,
    /// Where sessions live: in the cookie itself, or in Redis behind an opaque cookie.
    pub store: StoreConfig,
}

/// `session.store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The whole session, sealed, in the cookie (no server state).
    Cookie,
    /// The session in Redis, shared by every replica; the cookie holds an id and a key.
    Redis(RedisConfig),
}

/// `session.redis_*`: how to reach the Redis that holds sessions.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Which servers, and how they share the data (`session.redis_mode`).
    pub topology: RedisTopology,
    /// Extra CA (PEM) trusted for `rediss://`, instead of the system roots (every server).
    pub ca_file: Option<PathBuf>,
    /// Redis 6 ACL user (`session.redis_username`), overriding one in the URL.
    pub username: Option<String>,
    /// `AUTH` password (from `session.redis_password_file`), overriding one in the URL.
    pub password: Option<Secret<String>>,
}

/// `session.redis_mode` with its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTopology {
    /// One server (`session.redis_url`), perhaps behind a failover-managing service.
    Standalone(Url),
    /// The master of `master` as the Sentinels (`session.redis_urls`) name it, followed
    /// through failovers.
    Sentinel {
        sentinels: Vec<Url>,
        master: String,
        /// `AUTH` to the Sentinels (`session.redis_sentinel_password_file`).
        sentinel_password: Option<Secret<String>>,
    },
    /// A Redis Cluster, found from its seed nodes (`session.redis_urls`).
    Cluster(Vec<Url>),
}

impl RedisTopology {
    /// Every address configured (one in standalone mode).
    pub fn urls(&self) -> &[Url] {
        match self {
            RedisTopology::Standalone(u) => std::slice::from_ref(u),
            RedisTopology::Sentinel { sentinels, .. } => sentinels,
            RedisTopology::Cluster(nodes) => nodes,
        }
    }

    /// Whether the servers are spoken to over TLS (`rediss://`).
    pub fn tls(&self) -> bool {
        self.urls().iter().any(|u| u.scheme() == "rediss")
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |u: &Url| {
            let mut url = u.clone();
            if url.password().is_some() {
                let _ = url.set_password(Some("..."));
            }
            url.to_string()
        };
        let urls: Vec<String> = self.topology.urls().iter().map(hide).collect();
        let (mode, master) = match &self.topology {
            RedisTopology::Standalone(_) => ("standalone", None),
            RedisTopology::Sentinel { master, .. } => ("sentinel", Some(master)),
            RedisTopology::Cluster(_) => ("cluster", None),
        };
        f.debug_struct("RedisConfig")
            .field("mode", &mode)
            .field("urls", &urls)
            .field("sentinel_master", &master)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct HeaderConfig {
    /// Add `X-Auth-Request-Access-Token` on success.
    pub pass_access_token: bool,
    /// Add `Authorization: Bearer <token>` on success.
    pub pass_authorization_header: bool,
    /// Which token `pass_authorization_header` sends for a session (`headers.authorization_token`).
    pub authorization_token: AuthorizationToken,
}

/// The token in the `Authorization` answer header of a session: the access token (the
/// default), or the ID token, as oauth2-proxy's `--set-authorization-header` sends. A bearer
/// request passes its own token either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthorizationToken {
    #[default]
    Access,
    Id,
}

impl HeaderConfig {
    /// Whether a session must keep its access token, to pass it upstream.
    pub fn keeps_access_token(&self) -> bool {
        self.pass_access_token
            || (self.pass_authorization_header
                && self.authorization_token == AuthorizationToken::Access)
    }

    /// Whether a bearer request's own token is passed upstream.
    pub fn passes_bearer_token(&self) -> bool {
        self.pass_access_token || self.pass_authorization_header
    }
}

#[derive(Debug, Clone)]
pub struct BearerConfig {
    pub enabled: bool,
    /// Trusted issuers; the first is always the OIDC issuer.
    pub issuers: Vec<IssuerConfig>,
    /// Clock skew tolerated on `exp`, `nbf`, `iat` (RFC 7519 §4.1.4).
    pub leeway: Duration,
    /// Maximum entries of the verified-token cache.
    pub cache_capacity: u64,
    /// Longest time a verified token stays cached, whatever its `exp`.
    pub cache_max_ttl: Duration,
    /// Minimum time between JWKS refetches triggered by unknown `kid`s, per issuer.
    pub jwks_refetch_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct IssuerConfig {
    pub issuer_url: String,
    /// The token's `aud` must contain one of these …
    pub audiences: Vec<String>,
    /// … or its `azp` must be one of these.
    pub allowed_clients: Vec<String>,
    /// Where the keys are; `None` = from the issuer's discovery document.
    pub jwks_url: Option<String>,
}

impl Config {
    /// Reads and validates the configuration; `Err` holds one line per problem.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Config, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("cannot read config file {}: {e}", path.display())])?;
        Self::from_toml(&text, env)
    }

    pub fn from_toml(text: &str, env: &[(String, String)]) -> Result<Config, Vec<String>> {
        let raw = raw::parse(text, env)?;
        validate(raw)
    }

    /// The configuration of an oauth2-proxy deployment, unchanged: its flags, its
    /// `OAUTH2_PROXY_*` environment and its `.cfg` file ([`oauth2_proxy`]), validated like a
    /// native file (`PORTCULLIS_*` overrides still apply). `Ok` also holds the lines to print
    /// on stderr; every problem names the oauth2-proxy flag it comes from.
    pub fn from_oauth2_proxy(
        args: &[String],
        env: &[(String, String)],
    ) -> Result<(Config, Vec<String>), Vec<String>> {
        let translated =
            oauth2_proxy::translate(args, env, &|p: &Path| std::fs::read_to_string(p))?;
        let config = Self::from_translated(&translated.toml, env)?;
        Ok((config, translated.notices))
    }

    /// The native TOML [`oauth2_proxy::translate`] made, validated like a native file; each
    /// problem names the oauth2-proxy flag its key comes from (`portcullis convert` checks
    /// what it prints with this).
    pub fn from_translated(text: &str, env: &[(String, String)]) -> Result<Config, Vec<String>> {
        Self::from_toml(text, env).map_err(|problems| {
            problems
                .into_iter()
                .map(|line| match line.split_once(": ") {
                    Some((key, why)) => match oauth2_proxy::flag_for_key(key) {
                        Some(flag) => format!("--{flag} ({key}): {why}"),
                        None => line,
                    },
                    None => line,
                })
                .collect()
        })
    }
}

fn validate(raw: raw::RawConfig) -> Result<Config, Vec<String>> {
    let mut p = Problems(Vec::new());
    let claims = claim_mapping(&raw.oidc, raw.headers.claims.as_ref(), &mut p);
    let mut auth_params = AuthParams::default();
    for (name, value) in [
        ("prompt", &raw.oidc.prompt),
        ("login_hint", &raw.oidc.login_hint),
        ("acr_values", &raw.oidc.acr_values),
        ("kc_idp_hint", &raw.oidc.kc_idp_hint),
    ] {
        if let Some(v) = value {
            if let Err(why) = auth_params.set(name, v) {
                p.add(&format!("oidc.{name}"), why);
            }
        }
    }

    let listen = raw.top.listen.as_deref().unwrap_or("0.0.0.0:4180");
    let listen = listen
        .parse::<SocketAddr>()
        .map_err(|_| p.add("listen", "must be an address like 0.0.0.0:4180"))
        .ok();

    let metrics_listen =
        raw.top
            .metrics_listen
            .as_deref()
            .and_then(|s| match s.parse::<SocketAddr>() {
                Ok(addr) if Some(addr) == listen || addr.port() == 0 => {
                    p.add(
                        "metrics_listen",
                        "must be another address than listen, with a port",
                    );
                    None
                }
                Ok(addr) => Some(addr),
                Err(_) => {
                    p.add("metrics_listen", "must be an address like 0.0.0.0:9090");
                    None
                }
            });

    let public_url = match raw.top.public_url.as_deref() {
        None => p.missing("public_url", "the URL browsers reach Portcullis at"),
        Some(s) => match Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                if u.query().is_some() || u.fragment().is_some() {
                    p.bad("public_url", "must not have a query or fragment")
                } else {
                    Some(u)
                }
            }
            _ => p.bad("public_url", "must be an absolute http(s) URL"),
        },
    };
    let redirect_uri = public_url
        .as_ref()
        .map(|u| format!("{}{CALLBACK_PATH}", u.as_str().trim_end_matches('/')))
        .unwrap_or_default();

    let tls = match (raw.top.tls_cert_file, raw.top.tls_key_file) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => p.bad("tls_key_file", "is required when tls_cert_file is set"),
        (None, Some(_)) => p.bad("tls_cert_file", "is required when tls_key_file is set"),
    };
    let log_json = match raw.top.log_format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(_) => p
            .bad("log_format", "must be \"text\" or \"json\"")
            .unwrap_or(false),
    };
    let shutdown_grace = p.duration("shutdown_grace", raw.top.shutdown_grace, "10s");
    let max_connections = match raw.top.max_connections {
        None => DEFAULT_MAX_CONNECTIONS,
        Some(0) => p
            .bad("max_connections", "must be at least 1")
            .unwrap_or(DEFAULT_MAX_CONNECTIONS),
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };

    // [oidc]
    let issuer_url = match raw.oidc.issuer_url {
        None => p.missing(
            "oidc.issuer_url",
            "e.g. https://keycloak.example.com/realms/platform",
        ),
        Some(s) => match Url::parse(&s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                Some(s.trim_end_matches('/').to_string())
            }
            _ => p.bad("oidc.issuer_url", "must be an absolute http(s) URL"),
        },
    };
    let client_id = match raw.oidc.client_id {
        Some(s) if !s.trim().is_empty() => Some(s),
        _ => p.missing(
            "oidc.client_id",
            "the client registered for Portcullis in the IdP",
        ),
    };
    let client_secret = p.secret(
        "oidc.client_secret",
        raw.oidc.client_secret,
        raw.oidc.client_secret_file.as_deref(),
    );
    let scopes = raw.oidc.scopes.unwrap_or_else(|| {
        vec![
            "openid".to_string(),
            "profile".to_string(),
            "email".to_string(),
        ]
    });
    if !scopes.iter().any(|s| s == "openid") {
        p.add("oidc.scopes", "must include \"openid\"");
    }
    if let Some(ca) = &raw.oidc.ca_file {
        if !ca.is_file() {
            p.add("oidc.ca_file", &format!("cannot read {}", ca.display()));
        }
    }
    let oidc_timeout = p.duration("oidc.timeout", raw.oidc.timeout, "5s");

    // [session]
    let store = store_config(&mut p, &raw.session);
    let mut keys = Vec::new();
    if let Some(secret) = p.secret(
        "session.cookie_secret",
        raw.session.cookie_secret,
        raw.session.cookie_secret_file.as_deref(),
    ) {
        match decode_key(secret.expose()) {
            Ok(k) => keys.push(k),
            Err(why) => p.add("session.cookie_secret", why),
        }
    }
    let mut previous = raw.session.previous_cookie_secrets.unwrap_or_default();
    if let Some(path) = &raw.session.previous_cookie_secrets_file {
        match std::fs::read_to_string(path) {
            Ok(text) => previous.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            ),
            Err(e) => p.add(
                "session.previous_cookie_secrets_file",
                &format!("cannot read {}: {e}", path.display()),
            ),
        }
    }
    for (i, s) in previous.iter().enumerate() {
        match decode_key(s) {
            Ok(k) => keys.push(k),
            Err(why) => p.add(&format!("session.previous_cookie_secrets[{i}]"), why),
        }
    }
    let cookie_name = raw
        .session
        .cookie_name
        .unwrap_or_else(|| "_portcullis".to_string());
    if cookie_name.is_empty()
        || !cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        p.add(
            "session.cookie_name",
            "use letters, digits, '_' and '-' only",
        );
    }
    // `cookie_domain` is a list of one.
    let (domains_key, domains) = match (
        raw.session.cookie_domain.clone(),
        raw.session.cookie_domains.clone(),
    ) {
        (Some(_), Some(_)) => {
            p.add(
                "session.cookie_domains",
                "set either cookie_domain or cookie_domains, not both",
            );
            ("session.cookie_domains", Vec::new())
        }
        (Some(one), None) => ("session.cookie_domain", vec![one]),
        (None, list) => ("session.cookie_domains", list.unwrap_or_default()),
    };
    let mut cookie_domains = Vec::with_capacity(domains.len());
    for d in domains {
        let d = d.trim().trim_start_matches('.').to_ascii_lowercase();
        if d.is_empty() || d.contains(['/', ':', ' ', ';', '@', ',']) {
            p.add(domains_key, "must be a bare domain such as example.com");
        } else {
            cookie_domains.push(d);
        }
    }
    let public_host = public_url
        .as_ref()
        .and_then(Url::host_str)
        .unwrap_or_default();
    let cookie_domains = CookieDomains::new(cookie_domains, public_host);
    let cookie_secure = raw.session.cookie_secure.unwrap_or(true);
    let expire = p.duration("session.expire", raw.session.expire, "12h");
    if expire.is_zero() {
        p.add("session.expire", "must be longer than 0s");
    }
    let refresh = p.duration("session.refresh", raw.session.refresh, "5m");
    let refresh = (!refresh.is_zero()).then_some(refresh);

    // [redirect]
    let redirect = match RedirectPolicy::new(raw.redirect.allowed_domains.unwrap_or_default()) {
        Ok(r) => Some(r),
        Err(e) => p.bad("redirect.allowed_domains", &e),
    };

    // [authz] and [[rules]]
    let authz_lists = AuthzLists {
        email_domains: raw
            .authz
            .email_domains
            .unwrap_or_else(|| vec!["*".to_string()]),
        groups: raw.authz.allowed_groups.unwrap_or_default(),
        roles: raw.authz.allowed_roles.unwrap_or_default(),
        emails: raw.authz.allowed_emails.unwrap_or_default(),
    };
    let authz = match AuthzPolicy::new(
        authz_lists.email_domains.clone(),
        authz_lists.groups.clone(),
        authz_lists.roles.clone(),
        authz_lists.emails.clone(),
    ) {
        Ok(a) => Some(a),
        Err((key, why)) => p.bad(&format!("authz.{key}"), &why),
    };
    let rules = access_rules(&mut p, raw.top.rules.unwrap_or_default(), &authz_lists);
    let trusted_proxies = raw
        .top
        .trusted_proxies
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, cidr)| match parse_cidr(cidr) {
            Some(net) => Some(net),
            None => p.bad(
                &format!("trusted_proxies[{i}]"),
                &format!("{cidr:?} is not an address or CIDR such as 10.0.0.0/8 or 127.0.0.1"),
            ),
        })
        .collect();
    let skip_preflight = raw.authz.skip_preflight.unwrap_or(false);

    let authorization_token = match raw.headers.authorization_token.as_deref() {
        None | Some("access") => AuthorizationToken::Access,
        Some("id") => AuthorizationToken::Id,
        Some(_) => {
            p.add(
                "headers.authorization_token",
                "must be \"access\" or \"id\"",
            );
            AuthorizationToken::Access
        }
    };
    let headers = HeaderConfig {
        pass_access_token: raw.headers.pass_access_token.unwrap_or(false),
        pass_authorization_header: raw.headers.pass_authorization_header.unwrap_or(false),
        authorization_token,
    };

    // [bearer]
    let mut issuers = Vec::new();
    if let (Some(iss), Some(cid)) = (&issuer_url, &client_id) {
        issuers.push(IssuerConfig {
            issuer_url: iss.clone(),
            audiences: raw.bearer.audiences.unwrap_or_else(|| vec![cid.clone()]),
            allowed_clients: raw.bearer.allowed_clients.unwrap_or_default(),
            jwks_url: None,
        });
    }
    for (i, extra) in raw
        .bearer
        .issuers
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let key = format!("bearer.issuers[{i}]");
        let Some(url) = extra.issuer_url else {
            p.add(&format!("{key}.issuer_url"), "is required");
            continue;
        };
        let audiences = extra.audiences.unwrap_or_default();
        let allowed_clients = extra.allowed_clients.unwrap_or_default();
        if audiences.is_empty() && allowed_clients.is_empty() {
            p.add(
                &format!("{key}.audiences"),
                "set audiences or allowed_clients, or every token of that issuer would pass",
            );
        }
        if let Some(j) = &extra.jwks_url {
            if Url::parse(j).is_err() {
                p.add(&format!("{key}.jwks_url"), "must be an absolute URL");
            }
        }
        issuers.push(IssuerConfig {
            issuer_url: url.trim_end_matches('/').to_string(),
            audiences,
            allowed_clients,
            jwks_url: extra.jwks_url,
        });
    }
    if issuers
        .iter()
        .any(|i| i.audiences.iter().any(|a| a == "account"))
    {
        p.add("bearer.audiences", "\"account\" is Keycloak's default audience that every client's token carries; name your own client");
    }
    let bearer = BearerConfig {
        enabled: raw.bearer.enabled.unwrap_or(true),
        issuers,
        leeway: p.duration("bearer.leeway", raw.bearer.leeway, "30s"),
        cache_capacity: raw.bearer.cache_capacity.unwrap_or(10_000),
        cache_max_ttl: p.duration("bearer.cache_max_ttl", raw.bearer.cache_max_ttl, "5m"),
        jwks_refetch_interval: p.duration(
            "bearer.jwks_refetch_interval",
            raw.bearer.jwks_refetch_interval,
            "5s",
        ),
    };

    // [pages]: the template is read here, once; showing a page reads no file.
    let pages = match Pages::load(
        raw.pages.templates_dir.as_deref(),
        raw.pages.logo_url.as_deref(),
        raw.pages.footer,
    ) {
        Ok(pages) => Some(pages),
        Err(problems) => {
            for (key, why) in problems {
                p.add(&format!("pages.{key}"), &why);
            }
            None
        }
    };

    let telemetry = telemetry(raw.telemetry, &mut p);

    match (
        listen,
        public_url,
        issuer_url,
        client_id,
        client_secret,
        redirect,
        authz,
        pages,
    ) {
        (
            Some(listen),
            Some(public_url),
            Some(issuer_url),
            Some(client_id),
            Some(client_secret),
            Some(redirect),
            Some(authz),
            Some(pages),
        ) if p.0.is_empty() => Ok(Config {
            listen,
            metrics_listen,
            public_url,
            redirect_uri,
            tls,
            log_json,
            shutdown_grace,
            max_connections,
            oidc: OidcConfig {
                issuer_url,
                client_id,
                client_secret,
                scopes,
                ca_file: raw.oidc.ca_file,
                auth_params,
                timeout: oidc_timeout,
            },
            session: SessionConfig {
                keys: Secret::new(keys),
                cookie_name,
                cookie_domains,
                cookie_secure,
                expire,
                refresh,
                cache_capacity: raw.session.cache_capacity.unwrap_or(10_000),
                store,
            },
            redirect,
            rules: AccessRules::new(rules, authz, skip_preflight),
            telemetry,
            trusted_proxies,
            headers,
            claims,
            bearer,
            pages,
        }),
        _ => Err(p.0),
    }
}

/// `[authz]`'s lists as written: a rule that sets none of groups/roles/emails inherits them,
/// and one without `email_domains` inherits that.
struct AuthzLists {
    email_domains: Vec<String>,
    groups: Vec<String>,
    roles: Vec<String>,
    emails: Vec<String>,
}

/// Validates every `[[rules]]` table; problems name `rules[i].key`.
fn access_rules(p: &mut Problems, raw: Vec<raw::RawRule>, authz: &AuthzLists) -> Vec<Rule> {
    let mut rules = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("rules[{i}].{k}");
        let name = match r.name.as_deref().map(str::trim) {
            None | Some("") => p.missing(&key("name"), "shown in logs and metrics"),
            Some(n)
                if n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
            {
                if rules.iter().any(|x: &Rule| x.name == n) {
                    p.bad(&key("name"), &format!("{n:?} is used by an earlier rule"))
                } else {
                    Some(n.to_string())
                }
            }
            Some(_) => p.bad(&key("name"), "use letters, digits, '-', '_' and '.' only"),
        };
        let mut ok = name.is_some();
        let mut list = |k: &str, v: Option<Vec<String>>, hint: &str| -> Vec<String> {
            match v {
                Some(v) if v.is_empty() => {
                    p.add(
                        &key(k),
                        &format!("is empty and would match nothing; {hint}"),
                    );
                    ok = false;
                    v
                }
                v => v.unwrap_or_default(),
            }
        };
        let hosts_raw = list("hosts", r.hosts, "omit it to match any host");
        let paths_raw = list("paths", r.paths, "omit it to match any path");
        let methods_raw = list("methods", r.methods, "omit it to match any method");
        let mut hosts = Vec::new();
        for (j, h) in hosts_raw.iter().enumerate() {
            match HostPattern::parse(h) {
                Ok(h) => hosts.push(h),
                Err(why) => {
                    p.add(&format!("rules[{i}].hosts[{j}]"), &why);
                    ok = false;
                }
            }
        }
        let mut paths = Vec::new();
        for (j, g) in paths_raw.iter().enumerate() {
            match PathGlob::parse(g) {
                Ok(g) => paths.push(g),
                Err(why) => {
                    p.add(&format!("rules[{i}].paths[{j}]"), &why.0);
                    ok = false;
                }
            }
        }
        let mut methods = Vec::new();
        for (j, m) in methods_raw.iter().enumerate() {
            let m = m.trim();
            // RFC 9110 §9.1: a method is a token.
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
                p.add(
                    &format!("rules[{i}].methods[{j}]"),
                    &format!("{m:?} is not an HTTP method such as GET"),
                );
                ok = false;
            } else {
                methods.push(m.to_ascii_uppercase());
            }
        }
        let lists_set = r.allowed_groups.is_some()
            || r.allowed_roles.is_some()
            || r.allowed_emails.is_some()
            || r.email_domains.is_some();
        let action = match r.action.as_deref().map(str::trim) {
            None | Some("authenticate") => {
                let replaced = r.allowed_groups.is_some()
                    || r.allowed_roles.is_some()
                    || r.allowed_emails.is_some();
                let (groups, roles, emails) = if replaced {
                    (
                        r.allowed_groups.unwrap_or_default(),
                        r.allowed_roles.unwrap_or_default(),
                        r.allowed_emails.unwrap_or_default(),
                    )
                } else {
                    (
                        authz.groups.clone(),
                        authz.roles.clone(),
                        authz.emails.clone(),
                    )
                };
                let domains = r
                    .email_domains
                    .unwrap_or_else(|| authz.email_domains.clone());
                match AuthzPolicy::new(domains, groups, roles, emails) {
                    Ok(policy) => Some(Action::Authenticate(policy)),
                    Err((k, why)) => p.bad(&key(k), &why),
                }
            }
            Some(a @ ("public" | "deny")) => {
                if r.login_redirect.is_some() {
                    p.add(
                        &key("login_redirect"),
                        &format!("applies only to \"authenticate\" rules, not \"{a}\""),
                    );
                }
                if lists_set {
                    p.add(
                        &key("action"),
                        &format!(
                            "is \"{a}\": allowed_groups, allowed_roles, allowed_emails and email_domains apply only to \"authenticate\""
                        ),
                    );
                }
                Some(if a == "public" {
                    Action::Public
                } else {
                    Action::Deny
                })
            }
            Some(_) => p.bad(
                &key("action"),
                "must be \"public\", \"deny\" or \"authenticate\"",
            ),
        };
        if let (true, Some(name), Some(action)) = (ok, name, action) {
            rules.push(Rule {
                name,
                hosts,
                paths,
                methods,
                action,
                login_redirect: r.login_redirect.unwrap_or(true),
            });
        }
    }
    rules
}

/// `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128).
fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// `session.store` and the `session.redis_*` keys that go with it.
fn store_config(p: &mut Problems, raw: &raw::RawSession) -> StoreConfig {
    let redis = match raw.store.as_deref().map(str::trim) {
        None | Some("cookie") => false,
        Some("redis") => true,
        Some(_) => {
            p.add("session.store", "must be \"cookie\" or \"redis\"");
            return StoreConfig::Cookie;
        }
    };
    if !redis {
        for (key, set) in [
            ("session.redis_url", raw.redis_url.is_some()),
            ("session.redis_ca_file", raw.redis_ca_file.is_some()),
            (
                "session.redis_password_file",
                raw.redis_password_file.is_some(),
            ),
            ("session.redis_mode", raw.redis_mode.is_some()),
            ("session.redis_urls", raw.redis_urls.is_some()),
            (
                "session.redis_sentinel_master",
                raw.redis_sentinel_master.is_some(),
            ),
            ("session.redis_username", raw.redis_username.is_some()),
            (
                "session.redis_sentinel_password_file",
                raw.redis_sentinel_password_file.is_some(),
            ),
        ] {
            if set {
                p.add(key, "is only used with session.store = \"redis\"");
            }
        }
        return StoreConfig::Cookie;
    }
    let mode = match raw.redis_mode.as_deref().map(str::trim) {
        None | Some("standalone") => "standalone",
        Some("sentinel") => "sentinel",
        Some("cluster") => "cluster",
        Some(_) => {
            p.add(
                "session.redis_mode",
                "must be \"standalone\", \"sentinel\" or \"cluster\"",
            );
            return StoreConfig::Cookie;
        }
    };
    let only = |p: &mut Problems, key: &str, set: bool, modes: &str| {
        if set {
            p.add(
                key,
                &format!("is only used with session.redis_mode = {modes}"),
            );
        }
    };
    let sentinel = mode == "sentinel";
    only(
        p,
        "session.redis_url",
        raw.redis_url.is_some() && mode != "standalone",
        "\"standalone\" (list the servers in session.redis_urls)",
    );
    only(
        p,
        "session.redis_urls",
        raw.redis_urls.is_some() && mode == "standalone",
        "\"sentinel\" or \"cluster\" (use session.redis_url)",
    );
    only(
        p,
        "session.redis_sentinel_master",
        raw.redis_sentinel_master.is_some() && !sentinel,
        "\"sentinel\"",
    );
    only(
        p,
        "session.redis_sentinel_password_file",
        raw.redis_sentinel_password_file.is_some() && !sentinel,
        "\"sentinel\"",
    );
    let topology = match mode {
        "standalone" => redis_url(
            p,
            "session.redis_url",
            raw.redis_url.as_deref(),
            "rediss://redis.portcullis.svc:6379/0",
        )
        .map(RedisTopology::Standalone),
        _ => {
            let example = if sentinel {
                "[\"redis://sentinel-0.redis:26379\", \"redis://sentinel-1.redis:26379\", \"redis://sentinel-2.redis:26379\"]"
            } else {
                "[\"rediss://redis-cluster-0.redis:6379\", \"rediss://redis-cluster-1.redis:6379\"]"
            };
            let urls: Vec<Url> = match raw.redis_urls.as_deref() {
                None | Some([]) => {
                    p.missing::<()>(
                        "session.redis_urls",
                        &format!("with session.redis_mode = \"{mode}\", e.g. {example}"),
                    );
                    Vec::new()
                }
                Some(list) => list
                    .iter()
                    .filter_map(|u| redis_url(p, "session.redis_urls", Some(u), example))
                    .collect(),
            };
            if urls.iter().any(|u| u.scheme() == "rediss")
                && urls.iter().any(|u| u.scheme() == "redis")
            {
                p.add(
                    "session.redis_urls",
                    "mixes redis:// and rediss://: every server is spoken to the same way",
                );
            }
            if sentinel {
                let master = match raw.redis_sentinel_master.as_deref().map(str::trim) {
                    None | Some("") => p.missing("session.redis_sentinel_master", "with session.redis_mode = \"sentinel\": the name the Sentinels monitor, e.g. \"mymaster\""),
                    Some(m) => Some(m.to_string()),
                };
                let sentinel_password = raw
                    .redis_sentinel_password_file
                    .as_deref()
                    .and_then(|f| p.secret("session.redis_sentinel_password", None, Some(f)));
                match master {
                    Some(master) if !urls.is_empty() => Some(RedisTopology::Sentinel {
                        sentinels: urls,
                        master,
                        sentinel_password,
                    }),
                    _ => None,
                }
            } else {
                (!urls.is_empty()).then_some(RedisTopology::Cluster(urls))
            }
        }
    };
    if let Some(ca) = &raw.redis_ca_file {
        if topology.as_ref().is_some_and(|t| !t.tls()) {
            p.add(
                "session.redis_ca_file",
                "is only used with rediss:// (TLS) addresses",
            );
        } else if !ca.is_file() {
            p.add(
                "session.redis_ca_file",
                &format!("cannot read {}", ca.display()),
            );
        }
    }
    let username = match raw.redis_username.as_deref().map(str::trim) {
        Some("") => p.bad("session.redis_username", "is empty"),
        u => u.map(str::to_string),
    };
    let password = raw
        .redis_password_file
        .as_deref()
        .and_then(|f| p.secret("session.redis_password", None, Some(f)));
    match topology {
        Some(topology) => StoreConfig::Redis(RedisConfig {
            topology,
            ca_file: raw.redis_ca_file.clone(),
            username,
            password,
        }),
        None => StoreConfig::Cookie,
    }
}

/// One `redis://host:port/db` or `rediss://…` address of `key`.
fn redis_url(p: &mut Problems, key: &str, value: Option<&str>, example: &str) -> Option<Url> {
    match value.map(str::trim) {
        None | Some("") => p.missing(
            key,
            &format!("with session.store = \"redis\", e.g. {example}"),
        ),
        Some(s) => match Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some() => Some(u),
            _ => p.bad(
                key,
                "must be redis://host:port/db or rediss://host:port/db (TLS)",
            ),
        },
    }
}

/// A cookie secret is 32 random bytes, base64 (standard or URL-safe, padding optional).
fn decode_key(s: &str) -> Result<[u8; 32], &'static str> {
    let bytes = decode_base64(s.trim())
        .ok_or("must be base64 of 32 random bytes (openssl rand -base64 32)")?;
    bytes
        .try_into()
        .map_err(|_| "must decode to exactly 32 bytes (openssl rand -base64 32)")
}

/// A secret in any base64 spelling: standard or URL-safe alphabet, padded or not.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// Collects problems; every helper returns `None` after recording one.
/// Headers a `[headers.claims]` entry may not name: the identity and token headers Portcullis
/// sets itself, what proxies use to route or trust a request, and hop-by-hop headers.
const RESERVED_HEADERS: &[&str] = &[
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-preferred-username",
    "x-auth-request-groups",
    "x-auth-request-access-token",
    "x-auth-request-redirect",
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "host",
    "forwarded",
    "x-real-ip",
    "location",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "via",
    "cache-control",
];

/// `oidc.email_claim`, `oidc.groups_claim`, `oidc.user_id_claim` and `[headers.claims]`.
fn claim_mapping(
    oidc: &raw::RawOidc,
    headers: Option<&std::collections::BTreeMap<String, String>>,
    p: &mut Problems,
) -> ClaimMapping {
    let mut mapping = ClaimMapping::default();
    let mut path = |key: &str, text: Option<&String>, into: &mut ClaimPath| {
        if let Some(text) = text {
            match ClaimPath::parse(text.trim()) {
                Some(path) => *into = path,
                None => p.add(key, &format!("{text:?} is not a claim name (e.g. \"upn\", or \"realm_access.roles\" for a nested claim)")),
            }
        }
    };
    path(
        "oidc.email_claim",
        oidc.email_claim.as_ref(),
        &mut mapping.email,
    );
    path(
        "oidc.groups_claim",
        oidc.groups_claim.as_ref(),
        &mut mapping.groups,
    );
    path(
        "oidc.user_id_claim",
        oidc.user_id_claim.as_ref(),
        &mut mapping.user_id,
    );
    for (name, claim) in headers.into_iter().flatten() {
        let key = format!("headers.claims.{name:?}");
        if !crate::identity::claim_mapping::is_header_name(name) {
            p.add(
                &key,
                "is not a valid header name (e.g. \"X-Auth-Request-Tenant\")",
            );
            continue;
        }
        let header = name.to_ascii_lowercase();
        let lower = header.as_str();
        let reserved_prefix = ["x-forwarded-", "proxy-", "x-original-", "x-envoy-"]
            .iter()
            .any(|p| lower.starts_with(p));
        if RESERVED_HEADERS.contains(&lower) || reserved_prefix {
            p.add(
                &key,
                "is a header Portcullis or the proxy sets itself; pick another name",
            );
            continue;
        }
        if mapping.headers.iter().any(|(h, _)| *h == header) {
            p.add(&key, "is named twice (header names are case-insensitive)");
            continue;
        }
        match ClaimPath::parse(claim.trim()) {
            Some(path) => mapping.headers.push((header, path)),
            None => p.add(&key, &format!("{claim:?} is not a claim name")),
        }
    }
    mapping
}

/// `[telemetry]`: `None` without an `otlp_endpoint`.
fn telemetry(raw: raw::RawTelemetry, p: &mut Problems) -> Option<TelemetryConfig> {
    let sampling_ratio = match raw.sampling_ratio {
        None => 1.0,
        Some(r) if (0.0..=1.0).contains(&r) => r,
        Some(_) => p.bad("telemetry.sampling_ratio", "must be between 0 and 1")?,
    };
    let service_name = match raw.service_name {
        None => "portcullis".to_string(),
        Some(s) if !s.trim().is_empty() && !s.chars().any(char::is_control) => s,
        Some(_) => p.bad("telemetry.service_name", "must be a non-empty name")?,
    };
    let endpoint = raw.otlp_endpoint?;
    let mut url = match Url::parse(&endpoint) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => p.bad(
            "telemetry.otlp_endpoint",
            "must be the collector's http(s) URL, like http://otel-collector:4318",
        )?,
    };
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return p.bad(
            "telemetry.otlp_endpoint",
            "must not have a query, fragment or user name",
        );
    }
    if !url.path().ends_with("/v1/traces") {
        let path = format!("{}/v1/traces", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Some(TelemetryConfig {
        traces_url: url,
        sampling_ratio,
        service_name,
    })
}

struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, key: &str, why: &str) {
        self.0.push(format!("{key}: {why}"));
    }
    fn bad<T>(&mut self, key: &str, why: &str) -> Option<T> {
        self.add(key, why);
        None
    }
    fn missing<T>(&mut self, key: &str, hint: &str) -> Option<T> {
        self.add(key, &format!("is required ({hint})"));
        None
    }
    fn duration(&mut self, key: &str, value: Option<String>, default: &str) -> Duration {
        let text = value.unwrap_or_else(|| default.to_string());
        match humantime::parse_duration(text.trim()) {
            Ok(d) => d,
            Err(_) => {
                self.add(
                    key,
                    &format!("\"{text}\" is not a duration (use e.g. \"30s\", \"5m\", \"12h\")"),
                );
                Duration::ZERO
            }
        }
    }
    /// A secret given inline or as `<key>_file`; files may end with a newline (Kubernetes).
    fn secret(
        &mut self,
        key: &str,
        inline: Option<String>,
        file: Option<&Path>,
    ) -> Option<Secret<String>> {
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.bad(key, &format!("set either {key} or {key}_file, not both"))
            }
            (Some(s), None) if !s.trim().is_empty() => Some(Secret::new(s.trim().to_string())),
            (Some(_), None) => self.bad(key, "is empty"),
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(s) if !s.trim().is_empty() => {
                    Some(Secret::new(s.trim_end_matches(['\n', '\r']).to_string()))
                }
                Ok(_) => self.bad(
                    &format!("{key}_file"),
                    &format!("{} is empty", path.display()),
                ),
                Err(e) => self.bad(
                    &format!("{key}_file"),
                    &format!("cannot read {}: {e}", path.display()),
                ),
            },
            (None, None) => self.missing(key, &format!("or {key}_file")),
        }
    }
}

#[cfg(test)]
mod tests;
