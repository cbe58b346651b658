//! `/oauth2/start` (and `/oauth2/sign_in`), `/oauth2/callback` and `/oauth2/sign_out`: the
//! browser side of login and logout. Every redirect target passes through the redirect policy first.

use super::problem::Problem;
use super::{Body, add_cookies, browser_host, cookie_header, query_param, redirect};
use crate::app::App;
use crate::audit::{self, Event};
use crate::login::auth_params::AuthParams;
use crate::login::oidc::{CallbackParams, LoggedIn};
use crate::session::cookie_domains::CookieContext;
use http::{HeaderMap, Response, Uri};
use std::sync::Arc;

/// `/oauth2/start`, and `/oauth2/sign_in` (nginx's `error_page 401 = /oauth2/sign_in`): the
/// login starts and returns to `rd`, or else to oauth2-proxy's `X-Auth-Request-Redirect`
/// header (nginx sets it to `$request_uri`); either passes the redirect policy first.
pub fn start(app: &Arc<App>, uri: &Uri, headers: &HeaderMap) -> Response<Body> {
    let asked = query_param(uri, "rd").or_else(|| {
        headers
            .get("x-auth-request-redirect")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    let target = app.config().redirect.or_fallback(asked.as_deref());
    let query = uri.query().unwrap_or("");
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let params = match AuthParams::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(p) => p,
        Err((name, why)) => {
            tracing::info!(
                code = "login.bad_param",
                param = name,
                reason = why,
                "login parameter refused"
            );
            return Problem::BadRequest(
                "A login parameter (prompt, login_hint, acr_values or kc_idp_hint) is invalid.",
            )
            .response(Some(&app.config().pages));
        }
    };
    match app.begin_login(target, params, browser_host(headers)) {
        Ok(start) => {
            let mut resp = redirect(&start.authorize_url);
            add_cookies(&mut resp, &[start.state_cookie]);
            resp
        }
        Err(e) => Problem::Login(e).response(Some(&app.config().pages)),
    }
}

pub async fn callback(app: &Arc<App>, uri: &Uri, headers: &HeaderMap) -> Response<Body> {
    let params = CallbackParams {
        code: query_param(uri, "code"),
        state: query_param(uri, "state"),
        error: query_param(uri, "error"),
    };
    let cookies = cookie_header(headers);
    let request = CookieContext::new(cookies.as_deref(), browser_host(headers));
    let finish = app.finish_login(params, request).await;
    let mut resp = match finish.outcome {
        Ok(LoggedIn { session, return_to }) => {
            let identity = &session.identity;
            audit::record(
                Event::LoginSucceeded {
                    sid: identity.sid.as_deref(),
                },
                Some(identity.user_id(&app.config().claims)),
            );
            let mut resp = redirect(&app.config().redirect.or_fallback(Some(&return_to)));
            match app.start_session(&session, request).await {
                Ok(Some(set)) => add_cookies(&mut resp, &set),
                Ok(None) => {
                    return Problem::BadRequest("The session could not be stored.")
                        .response(Some(&app.config().pages));
                }
                Err(_) => return Problem::StoreUnavailable.response(Some(&app.config().pages)),
            }
            resp
        }
        Err(e) => Problem::Login(e).response(Some(&app.config().pages)),
    };
    add_cookies(&mut resp, &finish.clear_state);
    resp
}

/// Clears the session and, when the IdP supports it, ends the IdP session too (RP-initiated
/// logout with `id_token_hint` and `post_logout_redirect_uri`). A copied cookie must not
/// outlive the sign-out: the session is ended in the store (every replica, with Redis) before
/// answering, and if the store can't be reached the sign-out fails closed with a 503.
pub async fn sign_out(app: &Arc<App>, uri: &Uri, headers: &HeaderMap) -> Response<Body> {
    let cookies = cookie_header(headers);
    let session = match app.gate().end_session(cookies.as_deref()).await {
        Ok(s) => s,
        Err(_) => return Problem::StoreUnavailable.response(Some(&app.config().pages)),
    };
    let user = session
        .as_ref()
        .map(|s| s.identity.user_id(&app.config().claims));
    audit::record(Event::SignedOut, user);
    let target = app
        .config()
        .redirect
        .or_fallback(query_param(uri, "rd").as_deref());
    // The IdP needs an absolute return address; relative targets are on our public host.
    let absolute = if target.starts_with('/') {
        format!(
            "{}{}",
            app.config().public_url.as_str().trim_end_matches('/'),
            target
        )
    } else {
        target.clone()
    };
    let location = session
        .as_ref()
        .and_then(|s| app.logout_url(s.id_token.as_deref(), &absolute))
        .unwrap_or(target);
    let mut resp = redirect(&location);
    let request = CookieContext::new(cookies.as_deref(), browser_host(headers));
    add_cookies(&mut resp, &app.gate().clear_cookies(request));
    resp
}
