//! Scenario 4: Keycloak's signing key is rotated while Portcullis runs.
//!
//! Through both front ends (Caddy + Portcullis A, nginx + Portcullis B), with bearer tokens of
//! the `portcullis-cli` service account: a token passes; an admin adds a new `rsa-generated`
//! key provider with a higher priority and deletes the old ones (the old key leaves the JWKS);
//! tokens signed with the new key then pass without restarting Portcullis (an unknown `kid`
//! triggers a JWKS refetch), and old-key tokens are refused — also one that was verified and
//! cached before the rotation: a withdrawn key empties the verified-token cache. A browser
//! login after the rotation (ID token signed with the new key) works too.
//!
//! It changes the realm's keys for the rest of the run, hence the `z1_` prefix: libtest runs
//! tests in name order, so this runs after every other test except the Keycloak outage. It
//! does not rely on a fresh realm (the new provider's priority is above every existing one),
//! so it also works against a reused `scripts/e2e --up` environment.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::instance::metric;
use crate::support::browser_like::BrowserLike;
use crate::support::env::Env;
use crate::support::keycloak::{self, ALICE};
use crate::support::{Echo, R, err, snippet};

const KEY_PROVIDER: &str = "org.keycloak.keys.KeyProvider";
const JWKS_OK: &str = r#"portcullis_idp_requests_total{kind="jwks",outcome="ok"}"#;

/// Just the realm-admin calls this test needs (components and keys).
struct RealmAdmin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl RealmAdmin {
    async fn connect(env: &Env) -> R<Self> {
        let http = reqwest::Client::new();
        let t: Value = http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                env.keycloak_url
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", env.keycloak_admin_user.as_str()),
                ("password", env.keycloak_admin_password.as_str()),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(Self {
            base: format!("{}/admin/realms/platform", env.keycloak_url),
            token: t["access_token"]
                .as_str()
                .ok_or_else(|| err("no admin access_token"))?
                .to_owned(),
            http,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> R<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            return Err(err(format!(
                "admin API {method} {path}: {status}: {}",
                snippet(&text)
            )));
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    async fn key_providers(&self) -> R<Vec<Value>> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/components?type={KEY_PROVIDER}"),
                None,
            )
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// The kid Keycloak signs RS256 tokens with now.
    async fn active_rs256_kid(&self) -> R<String> {
        let v = self.call(reqwest::Method::GET, "/keys", None).await?;
        v["active"]["RS256"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| err(format!("no active RS256 key: {v}")))
    }
}

fn priority(component: &Value) -> i64 {
    component["config"]["priority"][0]
        .as_str()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// The `kid` in a JWT's header.
fn kid(jwt: &str) -> R<String> {
    let header = jwt.split('.').next().ok_or_else(|| err("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header)?;
    let v: Value = serde_json::from_slice(&bytes)?;
    v["kid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| err("JWT header without kid"))
}

async fn call_api(b: &BrowserLike, base: &str, token: &str) -> R<(u16, String)> {
    let auth = format!("Bearer {token}");
    let resp = b
        .get_with(
            &format!("{base}/api/items"),
            &[("authorization", &auth), ("accept", "application/json")],
        )
        .await?;
    if resp.status == 200 {
        let echo = Echo::parse(&resp.body)?;
        assert_eq!(
            echo.header("x-auth-request-preferred-username"),
            Some("service-account-portcullis-cli"),
            "{base}"
        );
    }
    Ok((resp.status, resp.describe()))
}

#[tokio::test]
async fn z1_signing_key_rotation_is_picked_up_without_restart() -> R {
    let env = Env::load()?;
    let b = BrowserLike::for_env(&env)?;
    let fronts: Vec<(&str, &str, &str)> = vec![
        (
            "caddy",
            env.caddy_url.as_str(),
            env.portcullis_caddy_url.as_str(),
        ),
        (
            "nginx",
            env.nginx_url.as_str(),
            env.portcullis_nginx_url.as_str(),
        ),
    ];

    // Two tokens signed with the current key: one is shown to Portcullis now (and lands in
    // its verified-token cache), the other only after the rotation.
    let seen = keycloak::service_account_token(&env).await?;
    let unseen = keycloak::service_account_token(&env).await?;
    let old_kid = kid(&seen)?;
    for (name, base, _) in &fronts {
        let (status, d) = call_api(&b, base, &seen).await?;
        assert_eq!(status, 200, "{name}, before the rotation: {d}");
    }

    // Rotate: a new RSA key with the highest priority, then delete every older RSA signing
    // key provider, so the old key is gone from the JWKS.
    let admin = RealmAdmin::connect(&env).await?;
    let realm_id = admin.call(reqwest::Method::GET, "", None).await?["id"]
        .as_str()
        .ok_or_else(|| err("realm without id"))?
        .to_owned();
    let before = admin.key_providers().await?;
    let old_rsa: Vec<String> = before
        .iter()
        .filter(|c| c["providerId"] == "rsa-generated")
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !old_rsa.is_empty(),
        "realm has no rsa-generated key provider"
    );
    let top = before.iter().map(priority).max().unwrap_or(100);
    #[allow(clippy::disallowed_methods)] // a unique name only
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    admin
        .call(
            reqwest::Method::POST,
            "/components",
            Some(json!({
                "name": format!("rsa-rotated-{stamp}"),
                "providerId": "rsa-generated",
                "providerType": KEY_PROVIDER,
                "parentId": realm_id,
                "config": {
                    "priority": [(top + 100).to_string()],
                    "enabled": ["true"],
                    "active": ["true"],
                    "keySize": ["2048"],
                    "algorithm": ["RS256"],
                },
            })),
        )
        .await?;
    for id in &old_rsa {
        admin
            .call(reqwest::Method::DELETE, &format!("/components/{id}"), None)
            .await?;
    }
    let new_kid = admin.active_rs256_kid().await?;
    assert_ne!(new_kid, old_kid, "Keycloak still signs with the old key");
    let certs: Value = reqwest::get(format!(
        "{}/protocol/openid-connect/certs",
        env.keycloak_issuer
    ))
    .await?
    .json()
    .await?;
    let published: Vec<&str> = certs["keys"]
        .as_array()
        .map(|a| a.iter().filter_map(|k| k["kid"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        published.contains(&new_kid.as_str()) && !published.contains(&old_kid.as_str()),
        "JWKS after rotation should have {new_kid} and not {old_kid}: {published:?}"
    );

    // New tokens carry the new kid and pass. A token of an unknown kid waits for the next
    // allowed refetch (at most bearer.jwks_refetch_interval, 5 s) instead of failing; the
    // retries only absorb a slow Keycloak.
    let fresh = keycloak::service_account_token(&env).await?;
    assert_eq!(kid(&fresh)?, new_kid);
    for (name, base, direct) in &fronts {
        let jwks_before = metric(direct, JWKS_OK).await?;
        let mut last = String::new();
        let mut passed = false;
        for _ in 0..16 {
            let (status, d) = call_api(&b, base, &fresh).await?;
            if status == 200 {
                passed = true;
                break;
            }
            last = d;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            passed,
            "{name}: a token signed with the new key is refused 8 s after the rotation: {last}"
        );
        assert!(
            metric(direct, JWKS_OK).await? > jwks_before,
            "{name}: the new key was accepted without a JWKS fetch?"
        );
    }

    for (name, base, _) in &fronts {
        // The old key is gone from Portcullis' keys too: a token it never saw is refused.
        let (status, d) = call_api(&b, base, &unseen).await?;
        assert_eq!(status, 401, "{name}: unseen old-key token: {d}");
        // The token verified before the rotation is no longer answered from the cache.
        let (status, d) = call_api(&b, base, &seen).await?;
        assert_eq!(
            status, 401,
            "{name}: cached old-key token after its key was withdrawn: {d}"
        );
    }

    // Browser sessions: the ID token of a new login is signed with the new key.
    for (name, base, _) in &fronts {
        let b = BrowserLike::for_env(&env)?;
        let page = keycloak::login_via(&b, &env, &format!("{base}/after-rotation"), ALICE).await?;
        assert_eq!(
            page.status,
            200,
            "{name}: login after rotation: {}",
            page.describe()
        );
    }
    Ok(())
}
