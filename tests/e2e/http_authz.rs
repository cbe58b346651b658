//! Scenario 3: `[authz]` with real Keycloak claims. bob (no group, no platform role) is
//! refused by `allowed_groups` with a readable 403 page; alice passes by her group, and by her
//! realm role `platform-user` through `allowed_roles` when no group of hers is allowed.
//!
//! Each rule set runs in a Portcullis of its own (`crate::instance`), asked directly the way
//! Traefik's ForwardAuth asks.
//!
//! Runs after `backchannel` (name order) on purpose: that test needs alice to have a single
//! Keycloak session, and these logins leave sessions behind.

use crate::instance::{Instance, Settings};
use crate::support::browser_like::Response;
use crate::support::env::Env;
use crate::support::keycloak::{ALICE, BOB};
use crate::support::{Echo, R};

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

pub(crate) fn assert_denied_page(resp: &Response, who: &str, ctx: &str) {
    assert_eq!(resp.status, 403, "{ctx}: {}", resp.describe());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{ctx}: 403 page is not HTML: {:?}",
        resp.header("content-type")
    );
    assert!(
        resp.body.contains("Access denied"),
        "{ctx}: no \"Access denied\" on the page: {}",
        resp.describe()
    );
    assert!(
        resp.body.contains(&format!("signed in as {who}")),
        "{ctx}: the page does not say who is signed in: {}",
        resp.describe()
    );
    // Denied, not unauthenticated: no login redirect, no identity for the app.
    assert!(resp.header("location").is_none(), "{ctx}");
    assert!(resp.header("x-auth-request-user").is_none(), "{ctx}");
}

/// The identity headers of a 200 forward-auth answer, read as the app would see them.
fn identity(resp: &Response) -> Echo {
    let mut headers = std::collections::BTreeMap::new();
    for (k, v) in &resp.headers {
        if let Ok(v) = v.to_str() {
            headers.insert(k.as_str().to_owned(), v.to_owned());
        }
    }
    Echo {
        method: "GET".into(),
        path: String::new(),
        query: String::new(),
        headers,
    }
}

#[tokio::test]
async fn authz_allowed_groups_denies_bob_with_a_403_page() -> R {
    let env = Env::load()?;
    let p = Instance::start(
        &env,
        "portcullis-authz-groups",
        &Settings {
            allowed_groups: &["admins"],
            ..Settings::default()
        },
    )
    .await?;

    let bob = p.browser()?;
    p.login(&bob, &env, BOB).await?;
    // A browser navigation: the HTML page, naming the account.
    let page = p.forward_auth(&bob, "/reports?x=1", HTML).await?;
    assert_denied_page(&page, "bob", "bob, browser");
    // An API client: still 403 (not 401: signing in again would not help).
    let api = p
        .forward_auth(&bob, "/api/items", "application/json")
        .await?;
    assert_eq!(api.status, 403, "bob, API: {}", api.describe());

    // alice is in admins.
    let alice = p.browser()?;
    p.login(&alice, &env, ALICE).await?;
    let ok = p.forward_auth(&alice, "/reports?x=1", HTML).await?;
    assert_eq!(ok.status, 200, "alice: {}", ok.describe());
    assert_eq!(
        identity(&ok).header("x-auth-request-preferred-username"),
        Some("alice")
    );
    Ok(())
}

#[tokio::test]
async fn authz_allowed_roles_lets_alice_in_without_an_allowed_group() -> R {
    let env = Env::load()?;
    let p = Instance::start(
        &env,
        "portcullis-authz-roles",
        &Settings {
            allowed_groups: &["nobody"],
            allowed_roles: &["platform-user"],
            ..Settings::default()
        },
    )
    .await?;

    let alice = p.browser()?;
    p.login(&alice, &env, ALICE).await?;
    let ok = p.forward_auth(&alice, "/dashboard", HTML).await?;
    assert_eq!(
        ok.status,
        200,
        "alice (realm role platform-user, not in group nobody): {}\n  log:\n{}",
        ok.describe(),
        p.log_tail()
    );
    let id = identity(&ok);
    assert_eq!(
        id.header("x-auth-request-preferred-username"),
        Some("alice")
    );
    let groups = id.header("x-auth-request-groups").unwrap_or_default();
    assert!(
        groups.split(',').any(|g| g == "role:platform-user"),
        "groups header {groups:?} lacks role:platform-user"
    );
    // The rules are alternatives, not a blanket pass: bob has neither.
    let bob = p.browser()?;
    p.login(&bob, &env, BOB).await?;
    let page = p.forward_auth(&bob, "/dashboard", HTML).await?;
    assert_denied_page(&page, "bob", "bob under allowed_roles");
    Ok(())
}
