//! Wiring: builds the long-lived parts from a validated [`Config`] and starts the background
//! tasks (discovery, key refresh). Nothing here runs per request.

use crate::access::Gate;
use crate::backchannel::BackchannelLogout;
use crate::bearer::{BearerVerifier, TrustedIssuer};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::idp::IdpClient;
use crate::issuer_keys::IssuerKeys;
use crate::metrics::Metrics;
use crate::oidc::Oidc;
use crate::revocation::Revocations;
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
}

impl App {
    /// Builds the application; call [`App::spawn_background`] inside a Tokio runtime to start
    /// loading the IdP's discovery document and keys.
    pub fn new(config: Config, clock: SharedClock) -> Result<Arc<App>, String> {
        let metrics = Arc::new(Metrics::default());
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
            authz: config.authz.clone(),
            oidc: oidc.clone(),
            refresh_after: config.session.refresh,
            revocations: Revocations::new(config.session.expire),
            store: SessionStore::new(&config.session, metrics.clone())?,
            decoded: matches!(config.session.store, crate::config::StoreConfig::Cookie)
                .then(|| crate::access::decoded_session_cache(clock.clone())),
        };
        let backchannel = BackchannelLogout::new(config.bearer.leeway);
        Ok(Arc::new(App {
            config,
            clock,
            metrics,
            gate,
            oidc,
            backchannel,
        }))
    }

    pub fn spawn_background(self: &Arc<Self>) {
        self.gate.store.spawn_background();
        tokio::spawn(self.oidc.clone().run_discovery());
        tokio::spawn(self.oidc.clone().run_health_probe());
        tokio::spawn(
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
                    tokio::spawn(async move {
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
                tokio::spawn(keys.run_refresh_loop(issuer.idp.clone()));
            }
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }
}
