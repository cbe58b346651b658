//! Traefik ForwardAuth semantics, emulated faithfully (Traefik cannot be installed here), with
//! the middleware settings read from the shipped `deploy/traefik/dynamic.yml`:
//! - Traefik sends GET to the fixed address; the original request is only in `X-Forwarded-*`;
//!   every other client header is copied except hop-by-hop ones;
//! - any non-2xx answer (302 + Set-Cookie included) goes back to the client verbatim;
//! - on 2xx only `authResponseHeaders` are copied upstream, client-sent copies deleted first,
//!   and only `addAuthCookiesToResponse` cookies reach the browser.

use crate::support::*;
use reqwest::header::HeaderMap;

struct Middleware {
    auth_response_headers: Vec<String>,
    add_auth_cookies: Vec<String>,
}

/// Reads one YAML list under `key:` (the file is ours; a full YAML parser isn't needed).
fn yaml_list(text: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with(&format!("{key}:")) {
            inside = true;
            continue;
        }
        if inside {
            if let Some(item) = t.strip_prefix("- ") {
                out.push(item.trim().to_string());
            } else if !t.starts_with('#') && !t.is_empty() {
                break;
            }
        }
    }
    out
}

fn shipped_middleware() -> Middleware {
    let text = include_str!("../../deploy/traefik/dynamic.yml");
    assert!(text.contains("address: http://portcullis:4180/oauth2/forward-auth"));
    let m = Middleware {
        auth_response_headers: yaml_list(text, "authResponseHeaders"),
        add_auth_cookies: yaml_list(text, "addAuthCookiesToResponse"),
    };
    assert!(
        m.auth_response_headers
            .iter()
            .any(|h| h == "X-Auth-Request-User")
    );
    assert!(m.add_auth_cookies.iter().any(|c| c == "_portcullis"));
    m
}

enum Outcome {
    /// Traefik forwarded the request: what the app receives, and cookies for the browser.
    Upstream {
        headers: HeaderMap,
        browser_cookies: Vec<String>,
    },
    /// Traefik answered the client with the auth server's response.
    Client(reqwest::Response),
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

impl Middleware {
    /// One request from a client to https://app.example.com{uri} through the middleware.
    async fn request(
        &self,
        h: &Harness,
        method: &str,
        uri: &str,
        client_headers: &[(&str, &str)],
    ) -> Outcome {
        let mut auth = HeaderMap::new();
        for (k, v) in client_headers {
            if !HOP_BY_HOP.contains(&k.to_ascii_lowercase().as_str())
                && !k.eq_ignore_ascii_case("host")
            {
                auth.append(
                    reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
        }
        for (k, v) in [
            ("x-forwarded-method", method),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", uri),
            ("x-forwarded-for", "198.51.100.4"),
        ] {
            auth.insert(k, v.parse().unwrap());
        }
        let resp = h
            .client
            .get(h.url("/oauth2/forward-auth"))
            .headers(auth)
            .send()
            .await
            .unwrap();
        if !resp.status().is_success() {
            return Outcome::Client(resp);
        }
        let mut upstream = HeaderMap::new();
        for (k, v) in client_headers {
            upstream.append(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        for name in &self.auth_response_headers {
            upstream.remove(name.as_str());
            if let Some(v) = resp.headers().get(name.as_str()) {
                upstream.insert(
                    reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    v.clone(),
                );
            }
        }
        let browser_cookies = set_cookies(&resp)
            .into_iter()
            .filter(|c| {
                self.add_auth_cookies
                    .iter()
                    .any(|n| c.starts_with(&format!("{n}=")))
            })
            .collect();
        Outcome::Upstream {
            headers: upstream,
            browser_cookies,
        }
    }
}

#[tokio::test]
async fn browser_login_through_traefik_forward_auth() {
    let h = Harness::start().await;
    let mw = shipped_middleware();
    // 1. No session: the 302 to Keycloak and the state cookie reach the browser verbatim.
    let Outcome::Client(r) = mw
        .request(
            &h,
            "GET",
            "/inbox?folder=work",
            &[
                ("accept", BROWSER_ACCEPT),
                ("x-auth-request-user", "mallory"),
            ],
        )
        .await
    else {
        panic!("expected a redirect to the client");
    };
    assert_eq!(r.status(), 302);
    let authorize = location(&r);
    assert!(
        authorize.starts_with("http://127.0.0.1:"),
        "absolute Location (Traefik would resolve a relative one against the auth address): {authorize}"
    );
    let state = cookie_pairs(&r);
    // 2. The IdP and the callback (routed straight to Portcullis).
    let cb = h.follow_idp(&authorize).await;
    let done = h.get(&cb, &[("cookie", &state)]).await;
    assert_eq!(location(&done), "https://app.example.com/inbox?folder=work");
    let session = session_cookie(&done);
    // 3. With the session: the app sees Portcullis' identity, never the client's forgery.
    let Outcome::Upstream {
        headers,
        browser_cookies,
    } = mw
        .request(
            &h,
            "GET",
            "/inbox?folder=work",
            &[("cookie", &session), ("x-auth-request-user", "mallory")],
        )
        .await
    else {
        panic!("expected the request to pass");
    };
    assert_eq!(headers.get("x-auth-request-user").unwrap(), "a1b2c3-alice");
    assert_eq!(headers.get_all("x-auth-request-user").iter().count(), 1);
    assert_eq!(
        headers.get("x-auth-request-email").unwrap(),
        "alice@example.com"
    );
    assert!(browser_cookies.is_empty(), "nothing to refresh yet");
    // 4. A stale session is refreshed during the check and the new cookie reaches the browser.
    h.advance(6 * 60);
    let Outcome::Upstream {
        browser_cookies, ..
    } = mw
        .request(&h, "GET", "/inbox", &[("cookie", &session)])
        .await
    else {
        panic!("expected the request to pass");
    };
    assert!(
        browser_cookies
            .iter()
            .any(|c| c.starts_with("_portcullis=") && !c.contains("Max-Age=0")),
        "{browser_cookies:?}"
    );
}

#[tokio::test]
async fn api_clients_through_traefik_get_401_and_bearer_passes() {
    let h = Harness::start().await;
    let mw = shipped_middleware();
    let Outcome::Client(r) = mw
        .request(
            &h,
            "GET",
            "/api/v1/items",
            &[("accept", "application/json")],
        )
        .await
    else {
        panic!()
    };
    assert_eq!(r.status(), 401);
    assert!(
        header(&r, "www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let token = h.idp.mint_access_token(
        &portcullis_test_idp::TestUser::alice(),
        serde_json::json!({}),
        "ec-1",
    );
    let auth = format!("Bearer {token}");
    let Outcome::Upstream { headers, .. } = mw
        .request(&h, "POST", "/api/v1/items", &[("authorization", &auth)])
        .await
    else {
        panic!()
    };
    assert_eq!(
        headers.get("x-auth-request-preferred-username").unwrap(),
        "alice"
    );
    // The Authorization header travels on to the app untouched.
    assert_eq!(
        headers.get("authorization").unwrap().to_str().unwrap(),
        auth
    );
}
