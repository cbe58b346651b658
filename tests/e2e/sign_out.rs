//! `/oauth2/sign_out`: ends the Portcullis session and the Keycloak SSO
//! session (RP-initiated logout), so the next visit needs a fresh login.

use crate::support::browser_like::BrowserLike;
use crate::support::env::Env;
use crate::support::keycloak::{self, ALICE};
use crate::support::{R, err, html};

#[tokio::test]
async fn sign_out_ends_both_sessions() -> R {
    let env = Env::load()?;
    for (name, base) in env.front_ends() {
        let b = BrowserLike::for_env(&env)?;
        let first = keycloak::login_via(&b, &env, &format!("{base}/before"), ALICE).await?;
        assert_eq!(first.status, 200, "{name}: {}", first.describe());

        let rd = format!("{base}/after-sign-out");
        let url =
            url::Url::parse_with_params(&format!("{base}/oauth2/sign_out"), [("rd", rd.as_str())])?;
        let end = b.navigate(url.as_str()).await?;
        // The return address is protected, and Keycloak no longer has a
        // session either: the chain must end on Keycloak's login form.
        if !(end.status == 200 && html::is_keycloak_login(&end.body)) {
            return Err(err(format!(
                "{name}: after sign-out expected Keycloak's login form, got {}\n  trail: {}",
                end.describe(),
                b.trail()
            )));
        }
        // And the app refuses an API-style request.
        let api = b
            .get_with(&format!("{base}/api"), &[("accept", "application/json")])
            .await?;
        assert_eq!(api.status, 401, "{name}: {}", api.describe());
    }
    Ok(())
}
