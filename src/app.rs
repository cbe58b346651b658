//! Wiring: builds the long-lived parts from a validated [`Config`] and starts the background
//! tasks (discovery, key refresh), which end when the [`App`] is dropped. [`CurrentApp`] holds
//! the one serving now; a configuration reload ([`crate::reload`]) builds a new [`App`] and
//! swaps it in whole. Nothing here runs per request except the lock-free loads.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::gate::Gate;
use crate::idp::IdpClient;
use crate::login::auth_params::AuthParams;
use crate::login::backchannel_logout::{BackchannelLogout, LogoutError};
use crate::login::oidc::{CallbackParams, LoginError, LoginFinish, LoginStart, Oidc};
use crate::metrics::{Decision, Metrics, RuleDecisions};
use crate::rules::Decider;
use crate::seal::Sealer;
use crate::session::Session;
use crate::session::cookie_domains::CookieContext;
use crate::session::cookies::SetCookie;
use crate::session::redis::StoreUnavailable;
use crate::session::revocations::Revocations;
use crate::session::store::SessionStore;
use crate::token::bearer::{BearerVerifier, TrustedIssuer};
use crate::token::jwks_cache::JwksCache;
use std::sync::Arc;
use std::time::Duration;

pub struct App {
    config: Config,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    gate: Gate,
    oidc: Arc<Oidc>,
    backchannel: BackchannelLogout,
    /// Counters of each rule (same order as `config.rules`), then `[authz]`, then preflights.
    rule_decisions: Vec<Arc<RuleDecisions>>,
    /// Per-middleware constraints parsed so far, by their raw text (each Traefik Middleware
    /// sends the same query on every request): queries, then Envoy path parameters (the same
    /// text may mean different things in the two spellings). Bounded; only valid ones kept.
    constraints: [crate::rules::constraints::ParsedConstraints; 2],
    /// The background tasks this App started; aborted when it is dropped (after a reload).
    tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// Every identity and claim header, empty: a public route's answer, so the proxy
    /// overwrites any copy the client sent.
    anonymous_headers: http::HeaderMap,
}

/// Why an [`App`] could not be built from a configuration that passed validation: a file it
/// names can't be read, or a value is refused by the library that uses it.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{key}: cannot read {}: {reason}", path.display())]
    Unreadable {
        key: &'static str,
        path: std::path::PathBuf,
        reason: std::io::Error,
    },
    #[error("{key}: not a PEM bundle")]
    NotPem { key: &'static str },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    #[error("session.cookie_secret: {0}")]
    CookieSecret(crate::seal::SealError),
    #[error("session.redis_url: {0}")]
    RedisUrl(String),
}

/// What outlives a configuration reload: the counters, the sessions ended so far, and what
/// was learnt from the IdPs (discovery document, signing keys), so a reload needs no IdP
/// round trip and works while the IdP is down. Keys are reused only for the same issuer,
/// JWKS URL and refetch interval; the discovery document only for the same issuer.
#[derive(Clone)]
pub struct Carried {
    pub metrics: Arc<Metrics>,
    pub revocations: Arc<Revocations>,
    provider: Option<(String, Arc<crate::login::oidc::Provider>)>,
    keys: Vec<CarriedKeys>,
}

#[derive(Clone)]
struct CarriedKeys {
    issuer: String,
    jwks_url: Option<String>,
    refetch_interval: Duration,
    keys: Arc<JwksCache>,
}

impl Carried {
    fn keys(
        &self,
        issuer: &str,
        jwks_url: Option<&String>,
        refetch: Duration,
    ) -> Option<Arc<JwksCache>> {
        self.keys
            .iter()
            .find(|k| {
                k.issuer == issuer
                    && k.jwks_url.as_ref() == jwks_url
                    && k.refetch_interval == refetch
            })
            .map(|k| k.keys.clone())
    }
}

impl App {
    /// Builds the application; call [`App::spawn_background`] inside a Tokio runtime to start
    /// loading the IdP's discovery document and keys.
    pub fn new(config: Config, clock: SharedClock) -> Result<Arc<App>, StartupError> {
        let carried = Carried {
            metrics: Arc::new(Metrics::default()),
            revocations: Arc::new(Revocations::new(config.session.expire)),
            provider: None,
            keys: Vec::new(),
        };
        Self::with_carried(config, clock, carried)
    }

    /// What a reload hands to the [`App`] that replaces this one.
    pub fn carried(&self) -> Carried {
        let refetch_interval = self.config.bearer.jwks_refetch_interval;
        let mut keys = vec![CarriedKeys {
            issuer: self.config.oidc.issuer_url.clone(),
            jwks_url: None,
            refetch_interval,
            keys: self.oidc.keys.clone(),
        }];
        if let Some(bearer) = &self.gate.bearer() {
            keys.extend(bearer.issuers().iter().skip(1).map(|i| CarriedKeys {
                issuer: i.config.issuer_url.clone(),
                jwks_url: i.config.jwks_url.clone(),
                refetch_interval,
                keys: i.keys.clone(),
            }));
        }
        Carried {
            metrics: self.metrics.clone(),
            revocations: self.gate.revocations().clone(),
            provider: self
                .oidc
                .provider()
                .map(|p| (self.config.oidc.issuer_url.clone(), p)),
            keys,
        }
    }

    /// Builds the application around the parts an earlier configuration leaves behind.
    pub fn with_carried(
        config: Config,
        clock: SharedClock,
        carried: Carried,
    ) -> Result<Arc<App>, StartupError> {
        let metrics = carried.metrics.clone();
        let idp = IdpClient::new(&config.oidc, metrics.clone())?;
        let sealer = Arc::new(
            Sealer::new(config.session.keys.expose()).map_err(StartupError::CookieSecret)?,
        );
        let refetch = config.bearer.jwks_refetch_interval;
        let main_keys = carried
            .keys(&config.oidc.issuer_url, None, refetch)
            .unwrap_or_else(|| {
                Arc::new(JwksCache::new(
                    config.oidc.issuer_url.clone(),
                    None,
                    refetch,
                ))
            });
        let oidc = Oidc::new(&config, main_keys.clone(), idp.clone(), metrics.clone());
        if let Some((_, meta)) = carried
            .provider
            .as_ref()
            .filter(|(issuer, _)| *issuer == config.oidc.issuer_url)
        {
            oidc.set_provider(meta);
        }
        let oidc = Arc::new(oidc);
        let bearer = config.bearer.enabled.then(|| {
            let issuers = config
                .bearer
                .issuers
                .iter()
                .enumerate()
                .map(|(i, ic)| TrustedIssuer {
                    config: ic.clone(),
                    keys: if i == 0 {
                        main_keys.clone()
                    } else {
                        carried
                            .keys(&ic.issuer_url, ic.jwks_url.as_ref(), refetch)
                            .unwrap_or_else(|| {
                                Arc::new(JwksCache::new(
                                    ic.issuer_url.clone(),
                                    ic.jwks_url.clone(),
                                    refetch,
                                ))
                            })
                    },
                    idp: if i == 0 {
                        idp.clone()
                    } else {
                        idp.for_extra_issuer()
                    },
                })
                .collect();
            BearerVerifier::new(
                &config.bearer,
                issuers,
                config.headers.passes_bearer_token(),
                config.claims.clone(),
                metrics.clone(),
                clock.clone(),
            )
        });
        let gate = Gate::new(
            &config,
            bearer,
            oidc.clone(),
            carried.revocations.clone(),
            SessionStore::new(&config.session, sealer, metrics.clone(), clock.clone())?,
            metrics.clone(),
        );
        let backchannel = BackchannelLogout::new(config.bearer.leeway);
        let rule_decisions = config
            .rules
            .rules()
            .iter()
            .map(|r| r.name.as_str())
            .chain(["(default)", "(preflight)"])
            .map(|name| metrics.rule_decisions(name))
            .collect();
        Ok(Arc::new(App {
            clock,
            metrics,
            gate,
            oidc,
            backchannel,
            rule_decisions,
            constraints: Default::default(),
            tasks: std::sync::Mutex::new(Vec::new()),
            anonymous_headers: crate::principal::Principal::new(
                crate::identity::Identity::default(),
                crate::principal::PassedTokens::default(),
                0,
                &config.claims,
            )
            .headers
            .identity_map(),
            config,
        }))
    }

    /// The policy of a middleware's constraint text (`parse` runs on a miss);
    /// `path_parameters` tells the Envoy spelling from a query.
    pub fn constraints(
        &self,
        raw: &str,
        path_parameters: bool,
        parse: impl FnOnce(
            &str,
        ) -> Result<
            Option<crate::authz::AuthzPolicy>,
            crate::rules::constraints::ConstraintError,
        >,
    ) -> Result<Option<Arc<crate::authz::AuthzPolicy>>, crate::rules::constraints::ConstraintError>
    {
        self.constraints[usize::from(path_parameters)].get_or_parse(raw, parse)
    }

    /// Counts one decision under the rule that made it.
    pub fn count_rule_decision(&self, decider: Decider, decision: Decision) {
        let n = self.config.rules.rules().len();
        let i = match decider {
            Decider::Rule(i) => i,
            Decider::Default => n,
            Decider::Preflight => n + 1,
        };
        if let Some(c) = self.rule_decisions.get(i) {
            c.record(decision);
        }
    }

    /// Whether `peer` may ask for decisions (`trusted_proxies`; empty = anyone). An unknown
    /// peer is trusted only when no list is set.
    pub fn trusts_caller(&self, peer: Option<std::net::IpAddr>) -> bool {
        let trusted = &self.config.trusted_proxies;
        trusted.is_empty()
            || peer.is_some_and(|ip| {
                let ip = ip.to_canonical();
                trusted.iter().any(|net| net.contains(&ip))
            })
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task).abort_handle();
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
    }

    /// Starts discovery, key refresh and the session store's connection, owned by this App.
    pub fn spawn_background(self: &Arc<Self>) {
        if let Some(task) = self.gate.store().background() {
            self.spawn(task);
        }
        self.spawn(self.oidc.clone().run_discovery());
        self.spawn(self.oidc.clone().run_health_probe());
        self.spawn(
            self.oidc
                .keys
                .clone()
                .run_refresh_loop(self.oidc.idp().clone()),
        );
        if let Some(bearer) = &self.gate.bearer() {
            for issuer in bearer.issuers().iter().skip(1) {
                let keys = issuer.keys.clone();
                if !keys.has_jwks_url() {
                    let (k, idp, url) = (
                        keys.clone(),
                        issuer.idp.clone(),
                        issuer.config.issuer_url.clone(),
                    );
                    self.spawn(async move {
                        let meta = idp
                            .discover_until_ok(
                                &url,
                                Duration::from_secs(1),
                                Duration::from_secs(30),
                            )
                            .await;
                        k.set_jwks_url(meta.jwks_uri().to_string());
                    });
                }
                self.spawn(keys.run_refresh_loop(issuer.idp.clone()));
            }
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Whether discovery, keys and the session store are ready to serve.
    pub fn is_ready(&self) -> bool {
        self.not_ready_because().is_none()
    }

    /// Why `/ready` must say no, or `None` when discovery, keys and the store are ready.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        if !self.oidc.is_ready() {
            Some("identity provider discovery or keys not loaded")
        } else if !self.gate.store().is_ready() {
            Some("session store (Redis) unreachable")
        } else {
            None
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn oidc(&self) -> &Oidc {
        &self.oidc
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Every identity and claim header, each empty (a public route's answer).
    pub fn anonymous_headers(&self) -> &http::HeaderMap {
        &self.anonymous_headers
    }

    /// Starts a browser login that returns to `return_to` (already validated).
    /// `asked`: login parameters from `/oauth2/start` (the configured ones win).
    /// `host`: where the login starts, as the browser sent it (its cookie domain, and its own
    /// callback when that domain does not hold `public_url`'s host).
    pub fn begin_login(
        &self,
        return_to: String,
        asked: AuthParams,
        host: Option<&str>,
    ) -> Result<LoginStart, LoginError> {
        self.oidc
            .begin_login(self.gate.sealer(), return_to, asked, self.now(), host)
    }

    /// Finishes a login at the callback; the session is not stored yet
    /// ([`Self::start_session`]).
    pub async fn finish_login(
        &self,
        params: CallbackParams,
        request: CookieContext<'_>,
    ) -> LoginFinish {
        self.oidc
            .finish_login(self.gate.sealer(), params, request, self.now())
            .await
    }

    /// Stores a new login's session: the `Set-Cookie` values that carry it, `Ok(None)` when
    /// it can't be encoded.
    pub async fn start_session(
        &self,
        session: &Session,
        request: CookieContext<'_>,
    ) -> Result<Option<Vec<SetCookie>>, StoreUnavailable> {
        self.gate.start_session(session, self.now(), request).await
    }

    /// The IdP's RP-initiated logout URL, when it has an `end_session_endpoint`.
    pub fn logout_url(&self, id_token: Option<&str>, post_logout_redirect: &str) -> Option<String> {
        self.oidc.logout_url(id_token, post_logout_redirect)
    }

    /// OIDC Back-Channel Logout: validates the logout token and ends what it names.
    pub async fn backchannel_logout(&self, logout_token: &str) -> Result<(), LogoutError> {
        self.backchannel
            .accept(
                logout_token,
                &self.oidc,
                self.gate.revocations(),
                self.gate.store(),
                &self.metrics,
                self.now(),
            )
            .await
    }
}

impl Drop for App {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// The [`App`] serving now. Each request loads it once (lock-free); a reload replaces it,
/// and requests already running finish on the one they started with.
pub struct CurrentApp(arc_swap::ArcSwap<App>);

impl CurrentApp {
    pub fn new(app: Arc<App>) -> Arc<Self> {
        Arc::new(Self(arc_swap::ArcSwap::new(app)))
    }

    pub fn load(&self) -> Arc<App> {
        self.0.load_full()
    }

    pub fn replace(&self, app: Arc<App>) {
        self.0.store(app);
    }
}
