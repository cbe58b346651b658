//! Live switches (misbehaviour toggles) and request counters of a running test IdP.
//!
//! Switches are public atomics so tests can flip them directly:
//! `idp.controls().down.store(true, Ordering::SeqCst)`, or by name with
//! [`Controls::set_switch`] (also reachable over HTTP at `POST /test/controls`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};

use serde_json::{Value, json};

const SEQ: Ordering = Ordering::SeqCst;

/// Which RSA keys the JWKS endpoint publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwksPhase {
    /// `rsa-1` and `rsa-1-ps` (the initial state).
    Rsa1,
    /// `rsa-1`, `rsa-1-ps` and `rsa-2` (overlap during a rotation).
    Both,
    /// Only `rsa-2` (after rotation; `rsa-1`/`rsa-1-ps` are gone).
    Rsa2,
}

/// One recorded call to the end-session (`/logout`) endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogoutCall {
    /// Raw query string (GET) or form body (POST).
    pub query: String,
    /// `id_token_hint` parameter, if any.
    pub id_token_hint: Option<String>,
    /// `post_logout_redirect_uri` parameter, if any.
    pub post_logout_redirect_uri: Option<String>,
    /// `client_id` parameter, if any.
    pub client_id: Option<String>,
    /// `state` parameter, if any.
    pub state: Option<String>,
}

/// Live switches and counters. Obtain with `TestIdp::controls()`.
#[derive(Debug)]
pub struct Controls {
    /// `/auth` redirects back with `error=access_denied` instead of a code.
    pub authorize_error: AtomicBool,
    /// An authorization code may be redeemed more than once.
    pub allow_code_reuse: AtomicBool,
    /// Keycloak's "Revoke Refresh Token": a refresh token works once; reuse kills the session.
    pub revoke_refresh_token_on_use: AtomicBool,
    /// ID tokens from `/token` carry a nonce that does not match the request.
    pub id_token_wrong_nonce: AtomicBool,
    /// ID tokens from `/token` have `aud` = "someone-else".
    pub id_token_wrong_aud: AtomicBool,
    /// ID tokens from `/token` have an `iss` different from the discovery issuer.
    pub id_token_wrong_iss: AtomicBool,
    /// ID tokens from `/token` are signed by `rsa-rogue` while claiming kid `rsa-1`/`rsa-2`.
    pub id_token_bad_signature: AtomicBool,
    /// ID tokens from `/token` expired five minutes ago.
    pub id_token_expired: AtomicBool,
    /// ID tokens from `/token` have `azp` = "other-client" (and `aud` includes it).
    pub id_token_azp_other: AtomicBool,
    /// ID tokens from `/token` are HS256, keyed with the client secret (OIDC Core §10.1
    /// allows it; Portcullis must not: the secret is not a signing key it trusts).
    pub id_token_hs256_client_secret: AtomicBool,
    /// ID tokens from `/token` are unsigned (`alg: none`).
    pub id_token_alg_none: AtomicBool,
    /// `/token` answers 500 with a non-JSON body.
    pub token_endpoint_500: AtomicBool,
    /// `/token` answers 400 `{"error":"invalid_grant"}`.
    pub token_endpoint_error: AtomicBool,
    /// The discovery document advertises a different issuer than the one it is served under.
    pub discovery_wrong_issuer: AtomicBool,
    /// Every endpoint (except `/test/*`) answers 503.
    pub down: AtomicBool,
    /// Artificial delay before `/token` answers, in milliseconds.
    pub token_delay_ms: AtomicU64,
    /// `Cache-Control: max-age` of the JWKS response (default 300).
    pub jwks_max_age_secs: AtomicU64,
    /// Seconds added to the IdP's clock for every `iat`/`exp` it writes (may be negative).
    pub clock_skew_secs: AtomicI64,
    /// When non-zero, the IdP's clock is frozen at this Unix time (skew still applies).
    pub fixed_now_secs: AtomicU64,

    jwks_phase: AtomicU8,
    refresh_epoch: AtomicU64,
    signing_kid: Mutex<Option<String>>,
    last_logout: Mutex<Option<LogoutCall>>,
    backchannel_logout_url: Mutex<Option<String>>,
    last_backchannel_result: Mutex<Option<Result<u16, String>>>,

    jwks_fetches: AtomicU64,
    discovery_fetches: AtomicU64,
    authorize_calls: AtomicU64,
    token_requests: AtomicU64,
    code_grants: AtomicU64,
    refresh_grants: AtomicU64,
    userinfo_calls: AtomicU64,
    logout_calls: AtomicU64,
    revocations: AtomicU64,
    backchannel_logouts: AtomicU64,
}

impl Default for Controls {
    fn default() -> Self {
        Self {
            authorize_error: AtomicBool::new(false),
            allow_code_reuse: AtomicBool::new(false),
            revoke_refresh_token_on_use: AtomicBool::new(false),
            id_token_wrong_nonce: AtomicBool::new(false),
            id_token_wrong_aud: AtomicBool::new(false),
            id_token_wrong_iss: AtomicBool::new(false),
            id_token_bad_signature: AtomicBool::new(false),
            id_token_expired: AtomicBool::new(false),
            id_token_azp_other: AtomicBool::new(false),
            id_token_hs256_client_secret: AtomicBool::new(false),
            id_token_alg_none: AtomicBool::new(false),
            token_endpoint_500: AtomicBool::new(false),
            token_endpoint_error: AtomicBool::new(false),
            discovery_wrong_issuer: AtomicBool::new(false),
            down: AtomicBool::new(false),
            token_delay_ms: AtomicU64::new(0),
            jwks_max_age_secs: AtomicU64::new(300),
            clock_skew_secs: AtomicI64::new(0),
            fixed_now_secs: AtomicU64::new(0),
            jwks_phase: AtomicU8::new(0),
            refresh_epoch: AtomicU64::new(0),
            signing_kid: Mutex::new(None),
            last_logout: Mutex::new(None),
            backchannel_logout_url: Mutex::new(None),
            last_backchannel_result: Mutex::new(None),
            jwks_fetches: AtomicU64::new(0),
            discovery_fetches: AtomicU64::new(0),
            authorize_calls: AtomicU64::new(0),
            token_requests: AtomicU64::new(0),
            code_grants: AtomicU64::new(0),
            refresh_grants: AtomicU64::new(0),
            userinfo_calls: AtomicU64::new(0),
            logout_calls: AtomicU64::new(0),
            revocations: AtomicU64::new(0),
            backchannel_logouts: AtomicU64::new(0),
        }
    }
}

/// Names accepted by [`Controls::set_switch`].
pub const SWITCH_NAMES: &[&str] = &[
    "authorize_error",
    "allow_code_reuse",
    "revoke_refresh_token_on_use",
    "id_token_wrong_nonce",
    "id_token_wrong_aud",
    "id_token_wrong_iss",
    "id_token_bad_signature",
    "id_token_expired",
    "id_token_azp_other",
    "id_token_hs256_client_secret",
    "id_token_alg_none",
    "token_endpoint_500",
    "token_endpoint_error",
    "discovery_wrong_issuer",
    "down",
];

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Controls {
    fn switch(&self, name: &str) -> Option<&AtomicBool> {
        Some(match name {
            "authorize_error" => &self.authorize_error,
            "allow_code_reuse" => &self.allow_code_reuse,
            "revoke_refresh_token_on_use" => &self.revoke_refresh_token_on_use,
            "id_token_wrong_nonce" => &self.id_token_wrong_nonce,
            "id_token_wrong_aud" => &self.id_token_wrong_aud,
            "id_token_wrong_iss" => &self.id_token_wrong_iss,
            "id_token_bad_signature" => &self.id_token_bad_signature,
            "id_token_expired" => &self.id_token_expired,
            "id_token_azp_other" => &self.id_token_azp_other,
            "id_token_hs256_client_secret" => &self.id_token_hs256_client_secret,
            "id_token_alg_none" => &self.id_token_alg_none,
            "token_endpoint_500" => &self.token_endpoint_500,
            "token_endpoint_error" => &self.token_endpoint_error,
            "discovery_wrong_issuer" => &self.discovery_wrong_issuer,
            "down" => &self.down,
            _ => return None,
        })
    }

    /// Set a boolean switch by its field name (see [`SWITCH_NAMES`]).
    /// Returns `false` when the name is unknown.
    pub fn set_switch(&self, name: &str, on: bool) -> bool {
        match self.switch(name) {
            Some(flag) => {
                flag.store(on, SEQ);
                true
            }
            None => false,
        }
    }

    /// Read a boolean switch by name (`None` when the name is unknown).
    pub fn switch_value(&self, name: &str) -> Option<bool> {
        self.switch(name).map(|f| f.load(SEQ))
    }

    /// Turn every switch off and restore the defaults (delay 0, JWKS max-age 300,
    /// no clock skew, signing key follows rotation). Counters, rotation phase and
    /// refresh-token revocations are kept.
    pub fn reset_switches(&self) {
        for name in SWITCH_NAMES {
            self.set_switch(name, false);
        }
        self.token_delay_ms.store(0, SEQ);
        self.jwks_max_age_secs.store(300, SEQ);
        self.clock_skew_secs.store(0, SEQ);
        self.fixed_now_secs.store(0, SEQ);
        *lock(&self.signing_kid) = None;
    }

    /// Freeze the IdP's clock at `unix_secs` (`None` = real time again). Useful when the
    /// code under test runs on an injected fake clock.
    pub fn set_fixed_now(&self, unix_secs: Option<u64>) {
        self.fixed_now_secs.store(unix_secs.unwrap_or(0), SEQ);
    }

    /// Shorthand for `down.store(on)`.
    pub fn set_down(&self, on: bool) {
        self.down.store(on, SEQ);
    }

    /// Shorthand for `token_delay_ms.store(ms)`.
    pub fn set_token_delay_ms(&self, ms: u64) {
        self.token_delay_ms.store(ms, SEQ);
    }

    /// Shorthand for `jwks_max_age_secs.store(secs)`.
    pub fn set_jwks_max_age_secs(&self, secs: u64) {
        self.jwks_max_age_secs.store(secs, SEQ);
    }

    /// Publish `rsa-2` and stop publishing `rsa-1`/`rsa-1-ps`. Tokens from `/token`
    /// are then signed with `rsa-2`.
    pub fn rotate_to_rsa2(&self) {
        self.set_jwks_phase(JwksPhase::Rsa2);
    }

    /// Publish both `rsa-1` (with `rsa-1-ps`) and `rsa-2`; `/token` signs with `rsa-2`.
    pub fn publish_rsa1_and_rsa2(&self) {
        self.set_jwks_phase(JwksPhase::Both);
    }

    /// Back to the initial key set (`rsa-1`, `rsa-1-ps`).
    pub fn rotate_back_to_rsa1(&self) {
        self.set_jwks_phase(JwksPhase::Rsa1);
    }

    /// Choose the published RSA keys.
    pub fn set_jwks_phase(&self, phase: JwksPhase) {
        let v = match phase {
            JwksPhase::Rsa1 => 0,
            JwksPhase::Both => 1,
            JwksPhase::Rsa2 => 2,
        };
        self.jwks_phase.store(v, SEQ);
    }

    /// Current JWKS phase.
    pub fn jwks_phase(&self) -> JwksPhase {
        match self.jwks_phase.load(SEQ) {
            0 => JwksPhase::Rsa1,
            1 => JwksPhase::Both,
            _ => JwksPhase::Rsa2,
        }
    }

    /// Sign tokens issued by `/token` with this key id instead of the default
    /// (`rsa-1`, or `rsa-2` after rotation). `None` restores the default.
    pub fn set_signing_kid(&self, kid: Option<&str>) {
        *lock(&self.signing_kid) = kid.map(str::to_owned);
    }

    /// Key id used for tokens issued by `/token` (and `mint_id_token` / `mint_logout_token`).
    pub fn signing_kid(&self) -> String {
        if let Some(kid) = lock(&self.signing_kid).clone() {
            return kid;
        }
        match self.jwks_phase() {
            JwksPhase::Rsa1 => "rsa-1".to_owned(),
            JwksPhase::Both | JwksPhase::Rsa2 => "rsa-2".to_owned(),
        }
    }

    /// Invalidate every refresh token issued so far: each later refresh with one of
    /// them fails with 400 `invalid_grant`. Tokens issued afterwards work.
    pub fn revoke_all_refresh_tokens(&self) {
        self.refresh_epoch.fetch_add(1, SEQ);
    }

    pub(crate) fn refresh_epoch(&self) -> u64 {
        self.refresh_epoch.load(SEQ)
    }

    /// Number of `GET .../certs` requests served (not counting 503s while down).
    pub fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(SEQ)
    }

    /// Number of discovery document requests served.
    pub fn discovery_fetches(&self) -> u64 {
        self.discovery_fetches.load(SEQ)
    }

    /// Number of `/auth` requests.
    pub fn authorize_calls(&self) -> u64 {
        self.authorize_calls.load(SEQ)
    }

    /// Number of `/token` requests of any grant type (counted on arrival).
    pub fn token_requests(&self) -> u64 {
        self.token_requests.load(SEQ)
    }

    /// Number of `grant_type=authorization_code` requests (counted on arrival, success or not).
    pub fn code_grants(&self) -> u64 {
        self.code_grants.load(SEQ)
    }

    /// Number of `grant_type=refresh_token` requests (counted on arrival, success or not).
    pub fn refresh_grants(&self) -> u64 {
        self.refresh_grants.load(SEQ)
    }

    /// Number of `/userinfo` requests.
    pub fn userinfo_calls(&self) -> u64 {
        self.userinfo_calls.load(SEQ)
    }

    /// Number of `/logout` (end-session) requests.
    pub fn logout_calls(&self) -> u64 {
        self.logout_calls.load(SEQ)
    }

    /// The most recent `/logout` call.
    pub fn last_logout(&self) -> Option<LogoutCall> {
        lock(&self.last_logout).clone()
    }

    /// Number of `/revoke` requests.
    pub fn revocations(&self) -> u64 {
        self.revocations.load(SEQ)
    }

    /// Register the client's back-channel logout URL (plain `http://`). When set, ending a
    /// session through `/logout` (with an `id_token_hint`), `/revoke` or
    /// `TestIdp::logout_session` POSTs a logout token there before answering, like Keycloak.
    pub fn set_backchannel_logout_url(&self, url: Option<&str>) {
        *lock(&self.backchannel_logout_url) = url.map(str::to_owned);
    }

    /// The registered back-channel logout URL.
    pub fn backchannel_logout_url(&self) -> Option<String> {
        lock(&self.backchannel_logout_url).clone()
    }

    /// Number of back-channel logout POSTs attempted.
    pub fn backchannel_logouts_sent(&self) -> u64 {
        self.backchannel_logouts.load(SEQ)
    }

    /// Outcome of the most recent back-channel logout POST: the HTTP status or an error.
    pub fn last_backchannel_result(&self) -> Option<Result<u16, String>> {
        lock(&self.last_backchannel_result).clone()
    }

    pub(crate) fn record_backchannel(&self, result: Result<u16, String>) {
        self.backchannel_logouts.fetch_add(1, SEQ);
        *lock(&self.last_backchannel_result) = Some(result);
    }

    pub(crate) fn count_revocation(&self) {
        self.revocations.fetch_add(1, SEQ);
    }

    /// Raw query string of the most recent `/logout` call.
    pub fn last_logout_query(&self) -> Option<String> {
        self.last_logout().map(|c| c.query)
    }

    pub(crate) fn count_jwks(&self) {
        self.jwks_fetches.fetch_add(1, SEQ);
    }
    pub(crate) fn count_discovery(&self) {
        self.discovery_fetches.fetch_add(1, SEQ);
    }
    pub(crate) fn count_authorize(&self) {
        self.authorize_calls.fetch_add(1, SEQ);
    }
    pub(crate) fn count_token_request(&self) {
        self.token_requests.fetch_add(1, SEQ);
    }
    pub(crate) fn count_code_grant(&self) {
        self.code_grants.fetch_add(1, SEQ);
    }
    pub(crate) fn count_refresh_grant(&self) {
        self.refresh_grants.fetch_add(1, SEQ);
    }
    pub(crate) fn count_userinfo(&self) {
        self.userinfo_calls.fetch_add(1, SEQ);
    }
    pub(crate) fn record_logout(&self, call: LogoutCall) {
        self.logout_calls.fetch_add(1, SEQ);
        *lock(&self.last_logout) = Some(call);
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down.load(SEQ)
    }

    pub(crate) fn on(&self, flag: &AtomicBool) -> bool {
        flag.load(SEQ)
    }

    /// All counters as JSON (served at `GET /test/counters`).
    pub fn counters_json(&self) -> Value {
        json!({
            "jwks_fetches": self.jwks_fetches(),
            "discovery_fetches": self.discovery_fetches(),
            "authorize_calls": self.authorize_calls(),
            "token_requests": self.token_requests(),
            "code_grants": self.code_grants(),
            "refresh_grants": self.refresh_grants(),
            "userinfo_calls": self.userinfo_calls(),
            "logout_calls": self.logout_calls(),
            "revocations": self.revocations(),
            "backchannel_logouts_sent": self.backchannel_logouts_sent(),
            "last_logout_query": self.last_logout_query(),
        })
    }

    /// Apply a JSON object of settings, as accepted by `POST /test/controls`:
    /// boolean switches by name, plus `token_delay_ms`, `jwks_max_age_secs`,
    /// `clock_skew_secs`, `fixed_now_secs` (numbers), `jwks_phase` ("rsa1" | "both" | "rsa2"),
    /// `signing_kid` and `backchannel_logout_url` (string or null),
    /// `revoke_all_refresh_tokens` (true), `reset` (true).
    pub fn apply_json(&self, settings: &Value) -> Result<(), String> {
        let obj = settings
            .as_object()
            .ok_or("controls must be a JSON object")?;
        for (key, value) in obj {
            match key.as_str() {
                "token_delay_ms" => self.token_delay_ms.store(as_u64(key, value)?, SEQ),
                "jwks_max_age_secs" => self.jwks_max_age_secs.store(as_u64(key, value)?, SEQ),
                "fixed_now_secs" => self.fixed_now_secs.store(as_u64(key, value)?, SEQ),
                "clock_skew_secs" => {
                    let v = value
                        .as_i64()
                        .ok_or_else(|| format!("{key} must be an integer"))?;
                    self.clock_skew_secs.store(v, SEQ);
                }
                "jwks_phase" => {
                    let phase = match value.as_str() {
                        Some("rsa1") => JwksPhase::Rsa1,
                        Some("both") => JwksPhase::Both,
                        Some("rsa2") => JwksPhase::Rsa2,
                        _ => return Err("jwks_phase must be rsa1, both or rsa2".into()),
                    };
                    self.set_jwks_phase(phase);
                }
                "signing_kid" => self.set_signing_kid(value.as_str()),
                "backchannel_logout_url" => self.set_backchannel_logout_url(value.as_str()),
                "revoke_all_refresh_tokens" => {
                    if value.as_bool() == Some(true) {
                        self.revoke_all_refresh_tokens();
                    }
                }
                "reset" => {
                    if value.as_bool() == Some(true) {
                        self.reset_switches();
                    }
                }
                name => {
                    let on = value
                        .as_bool()
                        .ok_or_else(|| format!("{name} must be a boolean"))?;
                    if !self.set_switch(name, on) {
                        return Err(format!("unknown control {name:?}"));
                    }
                }
            }
        }
        Ok(())
    }
}

fn as_u64(key: &str, value: &Value) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("{key} must be a non-negative integer"))
}
