//! OIDC back-channel logout: Keycloak ends the user's sessions (admin
//! action) and POSTs a logout token to Portcullis A (the instance behind
//! Caddy, whose URL is the client's `backchannel.logout.url`); the Portcullis
//! session must stop working even though its cookie is still present.

use crate::support::browser_like::BrowserLike;
use crate::support::env::Env;
use crate::support::keycloak::{self, ALICE, Admin};
use crate::support::{R, err};

#[tokio::test]
async fn backchannel_logout_revokes_the_session() -> R {
    let env = Env::load()?;
    let b = BrowserLike::for_env(&env)?;
    let base = env.caddy_url.clone();
    let first = keycloak::login_via(&b, &env, &format!("{base}/bc"), ALICE).await?;
    assert_eq!(first.status, 200, "{}", first.describe());

    let admin = Admin::connect(&env).await?;
    let alice = admin.user_id("alice").await?;
    // The session this login created: the newest of alice's (other tests may have left some;
    // Keycloak 26.5 sends only one logout token when a user with several sessions is logged
    // out, so end exactly this one, as an admin would in the console).
    let sessions = admin.sessions(&alice).await?;
    let newest = sessions
        .iter()
        .max_by_key(|s| s["start"].as_i64().unwrap_or(0))
        .and_then(|s| s["id"].as_str())
        .ok_or_else(|| err("alice has no Keycloak session after login"))?
        .to_owned();
    let ended = std::time::Instant::now();
    admin.end_session(&newest).await?;

    // Keycloak sends the logout token before answering; the session must be dead within a second.
    let mut last = None;
    for _ in 0..20 {
        let resp = b
            .get_with(&format!("{base}/api"), &[("accept", "application/json")])
            .await?;
        if resp.status == 401 {
            let took = ended.elapsed();
            assert!(
                took < std::time::Duration::from_secs(1),
                "session ended only after {took:?}"
            );
            return Ok(());
        }
        last = Some(resp.describe());
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Err(err(format!(
        "session still accepted 5 s after back-channel logout: {last:?}"
    )))
}
