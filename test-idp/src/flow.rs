//! The authorization code flow: `/auth` (auto-approving login with PKCE) and `/token`
//! (authorization_code and refresh_token grants, client authentication,
//! misbehaviour switches).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::StatusCode;
use hyper::header::AUTHORIZATION;
use serde_json::{Value, json};

use crate::responses::{Resp, html, json_no_store, oauth_error, redirect, text};
use crate::routes::Req;
use crate::store::{CODE_TTL_SECS, PendingCode, RefreshRecord, Session, Store};
use crate::support::{pkce_s256, random_uuid};
use crate::tokens::{Issue, merge};
use crate::{GRANTED_SCOPE, Shared, TestUser};

/// `GET .../protocol/openid-connect/auth`
pub(crate) fn authorize(shared: &Shared, req: &Req) -> Resp {
    shared.controls.count_authorize();
    let params = req.params();
    let get = |k: &str| params.get(k).map(String::as_str);

    if get("client_id") != Some(shared.opts.client_id.as_str()) {
        return html(
            StatusCode::BAD_REQUEST,
            "We are sorry...",
            "Client not found.",
        );
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return html(
            StatusCode::BAD_REQUEST,
            "We are sorry...",
            "Invalid parameter: redirect_uri",
        );
    };
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return html(
            StatusCode::BAD_REQUEST,
            "We are sorry...",
            "Invalid parameter: redirect_uri",
        );
    };
    let state = get("state");
    let fail = |mut target: url::Url, error: &str, description: &str| {
        {
            let mut q = target.query_pairs_mut();
            q.append_pair("error", error)
                .append_pair("error_description", description);
            if let Some(s) = state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", &shared.issuer);
        }
        redirect(target.as_str())
    };

    if get("response_type") != Some("code") {
        return fail(
            target,
            "unsupported_response_type",
            "Client is not allowed to initiate browser login with given response_type.",
        );
    }
    let Some(challenge) = get("code_challenge").filter(|c| !c.is_empty()) else {
        return fail(
            target,
            "invalid_request",
            "Missing parameter: code_challenge_method",
        );
    };
    if get("code_challenge_method") != Some("S256") {
        return fail(
            target,
            "invalid_request",
            "Invalid parameter: code_challenge_method",
        );
    }
    if shared.controls.on(&shared.controls.authorize_error) {
        return fail(
            target,
            "access_denied",
            "User denied consent (test switch authorize_error)",
        );
    }

    let now = shared.now();
    let sid = random_uuid();
    let code = format!("{}.{}.{}", random_uuid(), sid, random_uuid());
    {
        let mut store = shared.store();
        store.prune_codes(now);
        let user = store.current_user.clone();
        store.sessions.insert(
            sid.clone(),
            Session {
                user,
                auth_time: now,
                active: true,
            },
        );
        store.codes.insert(
            code.clone(),
            PendingCode {
                redirect_uri: redirect_uri.to_owned(),
                nonce: get("nonce").map(str::to_owned),
                code_challenge: challenge.to_owned(),
                scope: GRANTED_SCOPE.to_owned(),
                sid: sid.clone(),
                created: now,
                used: false,
            },
        );
        store.last_sid = Some(sid.clone());
    }
    {
        let mut q = target.query_pairs_mut();
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("session_state", &sid)
            .append_pair("iss", &shared.issuer)
            .append_pair("code", &code);
    }
    redirect(target.as_str())
}

fn invalid_grant(description: &str) -> Resp {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1, form-encoded parts) or the body.
fn client_credentials(req: &Req, params: &HashMap<String, String>) -> Option<(String, String)> {
    if let Some(value) = req.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some((scheme, encoded)) = value.split_once(' ')
        && scheme.eq_ignore_ascii_case("basic")
    {
        let decoded = STANDARD.decode(encoded.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Some((unescape(id), unescape(secret)));
    }
    Some((
        params.get("client_id")?.clone(),
        params.get("client_secret")?.clone(),
    ))
}

/// `POST .../protocol/openid-connect/token`
pub(crate) async fn token(shared: &Shared, req: &Req) -> Resp {
    let c = &shared.controls;
    c.count_token_request();
    let params = req.params();
    let grant_type = params.get("grant_type").map(String::as_str).unwrap_or("");
    match grant_type {
        "authorization_code" => c.count_code_grant(),
        "refresh_token" => c.count_refresh_grant(),
        _ => {}
    }
    let delay = c.token_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if c.on(&c.token_endpoint_500) {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error (test switch token_endpoint_500)",
        );
    }
    if c.on(&c.token_endpoint_error) {
        return invalid_grant("Test switch token_endpoint_error");
    }
    match client_credentials(req, &params) {
        Some((id, secret))
            if id == shared.opts.client_id && secret == shared.opts.client_secret => {}
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Invalid client or Invalid client credentials",
            );
        }
    }
    match grant_type {
        "authorization_code" => code_grant(shared, &params),
        "refresh_token" => refresh_grant(shared, &params),
        "" => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing form parameter: grant_type",
        ),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant_type",
        ),
    }
}

/// `POST .../protocol/openid-connect/revoke` (RFC 7009). Revoking a refresh token ends
/// its session (with back-channel logout when configured); access tokens and unknown
/// tokens are accepted and ignored. Always 200 for an authenticated client.
pub(crate) async fn revoke(shared: &Shared, req: &Req) -> Resp {
    shared.controls.count_revocation();
    let params = req.params();
    match client_credentials(req, &params) {
        Some((id, secret))
            if id == shared.opts.client_id && secret == shared.opts.client_secret => {}
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Invalid client or Invalid client credentials",
            );
        }
    }
    let Some(token) = params.get("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Token not provided",
        );
    };
    let sid = shared
        .store()
        .refresh_tokens
        .get(token)
        .map(|r| r.sid.clone());
    if let Some(sid) = sid {
        shared.end_session_notify(&sid).await;
    }
    text(StatusCode::OK, "")
}

fn code_grant(shared: &Shared, params: &HashMap<String, String>) -> Resp {
    let Some(code) = params.get("code") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing parameter: code",
        );
    };
    let now = shared.now();
    let mut store = shared.store();
    let allow_reuse = shared.controls.on(&shared.controls.allow_code_reuse);
    let Some(pending) = store.codes.get_mut(code) else {
        return invalid_grant("Code not valid");
    };
    if now.saturating_sub(pending.created) > CODE_TTL_SECS {
        return invalid_grant("Code not valid");
    }
    if pending.used && !allow_reuse {
        return invalid_grant("Code not valid");
    }
    if params.get("redirect_uri") != Some(&pending.redirect_uri) {
        return invalid_grant("Incorrect redirect_uri");
    }
    let Some(verifier) = params.get("code_verifier") else {
        return invalid_grant("PKCE code verifier not specified");
    };
    if pkce_s256(verifier) != pending.code_challenge {
        return invalid_grant("PKCE verification failed: Code mismatch");
    }
    pending.used = true;
    let pending = pending.clone();
    let Some(session) = store
        .sessions
        .get(&pending.sid)
        .filter(|s| s.active)
        .cloned()
    else {
        return invalid_grant("Session not active");
    };
    let body = issue_tokens(
        shared,
        &mut store,
        &pending.sid,
        &session,
        pending.nonce.as_deref(),
        &pending.scope,
    );
    json_no_store(StatusCode::OK, &body)
}

fn refresh_grant(shared: &Shared, params: &HashMap<String, String>) -> Resp {
    let Some(refresh_token) = params.get("refresh_token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "No refresh token",
        );
    };
    let now = shared.now();
    let revoke_on_use = shared
        .controls
        .on(&shared.controls.revoke_refresh_token_on_use);
    let epoch = shared.controls.refresh_epoch();
    let mut store = shared.store();
    let Some(record) = store.refresh_tokens.get(refresh_token).cloned() else {
        return invalid_grant("Invalid refresh token");
    };
    if record.exp < now {
        return invalid_grant("Token is not active");
    }
    if record.epoch != epoch {
        return invalid_grant("Invalid refresh token. Token revoked");
    }
    let Some(session) = store
        .sessions
        .get(&record.sid)
        .filter(|s| s.active)
        .cloned()
    else {
        return invalid_grant("Session not active");
    };
    if revoke_on_use {
        if record.used {
            store.end_session(&record.sid);
            return invalid_grant("Maximum allowed refresh token reuse exceeded");
        }
        if let Some(r) = store.refresh_tokens.get_mut(refresh_token) {
            r.used = true;
        }
    }
    let body = issue_tokens(
        shared,
        &mut store,
        &record.sid,
        &session,
        None,
        &record.scope,
    );
    json_no_store(StatusCode::OK, &body)
}

/// Access + ID + refresh tokens for a session, with the ID-token misbehaviour switches applied.
fn issue_tokens(
    shared: &Shared,
    store: &mut Store,
    sid: &str,
    session: &Session,
    nonce: Option<&str>,
    scope: &str,
) -> Value {
    let c = &shared.controls;
    let t = &shared.tokens;
    let now = shared.now();
    let kid = c.signing_kid();
    let user: &TestUser = &session.user;
    let access_ttl = shared.opts.access_token_ttl_secs;
    let refresh_ttl = shared.opts.refresh_token_ttl_secs;

    let issue = Issue {
        now,
        ttl: access_ttl,
        sid,
        scope,
    };
    let access_token = t.sign(&t.access_claims(user, &issue), &kid, "JWT");

    let mut id = t.id_claims(user, &issue, session.auth_time, nonce);
    if c.on(&c.id_token_wrong_nonce) {
        merge(
            &mut id,
            &json!({ "nonce": format!("wrong-{}", random_uuid()) }),
        );
    }
    if c.on(&c.id_token_wrong_aud) {
        merge(&mut id, &json!({ "aud": "someone-else" }));
    }
    if c.on(&c.id_token_azp_other) {
        merge(
            &mut id,
            &json!({ "azp": "other-client", "aud": [shared.opts.client_id, "other-client"] }),
        );
    }
    if c.on(&c.id_token_wrong_iss) {
        merge(
            &mut id,
            &json!({ "iss": format!("{}-other", shared.issuer) }),
        );
    }
    if c.on(&c.id_token_expired) {
        merge(
            &mut id,
            &json!({ "iat": now.saturating_sub(600), "exp": now.saturating_sub(300) }),
        );
    }
    let id_token = if c.on(&c.id_token_bad_signature) {
        t.sign_with_rogue_key(&id, &kid, "JWT")
    } else if c.on(&c.id_token_hs256_client_secret) {
        crate::tokens::sign_hmac(
            &json!({ "alg": "HS256", "typ": "JWT" }),
            &id,
            shared.opts.client_secret.as_bytes(),
        )
    } else if c.on(&c.id_token_alg_none) {
        t.sign_raw(
            &json!({ "alg": "none", "typ": "JWT", "kid": kid }),
            &id,
            &kid,
        )
    } else {
        t.sign(&id, &kid, "JWT")
    };

    let refresh_issue = Issue {
        now,
        ttl: refresh_ttl,
        sid,
        scope,
    };
    let refresh_claims = t.refresh_claims(user, &refresh_issue);
    let refresh_token = t.sign_raw(
        &json!({ "alg": "HS512", "typ": "JWT", "kid": "refresh-hmac" }),
        &refresh_claims,
        "rsa-enc",
    );
    store.prune_refresh(now);
    store.refresh_tokens.insert(
        refresh_token.clone(),
        RefreshRecord {
            sid: sid.to_owned(),
            scope: scope.to_owned(),
            exp: now + refresh_ttl,
            epoch: c.refresh_epoch(),
            used: false,
        },
    );

    json!({
        "access_token": access_token,
        "expires_in": access_ttl,
        "refresh_expires_in": refresh_ttl,
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "id_token": id_token,
        "not-before-policy": 0,
        "session_state": sid,
        "scope": scope,
    })
}
