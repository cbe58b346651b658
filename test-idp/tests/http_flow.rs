//! End-to-end tests of the test IdP over real HTTP: discovery, the authorization code
//! flow with PKCE, refresh, JWKS rotation, misbehaviour switches and stop/restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_test_idp::{IdpOptions, TestIdp, TestUser};
use reqwest::StatusCode;
use serde_json::{Value, json};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://app.test/oauth2/callback";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn with_query(base: String, pairs: &[(&str, &str)]) -> String {
    url::Url::parse_with_params(&base, pairs)
        .unwrap()
        .to_string()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header(jwt: &str) -> Value {
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

fn query_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// GET /auth and return the redirect's query parameters.
async fn authorize(idp: &TestIdp, http: &reqwest::Client, nonce: &str) -> HashMap<String, String> {
    let resp = http
        .get(with_query(
            idp.authorization_endpoint(),
            &[
                ("response_type", "code"),
                ("client_id", "portcullis"),
                ("redirect_uri", REDIRECT),
                ("scope", "openid profile email"),
                ("state", "st-123"),
                ("nonce", nonce),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    query_of(&location)
}

async fn redeem(
    idp: &TestIdp,
    http: &reqwest::Client,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    http.post(idp.token_endpoint())
        .basic_auth("portcullis", Some("test-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

async fn refresh(idp: &TestIdp, http: &reqwest::Client, refresh_token: &str) -> reqwest::Response {
    http.post(idp.token_endpoint())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "portcullis"),
            ("client_secret", "test-secret"),
        ])
        .send()
        .await
        .unwrap()
}

/// Full login, returning the token response.
async fn login(idp: &TestIdp, http: &reqwest::Client) -> Value {
    let q = authorize(idp, http, "n-1").await;
    let resp = redeem(idp, http, &q["code"], VERIFIER).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn error_of(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or("").to_owned())
}

/// Verify a JWT against the IdP's JWKS as served over HTTP.
async fn verify_with_jwks(
    idp: &TestIdp,
    http: &reqwest::Client,
    jwt: &str,
) -> Result<Value, String> {
    let jwks: Value = http
        .get(idp.jwks_uri())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let h = jsonwebtoken::decode_header(jwt).map_err(|e| e.to_string())?;
    let kid = h.kid.ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or("kid not published")?;
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    let mut v = jsonwebtoken::Validation::new(h.alg);
    v.validate_aud = false;
    v.set_issuer(&[idp.issuer()]);
    jsonwebtoken::decode::<Value>(jwt, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn discovery_document_is_keycloak_shaped() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    assert!(idp.issuer().starts_with("http://127.0.0.1:"));
    assert!(idp.issuer().ends_with("/realms/test"));
    assert_eq!(idp.issuer(), format!("{}/realms/test", idp.base_url()));
    let doc: Value = client()
        .get(idp.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let iss = idp.issuer();
    assert_eq!(doc["issuer"], iss);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{iss}/protocol/openid-connect/auth")
    );
    assert_eq!(
        doc["token_endpoint"],
        format!("{iss}/protocol/openid-connect/token")
    );
    assert_eq!(
        doc["jwks_uri"],
        format!("{iss}/protocol/openid-connect/certs")
    );
    assert_eq!(
        doc["userinfo_endpoint"],
        format!("{iss}/protocol/openid-connect/userinfo")
    );
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{iss}/protocol/openid-connect/logout")
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
    assert_eq!(idp.controls().discovery_fetches(), 1);

    idp.controls()
        .discovery_wrong_issuer
        .store(true, Ordering::SeqCst);
    let doc: Value = client()
        .get(idp.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(doc["issuer"], iss);
}

#[tokio::test]
async fn authorization_code_flow_with_pkce() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let q = authorize(&idp, &http, "nonce-abc").await;
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], idp.issuer());
    assert_eq!(Some(&q["session_state"]), idp.last_session_id().as_ref());

    // Wrong verifier first: refused, but does not burn the code.
    let (status, err) = error_of(
        redeem(
            &idp,
            &http,
            &q["code"],
            "wrong-verifier-wrong-verifier-wrong-verifier",
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let resp = redeem(&idp, &http, &q["code"], VERIFIER).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens: Value = resp.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    assert_eq!(tokens["refresh_expires_in"], 1800);
    assert_eq!(tokens["scope"], "openid profile email");
    assert_eq!(tokens["session_state"], q["session_state"].as_str());

    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        header(at),
        json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"})
    );
    let a = verify_with_jwks(&idp, &http, at).await.unwrap();
    assert_eq!(a["sub"], "a1b2c3-alice");
    assert_eq!(a["aud"], json!(["portcullis", "account"]));
    assert_eq!(a["azp"], "portcullis");
    assert_eq!(a["typ"], "Bearer");
    assert_eq!(a["sid"], q["session_state"].as_str());
    assert_eq!(a["groups"], json!(["admins"]));
    assert_eq!(a["realm_access"], json!({"roles": ["platform-user"]}));
    assert_eq!(
        a["resource_access"],
        json!({"portcullis": {"roles": ["reader"]}})
    );
    assert_eq!(a["email_verified"], true);

    let id = verify_with_jwks(&idp, &http, tokens["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(id["aud"], "portcullis");
    assert_eq!(id["typ"], "ID");
    assert_eq!(id["nonce"], "nonce-abc");
    assert_eq!(id["sid"], q["session_state"].as_str());
    assert_eq!(idp.controls().code_grants(), 2);

    // userinfo with the access token
    let ui: Value = http
        .get(idp.userinfo_endpoint())
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["preferred_username"], "alice");
    let resp = http
        .get(idp.userinfo_endpoint())
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn code_reuse_and_bad_clients_are_refused() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let q = authorize(&idp, &http, "n").await;
    assert_eq!(
        redeem(&idp, &http, &q["code"], VERIFIER).await.status(),
        StatusCode::OK
    );
    let (status, err) = error_of(redeem(&idp, &http, &q["code"], VERIFIER).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    idp.controls()
        .allow_code_reuse
        .store(true, Ordering::SeqCst);
    assert_eq!(
        redeem(&idp, &http, &q["code"], VERIFIER).await.status(),
        StatusCode::OK
    );

    // wrong client secret
    let resp = http
        .post(idp.token_endpoint())
        .basic_auth("portcullis", Some("nope"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(resp).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );

    // unknown client at /auth: error page, no redirect
    let resp = http
        .get(with_query(
            idp.authorization_endpoint(),
            &[
                ("response_type", "code"),
                ("client_id", "evil"),
                ("redirect_uri", REDIRECT),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // missing PKCE: redirect with error
    let resp = http
        .get(with_query(
            idp.authorization_endpoint(),
            &[
                ("response_type", "code"),
                ("client_id", "portcullis"),
                ("redirect_uri", REDIRECT),
                ("state", "s"),
            ],
        ))
        .send()
        .await
        .unwrap();
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "s");

    // authorize_error switch
    idp.controls().authorize_error.store(true, Ordering::SeqCst);
    let resp = http
        .get(with_query(
            idp.authorization_endpoint(),
            &[
                ("response_type", "code"),
                ("client_id", "portcullis"),
                ("redirect_uri", REDIRECT),
                ("state", "s2"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        ))
        .send()
        .await
        .unwrap();
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "s2");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn refresh_grants_rotation_and_revocation() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let t1 = login(&idp, &http).await;
    let rt1 = t1["refresh_token"].as_str().unwrap();

    let resp = refresh(&idp, &http, rt1).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let t2: Value = resp.json().await.unwrap();
    let id2 = claims(t2["id_token"].as_str().unwrap());
    assert!(
        id2.get("nonce").is_none(),
        "refreshed ID token has no nonce"
    );
    assert_eq!(id2["sid"], claims(t1["id_token"].as_str().unwrap())["sid"]);
    assert_eq!(idp.controls().refresh_grants(), 1);

    // Without revoke-on-use the old token keeps working.
    assert_eq!(refresh(&idp, &http, rt1).await.status(), StatusCode::OK);

    // Revoke refresh token on use: second use kills the session.
    idp.controls()
        .revoke_refresh_token_on_use
        .store(true, Ordering::SeqCst);
    let rt2 = t2["refresh_token"].as_str().unwrap();
    let t3: Value = refresh(&idp, &http, rt2).await.json().await.unwrap();
    let (status, err) = error_of(refresh(&idp, &http, rt2).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, _) =
        error_of(refresh(&idp, &http, t3["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "session is dead after reuse"
    );
    assert_eq!(idp.controls().refresh_grants(), 5);

    // revoke_all_refresh_tokens
    idp.controls()
        .revoke_refresh_token_on_use
        .store(false, Ordering::SeqCst);
    let fresh = login(&idp, &http).await;
    idp.controls().revoke_all_refresh_tokens();
    let (status, err) =
        error_of(refresh(&idp, &http, fresh["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, err) = error_of(refresh(&idp, &http, "not-a-token").await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn jwks_publishes_all_algorithms_and_rotates() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let resp = http.get(idp.jwks_uri()).send().await.unwrap();
    assert_eq!(resp.headers()["cache-control"], "max-age=300");
    let jwks: Value = resp.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        ["rsa-enc", "weird", "rsa-1", "rsa-1-ps", "ec-1", "ed-1"]
    );

    let alice = TestUser::alice();
    for kid in ["rsa-1", "rsa-1-ps", "ec-1", "ed-1"] {
        let t = idp.mint_access_token(&alice, json!({"groups": ["x"], "email": null}), kid);
        let c = verify_with_jwks(&idp, &http, &t)
            .await
            .unwrap_or_else(|e| panic!("{kid}: {e}"));
        assert_eq!(c["groups"], json!(["x"]));
        assert!(c.get("email").is_none());
    }
    assert_eq!(
        header(&idp.mint_access_token_ps256(&alice, json!({})))["alg"],
        "PS256"
    );
    assert_eq!(
        header(&idp.mint_access_token(&alice, json!({}), "ed-1"))["alg"],
        "EdDSA"
    );
    assert_eq!(
        header(&idp.mint_access_token(&alice, json!({}), "ec-1"))["alg"],
        "ES256"
    );
    assert!(
        verify_with_jwks(
            &idp,
            &http,
            &idp.mint_access_token(&alice, json!({}), "rsa-rogue")
        )
        .await
        .is_err()
    );
    let lying = idp.sign_raw(
        json!({"alg": "RS256", "kid": "rsa-1"}),
        json!({"iss": idp.issuer(), "exp": 4_000_000_000u64}),
        "rsa-rogue",
    );
    assert!(verify_with_jwks(&idp, &http, &lying).await.is_err());

    idp.controls().rotate_to_rsa2();
    idp.controls().set_jwks_max_age_secs(5);
    let resp = http.get(idp.jwks_uri()).send().await.unwrap();
    assert_eq!(resp.headers()["cache-control"], "max-age=5");
    let jwks: Value = resp.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["rsa-enc", "weird", "rsa-2", "ec-1", "ed-1"]);
    let t = idp.mint_access_token(&alice, json!({}), "rsa-2");
    assert!(verify_with_jwks(&idp, &http, &t).await.is_ok());
    let old = idp.mint_access_token(&alice, json!({}), "rsa-1");
    assert!(verify_with_jwks(&idp, &http, &old).await.is_err());
    // tokens from /token now use rsa-2
    let tokens = login(&idp, &http).await;
    assert_eq!(header(tokens["id_token"].as_str().unwrap())["kid"], "rsa-2");
    assert!(idp.controls().jwks_fetches() >= 10);
}

#[tokio::test]
async fn raw_signing_helpers() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let none = idp.sign_raw(
        json!({"alg": "none", "typ": "JWT"}),
        json!({"sub": "x"}),
        "rsa-1",
    );
    assert!(none.ends_with('.'));
    assert_eq!(none.split('.').count(), 3);

    let hs = idp.sign_raw(
        json!({"alg": "HS256", "kid": "rsa-1"}),
        json!({"sub": "x"}),
        "rsa-1",
    );
    let key = jsonwebtoken::DecodingKey::from_secret(idp.rsa_public_key_pem().as_bytes());
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    assert!(jsonwebtoken::decode::<Value>(&hs, &key, &v).is_ok());
    assert!(
        idp.rsa_public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );

    let lt = idp.mint_logout_token(json!({"sid": "s-1"}));
    assert_eq!(header(&lt)["typ"], "logout+jwt");
    let c = claims(&lt);
    assert_eq!(c["sid"], "s-1");
    assert_eq!(c["aud"], "portcullis");
    assert_eq!(c["sub"], "a1b2c3-alice");
    assert!(c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(c.get("nonce").is_none());

    let hm = idp.sign_hmac(json!({"alg": "HS384"}), json!({"sub": "y"}), b"k");
    let mut v384 = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS384);
    v384.required_spec_claims.clear();
    v384.validate_exp = false;
    assert!(
        jsonwebtoken::decode::<Value>(&hm, &jsonwebtoken::DecodingKey::from_secret(b"k"), &v384)
            .is_ok()
    );

    idp.controls().set_fixed_now(Some(1_700_000_000));
    let frozen = claims(&idp.mint_access_token(&TestUser::alice(), json!({}), "rsa-1"));
    assert_eq!(
        (frozen["iat"].as_u64(), frozen["exp"].as_u64()),
        (Some(1_700_000_000), Some(1_700_000_300))
    );
    idp.controls().set_fixed_now(None);

    let id = claims(&idp.mint_id_token(&TestUser::bob(), Some("n"), json!({"extra": 1})));
    assert_eq!(
        (
            id["nonce"].as_str(),
            id["sub"].as_str(),
            id["extra"].as_i64()
        ),
        (Some("n"), Some("d4e5f6-bob"), Some(1))
    );
}

#[tokio::test]
async fn id_token_misbehaviour_switches() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let c = idp.controls();
    let iss = idp.issuer();
    c.id_token_wrong_nonce.store(true, Ordering::SeqCst);
    assert_ne!(
        claims(login(&idp, &http).await["id_token"].as_str().unwrap())["nonce"],
        "n-1"
    );
    c.reset_switches();
    c.id_token_wrong_aud.store(true, Ordering::SeqCst);
    assert_ne!(
        claims(login(&idp, &http).await["id_token"].as_str().unwrap())["aud"],
        "portcullis"
    );
    c.reset_switches();
    c.id_token_wrong_iss.store(true, Ordering::SeqCst);
    assert_ne!(
        claims(login(&idp, &http).await["id_token"].as_str().unwrap())["iss"],
        iss.as_str()
    );
    c.reset_switches();
    c.id_token_azp_other.store(true, Ordering::SeqCst);
    assert_eq!(
        claims(login(&idp, &http).await["id_token"].as_str().unwrap())["azp"],
        "other-client"
    );
    c.reset_switches();
    c.id_token_expired.store(true, Ordering::SeqCst);
    let err = verify_with_jwks(
        &idp,
        &http,
        login(&idp, &http).await["id_token"].as_str().unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.contains("Expired"), "{err}");
    c.reset_switches();
    c.id_token_bad_signature.store(true, Ordering::SeqCst);
    let t = login(&idp, &http).await;
    assert_eq!(header(t["id_token"].as_str().unwrap())["kid"], "rsa-1");
    assert!(
        verify_with_jwks(&idp, &http, t["id_token"].as_str().unwrap())
            .await
            .is_err()
    );
    assert!(
        verify_with_jwks(&idp, &http, t["access_token"].as_str().unwrap())
            .await
            .is_ok()
    );
    c.reset_switches();

    c.token_endpoint_500.store(true, Ordering::SeqCst);
    let q = authorize(&idp, &http, "n").await;
    assert_eq!(
        redeem(&idp, &http, &q["code"], VERIFIER).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    c.reset_switches();
    c.token_endpoint_error.store(true, Ordering::SeqCst);
    let (status, err) = error_of(redeem(&idp, &http, &q["code"], VERIFIER).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    c.reset_switches();

    c.set_down(true);
    assert_eq!(
        http.get(idp.jwks_uri()).send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        http.get(idp.discovery_url()).send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    c.set_down(false);
    assert_eq!(
        http.get(idp.jwks_uri()).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_is_recorded_and_redirects() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let tokens = login(&idp, &http).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let resp = http
        .get(with_query(
            idp.end_session_endpoint(),
            &[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", "http://app.test/bye"),
                ("state", "z"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(resp.headers()["location"], "http://app.test/bye?state=z");
    assert_eq!(idp.controls().logout_calls(), 1);
    let call = idp.controls().last_logout().unwrap();
    assert_eq!(call.id_token_hint.as_deref(), Some(id_token));
    assert_eq!(
        call.post_logout_redirect_uri.as_deref(),
        Some("http://app.test/bye")
    );
    // The session ended: its refresh token is dead.
    let (status, _) =
        error_of(refresh(&idp, &http, tokens["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let resp = http.get(idp.end_session_endpoint()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(idp.controls().last_logout_query().as_deref(), Some(""));
}

#[tokio::test]
async fn http_test_endpoints() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let token = http
        .post(format!("{}/test/mint", idp.base_url()))
        .json(&json!({"user": "bob", "kid": "ec-1", "overrides": {"scope": "openid"}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let c = verify_with_jwks(&idp, &http, &token).await.unwrap();
    assert_eq!(
        (c["preferred_username"].as_str(), c["scope"].as_str()),
        (Some("bob"), Some("openid"))
    );

    let resp = http
        .post(format!("{}/test/controls", idp.base_url()))
        .json(&json!({"down": true, "user": "bob", "token_delay_ms": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(idp.controls().down.load(Ordering::SeqCst));
    assert_eq!(idp.current_user(), TestUser::bob());
    let bad = http
        .post(format!("{}/test/controls", idp.base_url()))
        .json(&json!({"nope": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_reuses_the_port() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let port = idp.port();
    assert_eq!(
        http.get(idp.jwks_uri()).send().await.unwrap().status(),
        StatusCode::OK
    );

    idp.stop().await;
    assert!(!idp.is_running().await);
    let err = http.get(idp.jwks_uri()).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    let err = reqwest::Client::new()
        .get(idp.jwks_uri())
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "fresh client: {err:?}");

    idp.restart().await;
    assert_eq!(idp.port(), port);
    assert_eq!(
        http.get(idp.jwks_uri()).send().await.unwrap().status(),
        StatusCode::OK
    );
    // state survives a restart
    let tokens = login(&idp, &http).await;
    idp.stop().await;
    idp.restart().await;
    assert_eq!(
        refresh(&idp, &http, tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_delay_and_concurrent_refresh_counting() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let tokens = login(&idp, &http).await;
    idp.controls().set_token_delay_ms(150);
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (idp, http, rt) = (idp.clone(), http.clone(), rt.clone());
        tasks.push(tokio::spawn(async move {
            refresh(&idp, &http, &rt).await.status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= std::time::Duration::from_millis(150),
        "{elapsed:?}"
    );
    assert!(
        elapsed < std::time::Duration::from_secs(2),
        "delays run concurrently: {elapsed:?}"
    );
    assert_eq!(idp.controls().refresh_grants(), 4);
}

/// A one-shot HTTP receiver: returns its URL and a handle yielding the raw request.
async fn one_shot_receiver() -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/oauth2/backchannel-logout",
        listener.local_addr().unwrap()
    );
    let handle = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8_lossy(&buf).to_string()
    });
    (url, handle)
}

fn logout_token_of(raw_request: &str) -> String {
    let body = raw_request.split_once("\r\n\r\n").unwrap().1;
    url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn logout_sends_backchannel_logout_token() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let tokens = login(&idp, &http).await;
    let sid = idp.last_session_id().unwrap();
    let (url, received) = one_shot_receiver().await;
    idp.controls().set_backchannel_logout_url(Some(&url));
    let resp = http
        .get(with_query(
            idp.end_session_endpoint(),
            &[("id_token_hint", tokens["id_token"].as_str().unwrap())],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let raw = received.await.unwrap();
    assert!(
        raw.starts_with("POST /oauth2/backchannel-logout HTTP/1.1"),
        "{raw}"
    );
    let lt = logout_token_of(&raw);
    assert_eq!(header(&lt)["typ"], "logout+jwt");
    let c = verify_with_jwks(&idp, &http, &lt).await.unwrap();
    assert_eq!(
        (c["sid"].as_str(), c["sub"].as_str()),
        (Some(sid.as_str()), Some("a1b2c3-alice"))
    );
    assert_eq!(idp.controls().backchannel_logouts_sent(), 1);
    assert_eq!(idp.controls().last_backchannel_result(), Some(Ok(200)));

    // Direct send, and admin logout of an unknown session sends nothing.
    let (url, received) = one_shot_receiver().await;
    assert_eq!(
        idp.send_backchannel_logout(&url, json!({"sid": "abc"}))
            .await,
        Ok(200)
    );
    assert_eq!(
        claims(&logout_token_of(&received.await.unwrap()))["sid"],
        "abc"
    );
    assert!(!idp.logout_session("no-such-session").await);
    assert_eq!(idp.controls().backchannel_logouts_sent(), 1);
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_session() {
    let idp = TestIdp::start(IdpOptions::default()).await;
    let http = client();
    let tokens = login(&idp, &http).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let revoke = format!("{}/protocol/openid-connect/revoke", idp.issuer());
    let resp = http
        .post(&revoke)
        .basic_auth("portcullis", Some("test-secret"))
        .form(&[("token", rt), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(idp.controls().revocations(), 1);
    let (status, err) = error_of(refresh(&idp, &http, rt).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let resp = http
        .post(&revoke)
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
