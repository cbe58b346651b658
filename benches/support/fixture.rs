//! What the benches share: a test IdP, a Portcullis app pointed at it with its keys loaded,
//! a session the size of a Keycloak one, polling a decision that must not wait, and a fixed
//! moka expiry. Included with `#[path]` by each bench.

#![allow(dead_code)]

use portcullis::app::App;
use portcullis::clock::SystemClock;
use portcullis::config::Config;
use portcullis::session::Session;
use portcullis_test_idp::{IdpOptions, TestIdp, TestUser};
use serde_json::json;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Polls a future once with a no-op waker; the hot path must complete without waiting.
pub fn poll_ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("hot path awaited something pending"),
    }
}

/// A per-entry lifetime, as `UntilValid` in `src/token/verified_cache.rs` (a fixed 5 min here).
pub struct FixedTtl;

impl<K, V> moka::Expiry<K, V> for FixedTtl {
    fn expire_after_create(&self, _k: &K, _v: &V, _at: std::time::Instant) -> Option<Duration> {
        Some(Duration::from_secs(300))
    }
}

/// A started test IdP and a Portcullis app pointed at it, keys loaded.
pub struct Fixture {
    pub rt: tokio::runtime::Runtime,
    pub idp: TestIdp,
    pub app: Arc<App>,
}

/// `cache_capacity`: `session.cache_capacity` and `bearer.cache_capacity` (`None`: defaults).
pub fn fixture(cache_capacity: Option<u64>) -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let idp = rt.block_on(TestIdp::start(IdpOptions::default()));
    // The background key refresh must not fetch during the run (its period is the max-age).
    idp.controls().set_jwks_max_age_secs(3600);
    let capacity = cache_capacity.map_or(String::new(), |n| format!("cache_capacity = {n}"));
    let toml = format!(
        r#"
public_url = "http://127.0.0.1:4180"
[oidc]
issuer_url = "{issuer}"
client_id = "portcullis"
client_secret = "test-secret"
[session]
cookie_secret = "q2J1dW1seS1ub3QtYS1yZWFsLXNlY3JldC0xMjM0NTY="
cookie_secure = false
{capacity}
[redirect]
allowed_domains = ["127.0.0.1"]
[authz]
email_domains = ["example.com"]
allowed_groups = ["admins"]
[bearer]
enabled = true
audiences = ["portcullis"]
jwks_refetch_interval = "1h"
{capacity}
"#,
        issuer = idp.issuer()
    );
    let config = Config::from_toml(&toml, &[]).unwrap();
    let app = App::new(config, Arc::new(SystemClock)).unwrap();
    rt.block_on(async {
        app.spawn_background();
        for _ in 0..500 {
            if app.oidc().is_ready() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("app never became ready");
    });
    Fixture { rt, idp, app }
}

impl Fixture {
    /// A Keycloak-sized session for `user` (ID token and refresh token kept), fresh at `now`.
    /// Built from its JSON form (`src/session.rs` serde names) so the benches do not break
    /// when `Session` gains optional fields.
    pub fn keycloak_session(&self, user: &TestUser, sid: &str, now: u64) -> Session {
        let id_token = self.idp.mint_id_token(user, None, json!({}));
        let refresh_token = self.idp.sign_hmac(
            json!({"alg": "HS512", "typ": "JWT", "kid": "4c1a2b3c-refresh"}),
            json!({
                "exp": now + 1800, "iat": now, "jti": "7f0e9d8c-6b5a-4f3e-9d2c-1b0a9f8e7d6c",
                "iss": self.idp.issuer(), "aud": self.idp.issuer(), "sub": user.sub,
                "typ": "Refresh", "azp": "portcullis", "sid": sid,
                "scope": "openid profile email"
            }),
            b"refresh-secret-of-the-realm-0123456789abcdef",
        );
        serde_json::from_value(json!({
            "n": "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
            "p": {
                "s": user.sub, "e": user.email, "v": true, "u": user.preferred_username,
                "g": user.groups, "r": user.realm_roles, "c": user.client_roles,
                "i": sid
            },
            "c": now, "t": now, "a": now + 300, "x": now + 12 * 3600,
            "rt": refresh_token, "it": id_token
        }))
        .unwrap()
    }
}
