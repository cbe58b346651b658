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
    assert!(
        !admin.sessions(&alice).await?.is_empty(),
        "alice has no Keycloak session after login"
    );
    admin.logout_user(&alice).await?;

    // Keycloak sends the logout token synchronously; allow a moment anyway.
    let mut last = None;
    for _ in 0..20 {
        let resp = b
            .get_with(&format!("{base}/api"), &[("accept", "application/json")])
            .await?;
        if resp.status == 401 {
            return Ok(());
        }
        last = Some(resp.describe());
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Err(err(format!(
        "session still accepted 5 s after back-channel logout: {last:?}"
    )))
}
