//! Request routing plus the simple endpoints: discovery, JWKS, userinfo, end-session,
//! and the test-only `/test/*` helpers.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, HeaderValue, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Method, Request, StatusCode};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use crate::responses::{
    Resp, html, json_resp, method_not_allowed, not_found, redirect, text, unavailable,
};
use crate::support::unverified_claims;
use crate::{LogoutCall, Shared, flow, tokens::merge, user_from_json};

const MAX_BODY: usize = 1 << 20;

/// Parsed request: what the handlers need.
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    /// Query (GET) or form body (POST) parameters; first value wins.
    pub(crate) fn params(&self) -> HashMap<String, String> {
        let source: &[u8] = if self.method == Method::POST {
            &self.body
        } else {
            self.query.as_bytes()
        };
        parse_pairs(source)
    }
}

/// Parse `application/x-www-form-urlencoded` pairs; first value of a name wins.
pub(crate) fn parse_pairs(source: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(source) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// Entry point for every HTTP request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Resp {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body too large or unreadable",
            );
        }
    };
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        body,
    };
    if let Some(test_path) = req.path.strip_prefix("/test/") {
        return test_endpoint(&shared, test_path, &req);
    }
    if shared.controls.is_down() {
        return unavailable();
    }
    let Some(rest) = req.path.strip_prefix(shared.realm_path.as_str()) else {
        return not_found();
    };
    let rest = rest.to_owned();
    let get = req.method == Method::GET;
    let post = req.method == Method::POST;
    match rest.as_str() {
        "/.well-known/openid-configuration" if get => discovery(&shared),
        "/protocol/openid-connect/certs" if get => certs(&shared),
        "/protocol/openid-connect/auth" if get => flow::authorize(&shared, &req),
        "/protocol/openid-connect/token" if post => flow::token(&shared, &req).await,
        "/protocol/openid-connect/userinfo" if get || post => userinfo(&shared, &req),
        "/protocol/openid-connect/logout" if get || post => logout(&shared, &req).await,
        "/protocol/openid-connect/revoke" if post => flow::revoke(&shared, &req).await,
        "/.well-known/openid-configuration"
        | "/protocol/openid-connect/certs"
        | "/protocol/openid-connect/auth"
        | "/protocol/openid-connect/token"
        | "/protocol/openid-connect/userinfo"
        | "/protocol/openid-connect/logout"
        | "/protocol/openid-connect/revoke" => method_not_allowed(),
        _ => not_found(),
    }
}

fn discovery(shared: &Shared) -> Resp {
    shared.controls.count_discovery();
    let issuer = if shared.controls.on(&shared.controls.discovery_wrong_issuer) {
        format!("{}-other", shared.issuer)
    } else {
        shared.issuer.clone()
    };
    let doc = json!({
        "issuer": issuer,
        "authorization_endpoint": shared.endpoint("auth"),
        "token_endpoint": shared.endpoint("token"),
        "userinfo_endpoint": shared.endpoint("userinfo"),
        "end_session_endpoint": shared.endpoint("logout"),
        "jwks_uri": shared.endpoint("certs"),
        "frontchannel_logout_session_supported": false,
        "frontchannel_logout_supported": false,
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "acr_values_supported": ["0", "1"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
        "userinfo_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA", "none"],
        "response_modes_supported": ["query"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": [
            "aud", "sub", "iss", "auth_time", "name", "given_name", "family_name",
            "preferred_username", "email", "acr", "groups", "sid", "azp", "nonce"
        ],
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": false,
        "scopes_supported": ["openid", "profile", "email", "roles", "groups", "offline_access"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "code_challenge_methods_supported": ["S256"],
        "revocation_endpoint": shared.endpoint("revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "authorization_response_iss_parameter_supported": true,
    });
    json_resp(StatusCode::OK, &doc)
}

fn certs(shared: &Shared) -> Resp {
    shared.controls.count_jwks();
    let jwks = shared.tokens.keys.jwks(shared.controls.jwks_phase());
    let mut resp = json_resp(StatusCode::OK, &jwks);
    let max_age = shared
        .controls
        .jwks_max_age_secs
        .load(std::sync::atomic::Ordering::SeqCst);
    if let Ok(v) = HeaderValue::from_str(&format!("max-age={max_age}")) {
        resp.headers_mut().insert(CACHE_CONTROL, v);
    }
    resp
}

/// Verify an access token against the currently published keys, like a resource server.
fn verify_access_token(shared: &Shared, token: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwks = shared.tokens.keys.jwks(shared.controls.jwks_phase());
    let jwk_value = jwks["keys"]
        .as_array()
        .and_then(|keys| {
            keys.iter()
                .find(|k| k["kid"] == kid.as_str() && k["use"] == "sig")
        })
        .ok_or("unknown kid")?;
    if jwk_value["alg"] != crate::tokens::alg_name(header.alg) {
        return Err("alg does not match key".into());
    }
    let jwk: Jwk = serde_json::from_value(jwk_value.clone()).map_err(|e| e.to_string())?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_issuer(&[shared.issuer.as_str()]);
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?;
    if data.claims["typ"] != "Bearer" {
        return Err("not an access token".into());
    }
    Ok(data.claims)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn userinfo(shared: &Shared, req: &Req) -> Resp {
    shared.controls.count_userinfo();
    let token = bearer(&req.headers).or_else(|| {
        (req.method == Method::POST)
            .then(|| req.params().get("access_token").cloned())
            .flatten()
    });
    let claims = match token.as_deref().map(|t| verify_access_token(shared, t)) {
        Some(Ok(c)) => c,
        Some(Err(e)) => return invalid_token(&e),
        None => return invalid_token("missing bearer token"),
    };
    let mut out = json!({});
    for name in [
        "sub",
        "email_verified",
        "preferred_username",
        "email",
        "groups",
        "name",
    ] {
        if let Some(v) = claims.get(name) {
            merge(&mut out, &json!({ name: v }));
        }
    }
    json_resp(StatusCode::OK, &out)
}

fn invalid_token(description: &str) -> Resp {
    let mut resp = json_resp(
        StatusCode::UNAUTHORIZED,
        &json!({ "error": "invalid_token", "error_description": description }),
    );
    let challenge = format!(
        "Bearer realm=\"test\", error=\"invalid_token\", error_description=\"{}\"",
        description.replace('"', "'")
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    resp
}

async fn logout(shared: &Shared, req: &Req) -> Resp {
    let params = req.params();
    let raw = if req.method == Method::POST {
        String::from_utf8_lossy(&req.body).into_owned()
    } else {
        req.query.clone()
    };
    let call = LogoutCall {
        query: raw,
        id_token_hint: params.get("id_token_hint").cloned(),
        post_logout_redirect_uri: params.get("post_logout_redirect_uri").cloned(),
        client_id: params.get("client_id").cloned(),
        state: params.get("state").cloned(),
    };
    if let Some(sid) = call
        .id_token_hint
        .as_deref()
        .and_then(unverified_claims)
        .and_then(|c| c["sid"].as_str().map(str::to_owned))
    {
        shared.end_session_notify(&sid).await;
    }
    let target = call.post_logout_redirect_uri.clone();
    let state = call.state.clone();
    shared.controls.record_logout(call);
    match target.map(|t| url::Url::parse(&t)) {
        Some(Ok(mut url)) => {
            if let Some(state) = state {
                url.query_pairs_mut().append_pair("state", &state);
            }
            redirect(url.as_str())
        }
        Some(Err(_)) => html(
            StatusCode::BAD_REQUEST,
            "We are sorry...",
            "Invalid redirect uri",
        ),
        None => html(StatusCode::OK, "Logging out", "You are logged out"),
    }
}

/// `/test/*`: minting and control over HTTP, for shell benches and the demo.
/// These keep working while the `down` switch is on.
fn test_endpoint(shared: &Shared, path: &str, req: &Req) -> Resp {
    let body = if req.body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(v) => v,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")),
        }
    };
    match (path, req.method == Method::POST) {
        ("mint", true) => mint_over_http(shared, &body),
        ("controls", true) => {
            if let Some(user) = body.get("user") {
                match user_from_json(user) {
                    Some(u) => shared.store().current_user = u,
                    None => return text(StatusCode::BAD_REQUEST, "unknown user"),
                }
            }
            let mut settings = body.clone();
            merge(&mut settings, &json!({ "user": null }));
            match shared.controls.apply_json(&settings) {
                Ok(()) => json_resp(StatusCode::OK, &shared.controls.counters_json()),
                Err(e) => text(StatusCode::BAD_REQUEST, e),
            }
        }
        ("counters", false) => json_resp(StatusCode::OK, &shared.controls.counters_json()),
        _ => not_found(),
    }
}

fn mint_over_http(shared: &Shared, body: &Value) -> Resp {
    let user = match body.get("user") {
        None => shared.store().current_user.clone(),
        Some(u) => match user_from_json(u) {
            Some(u) => u,
            None => return text(StatusCode::BAD_REQUEST, "unknown user"),
        },
    };
    let kid = body["kid"].as_str().unwrap_or("rsa-1").to_owned();
    if shared.tokens.keys.get(&kid).is_none() {
        return text(StatusCode::BAD_REQUEST, format!("unknown kid {kid:?}"));
    }
    let overrides = body.get("overrides").cloned().unwrap_or_else(|| json!({}));
    let token = match body["type"].as_str().unwrap_or("access") {
        "access" => shared.mint_access(&user, &overrides, &kid),
        "id" => shared.mint_id(&user, body["nonce"].as_str(), &overrides, &kid),
        other => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("unknown token type {other:?}"),
            );
        }
    };
    text(StatusCode::OK, token)
}
