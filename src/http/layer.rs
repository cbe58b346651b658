//! [`ForwardAuthLayer`]: Portcullis inside a Rust service (axum, or plain tower/hyper), in
//! front of its own handlers, with no extra network hop.
//!
//! For every request the layer asks exactly the question Traefik's ForwardAuth asks
//! Portcullis, about the request itself (its method, `Host`, path and query, cookies and
//! `Authorization`), with the same configuration type and the same decision code
//! (`super::forward_auth`), and then does what Traefik does with the answer:
//! * a pass: the identity headers of the answer (`X-Auth-Request-*`, and the token headers
//!   the configuration allows) replace any the client sent, the signed-in user is added as a
//!   request extension ([`SignedIn`]), the inner service is called, and the answer's
//!   `Set-Cookie` (a refreshed session) is added to the inner service's response;
//! * anything else (302 to the IdP for a browser, 401, 403, 400, 503): that answer goes back
//!   to the client and the inner service is not called.
//!
//! The sign-in endpoints (`/oauth2/start`, `/oauth2/callback`, `/oauth2/sign_out`,
//! `/oauth2/userinfo`, `/oauth2/backchannel-logout`) are answered by the layer; the decision
//! endpoints (`/oauth2/forward-auth`, `/oauth2/auth`, `/oauth2/ext-authz`) do not exist
//! behind it (404), since the app itself is what they would protect.
//!
//! The scheme of the request is the one of `public_url` (the embedding app serves that URL).

use super::forward_auth::{self, Constraints, Flavor, OriginalRequest};
use super::{Body, EXT_AUTHZ_PREFIX, handle, problem::Problem};
use crate::app::{App, CurrentApp};
use crate::clock::SystemClock;
use crate::config::Config;
pub use crate::principal::SignedIn;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::Either;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Puts Portcullis' decision in front of a service. Cheap to clone.
#[derive(Clone)]
pub struct ForwardAuthLayer {
    app: Arc<CurrentApp>,
}

impl ForwardAuthLayer {
    /// Builds Portcullis from a validated configuration (`portcullis::config::load`) and
    /// starts its background work (discovery, key refresh, the session store); call it
    /// inside a Tokio runtime. Until discovery has completed, requests that need the IdP get
    /// 503.
    pub fn from_config(config: Config) -> Result<Self, crate::app::StartupError> {
        // The TLS provider of every outgoing call (IdP, Redis): aws-lc-rs, as in the server.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let app = App::new(config, Arc::new(SystemClock))?;
        app.spawn_background();
        Ok(Self::new(CurrentApp::new(app)))
    }

    /// Around an application that is already running (shared with a server, or reloaded).
    pub fn new(app: Arc<CurrentApp>) -> Self {
        Self { app }
    }

    /// Whether discovery, keys and the session store are ready (what `/ready` reports).
    pub fn is_ready(&self) -> bool {
        self.app.load().is_ready()
    }
}

impl<S> Layer<S> for ForwardAuthLayer {
    type Service = ForwardAuth<S>;

    fn layer(&self, inner: S) -> ForwardAuth<S> {
        ForwardAuth {
            inner,
            app: self.app.clone(),
        }
    }
}

/// A service behind Portcullis' decision (see the module documentation).
#[derive(Clone)]
pub struct ForwardAuth<S> {
    inner: S,
    app: Arc<CurrentApp>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ForwardAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: hyper::body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Either<Body, ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The instance that was polled ready serves this request (tower's clone-and-swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let app = self.app.load();
        Box::pin(async move {
            match Route::of(req.uri().path()) {
                Route::Portcullis => return Ok(handle(&app, None, req).await.map(Either::Left)),
                Route::NotHere => {
                    return Ok(Problem::NotFound.response(None).map(Either::Left));
                }
                Route::App => {}
            }
            let (mut parts, body) = req.into_parts();
            let decision = decide(&app, &parts).await;
            if decision.status() != StatusCode::OK {
                return Ok(decision.map(Either::Left));
            }
            let (mut answer, _) = decision.into_parts();
            pass_identity(&mut parts.headers, &answer.headers);
            if let Some(user) = answer.extensions.remove::<SignedIn>() {
                parts.extensions.insert(user);
            }
            let mut resp = inner.call(Request::from_parts(parts, body)).await?;
            for cookie in answer.headers.get_all(header::SET_COOKIE) {
                resp.headers_mut()
                    .append(header::SET_COOKIE, cookie.clone());
            }
            Ok(resp.map(Either::Right))
        })
    }
}

enum Route {
    /// Sign-in, callback, sign-out, userinfo, back-channel logout.
    Portcullis,
    /// A decision endpoint: not exposed behind the layer.
    NotHere,
    /// Everything else: decided, then the app.
    App,
}

impl Route {
    fn of(path: &str) -> Self {
        match path {
            "/oauth2/start"
            | "/oauth2/callback"
            | "/oauth2/sign_out"
            | "/oauth2/userinfo"
            | "/oauth2/backchannel-logout" => Route::Portcullis,
            "/oauth2/forward-auth" | "/oauth2/auth" => Route::NotHere,
            p if p.starts_with(EXT_AUTHZ_PREFIX) || p.starts_with("/oauth2/auth/") => {
                Route::NotHere
            }
            _ => Route::App,
        }
    }
}

/// The forward-auth decision about this request, as Traefik would ask for it.
async fn decide(app: &Arc<App>, parts: &http::request::Parts) -> Response<Body> {
    let uri = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let original = OriginalRequest {
        method: Some(parts.method.as_str()),
        proto: Some(app.config().public_url.scheme()),
        host: parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(parts.uri.authority().map(|a| a.as_str())),
        uri: Some(uri),
    };
    forward_auth::forward_auth(
        app,
        &parts.headers,
        original,
        Constraints::None,
        Flavor::Embedded,
    )
    .await
}

/// Traefik's `authResponseHeaders`: the identity headers of the answer replace any the client
/// sent under an `X-Auth-Request-` name (or `Authorization`, when the answer sets it).
fn pass_identity(request: &mut HeaderMap, answer: &HeaderMap) {
    let forged: Vec<header::HeaderName> = request
        .keys()
        .filter(|k| k.as_str().starts_with("x-auth-request-"))
        .cloned()
        .collect();
    for name in forged {
        request.remove(&name);
    }
    for (name, value) in answer {
        if name == header::SET_COOKIE {
            continue;
        }
        request.insert(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_endpoints_do_not_exist_behind_the_layer_and_sign_in_ones_do() {
        for p in [
            "/oauth2/forward-auth",
            "/oauth2/auth",
            "/oauth2/ext-authz/x",
            "/oauth2/auth/x",
        ] {
            assert!(matches!(Route::of(p), Route::NotHere), "{p}");
        }
        for p in ["/oauth2/start", "/oauth2/callback", "/oauth2/sign_out"] {
            assert!(matches!(Route::of(p), Route::Portcullis), "{p}");
        }
        for p in ["/", "/oauth2", "/oauth2/startx", "/api/oauth2/auth"] {
            assert!(matches!(Route::of(p), Route::App), "{p}");
        }
    }

    #[test]
    fn client_identity_headers_are_replaced_and_set_cookie_is_not_passed_upstream() {
        let mut req = HeaderMap::new();
        req.insert("x-auth-request-user", "mallory".parse().unwrap());
        req.insert("x-auth-request-access-token", "forged".parse().unwrap());
        req.insert("accept", "text/html".parse().unwrap());
        let mut answer = HeaderMap::new();
        answer.insert("x-auth-request-user", "alice".parse().unwrap());
        answer.insert(header::SET_COOKIE, "_portcullis=x".parse().unwrap());
        pass_identity(&mut req, &answer);
        assert_eq!(req["x-auth-request-user"], "alice");
        assert!(!req.contains_key("x-auth-request-access-token"));
        assert!(!req.contains_key(header::SET_COOKIE));
        assert_eq!(req["accept"], "text/html");
    }
}
