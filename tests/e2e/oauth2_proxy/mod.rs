//! The oauth2-proxy drop-in, against real Keycloak and a real nginx: Portcullis started with
//! the command line oauth2-proxy's Keycloak OIDC documentation gives, behind an nginx wired as
//! oauth2-proxy's nginx documentation shows (`nginx.conf` here: `error_page 401 =
//! /oauth2/sign_in`, `X-Auth-Request-Redirect`, `auth_request_set` of the identity headers).
//! Only the image changed: a browser signs in through Keycloak's real form and lands where it
//! was going, the app gets the user, email and groups, `--allowed-group` turns bob away, and a
//! bearer token is verified (`--skip-jwt-bearer-tokens`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::instance::{Instance, cookie_secret, free_port};
use crate::support::browser_like::BrowserLike;
use crate::support::env::Env;
use crate::support::keycloak::{self, ALICE, Admin, BOB};
use crate::support::{Echo, R, err};

/// An nginx of the test's own, from `nginx.conf` in this directory.
struct Nginx {
    child: Child,
    log: String,
}

impl Nginx {
    async fn start(env: &Env, name: &str, port: u16, auth_addr: &str) -> R<Self> {
        let prefix = format!("{}/{name}", env.run_dir);
        std::fs::create_dir_all(format!("{prefix}/tmp"))?;
        let upstream = env
            .app_url
            .strip_prefix("http://")
            .ok_or_else(|| err("E2E_APP_URL is not http://"))?;
        let conf = include_str!("nginx.conf")
            .replace("${NGINX_PREFIX}", &prefix)
            .replace("${PROXY_PORT}", &port.to_string())
            .replace("${AUTH_ADDR}", auth_addr)
            .replace("${APP_UPSTREAM}", upstream);
        let conf_path = format!("{prefix}/nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let log = format!("{prefix}/error.log");
        let child = Command::new("nginx")
            .args(["-p", &prefix, "-c", &conf_path, "-e", &log])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| err(format!("cannot start nginx: {e}")))?;
        let mut me = Self { child, log };
        let http = reqwest::Client::new();
        for _ in 0..80 {
            if let Some(status) = me.child.try_wait()? {
                let log = std::fs::read_to_string(&me.log).unwrap_or_default();
                return Err(err(format!("nginx exited ({status}):\n{log}")));
            }
            if http
                .get(format!("http://127.0.0.1:{port}/oauth2/ping"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok()
            {
                return Ok(me);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        me.child.kill()?;
        Err(err("nginx not listening after 20 s"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// oauth2-proxy's command line for Keycloak (provider `keycloak-oidc`), for an app at
/// `public` with Portcullis listening on `port`.
fn oauth2_proxy_command_line(env: &Env, public: &str, port: u16) -> R<Vec<String>> {
    Ok(vec![
        "--provider=keycloak-oidc".into(),
        "--client-id=portcullis".into(),
        "--client-secret=portcullis-demo-secret".into(),
        format!("--redirect-url={public}/oauth2/callback"),
        format!("--oidc-issuer-url={}", env.keycloak_issuer),
        "--email-domain=*".into(),
        "--allowed-group=admins".into(),
        "--code-challenge-method=S256".into(),
        format!("--cookie-secret={}", cookie_secret()?),
        "--cookie-secure=false".into(),
        format!("--http-address=127.0.0.1:{port}"),
        "--reverse-proxy=true".into(),
        "--set-xauthrequest=true".into(),
        "--skip-jwt-bearer-tokens=true".into(),
        "--upstream=static://202".into(),
    ])
}

#[tokio::test]
async fn oauth2_proxy_command_line_behind_nginx_sign_in_error_page_with_keycloak() -> R {
    let env = Env::load()?;
    let (auth_port, nginx_port) = (free_port()?, free_port()?);
    // `localhost` is among the realm client's redirect URIs (`http://localhost:*`).
    let public = format!("http://localhost:{nginx_port}");
    let args = oauth2_proxy_command_line(&env, &public, auth_port)?;
    let portcullis =
        Instance::start_with_args(&env, "oauth2-proxy-compat", auth_port, &args).await?;
    let _nginx = Nginx::start(&env, "oauth2-proxy-nginx", nginx_port, &portcullis.addr).await?;

    // Alice: nginx's 401 becomes /oauth2/sign_in, which sends her to Keycloak's form with
    // X-Auth-Request-Redirect as the way back; she lands on the deep link, query intact.
    let b = BrowserLike::new(&["localhost"])?;
    let deep = format!("{public}/reports/q3?year=2024&tag=a%20b");
    let last = keycloak::login_via(&b, &env, &deep, ALICE).await?;
    if last.status != 200 || last.url.as_str() != deep {
        return Err(err(format!(
            "expected the app at {deep}, got {}\n  trail: {}",
            last.describe(),
            b.trail()
        )));
    }
    let echo = Echo::parse(&last.body)?;
    let alice_id = Admin::connect(&env).await?.user_id("alice").await?;
    assert_eq!(echo.header("x-user"), Some(alice_id.as_str()));
    assert_eq!(echo.header("x-email"), Some("alice@example.com"));
    let groups = echo.header("x-groups").unwrap_or_default();
    assert!(
        groups.split(',').any(|g| g == "admins"),
        "groups {groups:?} lack admins"
    );
    let again = b.get(&format!("{public}/second")).await?;
    assert_eq!(again.status, 200, "signed in: {}", again.describe());

    // Bob signs in at Keycloak, but --allowed-group=admins refuses him.
    let bob = BrowserLike::new(&["localhost"])?;
    let last = keycloak::login_via(&bob, &env, &format!("{public}/reports"), BOB).await?;
    assert_eq!(
        last.status,
        403,
        "bob: {}\n  trail: {}",
        last.describe(),
        bob.trail()
    );

    // --skip-jwt-bearer-tokens: a Keycloak token is verified (the service account is in no
    // group: 403, not 401), garbage is not.
    let token = keycloak::service_account_token(&env).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let ask = |auth: String| {
        http.get(format!("http://127.0.0.1:{nginx_port}/api"))
            .header("host", format!("localhost:{nginx_port}"))
            .header("authorization", auth)
            .header("accept", "application/json")
            .send()
    };
    assert_eq!(ask(format!("Bearer {token}")).await?.status(), 403);
    let garbage = ask("Bearer not.a.token".into()).await?;
    // Refused (401), which this nginx turns into /oauth2/sign_in: a login starts.
    assert_eq!(garbage.status(), 302, "garbage bearer");
    let to = garbage.headers()["location"].to_str()?.to_owned();
    assert!(to.starts_with(&env.keycloak_issuer), "{to}");
    Ok(())
}
