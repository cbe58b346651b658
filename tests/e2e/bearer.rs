//! API clients with a Keycloak access token (client_credentials of the
//! `portcullis-cli` service account, `aud` includes `portcullis`).

use crate::support::browser_like::BrowserLike;
use crate::support::env::Env;
use crate::support::keycloak;
use crate::support::{Echo, R, expect_status_everywhere};

#[tokio::test]
async fn bearer_service_account_token_is_accepted() -> R {
    let env = Env::load()?;
    let token = keycloak::service_account_token(&env).await?;
    let aud = keycloak::claims(&token)?["aud"].clone();
    assert!(
        aud.as_array()
            .is_some_and(|a| a.iter().any(|x| x == "portcullis"))
            || aud == "portcullis",
        "realm setup: service-account token aud {aud} lacks portcullis"
    );
    let b = BrowserLike::for_env(&env)?;
    let auth = format!("Bearer {token}");
    for (name, base) in env.front_ends() {
        let resp = b
            .get_with(
                &format!("{base}/api/items"),
                &[("authorization", &auth), ("accept", "application/json")],
            )
            .await?;
        assert_eq!(resp.status, 200, "{name}: {}", resp.describe());
        let echo = Echo::parse(&resp.body)?;
        assert_eq!(
            echo.header("x-auth-request-preferred-username"),
            Some("service-account-portcullis-cli"),
            "{name}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn bearer_garbage_token_is_refused() -> R {
    let env = Env::load()?;
    let b = BrowserLike::for_env(&env)?;
    let headers = [
        ("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
        ("accept", "application/json"),
    ];
    expect_status_everywhere(&env, &b, "/api/items", &headers, 401).await
}
