//! A bearer token (`Authorization: Bearer <JWT>`): split and decode, pick the key by `kid`
//! and the key's own algorithm, verify the signature against a fixed key set, check the
//! claims as an access token, ID token and logout token, and build the principal.
//!
//! Input: a compact JWS as text, or — when it starts with `{` — a header JSON line and a
//! claims JSON line, which this target signs with the fixed Ed25519 key, so the fuzzer
//! reaches everything behind a valid signature.
//!
//! Checks: nothing panics; a signature verifies only with the EdDSA key the token was signed
//! with, and only with the signature made here (never under another algorithm: no algorithm
//! confusion; no second signature for the same input); a flipped signature byte
//! never verifies; a token the access-token rules accept has the issuer, a subject, an
//! accepted audience and is within its lifetime.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use portcullis::identity::{ClaimMapping, ClaimPath, Identity};
use portcullis::principal::{PassedTokens, Principal};
use portcullis::token::jwt::{
    AccessTokenRules, JwtAlg, LogoutTokenRules, TokenError, UnverifiedToken,
};
use portcullis_fuzz::{CLIENT_ID, ISSUER, NOW, SIGNING_KID, first_line, keyset, sign, signing_key};

const LEEWAY: u64 = 30;

fn check(token: &str, signed_here: bool) {
    let Ok(mut parsed) = UnverifiedToken::parse(token) else {
        return;
    };
    let keys = keyset();
    let verified = parsed
        .find_key(keys)
        .and_then(|key| parsed.verify_signature(key));
    if verified.is_ok() {
        assert_eq!(
            parsed.alg,
            JwtAlg::EdDSA,
            "verified under another algorithm"
        );
        assert!(
            parsed
                .header
                .kid
                .as_deref()
                .is_none_or(|k| k == SIGNING_KID)
        );
        // Ed25519 signatures are deterministic: the only one that verifies is ours.
        let (input, sig) = token.rsplit_once('.').unwrap_or((token, ""));
        let ours = signing_key().sign(input.as_bytes());
        assert_eq!(
            B64.decode(sig).ok().as_deref(),
            Some(ours.as_ref()),
            "a forged signature verified"
        );
        // The same token with a flipped signature byte must fail.
        let mut sig = sig.as_bytes().to_vec();
        if let Some(b) = sig.first_mut() {
            *b = if *b == b'A' { b'B' } else { b'A' };
        }
        let tampered = format!("{input}.{}", String::from_utf8_lossy(&sig));
        if let Ok(t) = UnverifiedToken::parse(&tampered) {
            let ok = t.find_key(keys).and_then(|k| t.verify_signature(k));
            assert!(ok.is_err(), "a tampered signature verified");
        }
    } else if signed_here
        && parsed.alg == JwtAlg::EdDSA
        && parsed
            .header
            .kid
            .as_deref()
            .is_none_or(|k| k == SIGNING_KID)
    {
        panic!("a token signed with the EdDSA key failed: {verified:?}");
    }

    let audiences = [CLIENT_ID.to_string()];
    let access = AccessTokenRules {
        issuer: ISSUER,
        audiences: &audiences,
        allowed_clients: &[],
        leeway: LEEWAY,
    }
    .check(&parsed, NOW);
    if access.is_ok() {
        let c = &parsed.claims;
        assert_eq!(c.iss.as_deref(), Some(ISSUER));
        assert!(c.sub.as_deref().is_some_and(|s| !s.is_empty()));
        assert!(c.aud.iter().any(|a| a == CLIENT_ID));
        assert!(c.exp.is_some_and(|exp| NOW < exp.saturating_add(LEEWAY)));
    }
    let _ = LogoutTokenRules {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        leeway: LEEWAY,
        max_age: 600,
    }
    .check(&parsed, NOW);
    let _ = TokenError::Malformed.description();

    // What the bearer path does with an accepted token: identity and identity headers, read
    // through a mapping that needs the payload as JSON (another groups claim, claim headers).
    let path = |p: &str| ClaimPath::parse(p).expect("a valid claim path");
    let mapping = ClaimMapping {
        groups: path("realm_access.roles"),
        user_id: path("preferred_username"),
        headers: vec![
            ("x-tenant".into(), path("tenant")),
            ("x-groups".into(), path("groups")),
        ],
        ..ClaimMapping::default()
    };
    let claims = parsed.identity_claims(&mapping);
    if let Some(identity) = claims.ok().and_then(Identity::from_claims) {
        let _ = identity.groups_header();
        let passed = Some(token.to_string());
        let tokens = PassedTokens {
            access: passed.clone(),
            authorization: passed,
        };
        let p = Principal::new(identity, tokens, NOW + 60, &mapping);
        assert_eq!(
            p.headers.identity_map().len(),
            6,
            "every identity and claim header is sent"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.starts_with('{') {
        let (header, claims) = first_line(text);
        check(&sign(header.as_bytes(), claims.as_bytes()), true);
    } else {
        check(text, false);
    }
});
