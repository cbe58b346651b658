//! Scenario 2: sign-in at the HTTP level through Caddy and nginx, with a
//! scripted cookie-keeping client following every redirect.

use url::Url;

use crate::support::browser_like::BrowserLike;
use crate::support::env::Env;
use crate::support::keycloak::{self, ALICE, Admin, BOB};
use crate::support::{Echo, R, err, expect_status_everywhere};

/// Signs `user` in through the front end at `base`, starting from a deep
/// link with a multi-parameter query, and returns what the app saw.
async fn sign_in(b: &BrowserLike, env: &Env, base: &str, user: (&str, &str)) -> R<Echo> {
    let deep = format!("{base}/reports/q3?year=2024&sort=desc&tag=a%20b");
    let last = keycloak::login_via(b, env, &deep, user).await?;
    if last.status != 200 {
        return Err(err(format!(
            "after login expected the app, got {}\n  trail: {}",
            last.describe(),
            b.trail()
        )));
    }
    // Back exactly where the user started, query intact.
    if last.url.as_str() != deep {
        return Err(err(format!(
            "landed on {} instead of {deep}\n  trail: {}",
            last.url,
            b.trail()
        )));
    }
    Echo::parse(&last.body)
}

fn groups(echo: &Echo) -> Vec<String> {
    echo.header("x-auth-request-groups")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect()
}

async fn alice_signs_in(front: &str) -> R {
    let env = Env::load()?;
    let base = env
        .front_ends()
        .iter()
        .find(|(n, _)| *n == front)
        .map(|(_, u)| (*u).to_owned())
        .ok_or_else(|| err("front end"))?;
    let b = BrowserLike::for_env(&env)?;
    let echo = sign_in(&b, &env, &base, ALICE).await?;
    let alice_id = Admin::connect(&env).await?.user_id("alice").await?;

    assert_eq!(echo.path, "/reports/q3");
    assert_eq!(echo.query, "year=2024&sort=desc&tag=a%20b");
    echo.assert_alice(&alice_id);
    let g = groups(&echo);
    assert!(
        g.contains(&"admins".to_owned()),
        "groups header {g:?} lacks admins"
    );
    assert!(
        g.contains(&"role:platform-user".to_owned()),
        "groups header {g:?} lacks role:platform-user"
    );

    // The session cookie is a host cookie of the app's host. Keycloak's ID and refresh tokens
    // are in it, compressed: one cookie, well under the 4 KB a browser keeps per cookie.
    let session: Vec<_> = b
        .cookies_for(&base)?
        .into_iter()
        .filter(|(n, _)| n.starts_with("_portcullis"))
        .collect();
    let [(name, value)] = session.as_slice() else {
        return Err(err(format!(
            "not exactly one session cookie for {base}: {session:?}"
        )));
    };
    assert_eq!(name, "_portcullis", "not split into chunks");
    eprintln!("session cookie with Keycloak tokens: {} bytes", value.len());
    assert!(
        value.len() < 3000,
        "session cookie of {} bytes",
        value.len()
    );

    // Signed in: the next request goes straight through, no redirect.
    let again = b.get(&format!("{base}/second")).await?;
    assert_eq!(again.status, 200, "{}", again.describe());
    assert_eq!(
        Echo::parse(&again.body)?.header("x-auth-request-preferred-username"),
        Some("alice")
    );
    Ok(())
}

#[tokio::test]
async fn http_login_through_caddy() -> R {
    alice_signs_in("caddy").await
}

#[tokio::test]
async fn http_login_through_nginx() -> R {
    alice_signs_in("nginx").await
}

/// The first hop for a browser without a session is an authorization
/// request to Keycloak with PKCE S256 and the front end's callback.
#[tokio::test]
async fn http_anonymous_browser_is_sent_to_keycloak_with_pkce() -> R {
    let env = Env::load()?;
    for (name, base) in env.front_ends() {
        let b = BrowserLike::for_env(&env)?;
        let mut resp = b.get(&format!("{base}/private?a=1&b=2")).await?;
        let mut auth_url = None;
        for _ in 0..5 {
            let Some(next) = resp.location() else { break };
            if next.as_str().starts_with(&env.keycloak_issuer) {
                auth_url = Some(next);
                break;
            }
            resp = b.get(next.as_str()).await?;
        }
        let auth_url: Url = auth_url.ok_or_else(|| {
            err(format!(
                "{name}: never redirected to Keycloak\n  trail: {}",
                b.trail()
            ))
        })?;
        let q: std::collections::HashMap<String, String> =
            auth_url.query_pairs().into_owned().collect();
        assert_eq!(
            q.get("client_id").map(String::as_str),
            Some("portcullis"),
            "{name}"
        );
        assert_eq!(
            q.get("response_type").map(String::as_str),
            Some("code"),
            "{name}"
        );
        assert_eq!(
            q.get("code_challenge_method").map(String::as_str),
            Some("S256"),
            "{name}"
        );
        assert!(
            q.get("code_challenge").is_some_and(|c| c.len() >= 43),
            "{name}: code_challenge"
        );
        assert!(
            q.get("state").is_some_and(|s| !s.is_empty()),
            "{name}: state"
        );
        assert_eq!(
            q.get("redirect_uri").map(String::as_str),
            Some(format!("{base}/oauth2/callback").as_str()),
            "{name}"
        );
        assert!(
            q.get("scope")
                .is_some_and(|s| s.split(' ').any(|x| x == "openid")),
            "{name}: scope"
        );
    }
    Ok(())
}

/// Clients that do not accept HTML get 401, not a redirect.
#[tokio::test]
async fn http_anonymous_api_client_gets_401() -> R {
    let env = Env::load()?;
    let b = BrowserLike::for_env(&env)?;
    for (name, base) in env.front_ends() {
        let resp = b
            .get_with(
                &format!("{base}/api/items"),
                &[("accept", "application/json")],
            )
            .await?;
        assert_eq!(resp.status, 401, "{name}: {}", resp.describe());
    }
    Ok(())
}

/// Identity headers sent by the client never reach the app.
#[tokio::test]
async fn http_client_cannot_spoof_identity_headers() -> R {
    let env = Env::load()?;
    for (name, base) in env.front_ends() {
        let b = BrowserLike::for_env(&env)?;
        sign_in(&b, &env, base, BOB).await?;
        let resp = b
            .get_with(
                &format!("{base}/whoami"),
                &[
                    ("X-Auth-Request-User", "mallory"),
                    ("X-Auth-Request-Email", "mallory@example.com"),
                    ("X-Auth-Request-Preferred-Username", "mallory"),
                    ("X-Auth-Request-Groups", "admins"),
                ],
            )
            .await?;
        assert_eq!(resp.status, 200, "{name}: {}", resp.describe());
        let echo = Echo::parse(&resp.body)?;
        assert_eq!(
            echo.header("x-auth-request-preferred-username"),
            Some("bob"),
            "{name}"
        );
        assert_eq!(
            echo.header("x-auth-request-email"),
            Some("bob@example.com"),
            "{name}"
        );
        assert!(
            !echo
                .header("x-auth-request-user")
                .unwrap_or_default()
                .contains("mallory"),
            "{name}"
        );
        assert!(
            !groups(&echo).contains(&"admins".to_owned()),
            "{name}: bob got admins: {:?}",
            groups(&echo)
        );
    }
    Ok(())
}

/// Unauthenticated requests with spoofed headers are still refused.
#[tokio::test]
async fn http_spoofed_headers_without_session_are_refused() -> R {
    let env = Env::load()?;
    let b = BrowserLike::for_env(&env)?;
    let headers = [
        ("accept", "application/json"),
        ("X-Auth-Request-User", "alice"),
    ];
    expect_status_everywhere(&env, &b, "/x", &headers, 401).await
}

/// Keycloak's access tokens live 60 s; the session must outlive them
/// (Portcullis refreshes, config `refresh = "30s"`).
#[tokio::test]
async fn http_session_survives_access_token_expiry() -> R {
    if std::env::var_os("E2E_SKIP_SLOW").is_some() {
        return Err(err("E2E_SKIP_SLOW is set; run this test without it"));
    }
    let env = Env::load()?;
    let b = BrowserLike::for_env(&env)?;
    sign_in(&b, &env, &env.caddy_url, ALICE).await?;
    tokio::time::sleep(std::time::Duration::from_secs(70)).await;
    let resp = b.get(&format!("{}/later", env.caddy_url)).await?;
    assert_eq!(resp.status, 200, "after 70 s: {}", resp.describe());
    assert_eq!(
        Echo::parse(&resp.body)?.header("x-auth-request-preferred-username"),
        Some("alice")
    );
    Ok(())
}
