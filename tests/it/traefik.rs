//! Traefik ForwardAuth semantics, emulated faithfully (Traefik cannot be installed here), with
//! the middleware settings read from the shipped `deploy/traefik/dynamic.yml` and
//! `deploy/traefik/multi-app.yml`:
//! - the entry point deletes client-sent `X-Forwarded-*` unless it trusts the client's address
//!   (`forwardedHeaders.insecure` or `trustedIPs`), then fills in `-Proto` and `-Host`;
//! - the middleware sends GET to the fixed `address` (query included); the original request
//!   is only in `X-Forwarded-Method/-Proto/-Host/-Uri`, which it writes from the real request
//!   unless `trustForwardHeader: true` keeps incoming values; every other header is copied
//!   except hop-by-hop ones;
//! - any non-2xx answer (302 + Set-Cookie included) goes back to the client verbatim;
//! - on 2xx only `authResponseHeaders` are copied upstream, client-sent copies deleted first,
//!   and only `addAuthCookiesToResponse` cookies reach the browser.

use crate::support::*;
use portcullis_test_idp::TestUser;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

const DYNAMIC_YML: &str = include_str!("../../deploy/traefik/dynamic.yml");
const MULTI_APP_YML: &str = include_str!("../../deploy/traefik/multi-app.yml");
/// The Portcullis address the shipped files use; the emulation sends to the harness instead.
const SHIPPED_PORTCULLIS: &str = "http://portcullis:4180";

#[derive(Debug, Clone)]
struct Middleware {
    /// Path and query of `address`.
    address: String,
    trust_forward_header: bool,
    auth_response_headers: Vec<String>,
    add_auth_cookies: Vec<String>,
}

/// Where the entry point stands on client-sent `X-Forwarded-*`
/// (`entryPoints.<name>.forwardedHeaders`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryPoint {
    /// The default, and `trustedIPs` naming only your own load balancers: the client's
    /// `X-Forwarded-*` are deleted before any middleware runs.
    StripsClientHeaders,
    /// `forwardedHeaders.insecure: true`, or the client's address inside `trustedIPs`.
    TrustsClient,
}

/// The lines of the block under `  name:` (deeper-indented lines up to the next sibling).
fn block<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
    let mut out = Vec::new();
    let mut indent = None;
    for line in text.lines() {
        let t = line.trim_start();
        let depth = line.len() - t.len();
        match indent {
            None if t == format!("{name}:") => indent = Some(depth),
            Some(d) if !t.is_empty() && !t.starts_with('#') && depth <= d => break,
            Some(_) => out.push(line),
            None => {}
        }
    }
    assert!(!out.is_empty(), "no block {name:?}");
    out
}

/// One YAML list under `key:` within `lines` (the files are ours; no YAML parser needed).
fn yaml_list(lines: &[&str], key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in lines {
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

fn yaml_scalar<'t>(lines: &[&'t str], key: &str) -> &'t str {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key}"))
        .trim()
}

/// The middleware `name` of a shipped file, as Traefik would load it.
fn middleware(text: &str, name: &str) -> Middleware {
    let lines = block(text, name);
    let address = yaml_scalar(&lines, "address");
    let m = Middleware {
        address: address
            .strip_prefix(SHIPPED_PORTCULLIS)
            .unwrap_or_else(|| panic!("address {address} is not on {SHIPPED_PORTCULLIS}"))
            .to_string(),
        trust_forward_header: match yaml_scalar(&lines, "trustForwardHeader") {
            "true" => true,
            "false" => false,
            other => panic!("trustForwardHeader: {other}"),
        },
        auth_response_headers: yaml_list(&lines, "authResponseHeaders"),
        add_auth_cookies: yaml_list(&lines, "addAuthCookiesToResponse"),
    };
    assert!(m.address.starts_with("/oauth2/forward-auth"));
    assert!(
        m.auth_response_headers
            .iter()
            .any(|h| h == "X-Auth-Request-User")
    );
    assert!(m.add_auth_cookies.iter().any(|c| c == "_portcullis"));
    m
}

fn shipped_middleware() -> Middleware {
    let m = middleware(DYNAMIC_YML, "portcullis");
    assert_eq!(m.address, "/oauth2/forward-auth");
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

/// The entry point's managed headers (Traefik's `XHeadersSet`), also in `_` spelling.
fn is_forwarded_header(name: &str) -> bool {
    const MANAGED: [&str; 13] = [
        "x-forwarded-proto",
        "x-forwarded-scheme",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-uri",
        "x-forwarded-method",
        "x-forwarded-prefix",
        "x-forwarded-tls-client-cert",
        "x-forwarded-tls-client-cert-info",
        "x-scheme",
        "x-real-ip",
    ];
    MANAGED.contains(&name.to_ascii_lowercase().replace('_', "-").as_str())
}

/// A client's request to `https://{host}{uri}`.
struct ClientRequest<'a> {
    entry: EntryPoint,
    method: &'a str,
    host: &'a str,
    uri: &'a str,
    headers: &'a [(&'a str, &'a str)],
}

const CLIENT_IP: &str = "198.51.100.4";

fn append(map: &mut HeaderMap, k: &str, v: &str) {
    map.append(
        HeaderName::from_bytes(k.as_bytes()).unwrap(),
        HeaderValue::from_str(v).unwrap(),
    );
}

impl Middleware {
    /// One request from a client to https://app.example.com{uri} through the default entry
    /// point and the middleware.
    async fn request(
        &self,
        h: &Harness,
        method: &str,
        uri: &str,
        client_headers: &[(&str, &str)],
    ) -> Outcome {
        self.send(
            h,
            &ClientRequest {
                entry: EntryPoint::StripsClientHeaders,
                method,
                host: "app.example.com",
                uri,
                headers: client_headers,
            },
        )
        .await
    }

    async fn send(&self, h: &Harness, c: &ClientRequest<'_>) -> Outcome {
        // 1. The entry point.
        let mut incoming = HeaderMap::new();
        for (k, v) in c.headers {
            if c.entry == EntryPoint::TrustsClient || !is_forwarded_header(k) {
                append(&mut incoming, k, v);
            }
        }
        if !incoming.contains_key("x-forwarded-proto") {
            append(&mut incoming, "x-forwarded-proto", "https");
        }
        if !incoming.contains_key("x-forwarded-host") {
            append(&mut incoming, "x-forwarded-host", c.host);
        }
        // 2. The middleware's request to Portcullis.
        let mut auth = HeaderMap::new();
        for (k, v) in &incoming {
            if !HOP_BY_HOP.contains(&k.as_str()) && k != "host" {
                auth.append(k.clone(), v.clone());
            }
        }
        let prior_xff = incoming
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let xff = match prior_xff {
            Some(prior) if self.trust_forward_header => format!("{prior}, {CLIENT_IP}"),
            _ => CLIENT_IP.to_string(),
        };
        auth.insert("x-forwarded-for", xff.parse().unwrap());
        for (name, real) in [
            ("x-forwarded-method", c.method),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", c.host),
            ("x-forwarded-uri", c.uri),
        ] {
            let kept = incoming
                .get(name)
                .filter(|v| self.trust_forward_header && !v.is_empty())
                .cloned();
            auth.insert(name, kept.unwrap_or_else(|| real.parse().unwrap()));
        }
        let resp = h
            .client
            .get(h.url(&self.address))
            .headers(auth)
            .send()
            .await
            .unwrap();
        if !resp.status().is_success() {
            return Outcome::Client(resp);
        }
        // 3. The request to the app.
        let mut upstream = incoming;
        for name in &self.auth_response_headers {
            upstream.remove(name.as_str());
            if let Some(v) = resp.headers().get(name.as_str()) {
                upstream.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), v.clone());
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
    let token = h
        .idp
        .mint_access_token(&TestUser::alice(), serde_json::json!({}), "ec-1");
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

/// Public by path, by host and by method; and a path denied to everyone.
fn with_public_rules(toml: String) -> String {
    format!(
        r#"{toml}
[[rules]]
name = "public-assets"
paths = ["/public/**"]
action = "public"

[[rules]]
name = "status-page"
hosts = ["status.example.com"]
action = "public"

[[rules]]
name = "feed-read"
paths = ["/feed/**"]
methods = ["GET"]
action = "public"

[[rules]]
name = "denied"
paths = ["/denied/**"]
action = "deny"
"#
    )
}

/// A request for something protected whose forwarded headers name something public, and the
/// status a client must get when the spoofed headers are ignored.
struct Spoof {
    what: &'static str,
    method: &'static str,
    uri: &'static str,
    headers: &'static [(&'static str, &'static str)],
    want: u16,
}

const SPOOFS: [Spoof; 4] = [
    Spoof {
        what: "X-Forwarded-Uri naming a public path",
        method: "GET",
        uri: "/admin/x",
        headers: &[
            ("accept", BROWSER_ACCEPT),
            ("x-forwarded-uri", "/public/x"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-method", "GET"),
        ],
        want: 302,
    },
    Spoof {
        what: "X-Forwarded-Host naming a public host",
        method: "GET",
        uri: "/admin/x",
        headers: &[
            ("accept", BROWSER_ACCEPT),
            ("x-forwarded-host", "status.example.com"),
        ],
        want: 302,
    },
    Spoof {
        what: "X-Forwarded-Method naming a public method",
        method: "DELETE",
        uri: "/feed/items",
        headers: &[
            ("accept", "application/json"),
            ("x-forwarded-method", "GET"),
        ],
        want: 401,
    },
    Spoof {
        what: "X-Forwarded-Uri naming a public path, for a denied one",
        method: "GET",
        uri: "/denied/x",
        headers: &[("accept", BROWSER_ACCEPT), ("x-forwarded-uri", "/public/x")],
        want: 403,
    },
];

impl Spoof {
    async fn send(&self, h: &Harness, mw: &Middleware, entry: EntryPoint) -> Outcome {
        mw.send(
            h,
            &ClientRequest {
                entry,
                method: self.method,
                host: "app.example.com",
                uri: self.uri,
                headers: self.headers,
            },
        )
        .await
    }
}

#[tokio::test]
async fn shipped_middleware_ignores_spoofed_forwarded_headers_behind_any_entry_point() {
    let h = Harness::start_with(with_public_rules).await;
    let mw = shipped_middleware();
    assert!(
        !mw.trust_forward_header,
        "dynamic.yml must ship trustForwardHeader: false"
    );
    // Even an entry point that trusts the client changes nothing: the middleware overwrites.
    for entry in [EntryPoint::StripsClientHeaders, EntryPoint::TrustsClient] {
        for s in &SPOOFS {
            match s.send(&h, &mw, entry).await {
                Outcome::Client(r) => assert_eq!(r.status(), s.want, "{} ({entry:?})", s.what),
                Outcome::Upstream { .. } => {
                    panic!("{} ({entry:?}): let through to the app", s.what)
                }
            }
        }
    }
    // The real public routes pass without a session, and no identity reaches the app (the
    // client's own copy is deleted).
    for (method, host, uri) in [
        ("GET", "app.example.com", "/public/x"),
        ("GET", "status.example.com", "/anything"),
        ("GET", "app.example.com", "/feed/items"),
    ] {
        let Outcome::Upstream { headers, .. } = mw
            .send(
                &h,
                &ClientRequest {
                    entry: EntryPoint::StripsClientHeaders,
                    method,
                    host,
                    uri,
                    headers: &[
                        ("accept", BROWSER_ACCEPT),
                        ("x-auth-request-user", "mallory"),
                    ],
                },
            )
            .await
        else {
            panic!("{method} https://{host}{uri} is public");
        };
        // Portcullis sends the identity headers empty; Traefik copies them over the client's.
        assert_eq!(headers.get("x-auth-request-user").unwrap(), "", "{uri}");
    }
}

/// What the middleware's comment claims: `trustForwardHeader: true` is safe only while the
/// entry point deletes client-sent X-Forwarded-*; an entry point that trusts the client turns
/// it into a bypass of every rule above.
#[tokio::test]
async fn trust_forward_header_true_is_a_bypass_unless_the_entry_point_strips_the_headers() {
    let h = Harness::start_with(with_public_rules).await;
    let trusting = Middleware {
        trust_forward_header: true,
        ..shipped_middleware()
    };
    for s in &SPOOFS {
        match s.send(&h, &trusting, EntryPoint::StripsClientHeaders).await {
            Outcome::Client(r) => {
                assert_eq!(r.status(), s.want, "{}, stripping entry point", s.what)
            }
            Outcome::Upstream { .. } => {
                panic!("{}: let through behind a stripping entry point", s.what)
            }
        }
        let Outcome::Upstream { headers, .. } =
            s.send(&h, &trusting, EntryPoint::TrustsClient).await
        else {
            panic!("{}: expected the bypass this configuration allows", s.what);
        };
        assert_eq!(headers.get("x-auth-request-user").unwrap(), "");
    }
}

/// `multi-app.yml`: one Portcullis, one Middleware per app, each carrying its app's audience.
#[tokio::test]
async fn multi_app_middlewares_carry_each_apps_audience() {
    let h = Harness::start().await;
    let grafana = middleware(MULTI_APP_YML, "portcullis-grafana");
    let n8n = middleware(MULTI_APP_YML, "portcullis-n8n");
    assert_eq!(
        grafana.address,
        "/oauth2/forward-auth?allowed_groups=grafana-users"
    );
    assert_eq!(
        n8n.address,
        "/oauth2/forward-auth?allowed_groups=automation"
    );
    assert!(!grafana.trust_forward_header && !n8n.trust_forward_header);

    let member_of = |group: &str| {
        let mut u = TestUser::alice();
        u.groups = vec![group.to_string()];
        format!(
            "Bearer {}",
            h.idp.mint_access_token(&u, serde_json::json!({}), "ec-1")
        )
    };
    let viewer = member_of("grafana-users");
    let automator = member_of("automation");
    let through = async |mw: &Middleware, host: &str, auth: &str| {
        mw.send(
            &h,
            &ClientRequest {
                entry: EntryPoint::StripsClientHeaders,
                method: "GET",
                host,
                uri: "/",
                headers: &[("accept", "application/json"), ("authorization", auth)],
            },
        )
        .await
    };
    for (mw, host, allowed, refused) in [
        (&grafana, "grafana.example.com", &viewer, &automator),
        (&n8n, "n8n.example.com", &automator, &viewer),
    ] {
        let Outcome::Upstream { headers, .. } = through(mw, host, allowed.as_str()).await else {
            panic!("{host}: its group member was refused");
        };
        assert_eq!(headers.get("x-auth-request-user").unwrap(), "a1b2c3-alice");
        let Outcome::Client(r) = through(mw, host, refused.as_str()).await else {
            panic!("{host}: a member of the other app's group was let in");
        };
        assert_eq!(r.status(), 403, "{host}");
    }
}
