//! `/oauth2/forward-auth` (Traefik ForwardAuth, Caddy forward_auth), `/oauth2/auth` (nginx
//! auth_request, oauth2-proxy semantics) and `/oauth2/userinfo`.
//!
//! The original request arrives only as `X-Forwarded-Method/Proto/Host/Uri`; its cookies and
//! `Authorization` are copied by the proxy. On success the identity goes back in
//! `X-Auth-Request-*` headers (the proxy copies the ones it is told to onto the upstream
//! request). Traefik and Caddy return non-2xx answers to the browser verbatim, so a browser
//! without a session gets a 302 straight to the IdP with an absolute `Location`.

use super::problem::{Problem, SignedInAs};
use super::{
    Body, add_cookies, cookie_header, credential_str, header_str, page_for, redirect, wants_html,
};
use crate::app::App;
use crate::audit::{self, Event};
use crate::authz::AuthzPolicy;
use crate::gate::{Credentials, Pass, Refused};
use crate::rules::{RequestTarget, constraints};
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
    /// As `ForwardAuth`, for [`super::layer`]: the answer also carries the signed-in user as
    /// a response extension, for the layer to hand to the app (an allocation the proxies'
    /// answers don't pay for).
    Embedded,
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

    /// Envoy ext_authz (HTTP service, `path_prefix: /oauth2/ext-authz`, optionally followed
    /// by `;`-parameters): the check request keeps the original method, path and Host.
    /// `original_uri` is what follows the prefix and its parameters.
    pub fn from_ext_authz(parts: &'a http::request::Parts, original_uri: &'a str) -> Self {
        Self {
            method: Some(parts.method.as_str()),
            proto: header_str(&parts.headers, &X_FORWARDED_PROTO),
            host: header_str(&parts.headers, header::HOST).or(parts.uri.host()),
            uri: Some(original_uri),
        }
    }
}

static ORIGIN: HeaderName = HeaderName::from_static("origin");
static ACCESS_CONTROL_REQUEST_METHOD: HeaderName =
    HeaderName::from_static("access-control-request-method");

/// The decision for one request. `original` describes the request being asked about;
/// `constraints` are the calling middleware's own (`?allowed_groups=…`, see
/// [`crate::rules::constraints`]).
pub async fn forward_auth(
    app: &Arc<App>,
    headers: &HeaderMap,
    original: OriginalRequest<'_>,
    constraints: Constraints<'_>,
    flavor: Flavor,
) -> Response<Body> {
    let now = app.now();
    // A CORS preflight is described by the original request's own headers, which the proxy
    // copies (Envoy: list `origin` and `access-control-request-method` in allowed_headers).
    let preflight =
        headers.contains_key(&ORIGIN) && headers.contains_key(&ACCESS_CONTROL_REQUEST_METHOD);
    let target = match RequestTarget::new(original.host, original.method, original.uri, preflight) {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(code = "rules.bad_path", reason = %e, "forwarded path refused");
            return Problem::BadRequest("The request path is malformed.").response(None);
        }
    };
    let constraints = match constraints.parse(app) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(code = "rules.bad_constraints", error = %e, "decision endpoint called with bad constraints");
            return Problem::BadRequest(
                "The proxy's forward-auth address has invalid constraints.",
            )
            .response(None);
        }
    };
    let rules = &app.config().rules;
    let verdict = rules.evaluate(&target);
    let cookies = cookie_header(headers);
    let creds = credentials(headers, cookies.as_deref(), original.host);
    let decided = app
        .gate()
        .decide(&verdict, constraints.as_deref(), creds, now)
        .await;
    let decider = verdict.decider();
    let resp = match decided {
        Ok(Pass::User(granted)) => {
            let mut resp = identity_response(app, success(flavor), &granted.principal);
            if flavor == Flavor::Embedded {
                resp.extensions_mut()
                    .insert(crate::principal::SignedIn(granted.principal.clone()));
            }
            add_cookies(&mut resp, &granted.set_cookies);
            resp
        }
        Ok(Pass::Anonymous) => anonymous(app, success(flavor)),
        Err(Refused::Unauthenticated { clear }) => {
            let mut resp = if flavor != Flavor::AuthRequest
                && verdict.login_redirect()
                && wants_html(headers)
                && is_navigation(original)
            {
                login_redirect(app, original)
            } else {
                Problem::Unauthenticated.response(None)
            };
            add_cookies(&mut resp, &clear);
            resp
        }
        Err(Refused::Forbidden(d, who)) => {
            let id = &who.principal.identity;
            let user = id.user_id(&app.config().claims);
            let rule = rules.label(decider);
            audit::record(
                Event::Denied {
                    rule,
                    reason: d.code(),
                },
                Some(user),
            );
            let name = id
                .preferred_username
                .clone()
                .unwrap_or_else(|| id.sub.clone());
            let signed_in = SignedInAs {
                name,
                sign_in_again_url: sign_in_again_url(app, original),
            };
            let mut resp = Problem::Forbidden(d, Some(signed_in)).response(page_for(app, headers));
            add_cookies(&mut resp, &who.set_cookies);
            resp
        }
        Err(r @ Refused::DeniedByRule) => {
            let rule = rules.label(decider);
            audit::record(
                Event::Denied {
                    rule,
                    reason: "deny_rule",
                },
                None,
            );
            Problem::from(r).response(page_for(app, headers))
        }
        Err(r @ Refused::InvalidToken(_)) => Problem::from(r).response(None),
        Err(r @ Refused::StoreUnavailable) => Problem::from(r).response(page_for(app, headers)),
    };
    app.count_rule_decision(decider, super::decision_of(resp.status()));
    if crate::telemetry::tracing_spans() {
        tracing::Span::current().record("portcullis.rule", rules.label(decider));
    }
    resp
}

/// The middleware's own constraints, as they arrive: the decision endpoint's query, or the
/// `;`-parameters after the ext_authz prefix.
#[derive(Debug, Clone, Copy)]
pub enum Constraints<'a> {
    None,
    Query(&'a str),
    PathParameters(&'a str),
}

impl Constraints<'_> {
    fn parse(self, app: &App) -> Result<Option<Arc<AuthzPolicy>>, constraints::ConstraintError> {
        match self {
            Constraints::None => Ok(None),
            Constraints::Query(q) => app.constraints(q, false, constraints::from_query),
            Constraints::PathParameters(p) => {
                app.constraints(p, true, constraints::from_path_parameters)
            }
        }
    }
}

fn success(flavor: Flavor) -> StatusCode {
    match flavor {
        Flavor::ForwardAuth | Flavor::Embedded => StatusCode::OK,
        Flavor::AuthRequest => StatusCode::ACCEPTED,
    }
}

/// A public route without credentials: every identity and claim header is sent, empty, so
/// the proxy overwrites (Traefik, nginx) or drops (the shipped Caddyfile) any copy the client
/// sent, and Caddy 2.6 never forwards an unfilled `{rp.header.…}` placeholder.
fn anonymous(app: &App, status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    *resp.headers_mut() = app.anonymous_headers().clone();
    resp
}

/// The credentials a request carries: its `Authorization` header and its cookies, which the
/// caller joined with [`cookie_header`] (they may span several headers).
/// `host`: the host the browser asked for, for the domain of any session cookie set or
/// cleared in the answer.
fn credentials<'a>(
    headers: &'a HeaderMap,
    cookies: Option<&'a str>,
    host: Option<&'a str>,
) -> Credentials<'a> {
    Credentials {
        authorization: credential_str(headers, header::AUTHORIZATION),
        cookie: cookies,
        host,
    }
}

/// Only safe methods are sent to log in; a POST can't be replayed after the redirect.
fn is_navigation(original: OriginalRequest<'_>) -> bool {
    original
        .method
        .is_none_or(|m| m.eq_ignore_ascii_case("GET") || m.eq_ignore_ascii_case("HEAD"))
}

/// The address the browser asked for, rebuilt from the proxy's `X-Forwarded-*` values and
/// passed through the redirect policy (a host outside `redirect.allowed_domains` becomes `/`):
/// where a login returns to, and where "sign in as someone else" comes back to.
fn return_address(app: &App, original: OriginalRequest<'_>) -> String {
    app.config()
        .redirect
        .forwarded_target(original.proto, original.host, original.uri)
}

fn login_redirect(app: &Arc<App>, original: OriginalRequest<'_>) -> Response<Body> {
    match app.begin_login(
        return_address(app, original),
        Default::default(),
        original.host,
    ) {
        Ok(start) => {
            let mut resp = redirect(&start.authorize_url);
            add_cookies(&mut resp, &[start.state_cookie]);
            resp
        }
        Err(_) => Problem::IdpUnavailable.response(Some(&app.config().pages)),
    }
}

/// "Sign in as someone else" on the 403 page: sign-out, then back to the refused address.
/// The sign-out is on `public_url`, or on the refused host itself when its cookie domain does
/// not hold `public_url`'s host (its session cookie is only visible there).
fn sign_in_again_url(app: &App, original: OriginalRequest<'_>) -> String {
    let config = app.config();
    let own = config
        .session
        .cookie_domains
        .own_callback_host(original.host)
        .and_then(|host| {
            let public = &config.public_url;
            url::Url::parse(&format!("{}://{host}{}", public.scheme(), public.path())).ok()
        });
    let base = own.as_ref().unwrap_or(&config.public_url);
    crate::pages::sign_in_again_url(base, &return_address(app, original))
}

fn identity_response(
    app: &App,
    status: StatusCode,
    p: &crate::principal::Principal,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    let v = &p.headers;
    *resp.headers_mut() = v.identity_map();
    let h = resp.headers_mut();
    if app.config().headers.pass_access_token {
        put(h, &X_AUTH_TOKEN, &v.access_token);
    }
    if app.config().headers.pass_authorization_header {
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
    let cookies = cookie_header(headers);
    let creds = credentials(headers, cookies.as_deref(), super::browser_host(headers));
    match app.gate().identify(creds, app.now()).await {
        Ok(g) => {
            let id = &g.principal.identity;
            let body = serde_json::json!({
                "user": id.user_id(&app.config().claims),
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
        Err(r) => Problem::from(r).response(None),
    }
}
