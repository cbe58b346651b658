//! `Authorization: Bearer` on the forward-auth endpoints: RFC 8725 attacks, audiences, key
//! rotation, JWKS fetch limits, an IdP outage, and identity headers an upstream app can't
//! misread.

use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use portcullis_test_idp::TestUser;
use serde_json::json;

async fn bearer(h: &Harness, token: &str) -> reqwest::Response {
    h.forward_auth(
        "/api",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("accept", "application/json"),
        ],
    )
    .await
}

/// The (unverified) claims of a token, to re-sign them differently.
fn claims_of(token: &str) -> serde_json::Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

async fn assert_invalid(r: reqwest::Response) {
    assert_eq!(r.status(), 401);
    let w = header(&r, "www-authenticate").unwrap().to_string();
    assert!(
        w.starts_with("Bearer") && w.contains("error=\"invalid_token\""),
        "{w}"
    );
    let body = r.text().await.unwrap();
    for internal in ["kid", "jwks", "panicked", "serde", "127.0.0.1"] {
        assert!(!body.contains(internal), "leaks {internal}: {body}");
    }
}

#[tokio::test]
async fn valid_tokens_pass_with_identity_headers_for_every_algorithm() {
    let h = Harness::start().await;
    for kid in ["rsa-1", "ec-1", "ed-1"] {
        let t = h.idp.mint_access_token(&TestUser::alice(), json!({}), kid);
        let r = bearer(&h, &t).await;
        assert_eq!(r.status(), 200, "{kid}");
        assert_eq!(header(&r, "x-auth-request-user"), Some("a1b2c3-alice"));
        assert_eq!(
            header(&r, "x-auth-request-preferred-username"),
            Some("alice")
        );
        let groups = header(&r, "x-auth-request-groups").unwrap();
        assert!(
            groups.contains("admins") && groups.contains("role:platform-user"),
            "{groups}"
        );
    }
    let ps = h.idp.mint_access_token_ps256(&TestUser::alice(), json!({}));
    assert_eq!(bearer(&h, &ps).await.status(), 200);
    // nginx flavour
    let t = h
        .idp
        .mint_access_token(&TestUser::alice(), json!({}), "rsa-1");
    let r = h
        .get("/oauth2/auth", &[("authorization", &format!("Bearer {t}"))])
        .await;
    assert_eq!(r.status(), 202);
}

/// `X-Auth-Request-Groups` as upstream apps really read it: split on `,`, trim, compare
/// case-insensitively; an entry starting with `role:` is a role, `role:CLIENT:NAME` a client
/// role. Returns (groups, realm roles, client roles).
fn as_apps_read(header: &str) -> (Vec<String>, Vec<String>, Vec<(String, String)>) {
    let (mut groups, mut realm, mut client) = (Vec::new(), Vec::new(), Vec::new());
    for entry in header.split(',') {
        let entry = entry.trim().to_lowercase();
        if entry.is_empty() {
            continue;
        }
        match entry.strip_prefix("role:") {
            Some(role) => match role.split_once(':') {
                Some((c, r)) => client.push((c.to_string(), r.to_string())),
                None => realm.push(role.to_string()),
            },
            None => groups.push(entry),
        }
    }
    (groups, realm, client)
}

/// Percent-decoding (RFC 3986 §2.1), what an app that wants the exact names does.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(v) if b[i] == b'%' => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Issue 15: group names an attacker can choose (directly, or through an LDAP or brokered
/// group mapper) must never read as roles, and a realm role with `:` must not read as a
/// client role, for apps that trim, split on commas and compare case-insensitively.
#[tokio::test]
async fn no_group_reads_as_a_role_and_realm_and_client_roles_stay_apart() {
    let h = Harness::start_with(|t| t + "[authz]\nallowed_roles = [\"portcullis:admin\"]\n").await;
    let tricky_groups = [
        " role:admin",
        "ROLE:admin",
        "Role:portcullis:admin",
        "parent/role:x",
        "\u{a0}role:admin",
        "\trole:admin",
        "role%3Aadmin",
        " admins",
        "dev ",
        "plain",
    ];
    let mut user = TestUser::alice();
    user.groups = tricky_groups.iter().map(|g| g.to_string()).collect();
    user.realm_roles = vec!["portcullis:admin".into(), "platform-user".into()];
    user.client_roles = vec![("portcullis".into(), "reader".into())];
    let token = h.idp.mint_access_token(&user, json!({}), "rsa-1");
    let r = bearer(&h, &token).await;
    // Portcullis' own check is not fooled: the realm role `portcullis:admin` is not the client
    // role `admin` of `portcullis` that `allowed_roles` asks for.
    assert_eq!(r.status(), 403);
    let h = Harness::start().await;
    let token = h.idp.mint_access_token(&user, json!({}), "rsa-1");
    let r = bearer(&h, &token).await;
    assert_eq!(r.status(), 200);
    let header_value =
        std::str::from_utf8(r.headers()["x-auth-request-groups"].as_bytes()).unwrap();
    let (groups, realm, client) = as_apps_read(header_value);
    assert_eq!(
        realm.len(),
        2,
        "only the two realm roles read as realm roles: {header_value}"
    );
    assert!(
        realm.contains(&"platform-user".to_string()),
        "{header_value}"
    );
    assert_eq!(
        client,
        vec![("portcullis".to_string(), "reader".to_string())],
        "only the real client role reads as one: {header_value}"
    );
    assert_eq!(groups.len(), tricky_groups.len(), "{header_value}");
    assert!(
        !groups.iter().any(|g| g == "admins" || g == "dev"),
        "trimming must not turn a group into another: {header_value}"
    );
    // An app that wants the exact names decodes them.
    let exact: Vec<String> = header_value
        .split(',')
        .filter(|e| !e.starts_with("role:"))
        .map(percent_decoded)
        .collect();
    assert_eq!(exact, tricky_groups, "{header_value}");
    let realm_exact: Vec<String> = header_value
        .split(',')
        .filter_map(|e| e.strip_prefix("role:"))
        .filter(|r| !r.contains(':'))
        .map(percent_decoded)
        .collect();
    assert_eq!(realm_exact, ["portcullis:admin", "platform-user"]);
}

/// Issue 15: a `sub`, `email` or `preferred_username` that can't be sent exactly as a header
/// value (CR, LF, NUL, DEL, or whitespace an HTTP parser strips) used to pass with that header
/// left out, so a client's own copy could reach the app. Such an identity is refused; a group
/// with such characters is sent percent-encoded, so the groups header is never left out.
#[tokio::test]
async fn an_identity_that_cannot_be_sent_as_headers_is_refused_and_groups_are_never_left_out() {
    let h = Harness::start().await;
    let alice = TestUser::alice();
    for claim in ["sub", "email", "preferred_username"] {
        for bad in [
            "x\r\nx-auth-request-user: admin",
            "x\ny",
            "x\0y",
            "x\u{7f}y",
            " admin",
            "admin\t",
        ] {
            let mut overrides = json!({"jti": format!("{claim}-{bad:?}")});
            overrides[claim] = json!(bad);
            let token = h.idp.mint_access_token(&alice, overrides, "rsa-1");
            let r = bearer(&h, &token).await;
            assert_eq!(r.status(), 401, "{claim} = {bad:?}");
            assert!(header(&r, "x-auth-request-user").is_none());
        }
    }
    let token = h.idp.mint_access_token(
        &alice,
        json!({"groups": ["admins", "evil\r\nx-auth-request-user: admin", "nul\0"]}),
        "rsa-1",
    );
    let r = bearer(&h, &token).await;
    assert_eq!(r.status(), 200);
    for name in [
        "x-auth-request-user",
        "x-auth-request-email",
        "x-auth-request-preferred-username",
        "x-auth-request-groups",
    ] {
        assert!(r.headers().contains_key(name), "{name} is always sent");
    }
    assert_eq!(
        header(&r, "x-auth-request-groups"),
        Some(
            "admins,evil%0D%0Ax-auth-request-user%3A admin,nul%00,role:platform-user,role:portcullis:reader"
        )
    );
}

#[tokio::test]
async fn authz_rules_apply_to_bearer_identities() {
    let h = Harness::start_with(|t| t + "[authz]\nallowed_groups = [\"admins\"]\n").await;
    let alice = h
        .idp
        .mint_access_token(&TestUser::alice(), json!({}), "rsa-1");
    assert_eq!(bearer(&h, &alice).await.status(), 200);
    let bob = h
        .idp
        .mint_access_token(&TestUser::bob(), json!({}), "rsa-1");
    assert_eq!(bearer(&h, &bob).await.status(), 403);
}

#[tokio::test]
async fn attacks_and_bad_tokens_are_401_invalid_token() {
    let h = Harness::start().await;
    let alice = TestUser::alice();
    let now = h.clock_now();
    let claims = claims_of(&h.idp.mint_access_token(&alice, json!({}), "rsa-1"));
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            h.idp.sign_raw(
                json!({"alg": "none", "typ": "JWT"}),
                claims.clone(),
                "rsa-1",
            ),
        ),
        (
            "alg none with kid",
            h.idp.sign_raw(
                json!({"alg": "none", "kid": "rsa-1"}),
                claims.clone(),
                "rsa-1",
            ),
        ),
        (
            "HS256 keyed with the RSA public key",
            h.idp.sign_raw(
                json!({"alg": "HS256", "kid": "rsa-1"}),
                claims.clone(),
                "rsa-1",
            ),
        ),
        (
            "expired",
            h.idp
                .mint_access_token(&alice, json!({"exp": now - 120}), "rsa-1"),
        ),
        (
            "no exp",
            h.idp
                .mint_access_token(&alice, json!({"exp": null}), "rsa-1"),
        ),
        (
            "nbf in the future",
            h.idp
                .mint_access_token(&alice, json!({"nbf": now + 600}), "rsa-1"),
        ),
        (
            "wrong issuer",
            h.idp.mint_access_token(
                &alice,
                json!({"iss": "https://evil.example.com/realms/test"}),
                "rsa-1",
            ),
        ),
        (
            "wrong audience",
            h.idp.mint_access_token(
                &alice,
                json!({"aud": ["other-api"], "azp": "other-api"}),
                "rsa-1",
            ),
        ),
        (
            "account-only audience",
            h.idp.mint_access_token(
                &alice,
                json!({"aud": "account", "azp": "some-other-client"}),
                "rsa-1",
            ),
        ),
        (
            "ID token as access token",
            h.idp.mint_id_token(&alice, Some("n"), json!({})),
        ),
        (
            "logout token as access token",
            h.idp.mint_logout_token(json!({})),
        ),
        (
            "unknown key",
            h.idp.mint_access_token(&alice, json!({}), "rsa-rogue"),
        ),
        (
            "unknown key claiming a published kid",
            h.idp.sign_raw(
                json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}),
                claims.clone(),
                "rsa-rogue",
            ),
        ),
        (
            "PS256 header on the RS256 key",
            h.idp.sign_raw(
                json!({"alg": "PS256", "kid": "rsa-1", "typ": "JWT"}),
                claims.clone(),
                "rsa-1",
            ),
        ),
        ("garbage", "not-a-token".into()),
        (
            "two segments",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0".into(),
        ),
        ("four segments", "a.b.c.d".into()),
        ("UTF-8 text", "eyJhbGciOiJSUzI1NiJ9.ünïcödé.sïg".into()),
        (
            "64 KiB token",
            format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "A".repeat(20 * 1024)),
        ),
    ];
    let fetches_before = h.idp.controls().jwks_fetches();
    for (name, token) in cases {
        let r = bearer(&h, &token).await;
        assert_eq!(r.status(), 401, "{name}");
        assert_invalid(r).await;
    }
    // Only the unknown-key cases may cause a (rate-limited) refetch.
    assert!(h.idp.controls().jwks_fetches() - fetches_before <= 1);
}

#[tokio::test]
async fn a_64_kib_authorization_header_is_431_not_a_crash() {
    let h = Harness::start().await;
    let token = "A".repeat(64 * 1024);
    let r = h
        .client
        .get(h.url("/oauth2/forward-auth"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => panic!("server dropped the connection instead of answering 431: {e}"),
    }
    assert_eq!(h.get("/ping", &[]).await.status(), 200);
}

#[tokio::test]
async fn non_bearer_schemes_are_not_credentials() {
    let h = Harness::start().await;
    for v in ["Basic YWxpY2U6cHc=", "Negotiate abc", "Bearer", "Token abc"] {
        let r = h
            .forward_auth(
                "/api",
                &[("authorization", v), ("accept", "application/json")],
            )
            .await;
        assert_eq!(r.status(), 401, "{v}");
    }
}

#[tokio::test]
async fn forty_unknown_kids_cause_at_most_a_handful_of_jwks_fetches() {
    let h = Harness::start().await;
    let before = h.idp.controls().jwks_fetches();
    let alice = TestUser::alice();
    let claims = claims_of(&h.idp.mint_access_token(&alice, json!({}), "rsa-1"));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let token = h.idp.sign_raw(
            json!({"alg": "RS256", "kid": format!("attacker-{i}"), "typ": "JWT"}),
            claims.clone(),
            "rsa-rogue",
        );
        let client = h.client.clone();
        let url = h.url("/oauth2/forward-auth");
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    let fetched = h.idp.controls().jwks_fetches() - before;
    assert!(fetched <= 2, "{fetched} JWKS fetches for 40 unknown kids");
}

/// Issue 15: a rotation right after a refetch (here: forced by a flood of unknown kids) must
/// not fail the new key's tokens. The token waits for the next allowed refetch (at most
/// `jwks_refetch_interval`, 2 s here) instead of getting 401, and the flood still costs at
/// most one fetch per interval.
#[tokio::test]
async fn a_rotation_during_a_flood_of_unknown_kids_waits_for_the_next_refetch_instead_of_401() {
    let h = Harness::start().await;
    let interval = std::time::Duration::from_secs(2);
    let before = h.idp.controls().jwks_fetches();
    let alice = TestUser::alice();
    let claims = claims_of(&h.idp.mint_access_token(&alice, json!({}), "rsa-1"));
    let started = std::time::Instant::now();
    let mut flood = Vec::new();
    for i in 0..40 {
        let token = h.idp.sign_raw(
            json!({"alg": "RS256", "kid": format!("attacker-{i}"), "typ": "JWT"}),
            claims.clone(),
            "rsa-rogue",
        );
        let client = h.client.clone();
        let url = h.url("/oauth2/forward-auth");
        flood.push(tokio::spawn(async move {
            client
                .get(url)
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    // The flood's first kid has spent the refetch; the IdP now rotates.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        h.idp.controls().jwks_fetches() > before,
        "the flood refetched"
    );
    h.idp.controls().rotate_to_rsa2();
    let new = h
        .idp
        .mint_access_token(&alice, json!({"jti": "after-rotation"}), "rsa-2");
    let asked = std::time::Instant::now();
    let r = bearer(&h, &new).await;
    let waited = asked.elapsed();
    assert_eq!(r.status(), 200, "the new key's token waits for the refetch");
    assert!(
        waited < interval,
        "waited {waited:?}, more than the interval"
    );
    for t in flood {
        assert_eq!(t.await.unwrap(), 401, "unknown kids are still refused");
    }
    let fetched = h.idp.controls().jwks_fetches() - before;
    let allowed = 1 + started.elapsed().as_secs() / interval.as_secs();
    assert!(
        fetched <= allowed,
        "{fetched} JWKS fetches in {:?} (at most {allowed})",
        started.elapsed()
    );
    // Once the new key is known it is the ordinary, immediate path.
    let again = h
        .idp
        .mint_access_token(&alice, json!({"jti": "later"}), "rsa-2");
    let asked = std::time::Instant::now();
    assert_eq!(bearer(&h, &again).await.status(), 200);
    assert!(asked.elapsed() < std::time::Duration::from_millis(500));
}

#[tokio::test]
async fn key_rotation_passes_new_tokens_after_one_refetch_and_drops_vanished_keys() {
    let h = Harness::start().await;
    let old = h.idp.mint_access_token(
        &TestUser::alice(),
        json!({"jti": "before-rotation"}),
        "rsa-1",
    );
    h.idp.controls().rotate_to_rsa2();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await; // past jwks_refetch_interval
    let before = h.idp.controls().jwks_fetches();
    let new = h
        .idp
        .mint_access_token(&TestUser::alice(), json!({}), "rsa-2");
    assert_eq!(bearer(&h, &new).await.status(), 200);
    assert_eq!(h.idp.controls().jwks_fetches() - before, 1, "one refetch");
    // rsa-1 vanished from the JWKS: tokens signed with it no longer validate, cached or not.
    assert_eq!(bearer(&h, &old).await.status(), 401);
}

/// Issue 15: a token without `kid` used to be checked against the first published key of its
/// algorithm only, so during a rotation (two RS256 keys published) a valid kid-less token of
/// the new key failed. Every key of its algorithm is tried (at most four).
#[tokio::test]
async fn a_token_without_kid_is_tried_against_every_key_of_its_algorithm() {
    let h = Harness::start().await;
    h.idp.controls().publish_rsa1_and_rsa2();
    let claims = claims_of(
        &h.idp
            .mint_access_token(&TestUser::alice(), json!({}), "rsa-1"),
    );
    // Picks up the overlap (rsa-1, rsa-2): a token naming rsa-2 refetches once.
    let named = h
        .idp
        .mint_access_token(&TestUser::alice(), json!({"jti": "named"}), "rsa-2");
    assert_eq!(bearer(&h, &named).await.status(), 200);
    let fetches = h.idp.controls().jwks_fetches();
    for (kid, jti) in [("rsa-1", "old-key"), ("rsa-2", "new-key")] {
        let mut c = claims.clone();
        c["jti"] = json!(jti);
        let kidless = h
            .idp
            .sign_raw(json!({"alg": "RS256", "typ": "JWT"}), c, kid);
        let r = bearer(&h, &kidless).await;
        assert_eq!(r.status(), 200, "kid-less token signed with {kid}");
        assert_eq!(header(&r, "x-auth-request-user"), Some("a1b2c3-alice"));
    }
    assert_eq!(
        h.idp.controls().jwks_fetches(),
        fetches,
        "no refetch needed"
    );
    // A kid-less token no published key verifies is still refused.
    let rogue = h
        .idp
        .sign_raw(json!({"alg": "RS256", "typ": "JWT"}), claims, "rsa-rogue");
    assert_invalid(bearer(&h, &rogue).await).await;
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_idp_is_down() {
    let h = Harness::start().await;
    let t1 = h
        .idp
        .mint_access_token(&TestUser::alice(), json!({"jti": "one"}), "rsa-1");
    let t2 = h
        .idp
        .mint_access_token(&TestUser::alice(), json!({"jti": "two"}), "ec-1");
    assert_eq!(bearer(&h, &t1).await.status(), 200);
    h.idp.stop().await;
    assert_eq!(bearer(&h, &t1).await.status(), 200, "verified-token cache");
    assert_eq!(
        bearer(&h, &t2).await.status(),
        200,
        "new token, cached keys"
    );
    assert_eq!(h.get("/ping", &[]).await.status(), 200);
}

#[tokio::test]
async fn verified_token_cache_is_keyed_by_the_whole_token() {
    let h = Harness::start().await;
    let t = h
        .idp
        .mint_access_token(&TestUser::alice(), json!({}), "rsa-1");
    assert_eq!(bearer(&h, &t).await.status(), 200);
    // Same signature, altered payload: must not hit the cache.
    let parts: Vec<&str> = t.split('.').collect();
    let mut claims = claims_of(&t);
    claims["sub"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(bearer(&h, &forged).await.status(), 401);
}

#[tokio::test]
async fn extra_issuers_are_trusted_with_their_own_audiences() {
    let other = portcullis_test_idp::TestIdp::start(portcullis_test_idp::IdpOptions {
        realm: "partners".into(),
        ..Default::default()
    })
    .await;
    let issuer = other.issuer();
    let h = Harness::start_with(move |t| {
        t + &format!(
            "[[bearer.issuers]]\nissuer_url = \"{issuer}\"\naudiences = [\"partner-api\"]\n"
        )
    })
    .await;
    let good = other.mint_access_token(&TestUser::bob(), json!({"aud": ["partner-api"]}), "ec-1");
    let mut ok = false;
    for _ in 0..50 {
        if bearer(&h, &good).await.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        ok,
        "token of the extra issuer passes once its keys are loaded"
    );
    let wrong_aud =
        other.mint_access_token(&TestUser::bob(), json!({"aud": ["portcullis"]}), "ec-1");
    assert_eq!(bearer(&h, &wrong_aud).await.status(), 401);
}

impl Harness {
    fn clock_now(&self) -> u64 {
        use portcullis::clock::Clock;
        self.clock.now()
    }
}
