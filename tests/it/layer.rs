//! `ForwardAuthLayer` in front of a service of the test's own, called in process with
//! `oneshot` (no socket): the same answers Portcullis gives Traefik for the same request,
//! and the identity handed to the inner service.

use crate::support::*;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use portcullis::app::CurrentApp;
use portcullis::{ForwardAuthLayer, SignedIn};
use portcullis_test_idp::TestUser;
use std::convert::Infallible;
use tower::{Layer, ServiceExt};

/// The protected app: answers 200 with what it was told about the user.
async fn app(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = req
        .headers()
        .get("x-auth-request-user")
        .map(|v| v.to_str().unwrap_or("?").to_owned())
        .unwrap_or_default();
    let extension = req
        .extensions()
        .get::<SignedIn>()
        .map(|u| u.identity().sub.clone())
        .unwrap_or_default();
    Ok(Response::new(Full::new(Bytes::from(format!(
        "header={header} extension={extension}"
    )))))
}

async fn call(h: &Harness, path: &str, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, String) {
    let layer = ForwardAuthLayer::new(CurrentApp::new(h.app.clone()));
    let svc = layer.layer(tower::service_fn(app));
    let mut req = Request::builder()
        .uri(path)
        .header("host", "app.example.com");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = svc
        .oneshot(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_layer_answers_as_portcullis_does_for_traefik_and_hands_the_identity_to_the_app() {
    let h = Harness::start().await;
    let alice = TestUser::alice();

    // A browser without a session: 302 to the IdP, the app is not called.
    let (status, headers, body) = call(&h, "/inbox?x=1", &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(status, 302, "{body}");
    let location = headers["location"].to_str().unwrap();
    assert!(location.starts_with(&h.idp.issuer()), "{location}");
    assert!(location.contains("code_challenge="), "{location}");
    // An API client: 401 with the challenge.
    let (status, headers, _) = call(&h, "/api/items", &[("accept", "application/json")]).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    // A bad token: 401 invalid_token, the app is not called.
    let (status, _, body) = call(&h, "/api/items", &[("authorization", "Bearer x.y.z")]).await;
    assert_eq!(status, 401);
    assert!(!body.contains("header="), "{body}");

    // A valid token, and a forged identity header: the app sees alice, twice.
    let token = h
        .idp
        .mint_access_token(&alice, serde_json::json!({}), "rsa-1");
    let auth = format!("Bearer {token}");
    let (status, _, body) = call(
        &h,
        "/api/items",
        &[("authorization", &auth), ("x-auth-request-user", "mallory")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("header={0} extension={0}", alice.sub));

    // A browser session made through the server's login works behind the layer (same
    // configuration, same cookie), and a refresh's Set-Cookie would reach the browser.
    let (cookie, _) = h.login("/inbox").await;
    let (status, _, body) = call(
        &h,
        "/inbox",
        &[("cookie", &cookie), ("accept", BROWSER_ACCEPT)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("header={0} extension={0}", alice.sub));

    // The sign-in endpoints are the layer's; the decision endpoints don't exist behind it.
    let (status, headers, _) = call(&h, "/oauth2/start?rd=%2Finbox", &[]).await;
    assert_eq!(status, 302);
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .starts_with(&h.idp.issuer())
    );
    for p in [
        "/oauth2/forward-auth",
        "/oauth2/auth",
        "/oauth2/ext-authz/inbox",
    ] {
        let (status, _, body) = call(&h, p, &[("authorization", &auth)]).await;
        assert_eq!(status, 404, "{p}: {body}");
    }
}

/// The runnable example (`examples/axum_app.rs`), as a process against the test IdP: an axum
/// app with the layer signs browsers in and greets bearer-token users.
#[tokio::test]
async fn the_axum_example_protects_its_routes() {
    let h = Harness::start().await;
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|debug| debug.join("examples/axum_app"))
        .unwrap();
    assert!(
        bin.exists(),
        "{} is not built: run `cargo test` for all targets (scripts/test does), or \
         `cargo build --example axum_app` first",
        bin.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("portcullis-axum-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    let toml = base_toml(&h.idp.issuer()).replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&config, toml).unwrap();
    let _example = KillOnDrop(
        std::process::Command::new(&bin)
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .env_remove("PORTCULLIS_CONFIG")
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Ready once discovery is done: an API request without credentials then gets 401, and a
    // browser is no longer told the IdP is unavailable (503) while discovery runs.
    let mut ready = false;
    for _ in 0..100 {
        let discovered = client
            .get(format!("{base}/"))
            .header("accept", BROWSER_ACCEPT)
            .send()
            .await
            .is_ok_and(|r| r.status() != 503);
        if discovered
            && let Ok(r) = client.get(format!("{base}/api/me")).send().await
            && r.status() == 401
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    {
        assert!(ready, "the example did not answer 401 within 10 s");
        let browser = client
            .get(format!("{base}/"))
            .header("accept", BROWSER_ACCEPT)
            .send()
            .await
            .unwrap();
        assert_eq!(browser.status(), 302);
        assert!(location(&browser).starts_with(&h.idp.issuer()));
        let alice = TestUser::alice();
        let token = h
            .idp
            .mint_access_token(&alice, serde_json::json!({}), "rsa-1");
        let me = client
            .get(format!("{base}/api/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        let body: serde_json::Value = me.json().await.unwrap();
        assert_eq!(body["sub"], alice.sub.as_str());
        let hello = client
            .get(format!("{base}/"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(hello.starts_with("Hello, "), "{hello}");
        assert!(!hello.contains("visitor"), "{hello}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills the example's process when the test ends, also when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
