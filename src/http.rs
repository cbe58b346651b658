//! The HTTP edge: routes requests to handlers and turns core results into responses. Handlers
//! are thin; all decisions live in the core modules.

pub mod backchannel_logout;
pub mod connections;
pub mod forward_auth;
pub mod idle_timeout;
pub mod layer;
pub mod login;
pub mod problem;
pub mod server;
pub mod service;

use crate::app::App;
use crate::audit::{self, Event};
use crate::metrics::{Decision, Endpoint};
use crate::request_context::{self, RequestContext, RequestId};
use crate::session::cookies::SetCookie;
use crate::telemetry;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

pub type Body = Full<Bytes>;

/// The `path_prefix` to configure in Envoy's ext_authz HTTP service.
pub const EXT_AUTHZ_PREFIX: &str = "/oauth2/ext-authz";

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Answers one request from `peer` (the TCP peer; `None` when unknown, e.g. in router tests)
/// on the main listener. Generic over the body type, so router tests can call this without a
/// socket; only back-channel logout reads a body.
///
/// The request runs in its [`RequestContext`] (request id, client address, host, path) and in
/// a `request` span carrying the id, so every log line and audit event of it names the id;
/// the answer carries it in `X-Request-Id`.
pub async fn handle<B>(app: &Arc<App>, peer: Option<IpAddr>, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let context = request_context(app, peer, &req);
    let id = HeaderValue::from_str(context.id.as_str()).ok();
    // The trace fields are filled in only when traced (`telemetry::tracing_spans`): a log
    // line shows the fields that were.
    let span = tracing::info_span!(
        "request",
        request_id = %context.id,
        otel.name = Empty,
        otel.kind = Empty,
        otel.status_code = Empty,
        http.request.method = Empty,
        url.path = Empty,
        http.response.status_code = Empty,
        portcullis.host = Empty,
        portcullis.path = Empty,
        portcullis.rule = Empty,
        portcullis.decision = Empty,
    );
    let traced = telemetry::tracing_spans();
    if traced {
        trace_request(&span, &req, &context);
    }
    let answer = async {
        let response = route(app, peer, req).await;
        if traced {
            let span = tracing::Span::current();
            let status = response.status();
            span.record("http.response.status_code", status.as_u16());
            span.record("portcullis.decision", decision_of(status).as_str());
            if status.is_server_error() {
                span.record("otel.status_code", "error");
            }
        }
        response
    };
    let mut response = request_context::scope(context, answer)
        .instrument(span)
        .await;
    if let Some(id) = id {
        response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    }
    response
}

/// The request span as an OpenTelemetry server span (`GET /oauth2/forward-auth`), in the
/// trace of the proxy's `traceparent`. The original request's host and path (never its query)
/// say which application was asked for.
fn trace_request<B>(span: &tracing::Span, req: &Request<B>, context: &RequestContext) {
    let path = req.uri().path();
    let route = match path {
        "/oauth2/forward-auth"
        | "/oauth2/auth"
        | "/oauth2/start"
        | "/oauth2/sign_in"
        | "/oauth2/callback"
        | "/oauth2/sign_out"
        | "/oauth2/userinfo"
        | "/oauth2/backchannel-logout"
        | "/ping"
        | "/ready"
        | "/metrics" => path,
        p if p.starts_with(EXT_AUTHZ_PREFIX) => EXT_AUTHZ_PREFIX,
        // Unknown paths are not span names (unbounded).
        _ => "other",
    };
    span.record("otel.name", format!("{} {route}", req.method()));
    span.record("otel.kind", "server");
    span.record("http.request.method", req.method().as_str());
    span.record("url.path", route);
    if let Some(host) = context.host.as_deref() {
        span.record("portcullis.host", host);
    }
    if let Some(path) = context.path.as_deref() {
        span.record("portcullis.path", path);
    }
    telemetry::continue_trace(span, req.headers());
}

/// Who asked for what: for a decision, the original request's host and path (what the
/// proxy forwards); for Portcullis' own endpoints, the browser's host and the path asked for.
fn request_context<B>(app: &App, peer: Option<IpAddr>, req: &Request<B>) -> RequestContext {
    let headers = req.headers();
    let path = req.uri().path();
    let id = RequestId::choose(
        header_str(headers, &X_REQUEST_ID),
        header_str(headers, &TRACEPARENT),
    );
    let client_ip = request_context::client_ip(
        peer,
        header_str(headers, &X_FORWARDED_FOR),
        &app.config().trusted_proxies,
    );
    let (host, path) = if matches!(path, "/oauth2/forward-auth" | "/oauth2/auth") {
        let original = forward_auth::OriginalRequest::from_forwarded_headers(headers);
        (original.host, original.uri)
    } else if path.starts_with(EXT_AUTHZ_PREFIX) {
        let original = ext_authz_target(req.uri()).map(|(_, original)| original);
        (header_str(headers, header::HOST), original)
    } else {
        (browser_host(headers), Some(path))
    };
    RequestContext::new(id, client_ip, host, path)
}

/// The main listener's endpoints.
async fn route<B>(app: &Arc<App>, peer: Option<IpAddr>, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    let decision_endpoint = matches!(path, "/oauth2/forward-auth" | "/oauth2/auth")
        || path.starts_with(EXT_AUTHZ_PREFIX);
    if decision_endpoint && !app.trusts_caller(peer) {
        audit::record(Event::UntrustedCaller, None);
        return problem::Problem::UntrustedCaller.response(None);
    }
    let query = parts.uri.query().map_or(
        forward_auth::Constraints::None,
        forward_auth::Constraints::Query,
    );
    let (endpoint, response) = match path {
        // Any method: Traefik's `preserveRequestMethod` sends the original one; the decision
        // reads it from X-Forwarded-Method either way.
        "/oauth2/forward-auth" => (
            Endpoint::ForwardAuth,
            forwarded(
                app,
                &parts.headers,
                query,
                forward_auth::Flavor::ForwardAuth,
            )
            .await,
        ),
        "/oauth2/auth" => (
            Endpoint::Auth,
            forwarded(
                app,
                &parts.headers,
                query,
                forward_auth::Flavor::AuthRequest,
            )
            .await,
        ),
        // Envoy ext_authz (HTTP service, `path_prefix: /oauth2/ext-authz`): the check request
        // keeps the original method, path and Host.
        p if p.starts_with(EXT_AUTHZ_PREFIX) => match ext_authz_target(&parts.uri) {
            Some((constraints, original_uri)) => {
                let original = forward_auth::OriginalRequest::from_ext_authz(&parts, original_uri);
                let r = forward_auth::forward_auth(
                    app,
                    &parts.headers,
                    original,
                    constraints,
                    forward_auth::Flavor::ForwardAuth,
                )
                .await;
                (Endpoint::ForwardAuth, r)
            }
            None => (Endpoint::Other, problem::Problem::NotFound.response(None)),
        },
        "/oauth2/start" | "/oauth2/sign_in" if get => (
            Endpoint::Start,
            login::start(app, &parts.uri, &parts.headers),
        ),
        "/oauth2/callback" if get => (
            Endpoint::Callback,
            login::callback(app, &parts.uri, &parts.headers).await,
        ),
        "/oauth2/sign_out" if get || parts.method == Method::POST => (
            Endpoint::SignOut,
            login::sign_out(app, &parts.uri, &parts.headers).await,
        ),
        "/oauth2/userinfo" if get => (
            Endpoint::Userinfo,
            forward_auth::userinfo(app, &parts.headers).await,
        ),
        "/oauth2/backchannel-logout" if parts.method == Method::POST => (
            Endpoint::BackchannelLogout,
            backchannel_logout::accept(app, &parts.headers, body).await,
        ),
        "/ping" if get => (Endpoint::Other, text(StatusCode::OK, "OK")),
        "/ready" if get => (Endpoint::Other, ready(app)),
        // With `metrics_listen`, metrics are served there only ([`handle_operations`]).
        "/metrics" if get && app.config().metrics_listen.is_none() => {
            (Endpoint::Other, metrics(app))
        }
        "/metrics" if app.config().metrics_listen.is_some() => {
            (Endpoint::Other, problem::Problem::NotFound.response(None))
        }
        "/oauth2/start" | "/oauth2/sign_in" | "/oauth2/callback" | "/oauth2/sign_out"
        | "/oauth2/userinfo" | "/ping" | "/ready" | "/metrics" => (
            Endpoint::Other,
            problem::Problem::MethodNotAllowed.response(None),
        ),
        _ => (Endpoint::Other, problem::Problem::NotFound.response(None)),
    };
    if endpoint != Endpoint::Other {
        app.metrics()
            .request(endpoint, decision_of(response.status()), started.elapsed());
    }
    response
}

/// Answers one request on the operations listener (`metrics_listen`): `/metrics`, `/ping`
/// and `/ready`, nothing else.
pub fn handle_operations<B>(app: &App, req: &Request<B>) -> Response<Body> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    match req.uri().path() {
        "/metrics" if get => metrics(app),
        "/ping" if get => text(StatusCode::OK, "OK"),
        "/ready" if get => ready(app),
        "/metrics" | "/ping" | "/ready" => problem::Problem::MethodNotAllowed.response(None),
        _ => problem::Problem::NotFound.response(None),
    }
}

/// Splits an ext_authz check URI into the middleware's constraints and the original request's
/// path and query: `/oauth2/ext-authz;allowed_groups=a/orig?q` → (`allowed_groups=a`,
/// `/orig?q`). `None` when it is not of that shape.
fn ext_authz_target(uri: &http::Uri) -> Option<(forward_auth::Constraints<'_>, &str)> {
    let rest = uri
        .path_and_query()?
        .as_str()
        .get(EXT_AUTHZ_PREFIX.len()..)?;
    if rest.starts_with('/') {
        return Some((forward_auth::Constraints::None, rest));
    }
    let params = rest.strip_prefix(';')?;
    let slash = params.find('/')?;
    let (params, original) = params.split_at(slash);
    // The parameters end at the first '/': one that holds a '?' is malformed.
    if params.contains('?') {
        return None;
    }
    Some((forward_auth::Constraints::PathParameters(params), original))
}

/// Forward-auth for proxies that describe the original request in `X-Forwarded-*`.
async fn forwarded(
    app: &Arc<App>,
    headers: &HeaderMap,
    constraints: forward_auth::Constraints<'_>,
    flavor: forward_auth::Flavor,
) -> Response<Body> {
    let original = forward_auth::OriginalRequest::from_forwarded_headers(headers);
    forward_auth::forward_auth(app, headers, original, constraints, flavor).await
}

pub(crate) fn decision_of(status: StatusCode) -> Decision {
    match status.as_u16() {
        200..=299 => Decision::Allowed,
        300..=399 => Decision::Redirected,
        401 => Decision::Unauthenticated,
        403 => Decision::Forbidden,
        500..=599 => Decision::Unavailable,
        _ => Decision::BadRequest,
    }
}

fn ready(app: &App) -> Response<Body> {
    if let Some(why) = app.not_ready_because() {
        problem::Problem::NotReady(why).response(None)
    } else if app.metrics().idp_is_down() {
        // Still ready: sessions and cached keys keep working while the IdP is down, and taking
        // every replica out of service would turn an IdP outage into a full outage.
        text(
            StatusCode::OK,
            "ready (degraded): identity provider unreachable; existing sessions and cached keys are served, new logins fail",
        )
    } else {
        text(StatusCode::OK, "ready")
    }
}

fn metrics(app: &App) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(app.metrics().render())));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A header's value as text, if present and visible ASCII.
pub fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A credential header (`Authorization`, `Cookie`) as text. Checked as UTF-8 rather than
/// with `HeaderValue::to_str`'s visible-ASCII rule: hyper already refused control characters,
/// what we read out of it is parsed strictly afterwards (base64, JWT), and on a 1–3 KB value
/// the UTF-8 check is the cheaper one. A cookie of another application holding UTF-8 text
/// must not hide the session cookie next to it.
pub fn credential_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

/// The request's cookies, joined when the client split them over several headers (HTTP/2).
pub fn cookie_header(headers: &HeaderMap) -> Option<std::borrow::Cow<'_, str>> {
    let mut values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok());
    let first = values.next()?;
    match values.next() {
        None => Some(std::borrow::Cow::Borrowed(first)),
        Some(second) => {
            let mut all = format!("{first}; {second}");
            for v in values {
                all.push_str("; ");
                all.push_str(v);
            }
            Some(std::borrow::Cow::Owned(all))
        }
    }
}

/// Does the client look like a browser that can follow a login redirect?
pub fn wants_html(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT).is_some_and(|a| a.contains("text/html"))
}

/// The look of the HTML page a refusal is shown in, for a client that reads HTML
/// ([`wants_html`]); `None`: the refusal is answered in plain text.
pub fn page_for<'a>(app: &'a App, headers: &HeaderMap) -> Option<&'a crate::pages::Pages> {
    wants_html(headers).then_some(&app.config().pages)
}

/// Appends `Set-Cookie` values (invalid ones are dropped, never sent malformed).
pub fn add_cookies(resp: &mut Response<Body>, cookies: &[SetCookie]) {
    for c in cookies {
        if let Ok(v) = http::HeaderValue::from_str(c.as_str()) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// A `302 Found` to `location` (absolute when the caller made it so).
pub fn redirect(location: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::FOUND;
    match http::HeaderValue::from_str(location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            r.headers_mut()
                .insert(header::LOCATION, http::HeaderValue::from_static("/"));
        }
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

/// Query parameter lookup (decoded).
/// The host the browser talked to, for a request to Portcullis' own endpoints: the proxy's
/// `X-Forwarded-Host` (first value) when it sends one, else `Host`. It only picks a cookie
/// domain among `session.cookie_domains` (a browser refuses a `Domain` its host is not in)
/// and a login's own callback host (the IdP accepts only the callback URLs it lists).
pub fn browser_host(headers: &HeaderMap) -> Option<&str> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    value("x-forwarded-host")
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .or_else(|| value("host"))
}

pub fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
