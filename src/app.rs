//! Wiring: builds the long-lived parts from a validated [`Config`] and starts the background
//! tasks (discovery, key refresh), which end when the [`App`] is dropped. [`CurrentApp`] holds
//! the one serving now; a configuration reload ([`crate::reload`]) builds a new [`App`] and
//! swaps it in whole. Nothing here runs per request except the lock-free loads.

use crate::access::Gate;
use crate::backchannel::BackchannelLogout;
use crate::bearer::{BearerVerifier, TrustedIssuer};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::idp::IdpClient;
use crate::issuer_keys::IssuerKeys;
use crate::metrics::{Decision, Metrics, RuleDecisions};
use crate::oidc::Oidc;
use crate::revocation::Revocations;
use crate::rules::Decider;
use crate::seal::Sealer;
use crate::session::cookies::SessionCookies;
use crate::session::store::SessionStore;
use std::sync::Arc;
use std::time::Duration;

pub struct App {
    pub config: Config,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub gate: Gate,
    pub oidc: Arc<Oidc>,
    pub backchannel: BackchannelLogout,
    /// Counters of each rule (same order as `config.rules`), then `[authz]`, then preflights.
    rule_decisions: Vec<Arc<RuleDecisions>>,
    /// The background tasks this App started; aborted when it is dropped (after a reload).
    tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

/// What outlives a configuration reload: the counters, and the sessions ended so far.
#[derive(Clone)]
pub struct Carried {
    pub metrics: Arc<Metrics>,
    pub revocations: Arc<Revocations>,
}

impl App {
    /// Builds the application; call [`App::spawn_background`] inside a Tokio runtime to start
    /// loading the IdP's discovery document and keys.
    pub fn new(config: Config, clock: SharedClock) -> Result<Arc<App>, String> {
        let carried = Carried {
            metrics: Arc::new(Metrics::default()),
            revocations: Arc::new(Revocations::new(config.session.expire)),
        };
        Self::with_carried(config, clock, carried)
    }

    /// What a reload hands to the [`App`] that replaces this one.
    pub fn carried(&self) -> Carried {
        Carried {
            metrics: self.metrics.clone(),
            revocations: self.gate.revocations.clone(),
        }
    }

    /// Builds the application around the parts an earlier configuration leaves behind.
    pub fn with_carried(
        config: Config,
        clock: SharedClock,
        carried: Carried,
    ) -> Result<Arc<App>, String> {
        let metrics = carried.metrics;
        let idp = IdpClient::new(&config.oidc, metrics.clone())?;
        let sealer = Arc::new(
            Sealer::new(config.session.keys.expose())
                .map_err(|e| format!("session.cookie_secret: {e}"))?,
        );
        let main_keys = Arc::new(IssuerKeys::new(
            config.oidc.issuer_url.clone(),
            None,
            config.bearer.jwks_refetch_interval,
        ));
        let oidc = Arc::new(Oidc::new(
            &config,
            main_keys.clone(),
            idp.clone(),
            metrics.clone(),
        ));
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
                        Arc::new(IssuerKeys::new(
                            ic.issuer_url.clone(),
                            ic.jwks_url.clone(),
                            config.bearer.jwks_refetch_interval,
                        ))
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
                config.headers.keeps_access_token(),
                metrics.clone(),
                clock.clone(),
            )
        });
        let gate = Gate {
            sealer,
            cookies: SessionCookies::new(&config.session),
            bearer,
            oidc: oidc.clone(),
            refresh_after: config.session.refresh,
            revocations: carried.revocations,
            store: SessionStore::new(&config.session, metrics.clone())?,
            decoded: matches!(config.session.store, crate::config::StoreConfig::Cookie)
                .then(|| crate::access::decoded_session_cache(clock.clone())),
        };
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
            config,
            clock,
            metrics,
            gate,
            oidc,
            backchannel,
            rule_decisions,
            tasks: std::sync::Mutex::new(Vec::new()),
        }))
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
        if let Some(task) = self.gate.store.background() {
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
        if let Some(bearer) = &self.gate.bearer {
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
                        k.set_jwks_url(meta.jwks_uri);
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
        self.oidc.is_ready() && self.gate.store.is_ready()
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
