//! Portcullis' own endpoints, reached directly.

use crate::support::env::Env;
use crate::support::{R, snippet};

#[tokio::test]
async fn health_ping_ready_metrics() -> R {
    let env = Env::load()?;
    let http = reqwest::Client::new();
    for base in [&env.portcullis_caddy_url, &env.portcullis_nginx_url] {
        for path in ["/ping", "/ready", "/metrics"] {
            let resp = http.get(format!("{base}{path}")).send().await?;
            let status = resp.status().as_u16();
            let body = resp.text().await?;
            assert_eq!(status, 200, "{base}{path}: {}", snippet(&body));
        }
    }
    Ok(())
}

/// The echo app itself is reachable (sanity check of the harness).
#[tokio::test]
async fn health_echo_app_answers() -> R {
    let env = Env::load()?;
    let body = reqwest::get(format!("{}/probe?x=1", env.app_url))
        .await?
        .text()
        .await?;
    let echo = crate::support::Echo::parse(&body)?;
    assert_eq!(echo.path, "/probe");
    assert_eq!(echo.method, "GET");
    Ok(())
}
