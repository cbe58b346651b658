//! `portcullis-test-idp`: an in-process OpenID Connect identity provider that mimics
//! Keycloak closely enough for Portcullis' integration tests, benches and demo.
//!
//! It listens on `127.0.0.1:<random port>`, serves Keycloak-shaped endpoints under
//! `/realms/{realm}` (discovery, auth, token, certs, userinfo, logout), auto-approves
//! logins as the configured [`TestUser`], mints tokens on demand, and exposes live
//! misbehaviour switches and counters through [`Controls`].
//!
//! ```no_run
//! # async fn demo() {
//! use portcullis_test_idp::{IdpOptions, TestIdp, TestUser};
//! let idp = TestIdp::start(IdpOptions::default()).await;
//! let token = idp.mint_access_token(&TestUser::alice(), serde_json::json!({}), "rsa-1");
//! println!("{} {}", idp.issuer(), token);
//! # }
//! ```

#![forbid(unsafe_code)]

mod backchannel;
mod controls;
mod flow;
mod keys;
mod responses;
mod routes;
mod server;
mod store;
mod support;
mod tokens;

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

pub use controls::{Controls, JwksPhase, LogoutCall, SWITCH_NAMES};
pub use tokens::BACKCHANNEL_LOGOUT_EVENT;

use store::Store;
use tokens::{Issue, TokenFactory, merge};

/// Scope granted to every login (Keycloak's default client scopes).
pub const GRANTED_SCOPE: &str = "openid profile email";

/// Key ids that [`TestIdp::mint_access_token`] and [`TestIdp::sign_raw`] accept.
/// `rsa-rogue` is never published; `rsa-enc` is published with `use: "enc"` only.
pub const KEY_IDS: &[&str] = &[
    "rsa-1",
    "rsa-1-ps",
    "rsa-2",
    "ec-1",
    "ed-1",
    "rsa-rogue",
    "rsa-enc",
];

/// A user that "logs in" at the IdP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestUser {
    /// Subject identifier (`sub`).
    pub sub: String,
    /// `preferred_username`.
    pub preferred_username: String,
    /// `email`.
    pub email: String,
    /// Group names without leading slash (`groups` claim).
    pub groups: Vec<String>,
    /// `realm_access.roles`.
    pub realm_roles: Vec<String>,
    /// `(client, role)` pairs for `resource_access.{client}.roles`.
    pub client_roles: Vec<(String, String)>,
    /// More claims (a JSON object, or null for none) in both the ID and the access token, as
    /// a Keycloak protocol mapper adds them (`tenant`, `upn`…).
    pub extra_claims: Value,
}

impl TestUser {
    /// Alice: admin group, realm role `platform-user`, client role `portcullis/reader`.
    pub fn alice() -> Self {
        Self {
            sub: "a1b2c3-alice".into(),
            preferred_username: "alice".into(),
            email: "alice@example.com".into(),
            groups: vec!["admins".into()],
            realm_roles: vec!["platform-user".into()],
            client_roles: vec![("portcullis".into(), "reader".into())],
            extra_claims: Value::Null,
        }
    }

    /// Bob: no groups, no roles.
    pub fn bob() -> Self {
        Self {
            sub: "d4e5f6-bob".into(),
            preferred_username: "bob".into(),
            email: "bob@example.org".into(),
            groups: Vec::new(),
            realm_roles: Vec::new(),
            client_roles: Vec::new(),
            extra_claims: Value::Null,
        }
    }

    /// `alice` or `bob` by username.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "alice" => Some(Self::alice()),
            "bob" => Some(Self::bob()),
            _ => None,
        }
    }
}

/// Configuration of a [`TestIdp`].
#[derive(Clone, Debug)]
pub struct IdpOptions {
    /// Realm name; the issuer is `{base_url}/realms/{realm}`. Default `test`.
    pub realm: String,
    /// The one registered confidential client. Default `portcullis`.
    pub client_id: String,
    /// Its secret. Default `test-secret`.
    pub client_secret: String,
    /// Who logs in at `/auth` (auto-approved, no login page). Default alice.
    pub user: TestUser,
    /// Access (and ID) token lifetime. Default 300.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime. Default 1800.
    pub refresh_token_ttl_secs: u64,
}

impl Default for IdpOptions {
    fn default() -> Self {
        Self {
            realm: "test".into(),
            client_id: "portcullis".into(),
            client_secret: "test-secret".into(),
            user: TestUser::alice(),
            access_token_ttl_secs: 300,
            refresh_token_ttl_secs: 1800,
        }
    }
}

/// State shared by the handle and the connection tasks.
pub(crate) struct Shared {
    pub opts: IdpOptions,
    pub base_url: String,
    pub issuer: String,
    /// `/realms/{realm}`
    pub realm_path: String,
    pub controls: Controls,
    pub tokens: TokenFactory,
    store: Mutex<Store>,
}

impl Shared {
    /// The IdP's clock (real time plus `clock_skew_secs`).
    pub(crate) fn now(&self) -> u64 {
        let c = &self.controls;
        support::now_secs(
            c.fixed_now_secs.load(std::sync::atomic::Ordering::SeqCst),
            c.clock_skew_secs.load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Access token for `user` with a random `sid`, overrides merged, signed with `kid`.
    pub(crate) fn mint_access(&self, user: &TestUser, overrides: &Value, kid: &str) -> String {
        let sid = support::random_uuid();
        let issue = Issue {
            now: self.now(),
            ttl: self.opts.access_token_ttl_secs,
            sid: &sid,
            scope: GRANTED_SCOPE,
        };
        let mut claims = self.tokens.access_claims(user, &issue);
        merge(&mut claims, overrides);
        self.tokens.sign(&claims, kid, "JWT")
    }

    /// ID token for `user` with a random `sid`, overrides merged, signed with `kid`.
    pub(crate) fn mint_id(
        &self,
        user: &TestUser,
        nonce: Option<&str>,
        overrides: &Value,
        kid: &str,
    ) -> String {
        let sid = support::random_uuid();
        let now = self.now();
        let issue = Issue {
            now,
            ttl: self.opts.access_token_ttl_secs,
            sid: &sid,
            scope: GRANTED_SCOPE,
        };
        let mut claims = self.tokens.id_claims(user, &issue, now, nonce);
        merge(&mut claims, overrides);
        self.tokens.sign(&claims, kid, "JWT")
    }

    /// Back-channel logout token for `sub`/`sid`, overrides merged, signed with the
    /// current signing key.
    pub(crate) fn mint_logout(&self, sub: &str, sid: &str, overrides: &Value) -> String {
        let mut claims = self.tokens.logout_claims(sub, sid, self.now());
        merge(&mut claims, overrides);
        self.tokens
            .sign(&claims, &self.controls.signing_kid(), "logout+jwt")
    }

    /// End session `sid`; if it was active and a back-channel logout URL is registered,
    /// POST a logout token there (awaited). Returns whether an active session was ended.
    pub(crate) async fn end_session_notify(&self, sid: &str) -> bool {
        let ended_sub = {
            let mut store = self.store();
            let sub = store.sessions.get(sid).map(|s| s.user.sub.clone());
            if store.end_session(sid) { sub } else { None }
        };
        let Some(sub) = ended_sub else {
            return false;
        };
        if let Some(url) = self.controls.backchannel_logout_url() {
            let token = self.mint_logout(&sub, sid, &json!({}));
            let result = backchannel::send_logout_token(&url, &token).await;
            self.controls.record_backchannel(result);
        }
        true
    }

    /// Full URL of an `openid-connect` protocol endpoint (`auth`, `token`, ...).
    pub(crate) fn endpoint(&self, name: &str) -> String {
        format!("{}/protocol/openid-connect/{name}", self.issuer)
    }
}

struct Handle {
    shared: Arc<Shared>,
    server: tokio::sync::Mutex<server::Server>,
}

/// A running test IdP. Cheap to clone; the server stops when the last clone is dropped
/// (or when the tokio runtime it was started on shuts down).
#[derive(Clone)]
pub struct TestIdp {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for TestIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIdp")
            .field("issuer", &self.inner.shared.issuer)
            .finish_non_exhaustive()
    }
}

impl TestIdp {
    /// Start on `127.0.0.1:0`. Panics if the loopback listener cannot be created.
    pub async fn start(opts: IdpOptions) -> TestIdp {
        match Self::try_start(opts).await {
            Ok(idp) => idp,
            Err(e) => panic!("test-idp: cannot start: {e}"),
        }
    }

    /// Start on `127.0.0.1:0`, reporting errors.
    pub async fn try_start(opts: IdpOptions) -> std::io::Result<TestIdp> {
        Self::try_start_on_port(opts, 0).await
    }

    /// Start on `127.0.0.1:port` (0 = any free port).
    pub async fn try_start_on_port(opts: IdpOptions, port: u16) -> std::io::Result<TestIdp> {
        let listener = server::bind(port)?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let realm_path = format!("/realms/{}", opts.realm);
        let issuer = format!("{base_url}{realm_path}");
        let keys = keys::KeyRing::load().map_err(|e| std::io::Error::other(e.to_string()))?;
        let shared = Arc::new(Shared {
            tokens: TokenFactory {
                keys,
                issuer: issuer.clone(),
                client_id: opts.client_id.clone(),
            },
            store: Mutex::new(Store::new(opts.user.clone())),
            opts,
            base_url,
            issuer,
            realm_path,
            controls: Controls::default(),
        });
        let server = server::Server::spawn(listener, addr, shared.clone());
        Ok(TestIdp {
            inner: Arc::new(Handle {
                shared,
                server: tokio::sync::Mutex::new(server),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// `http://127.0.0.1:PORT/realms/{realm}`.
    pub fn issuer(&self) -> String {
        self.shared().issuer.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared().base_url.clone()
    }

    /// The TCP port (stable across [`TestIdp::stop`] / [`TestIdp::restart`]).
    pub fn port(&self) -> u16 {
        self.shared()
            .base_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// The options the IdP was started with.
    pub fn options(&self) -> &IdpOptions {
        &self.shared().opts
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.shared().issuer)
    }

    /// `{issuer}/protocol/openid-connect/auth`.
    pub fn authorization_endpoint(&self) -> String {
        self.shared().endpoint("auth")
    }

    /// `{issuer}/protocol/openid-connect/token`.
    pub fn token_endpoint(&self) -> String {
        self.shared().endpoint("token")
    }

    /// `{issuer}/protocol/openid-connect/certs`.
    pub fn jwks_uri(&self) -> String {
        self.shared().endpoint("certs")
    }

    /// `{issuer}/protocol/openid-connect/userinfo`.
    pub fn userinfo_endpoint(&self) -> String {
        self.shared().endpoint("userinfo")
    }

    /// `{issuer}/protocol/openid-connect/logout`.
    pub fn end_session_endpoint(&self) -> String {
        self.shared().endpoint("logout")
    }

    /// Live switches and counters.
    pub fn controls(&self) -> &Controls {
        &self.shared().controls
    }

    /// Who logs in at the next `/auth`.
    pub fn set_user(&self, u: TestUser) {
        self.shared().store().current_user = u;
    }

    /// Who logs in at the next `/auth`.
    pub fn current_user(&self) -> TestUser {
        self.shared().store().current_user.clone()
    }

    /// `sid` of the most recent login session created by `/auth`.
    pub fn last_session_id(&self) -> Option<String> {
        self.shared().store().last_sid.clone()
    }

    /// End a login session silently (no back-channel logout): its refresh tokens stop
    /// working.
    /// Returns whether an active session was ended.
    pub fn end_session(&self, sid: &str) -> bool {
        self.shared().store().end_session(sid)
    }

    /// End a login session as an admin would ("Sign out" in the Keycloak console): its
    /// refresh tokens stop working and, if a back-channel logout URL is registered
    /// ([`Controls::set_backchannel_logout_url`]), a logout token is POSTed there first.
    /// Returns whether an active session was ended.
    pub async fn logout_session(&self, sid: &str) -> bool {
        self.shared().end_session_notify(sid).await
    }

    /// Mint a logout token (see [`TestIdp::mint_logout_token`]) and POST it as
    /// `logout_token=<jwt>` to `url` (plain `http://`). Returns the response status.
    pub async fn send_backchannel_logout(
        &self,
        url: &str,
        overrides: Value,
    ) -> Result<u16, String> {
        let token = self.mint_logout_token(overrides);
        backchannel::send_logout_token(url, &token).await
    }

    /// Mint a Keycloak-shaped access token for `user`, merge `overrides` (a JSON object;
    /// `null` removes a claim), and sign with key `kid` using that key's algorithm
    /// (`rsa-*` RS256, `rsa-1-ps` PS256, `ec-1` ES256, `ed-1` EdDSA). The `sid` is random
    /// unless overridden. Panics on an unknown `kid`.
    pub fn mint_access_token(&self, user: &TestUser, overrides: Value, kid: &str) -> String {
        self.shared().mint_access(user, &overrides, kid)
    }

    /// Mint an access token signed with `rsa-1` as PS256 (header kid `rsa-1-ps`).
    pub fn mint_access_token_ps256(&self, user: &TestUser, overrides: Value) -> String {
        self.mint_access_token(user, overrides, "rsa-1-ps")
    }

    /// Mint an ID token (as `/token` would, minus misbehaviour switches), signed with the
    /// current signing key (`rsa-1`, or `rsa-2` after rotation).
    pub fn mint_id_token(&self, user: &TestUser, nonce: Option<&str>, overrides: Value) -> String {
        let s = self.shared();
        s.mint_id(user, nonce, &overrides, &s.controls.signing_kid())
    }

    /// Mint an OIDC back-channel logout token (header `typ: logout+jwt`), signed with the
    /// current signing key. Defaults: `sub` = current user, `sid` = the most recent login
    /// session (or a random one); override either (or remove with `null`).
    pub fn mint_logout_token(&self, overrides: Value) -> String {
        let s = self.shared();
        let (sub, sid) = {
            let store = s.store();
            (
                store.current_user.sub.clone(),
                store.last_sid.clone().unwrap_or_else(support::random_uuid),
            )
        };
        s.mint_logout(&sub, &sid, &overrides)
    }

    /// Serialize `header` and `claims` exactly as given and sign with key `kid`.
    /// `alg: "none"` gives an unsigned token; `alg: "HS256"` (or HS384/HS512) uses the key's
    /// public PEM text as the HMAC secret (algorithm confusion); an algorithm of the key's
    /// family is honoured (e.g. RS384 with `rsa-1`); anything else is signed with the key's
    /// own algorithm, leaving the header untouched. The header is not given a `kid`
    /// unless you put one in.
    pub fn sign_raw(&self, header: Value, claims: Value, kid: &str) -> String {
        self.shared().tokens.sign_raw(&header, &claims, kid)
    }

    /// Serialize `header` and `claims` as given and sign with HMAC keyed by `secret`
    /// (HS256/HS384/HS512 from the header's `alg`, HS256 otherwise).
    pub fn sign_hmac(&self, header: Value, claims: Value, secret: &[u8]) -> String {
        tokens::sign_hmac(&header, &claims, secret)
    }

    /// `rsa-1` public key as SubjectPublicKeyInfo PEM.
    pub fn rsa_public_key_pem(&self) -> String {
        self.public_key_pem("rsa-1")
    }

    /// Public key PEM of any key id in [`KEY_IDS`]. Panics on an unknown `kid`.
    pub fn public_key_pem(&self, kid: &str) -> String {
        self.shared().tokens.keys.must(kid).public_pem.to_owned()
    }

    /// The JWKS document currently served at `/certs`.
    pub fn jwks(&self) -> Value {
        self.shared().tokens.keys.jwks(self.controls().jwks_phase())
    }

    /// Stop accepting connections and drop open ones. The port stays bound (but not
    /// listening), so clients get "connection refused" until [`TestIdp::restart`].
    pub async fn stop(&self) {
        self.inner.server.lock().await.stop().await;
    }

    /// Listen again on the same port. No-op when already running. Panics if the port
    /// cannot be re-bound.
    pub async fn restart(&self) {
        let mut server = self.inner.server.lock().await;
        if let Err(e) = server.restart(self.inner.shared.clone()).await {
            panic!("test-idp: cannot restart on port {}: {e}", self.port());
        }
    }

    /// Whether the IdP is currently accepting connections.
    pub async fn is_running(&self) -> bool {
        self.inner.server.lock().await.is_running()
    }
}

/// Build a user from JSON: `"alice"`, `"bob"`, or an object with the [`TestUser`] fields
/// (`client_roles` as `[["client","role"], ...]`); missing fields default to alice's.
pub fn user_from_json(v: &Value) -> Option<TestUser> {
    if let Some(name) = v.as_str() {
        return TestUser::by_name(name);
    }
    let obj = v.as_object()?;
    let mut u = TestUser::alice();
    let strings = |key: &str| -> Option<Vec<String>> {
        Some(
            obj.get(key)?
                .as_array()?
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
        )
    };
    if let Some(s) = obj.get("sub").and_then(Value::as_str) {
        u.sub = s.to_owned();
    }
    if let Some(s) = obj.get("preferred_username").and_then(Value::as_str) {
        u.preferred_username = s.to_owned();
    }
    if let Some(s) = obj.get("email").and_then(Value::as_str) {
        u.email = s.to_owned();
    }
    if let Some(g) = strings("groups") {
        u.groups = g;
    }
    if let Some(r) = strings("realm_roles") {
        u.realm_roles = r;
    }
    if let Some(pairs) = obj.get("client_roles").and_then(Value::as_array) {
        u.client_roles = pairs
            .iter()
            .filter_map(|p| {
                let p = p.as_array()?;
                Some((
                    p.first()?.as_str()?.to_owned(),
                    p.get(1)?.as_str()?.to_owned(),
                ))
            })
            .collect();
    }
    Some(u)
}

/// JSON view of a user (inverse of [`user_from_json`]).
pub fn user_to_json(u: &TestUser) -> Value {
    json!({
        "sub": u.sub,
        "preferred_username": u.preferred_username,
        "email": u.email,
        "groups": u.groups,
        "realm_roles": u.realm_roles,
        "client_roles": u.client_roles.iter().map(|(c, r)| json!([c, r])).collect::<Vec<_>>(),
    })
}
