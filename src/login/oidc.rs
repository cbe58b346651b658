//! The OIDC relying party (OIDC Core §3.1, authorization code flow), on openidconnect:
//! discovery, starting a login (PKCE S256 + state + nonce, always — RFC 9700 §2.1.1),
//! finishing it at the callback (code exchange, ID-token validation), refreshing sessions
//! (single-flight), and the RP-initiated logout URL. openidconnect reaches the IdP through
//! [`IdpClient`]; the ID token is checked against the keys of [`JwksCache`], so a key
//! rotation is picked up exactly as for bearer tokens.

use crate::clock::UnixTime;
use crate::config::Config;
use crate::identity::{ClaimMapping, Identity, IdentityClaims, RoleList};
use crate::idp::{IdpClient, IdpError, ProviderMetadata};
use crate::login::auth_params::AuthParams;
use crate::login::state_cookies::{LoginAttempt, LoginStateCookies, StateProblem};
use crate::metrics::{IdpCall, Metrics};
use crate::seal::Sealer;
use crate::session::Session;
use crate::session::cookie_domains::{CookieContext, CookieDomains};
use crate::session::cookies::SetCookie;
use crate::session::store::{RefreshError, Refresher};
use crate::token::jwks_cache::JwksCache;
use crate::token::jwt::{TokenError, UnverifiedToken, check_times, payload_json};
use arc_swap::ArcSwapOption;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreIdTokenVerifier, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EndpointNotSet, EndpointSet, JsonWebKeySet, LoginHint, LogoutRequest, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, RedirectUrl,
    RefreshToken, Scope, SignatureVerificationError, StandardErrorResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The Keycloak claims an ID token carries beyond OIDC's standard ones.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct KeycloakClaims {
    #[serde(default)]
    groups: Vec<String>,
    realm_access: Option<RoleList>,
    resource_access: Option<BTreeMap<String, RoleList>>,
    sid: Option<String>,
    /// Keycloak's token type: "ID" on ID tokens.
    typ: Option<String>,
}

impl openidconnect::AdditionalClaims for KeycloakClaims {}

type IdToken = openidconnect::IdToken<
    KeycloakClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type IdTokenFields = openidconnect::IdTokenFields<
    KeycloakClaims,
    openidconnect::EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// A token endpoint response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
type Tokens = openidconnect::StandardTokenResponse<IdTokenFields, CoreTokenType>;

/// openidconnect's client with the authorization and token endpoints set.
type LoginClient = openidconnect::Client<
    KeycloakClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
>;

/// ID tokens must be signed with a public-key algorithm: an HMAC "signature" keyed with the
/// client secret is refused (RFC 8725 §2.1), as is `none`.
const ID_TOKEN_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The discovered provider: its metadata and the openidconnect client built from it.
pub struct Provider {
    pub metadata: ProviderMetadata,
    client: LoginClient,
}

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

impl LoginError {
    /// The stable reason code of the `login.failed` audit event.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::StateMissing => "state_missing",
            LoginError::StateMismatch => "state_mismatch",
            LoginError::Replayed => "replayed",
            LoginError::Denied => "idp_denied",
            LoginError::CodeMissing => "code_missing",
            LoginError::Exchange(e) => e.code(),
            LoginError::IdToken(_) => "id_token_invalid",
            LoginError::IdpUnavailable => "idp_unavailable",
        }
    }
}

/// The callback's query parameters (RFC 6749 §4.1.2, §4.1.2.1).
#[derive(Debug, Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// A login started: where to send the browser, and the cookie binding the attempt to it.
pub struct LoginStart {
    pub authorize_url: String,
    pub state_cookie: SetCookie,
}

/// A login completed: the new session and where the browser was going.
pub struct LoggedIn {
    pub session: Session,
    pub return_to: String,
}

/// The callback's outcome, and the `Set-Cookie` values deleting the used and stale state
/// cookies, to send whatever the outcome.
pub struct LoginFinish {
    pub outcome: Result<LoggedIn, LoginError>,
    pub clear_state: Vec<SetCookie>,
}

pub struct Oidc {
    pub client_id: String,
    pub issuer: String,
    client_secret: crate::secret::Secret<String>,
    redirect_uri: String,
    /// The scopes asked for besides `openid` (which openidconnect always adds).
    scopes: Vec<String>,
    provider: ArcSwapOption<Provider>,
    pub keys: Arc<JwksCache>,
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
    /// Which claims are the email, groups and user id, and which become headers.
    claims: ClaimMapping,
    /// The configured `prompt`, `login_hint`, `acr_values`, `kc_idp_hint`.
    auth_params: AuthParams,
    /// `session.cookie_domains`: a login on a host whose domain does not hold `public_url`'s
    /// host calls back on that host ([`CookieDomains::own_callback_host`]).
    cookie_domains: CookieDomains,
    /// `public_url`'s scheme and the callback path, for such a host's callback URL.
    public_scheme: String,
    callback_path: String,
}

impl Oidc {
    pub fn new(cfg: &Config, keys: Arc<JwksCache>, idp: IdpClient, metrics: Arc<Metrics>) -> Self {
        let callback_path =
            cfg.public_url.path().trim_end_matches('/').to_string() + crate::config::CALLBACK_PATH;
        Self {
            client_id: cfg.oidc.client_id.clone(),
            issuer: cfg.oidc.issuer_url.clone(),
            client_secret: cfg.oidc.client_secret.clone(),
            redirect_uri: cfg.redirect_uri.clone(),
            scopes: cfg
                .oidc
                .scopes
                .iter()
                .filter(|s| *s != "openid")
                .cloned()
                .collect(),
            provider: ArcSwapOption::empty(),
            keys,
            idp,
            metrics,
            state_cookies: LoginStateCookies::new(
                &cfg.session.cookie_name,
                &callback_path,
                cfg.session.cookie_domains.clone(),
                cfg.session.cookie_secure,
            ),
            consumed: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(crate::login::state_cookies::LOGIN_TTL))
                .build(),
            refreshes: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            session_expire: cfg.session.expire,
            probe_now: tokio::sync::Notify::new(),
            keep_access_token: cfg.headers.keeps_access_token(),
            claims: cfg.claims.clone(),
            auth_params: cfg.oidc.auth_params.clone(),
            cookie_domains: cfg.session.cookie_domains.clone(),
            public_scheme: cfg.public_url.scheme().to_string(),
            callback_path,
            leeway: cfg.bearer.leeway.as_secs(),
        }
    }

    pub fn idp(&self) -> &IdpClient {
        &self.idp
    }

    pub fn provider(&self) -> Option<Arc<Provider>> {
        self.provider.load_full()
    }

    /// Starts from a provider already discovered (by the configuration this one replaces)
    /// when it was discovered for this client; discovery still runs and replaces it.
    pub fn set_provider(&self, previous: &Provider) {
        if let Some(p) = self.provider_from(previous.metadata.clone()) {
            self.provider.store(Some(Arc::new(p)));
        }
    }

    /// The openidconnect client for this provider, or `None` (logged) when the discovery
    /// document lacks what a login needs.
    fn provider_from(&self, metadata: ProviderMetadata) -> Option<Provider> {
        let Some(token_uri) = metadata.token_endpoint().cloned() else {
            tracing::error!(code = "idp.no_token_endpoint", issuer = %self.issuer, "the discovery document has no token_endpoint");
            return None;
        };
        let Ok(redirect) = RedirectUrl::new(self.redirect_uri.clone()) else {
            tracing::error!(
                code = "idp.bad_redirect_uri",
                "the redirect URI is not a URL"
            );
            return None;
        };
        let client: LoginClient = openidconnect::Client::new(
            ClientId::new(self.client_id.clone()),
            metadata.issuer().clone(),
            JsonWebKeySet::default(),
        )
        .set_client_secret(ClientSecret::new(self.client_secret.expose().clone()))
        .set_auth_uri(metadata.authorization_endpoint().clone())
        .set_token_uri(token_uri)
        .set_redirect_uri(redirect);
        Some(Provider { metadata, client })
    }

    /// Ready when discovery and the signing keys are loaded.
    pub fn is_ready(&self) -> bool {
        self.provider.load().is_some() && self.keys.is_loaded()
    }

    /// Fetches the discovery document until it succeeds (the proxy starts and keeps retrying
    /// while the IdP is down), then hands the JWKS URL to the key cache.
    pub async fn run_discovery(self: Arc<Self>) {
        let (first, max) = (Duration::from_millis(500), Duration::from_secs(15));
        let mut backoff = first;
        let provider = loop {
            let meta = self.idp.discover_until_ok(&self.issuer, first, max).await;
            if let Some(p) = self.provider_from(meta) {
                break p;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max);
        };
        tracing::info!(issuer = %self.issuer, "identity provider discovered");
        self.keys
            .set_jwks_url(provider.metadata.jwks_uri().to_string());
        self.provider.store(Some(Arc::new(provider)));
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
    /// `asked`: the login parameters the browser asked for (`/oauth2/start`), used where the
    /// configuration sets none ([`AuthParams::with_asked`]).
    ///
    /// `host`: the host the login starts on (as the browser sent it), which decides the
    /// state cookie's domain and, when that domain does not hold `public_url`'s host, that
    /// this login calls back on `host` itself.
    pub fn begin_login(
        &self,
        sealer: &Sealer,
        return_to: String,
        asked: AuthParams,
        now: UnixTime,
        host: Option<&str>,
    ) -> Result<LoginStart, LoginError> {
        // While the IdP is known to be down, say so here instead of sending the browser to an
        // error at the IdP (the health probe notices the recovery within 10 s).
        if self.metrics.idp_is_down() {
            self.probe_now.notify_one();
            return Err(LoginError::IdpUnavailable);
        }
        let provider = self.provider().ok_or(LoginError::IdpUnavailable)?;
        let own_callback = self.cookie_domains.own_callback_host(host).and_then(|h| {
            let url = format!("{}://{h}{}", self.public_scheme, self.callback_path);
            // The host was checked (letters, digits, `-`, `.`, a port): the URL parses, and
            // names exactly that host.
            url::Url::parse(&url).ok().map(|_| url)
        });
        let (attempt, cookie) = self
            .state_cookies
            .begin(sealer, return_to, now, host, own_callback)
            .map_err(|_| LoginError::IdpUnavailable)?;
        Ok(LoginStart {
            authorize_url: self.authorize_url(
                &provider,
                &attempt,
                &self.auth_params.with_asked(asked),
            ),
            state_cookie: cookie,
        })
    }

    /// The authorization request (OIDC Core §3.1.2.1) with this attempt's state, nonce and
    /// PKCE S256 challenge (RFC 7636 §4.2), and the login parameters (`params`, checked).
    fn authorize_url(&self, provider: &Provider, a: &LoginAttempt, params: &AuthParams) -> String {
        let (state, nonce) = (a.state.clone(), a.nonce.clone());
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            a.verifier.clone(),
        ));
        let mut request = provider
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        for prompt in params.prompt.iter().flat_map(|p| p.split(' ')) {
            request = request.add_prompt(match prompt {
                "none" => CoreAuthPrompt::None,
                "login" => CoreAuthPrompt::Login,
                "consent" => CoreAuthPrompt::Consent,
                "select_account" => CoreAuthPrompt::SelectAccount,
                other => CoreAuthPrompt::Extension(other.to_string()),
            });
        }
        if let Some(hint) = &params.login_hint {
            request = request.set_login_hint(LoginHint::new(hint.clone()));
        }
        for acr in params.acr_values.iter().flat_map(|a| a.split(' ')) {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.into()));
        }
        if let Some(idp) = &params.kc_idp_hint {
            request = request.add_extra_param("kc_idp_hint", idp.clone());
        }
        if let Some(own) = a
            .redirect_uri
            .clone()
            .and_then(|u| RedirectUrl::new(u).ok())
        {
            request = request.set_redirect_uri(std::borrow::Cow::Owned(own));
        }
        let (url, _, _) = request.url();
        url.into()
    }

    /// Finishes a login at the callback (`request`: its cookies and host).
    pub async fn finish_login(
        &self,
        sealer: &Sealer,
        params: CallbackParams,
        request: CookieContext<'_>,
        now: UnixTime,
    ) -> LoginFinish {
        let taken = self
            .state_cookies
            .take(sealer, request, params.state.as_deref(), now);
        self.metrics
            .state_cookies_dropped
            .fetch_add(taken.dropped as u64, std::sync::atomic::Ordering::Relaxed);
        let outcome = async {
            let attempt = taken.attempt.map_err(|p| match p {
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
            let mut exchange = provider
                .client
                .exchange_code(AuthorizationCode::new(code))
                .set_pkce_verifier(PkceCodeVerifier::new(attempt.verifier.clone()));
            // The callback URL the authorization request named (RFC 6749 §4.1.3).
            let own = attempt
                .redirect_uri
                .clone()
                .and_then(|u| RedirectUrl::new(u).ok());
            if let Some(own) = own {
                exchange = exchange.set_redirect_uri(std::borrow::Cow::Owned(own));
            }
            let tokens = self
                .idp
                .observed(IdpCall::Code, async {
                    exchange
                        .request_async(&self.idp)
                        .await
                        .map_err(IdpError::from)
                })
                .await;
            let nonce = Nonce::new(attempt.nonce.clone());
            let session = self
                .session_from_tokens(
                    tokens.map_err(LoginError::Exchange)?,
                    Some(&nonce),
                    None,
                    now,
                )
                .await?;
            Ok(LoggedIn {
                session,
                return_to: attempt.return_to,
            })
        }
        .await;
        LoginFinish {
            outcome,
            clear_state: taken.clear,
        }
    }

    /// Refreshes a session's tokens (RFC 6749 §6). Concurrent calls for the same session share
    /// one grant and its result.
    pub async fn refresh(
        &self,
        session: &Session,
        now: UnixTime,
    ) -> Result<Arc<Session>, RefreshError> {
        let Some(rt) = session.refresh_token.clone() else {
            return Err(RefreshError::NoRefreshToken);
        };
        let key = B64.encode(digest::digest(&digest::SHA256, rt.as_bytes()));
        let session = session.clone();
        // try_get_with shares one grant between concurrent callers but caches only successes:
        // a failure during an IdP outage must not be replayed once the IdP is back.
        self.refreshes
            .try_get_with(key, async move {
                let provider = self
                    .provider()
                    .ok_or(RefreshError::Idp(IdpError::Unreachable))?;
                let tokens = self
                    .idp
                    .observed(IdpCall::Refresh, async {
                        provider
                            .client
                            .exchange_refresh_token(&RefreshToken::new(rt))
                            .request_async(&self.idp)
                            .await
                            .map_err(IdpError::from)
                    })
                    .await;
                let tokens = tokens.map_err(RefreshError::Idp)?;
                let refreshed = self
                    .session_from_tokens(tokens, None, Some(&session), now)
                    .await
                    .map_err(|e| {
                        tracing::warn!(code = "refresh.bad_tokens", error = %e, "refreshed tokens rejected");
                        RefreshError::BadTokens(e.to_string())
                    })?;
                Ok::<_, RefreshError>(Arc::new(refreshed))
            })
            .await
            .map_err(|e| (*e).clone())
    }

    /// Validates an ID token (OIDC Core §3.1.3.7): signature by one of the issuer's keys (an
    /// unknown `kid` refetches them once, rate-limited), `iss`, `aud` (no other audience),
    /// `azp`, `exp` and `iat` with our leeway and our clock, and the nonce at login. Refreshed
    /// ID tokens carry no nonce (OIDC Core §12.2), so none is required then.
    async fn verify_id_token(
        &self,
        token: &IdToken,
        nonce: Option<&Nonce>,
        now: UnixTime,
    ) -> Result<IdentityClaims, TokenError> {
        self.keys
            .check_refetching(&self.idp, &self.metrics, || {
                self.id_token_claims(token, nonce, now)
            })
            .await
    }

    fn id_token_claims(
        &self,
        token: &IdToken,
        nonce: Option<&Nonce>,
        now: UnixTime,
    ) -> Result<IdentityClaims, TokenError> {
        let leeway = self.leeway;
        // openidconnect compares `exp` with this clock; setting it `leeway` back grants the
        // leeway. `iat` may not be later than now (plus the leeway).
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.client_id.clone()),
            openidconnect::IssuerUrl::new(self.issuer.clone()).map_err(|_| TokenError::Issuer)?,
            self.keys.id_token_keys(),
        )
        .set_allowed_algs(ID_TOKEN_ALGS)
        .set_time_fn(move || unix_to_utc(now.saturating_sub(leeway)))
        .set_issue_time_verifier_fn(move |iat| {
            if iat > unix_to_utc(now.saturating_add(leeway)) {
                Err("issued in the future".into())
            } else {
                Ok(())
            }
        });
        let claims = match nonce {
            Some(n) => token.claims(&verifier, n),
            None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        }
        .map_err(token_error)?;
        let extra = claims.additional_claims();
        if extra.typ.as_deref().is_some_and(|t| t != "ID") {
            return Err(TokenError::TokenType);
        }
        let mut identity = IdentityClaims {
            sub: Some(claims.subject().to_string()),
            email: claims.email().map(|e| e.to_string()),
            email_verified: claims.email_verified(),
            preferred_username: claims.preferred_username().map(|u| u.to_string()),
            groups: extra.groups.clone(),
            realm_access: extra.realm_access.clone(),
            resource_access: extra.resource_access.clone(),
            sid: extra.sid.clone(),
            ..IdentityClaims::default()
        };
        if !self.claims.is_standard() {
            // The payload openidconnect has just verified, read as JSON for the claims it
            // has no field for.
            self.claims
                .apply(&payload_json(&token.to_string())?, &mut identity);
        }
        Ok(identity)
    }

    /// Builds a session from a token response. At login the ID token is required and must
    /// carry our nonce; on refresh it is optional and has no nonce (OIDC Core §12.2).
    async fn session_from_tokens(
        &self,
        tokens: Tokens,
        nonce: Option<&Nonce>,
        previous: Option<&Session>,
        now: UnixTime,
    ) -> Result<Session, LoginError> {
        let id_token = tokens.id_token();
        let mut identity = match (id_token, previous) {
            (Some(id_token), _) => {
                let claims = self
                    .verify_id_token(id_token, nonce, now)
                    .await
                    .map_err(LoginError::IdToken)?;
                let id = Identity::from_claims(claims)
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
        let access_token = tokens.access_token().secret();
        // Keycloak puts roles in the access token; read them when it is a JWT we can verify.
        let expires_in = tokens.expires_in().map_or(300, |d| d.as_secs());
        let mut access_exp = now + expires_in;
        if let Ok(mut t) = UnverifiedToken::parse(access_token) {
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
                let claims = t.identity_claims(&self.claims);
                if let Some(roles) = claims.ok().and_then(Identity::from_claims) {
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
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            id_token: id_token
                .map(|t| t.to_string())
                .or_else(|| previous.and_then(|p| p.id_token.clone())),
            access_token: self.keep_access_token.then(|| access_token.clone()),
        })
    }

    /// RP-initiated logout at the IdP (OIDC RP-Initiated Logout 1.0 §2), when it has an
    /// `end_session_endpoint`.
    pub fn logout_url(&self, id_token: Option<&str>, post_logout_redirect: &str) -> Option<String> {
        let provider = self.provider()?;
        let end = provider
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request =
            LogoutRequest::from(end).set_client_id(ClientId::new(self.client_id.clone()));
        if let Some(hint) = id_token.and_then(|t| t.parse::<IdToken>().ok()) {
            request = request.set_id_token_hint(&hint);
        }
        if let Ok(rd) = PostLogoutRedirectUrl::new(post_logout_redirect.into()) {
            request = request.set_post_logout_redirect_uri(rd);
        }
        Some(request.http_get_url().into())
    }
}

impl Refresher for Oidc {
    async fn refresh(
        &self,
        session: &Session,
        now: UnixTime,
    ) -> Result<Arc<Session>, RefreshError> {
        Oidc::refresh(self, session, now).await
    }
}

fn unix_to_utc(t: UnixTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(i64::try_from(t).unwrap_or(i64::MAX), 0).unwrap_or_default()
}

/// openidconnect's verdict on an ID token, in the proxy's terms.
fn token_error(e: ClaimsVerificationError) -> TokenError {
    match e {
        ClaimsVerificationError::Expired(_) => TokenError::Expired,
        ClaimsVerificationError::InvalidAudience(_) => TokenError::Audience,
        ClaimsVerificationError::InvalidIssuer(_) => TokenError::Issuer,
        ClaimsVerificationError::InvalidNonce(_) => TokenError::Nonce,
        ClaimsVerificationError::SignatureVerification(s) => match s {
            SignatureVerificationError::NoMatchingKey => TokenError::UnknownKey,
            SignatureVerificationError::DisallowedAlg(_)
            | SignatureVerificationError::UnsupportedAlg(_) => TokenError::Algorithm,
            _ => TokenError::Signature,
        },
        ClaimsVerificationError::Unsupported(_) => TokenError::Malformed,
        _ => TokenError::MissingClaim,
    }
}
