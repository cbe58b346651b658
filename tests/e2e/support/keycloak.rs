//! Keycloak interactions: the login form, the admin API, tokens.

use base64::Engine as _;
use serde_json::Value;

use super::browser_like::{BrowserLike, Response};
use super::env::Env;
use super::{R, err, html, snippet};

pub const ALICE: (&str, &str) = ("alice", "alice-password");
pub const BOB: (&str, &str) = ("bob", "bob-password");
pub const CLI_CLIENT: (&str, &str) = ("portcullis-cli", "portcullis-cli-secret");

/// Opens `url` (a protected app URL), expects to be sent to Keycloak's
/// login form, signs in and follows the redirects back. Returns the final
/// answer (normally the app's).
pub async fn login_via(b: &BrowserLike, env: &Env, url: &str, user: (&str, &str)) -> R<Response> {
    let page = b.navigate(url).await?;
    if !(page.status == 200 && html::is_keycloak_login(&page.body)) {
        return Err(err(format!(
            "expected Keycloak's login form after opening {url}, got {}\n  trail: {}",
            page.describe(),
            b.trail()
        )));
    }
    if !page.url.as_str().starts_with(&env.keycloak_issuer) {
        return Err(err(format!(
            "login form served from {} instead of {}",
            page.url, env.keycloak_issuer
        )));
    }
    submit_login(b, &page, user).await
}

/// Submits Keycloak's login form on `page` and follows the redirects.
pub async fn submit_login(
    b: &BrowserLike,
    page: &Response,
    (user, pass): (&str, &str),
) -> R<Response> {
    let action = html::form_action(&page.body, "id=\"kc-form-login\"")?;
    let action = page.url.join(&action)?;
    let posted = b
        .post_form(
            action.as_str(),
            &[("username", user), ("password", pass), ("credentialId", "")],
        )
        .await?;
    if posted.status == 200 {
        return Err(err(format!(
            "Keycloak did not accept the login of {user} (error or extra step): {}",
            snippet(&posted.body)
        )));
    }
    b.follow(posted).await
}

/// Claims of a JWT, without verifying it (the tests only read them).
pub fn claims(jwt: &str) -> R<Value> {
    let payload = jwt.split('.').nth(1).ok_or_else(|| err("not a JWT"))?;
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('='))?;
    Ok(serde_json::from_slice(&bytes)?)
}

async fn token(url: String, form: &[(&str, &str)]) -> R<Value> {
    let resp = reqwest::Client::new().post(url).form(form).send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        return Err(err(format!(
            "token endpoint answered {status}: {}",
            snippet(&body)
        )));
    }
    Ok(serde_json::from_str(&body)?)
}

/// An access token of the `portcullis-cli` service account
/// (client_credentials; its `aud` includes `portcullis`).
pub async fn service_account_token(env: &Env) -> R<String> {
    let t = token(
        format!("{}/protocol/openid-connect/token", env.keycloak_issuer),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLI_CLIENT.0),
            ("client_secret", CLI_CLIENT.1),
        ],
    )
    .await?;
    t["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| err("no access_token"))
}

/// Waits until Keycloak serves the realm's discovery document again (after a freeze or a
/// restart), at most `within`; returns how long that took.
pub async fn wait_serving(env: &Env, within: std::time::Duration) -> R<std::time::Duration> {
    let started = std::time::Instant::now();
    let http = reqwest::Client::new();
    let url = format!("{}/.well-known/openid-configuration", env.keycloak_issuer);
    while started.elapsed() < within {
        if let Ok(r) = http
            .get(&url)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            && r.status() == 200
        {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Err(err(format!(
        "Keycloak did not come back within {within:?}; see {}/keycloak.log",
        env.run_dir
    )))
}

/// Keycloak admin API client (bootstrap admin of the master realm).
pub struct Admin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    pub async fn connect(env: &Env) -> R<Self> {
        let t = token(
            format!(
                "{}/realms/master/protocol/openid-connect/token",
                env.keycloak_url
            ),
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", &env.keycloak_admin_user),
                ("password", &env.keycloak_admin_password),
            ],
        )
        .await?;
        let token = t["access_token"]
            .as_str()
            .ok_or_else(|| err("no admin access_token"))?
            .to_owned();
        Ok(Self {
            base: format!("{}/admin/realms/platform", env.keycloak_url),
            token,
            http: reqwest::Client::new(),
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> R<Value> {
        self.call_with(method, path, None).await
    }

    async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> R<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            return Err(err(format!(
                "admin API {path}: {status}: {}",
                snippet(&body)
            )));
        }
        if body.is_empty() {
            Ok(Value::Null)
        } else {
            Ok(serde_json::from_str(&body)?)
        }
    }

    /// Sets how long the realm's access tokens live (seconds), for tokens issued from now on.
    pub async fn set_access_token_lifespan(&self, seconds: u32) -> R {
        self.call_with(
            reqwest::Method::PUT,
            "",
            Some(serde_json::json!({ "accessTokenLifespan": seconds })),
        )
        .await
        .map(|_| ())
    }

    /// The user's id (= the `sub` claim of their tokens).
    pub async fn user_id(&self, username: &str) -> R<String> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/users?username={username}&exact=true"),
            )
            .await?;
        v[0]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| err(format!("no user {username}")))
    }

    /// The user's active SSO sessions.
    pub async fn sessions(&self, user_id: &str) -> R<Vec<Value>> {
        let v = self
            .call(reqwest::Method::GET, &format!("/users/{user_id}/sessions"))
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Ends one SSO session (what an admin does in the console's Sessions tab); Keycloak then
    /// sends a back-channel logout token for it.
    pub async fn end_session(&self, session_id: &str) -> R {
        self.call(reqwest::Method::DELETE, &format!("/sessions/{session_id}"))
            .await
            .map(|_| ())
    }

    /// Ends every session of the user; Keycloak then sends back-channel
    /// logout tokens to the clients that have a back-channel logout URL.
    pub async fn logout_user(&self, user_id: &str) -> R {
        self.call(reqwest::Method::POST, &format!("/users/{user_id}/logout"))
            .await
            .map(|_| ())
    }
}
