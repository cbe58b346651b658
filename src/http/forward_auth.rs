//! `/oauth2/forward-auth` (Traefik ForwardAuth, Caddy forward_auth), `/oauth2/auth` (nginx
//! auth_request, oauth2-proxy semantics) and `/oauth2/userinfo`.
//!
//! The original request arrives only as `X-Forwarded-Method/Proto/Host/Uri`; its cookies and
//! `Authorization` are copied by the proxy. On success the identity goes back in
//! `X-Auth-Request-*` headers (the proxy copies the ones it is told to onto the upstream
//! request). Traefik and Caddy return non-2xx answers to the browser verbatim, so a browser
//! without a session gets a 302 straight to the IdP with an absolute `Location`.

use super::problem::Problem;
use super::{Body, add_cookies, cookie_header, credential_str, header_str, redirect, wants_html};
use crate::access::{Credentials, Granted, Refused};
use crate::app::App;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// 200 on success; browsers without a session are redirected to the IdP (Traefik, Caddy,
    /// and Envoy ext_authz, which all return non-2xx answers to the client verbatim).
    ForwardAuth,
    /// 202 on success; never redirects (nginx turns any non-401/403 denial into a 500).
    AuthRequest,
}

use crate::principal::X_AUTH_TOKEN;
static X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");

/// The request the proxy is asking about.
#[derive(Debug, Clone, Copy, Default)]
pub struct OriginalRequest<'a> {
    pub method: Option<&'a str>,
    pub proto: Option<&'a str>,
    pub host: Option<&'a str>,
    pub uri: Option<&'a str>,
}

impl<'a> OriginalRequest<'a> {
    /// Traefik, Caddy and nginx describe it in `X-Forwarded-Method/Proto/Host/Uri`.
    pub fn from_forwarded_headers(headers: &'a HeaderMap) -> Self {
        Self {
            method: header_str(headers, &X_FORWARDED_METHOD),
            proto: header_str(headers, &X_FORWARDED_PROTO),
            host: header_str(headers, &X_FORWARDED_HOST),
            uri: header_str(headers, &X_FORWARDED_URI),
        }
    }

    /// Envoy ext_authz (HTTP service, `path_prefix: /oauth2/ext-authz`): the check request
    /// keeps the original method, path and Host.
    pub fn from_ext_authz(parts: &'a http::request::Parts) -> Self {
        Self {
            method: Some(parts.method.as_str()),
            proto: header_str(&parts.headers, &X_FORWARDED_PROTO),
            host: header_str(&parts.headers, header::HOST).or(parts.uri.host()),
            uri: parts
                .uri
                .path_and_query()
                .and_then(|pq| pq.as_str().get(super::EXT_AUTHZ_PREFIX.len()..)),
        }
    }
}

/// The decision for one request. `original` describes the request being asked about; it is
/// only needed to send a browser to log in, so it is read only then.
pub async fn forward_auth<'a>(
    app: &Arc<App>,
    headers: &'a HeaderMap,
    original: impl FnOnce() -> OriginalRequest<'a>,
    flavor: Flavor,
) -> Response<Body> {
    let now = app.now();
    match check(app, headers, now).await {
        Ok(granted) => {
            let status = if flavor == Flavor::ForwardAuth {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            let mut resp = identity_response(app, status, &granted.principal);
            add_cookies(&mut resp, &granted.set_cookies);
            resp
        }
        Err(Refused::Unauthenticated { clear }) => {
            let original = original();
            let mut resp = if flavor == Flavor::ForwardAuth
                && wants_html(headers)
                && is_navigation(original)
            {
                login_redirect(app, original, now)
            } else {
                Problem::Unauthenticated.response(false)
            };
            add_cookies(&mut resp, &clear);
            resp
        }
        Err(Refused::Forbidden(d, who)) => {
            let id = &who.principal.identity;
            let name = id
                .preferred_username
                .clone()
                .unwrap_or_else(|| id.sub.clone());
            let mut resp = Problem::Forbidden(d, Some(name)).response(wants_html(headers));
            add_cookies(&mut resp, &who.set_cookies);
            resp
        }
        Err(r @ Refused::InvalidToken(_)) => Problem::from(r).response(false),
        Err(r @ Refused::StoreUnavailable) => Problem::from(r).response(wants_html(headers)),
    }
}

/// The access decision for the credentials (`Authorization`, `Cookie`) a request carries.
async fn check(app: &App, headers: &HeaderMap, now: u64) -> Result<Granted, Refused> {
    let cookies = cookie_header(headers);
    let creds = Credentials {
        authorization: credential_str(headers, header::AUTHORIZATION),
        cookie: cookies.as_deref(),
    };
    app.gate.check(creds, now).await
}

/// Only safe methods are sent to log in; a POST can't be replayed after the redirect.
fn is_navigation(original: OriginalRequest<'_>) -> bool {
    original
        .method
        .is_none_or(|m| m.eq_ignore_ascii_case("GET") || m.eq_ignore_ascii_case("HEAD"))
}

fn login_redirect(app: &Arc<App>, original: OriginalRequest<'_>, now: u64) -> Response<Body> {
    let target = app
        .config
        .redirect
        .forwarded_target(original.proto, original.host, original.uri);
    match app.oidc.begin_login(&app.gate.sealer, target, now) {
        Ok((authorize_url, state_cookie)) => {
            let mut resp = redirect(&authorize_url);
            add_cookies(&mut resp, &[state_cookie]);
            resp
        }
        Err(_) => Problem::IdpUnavailable.response(true),
    }
}

fn identity_response(
    app: &App,
    status: StatusCode,
    p: &crate::principal::Principal,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    let v = &p.headers;
    *resp.headers_mut() = v.identity.clone();
    let h = resp.headers_mut();
    if app.config.headers.pass_access_token {
        put(h, &X_AUTH_TOKEN, &v.access_token);
    }
    if app.config.headers.pass_authorization_header {
        put(h, &header::AUTHORIZATION, &v.authorization);
    }
    resp
}

/// Sets a prepared header value (cloning it only bumps a reference count).
fn put(h: &mut HeaderMap, name: &HeaderName, value: &Option<HeaderValue>) {
    if let Some(v) = value {
        h.insert(name.clone(), v.clone());
    }
}

/// `GET /oauth2/userinfo`: the signed-in user as JSON (oauth2-proxy's field names).
pub async fn userinfo(app: &Arc<App>, headers: &HeaderMap) -> Response<Body> {
    match check(app, headers, app.now()).await {
        Ok(g) => {
            let id = &g.principal.identity;
            let body = serde_json::json!({
                "user": id.sub,
                "email": id.email,
                "preferredUsername": id.preferred_username,
                "groups": id.groups_header().split(',').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
            });
            let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            add_cookies(&mut resp, &g.set_cookies);
            resp
        }
        Err(r) => Problem::from(r).response(false),
    }
}
