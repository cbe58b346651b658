//! The OIDC relying party (OIDC Core §3.1, authorization code flow): discovery, starting a
//! login (PKCE S256 + state + nonce, always — RFC 9700 §2.1.1), finishing it at the callback,
//! refreshing sessions (single-flight), and the RP-initiated logout URL.

use crate::clock::UnixTime;
use crate::config::Config;
use crate::identity::Identity;
use crate::idp::{IdpClient, IdpError, ProviderMetadata, TokenResponse};
use crate::issuer_keys::IssuerKeys;
use crate::jwt::{IdTokenRules, TokenError, UnverifiedToken, check_times};
use crate::login_state::{LoginAttempt, LoginStateCookies, StateProblem};
use crate::metrics::Metrics;
use crate::seal::Sealer;
use crate::session::Session;
use arc_swap::ArcSwapOption;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::sync::Arc;
use std::time::Duration;

/// Why a login could not be completed. Shown to users only as a generic page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("callback without state")]
    StateMissing,
    #[error("callback state matches no login started in this browser")]
    StateMismatch,
    #[error("authorization code or state already used")]
    Replayed,
    #[error("the identity provider returned an error")]
    Denied,
    #[error("callback without code")]
    CodeMissing,
    #[error("code exchange failed: {0}")]
    Exchange(IdpError),
    #[error("ID token rejected: {0}")]
    IdToken(TokenError),
    #[error("identity provider not available")]
    IdpUnavailable,
}

/// The callback's query parameters (RFC 6749 §4.1.2, §4.1.2.1).
#[derive(Debug, Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

pub struct Oidc {
    pub client_id: String,
    pub issuer: String,
    redirect_uri: String,
    scopes: String,
    provider: ArcSwapOption<ProviderMetadata>,
    pub keys: Arc<IssuerKeys>,
    idp: IdpClient,
    metrics: Arc<Metrics>,
    pub state_cookies: LoginStateCookies,
    /// States already used: a replayed callback is refused before the IdP sees the code.
    consumed: moka::sync::Cache<String, ()>,
    /// Single-flight refresh, keyed by the refresh token: concurrent requests with one stale
    /// session share one refresh grant (Keycloak's "revoke refresh token" kills a session
    /// whose refresh token is used twice).
    refreshes: moka::future::Cache<String, Arc<Session>>,
    session_expire: Duration,
    /// Wakes the health probe.
    probe_now: tokio::sync::Notify,
    keep_access_token: bool,
    leeway: u64,
}

impl Oidc {
    pub fn new(cfg: &Config, keys: Arc<IssuerKeys>, idp: IdpClient, metrics: Arc<Metrics>) -> Self {
        let callback_path =
            cfg.public_url.path().trim_end_matches('/').to_string() + crate::config::CALLBACK_PATH;
        Self {
            client_id: cfg.oidc.client_id.clone(),
            issuer: cfg.oidc.issuer_url.clone(),
            redirect_uri: cfg.redirect_uri.clone(),
            scopes: cfg.oidc.scopes.join(" "),
            provider: ArcSwapOption::empty(),
            keys,
            idp,
            metrics,
            state_cookies: LoginStateCookies::new(
                &cfg.session.cookie_name,
                &callback_path,
                cfg.session.cookie_domain.clone(),
                cfg.session.cookie_secure,
            ),
            consumed: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(crate::login_state::LOGIN_TTL))
                .build(),
            refreshes: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            session_expire: cfg.session.expire,
            probe_now: tokio::sync::Notify::new(),
            keep_access_token: cfg.headers.keeps_access_token(),
            leeway: cfg.bearer.leeway.as_secs(),
        }
    }

    pub fn idp(&self) -> &IdpClient {
        &self.idp
    }

    pub fn provider(&self) -> Option<Arc<ProviderMetadata>> {
        self.provider.load_full()
    }

    /// Starts from a discovery document already fetched (by the configuration this one
    /// replaces); discovery still runs and replaces it.
    pub fn set_provider(&self, meta: Arc<ProviderMetadata>) {
        self.provider.store(Some(meta));
    }

    /// Ready when discovery and the signing keys are loaded.
    pub fn is_ready(&self) -> bool {
        self.provider.load().is_some() && self.keys.is_loaded()
    }

    /// Fetches the discovery document until it succeeds (the proxy starts and keeps retrying
    /// while the IdP is down), then hands the JWKS URL to the key cache.
    pub async fn run_discovery(self: Arc<Self>) {
        let meta = self
            .idp
            .discover_until_ok(
                &self.issuer,
                Duration::from_millis(500),
                Duration::from_secs(15),
            )
            .await;
        tracing::info!(issuer = %self.issuer, "identity provider discovered");
        self.keys.set_jwks_url(meta.jwks_uri.clone());
        self.provider.store(Some(Arc::new(meta)));
    }

    /// Asks the IdP for its discovery document every 10 s once it was loaded, so `/ready` and
    /// `portcullis_idp_up` notice an outage (and the recovery) without waiting for a user.
    /// A login refused because the IdP looked down wakes it early (at most once a second).
    pub async fn run_health_probe(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(10)) => {}
                () = self.probe_now.notified() => {}
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            if self.provider.load().is_some() {
                let _ = self.idp.discover(&self.issuer).await;
            }
        }
    }

    /// Starts a login: the absolute authorization URL and the state cookie to set.
    pub fn begin_login(
        &self,
        sealer: &Sealer,
        return_to: String,
        now: UnixTime,
    ) -> Result<(String, String), LoginError> {
        // While the IdP is known to be down, say so here instead of sending the browser to an
        // error at the IdP (the health probe notices the recovery within 10 s).
        if self.metrics.idp_is_down() {
            self.probe_now.notify_one();
            return Err(LoginError::IdpUnavailable);
        }
        let provider = self.provider().ok_or(LoginError::IdpUnavailable)?;
        let (attempt, cookie) = self
            .state_cookies
            .begin(sealer, return_to, now)
            .map_err(|_| LoginError::IdpUnavailable)?;
        Ok((self.authorize_url(&provider, &attempt), cookie))
    }

    fn authorize_url(&self, provider: &ProviderMetadata, a: &LoginAttempt) -> String {
        let challenge = B64.encode(digest::digest(&digest::SHA256, a.verifier.as_bytes()));
        let mut url = match url::Url::parse(&provider.authorization_endpoint) {
            Ok(u) => u,
            Err(_) => return provider.authorization_endpoint.clone(),
        };
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.scopes)
            .append_pair("state", &a.state)
            .append_pair("nonce", &a.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        url.into()
    }

    /// Finishes a login. Returns the new session and where to go, plus `Set-Cookie` values that
    /// delete used/stale state cookies (to send whatever the outcome).
    pub async fn finish_login(
        &self,
        sealer: &Sealer,
        params: CallbackParams,
        cookie_header: Option<&str>,
        now: UnixTime,
    ) -> (Result<(Session, String), LoginError>, Vec<String>) {
        let (attempt, clear, dropped) =
            self.state_cookies
                .take(sealer, cookie_header, params.state.as_deref(), now);
        self.metrics
            .state_cookies_dropped
            .fetch_add(dropped as u64, std::sync::atomic::Ordering::Relaxed);
        let result = async {
            let attempt = attempt.map_err(|p| match p {
                StateProblem::Missing => LoginError::StateMissing,
                StateProblem::NoMatchingAttempt => LoginError::StateMismatch,
            })?;
            if self.consumed.contains_key(&attempt.state) {
                return Err(LoginError::Replayed);
            }
            self.consumed.insert(attempt.state.clone(), ());
            if params.error.is_some() {
                return Err(LoginError::Denied);
            }
            let code = params
                .code
                .filter(|c| !c.is_empty() && c.len() <= 2048)
                .ok_or(LoginError::CodeMissing)?;
            let provider = self.provider().ok_or(LoginError::IdpUnavailable)?;
            let tokens = self
                .idp
                .exchange_code(
                    &provider.token_endpoint,
                    &code,
                    &attempt.verifier,
                    &self.redirect_uri,
                )
                .await
                .map_err(LoginError::Exchange)?;
            let session = self
                .session_from_tokens(tokens, Some(&attempt.nonce), None, now)
                .await?;
            Ok((session, attempt.return_to))
        }
        .await;
        (result, clear)
    }

    /// Refreshes a session's tokens (RFC 6749 §6). Concurrent calls for the same session share
    /// one grant and its result.
    pub async fn refresh(
        &self,
        session: &Session,
        now: UnixTime,
    ) -> Result<Arc<Session>, IdpError> {
        let Some(rt) = session.refresh_token.clone() else {
            return Err(IdpError::Refused("no_refresh_token".into()));
        };
        let key = B64.encode(digest::digest(&digest::SHA256, rt.as_bytes()));
        let session = session.clone();
        // try_get_with shares one grant between concurrent callers but caches only successes:
        // a failure during an IdP outage must not be replayed once the IdP is back.
        self.refreshes
            .try_get_with(key, async move {
                let provider = self.provider().ok_or(IdpError::Unreachable)?;
                let tokens = self.idp.refresh(&provider.token_endpoint, &rt).await?;
                let refreshed = self.session_from_tokens(tokens, None, Some(&session), now).await.map_err(|e| {
                    tracing::warn!(code = "refresh.bad_tokens", error = %e, "refreshed tokens rejected");
                    IdpError::BadResponse(200)
                })?;
                Ok::<_, IdpError>(Arc::new(refreshed))
            })
            .await
            .map_err(|e| (*e).clone())
    }

    /// Builds a session from a token response. At login the ID token is required and must
    /// carry our nonce; on refresh it is optional and has no nonce (OIDC Core §12.2).
    async fn session_from_tokens(
        &self,
        tokens: TokenResponse,
        nonce: Option<&str>,
        previous: Option<&Session>,
        now: UnixTime,
    ) -> Result<Session, LoginError> {
        let mut identity = match (&tokens.id_token, previous) {
            (Some(id_token), _) => {
                let mut t = UnverifiedToken::parse(id_token).map_err(LoginError::IdToken)?;
                self.keys
                    .verify_signature(&t, &self.idp, &self.metrics)
                    .await
                    .map_err(LoginError::IdToken)?;
                IdTokenRules {
                    issuer: &self.issuer,
                    client_id: &self.client_id,
                    nonce,
                    leeway: self.leeway,
                }
                .check(&t, now)
                .map_err(LoginError::IdToken)?;
                let id = Identity::from_claims(t.claims.take_identity())
                    .ok_or(LoginError::IdToken(TokenError::MissingClaim))?;
                if previous.is_some_and(|p| p.identity.sub != id.sub) {
                    return Err(LoginError::IdToken(TokenError::MissingClaim));
                }
                id
            }
            (None, Some(prev)) => Identity {
                realm_roles: Vec::new(),
                client_roles: Vec::new(),
                ..prev.identity.clone()
            },
            (None, None) => return Err(LoginError::IdToken(TokenError::MissingClaim)),
        };
        // Keycloak puts roles in the access token; read them when it is a JWT we can verify.
        let mut access_exp = now + tokens.expires_in.unwrap_or(300);
        if let Ok(mut t) = UnverifiedToken::parse(&tokens.access_token) {
            let trusted = t.claims.iss.as_deref() == Some(self.issuer.as_str())
                && check_times(&t.claims, now, self.leeway).is_ok()
                && t.claims.sub.as_deref() == Some(identity.sub.as_str())
                && self
                    .keys
                    .verify_signature(&t, &self.idp, &self.metrics)
                    .await
                    .is_ok();
            if trusted {
                if let Some(exp) = t.claims.exp {
                    access_exp = exp;
                }
                if let Some(roles) = Identity::from_claims(t.claims.take_identity()) {
                    identity.merge_roles(roles);
                }
            }
        }
        let created_at = previous.map_or(now, |p| p.created_at);
        let expires_at = previous.map_or(now + self.session_expire.as_secs(), |p| p.expires_at);
        let id = match previous {
            Some(p) => p.id.clone(),
            None => Some(crate::seal::random_token(16).map_err(|_| LoginError::IdpUnavailable)?),
        };
        Ok(Session {
            id,
            identity,
            created_at,
            tokens_at: now,
            access_expires_at: access_exp.min(expires_at),
            expires_at,
            refresh_token: tokens
                .refresh_token
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            id_token: tokens
                .id_token
                .or_else(|| previous.and_then(|p| p.id_token.clone())),
            access_token: self.keep_access_token.then_some(tokens.access_token),
        })
    }

    /// RP-initiated logout at the IdP (OIDC RP-Initiated Logout 1.0 §2), when it has an
    /// `end_session_endpoint`.
    pub fn logout_url(
        &self,
        id_token: Option<&str>,
        post_logout_redirect: Option<&str>,
    ) -> Option<String> {
        let provider = self.provider()?;
        let mut url = url::Url::parse(provider.end_session_endpoint.as_deref()?).ok()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.client_id);
            if let Some(hint) = id_token {
                q.append_pair("id_token_hint", hint);
            }
            if let Some(rd) = post_logout_redirect {
                q.append_pair("post_logout_redirect_uri", rd);
            }
        }
        Some(url.into())
    }
}
