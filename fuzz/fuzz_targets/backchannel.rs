//! `POST /oauth2/backchannel-logout`: the form body, the `logout_token` in it, and the logout
//! token rules (OIDC Back-Channel Logout 1.0 §2.4, §2.6) with the signature checked against
//! the fixed key set.
//!
//! Input: an `application/x-www-form-urlencoded` body, read the way the handler reads it
//! (`src/http/backchannel_logout.rs`: the first `logout_token` field). A `claims` field instead has
//! this target sign those claims with the fixed Ed25519 key (header
//! `{"alg":"EdDSA","kid":"ed","typ":"logout+jwt"}`), so the fuzzer reaches the claim rules
//! behind a valid signature.
//!
//! Checks: nothing panics; a token the rules accept names what to revoke (`sid` or `sub`), has
//! a `jti`, was issued within the last ten minutes (plus leeway) and is not an ID token (no
//! `nonce`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::token::jwt::{BACKCHANNEL_LOGOUT_EVENT, LogoutTokenRules, UnverifiedToken};
use portcullis_fuzz::{CLIENT_ID, ISSUER, NOW, keyset, sign};

const LEEWAY: u64 = 30;
/// `MAX_AGE` of `src/login/backchannel_logout.rs`.
const MAX_AGE: u64 = 600;
const HEADER: &str = r#"{"alg":"EdDSA","kid":"ed","typ":"logout+jwt"}"#;

fuzz_target!(|data: &[u8]| {
    let mut fields = url::form_urlencoded::parse(data);
    let token = match fields.find(|(k, _)| k == "logout_token" || k == "claims") {
        Some((k, v)) if k == "claims" => sign(HEADER.as_bytes(), v.as_bytes()),
        Some((_, v)) => v.into_owned(),
        None => return,
    };
    let Ok(parsed) = UnverifiedToken::parse(&token) else {
        return;
    };
    let rules = LogoutTokenRules {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        leeway: LEEWAY,
        max_age: MAX_AGE,
    };
    let verified = parsed
        .find_key(keyset())
        .and_then(|k| parsed.verify_signature(k));
    if rules.check(&parsed, NOW).is_ok() {
        let c = &parsed.claims;
        let named = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        assert!(named(&c.sid) || named(&c.sub), "nothing to revoke");
        assert!(named(&c.jti), "no jti");
        assert!(c.nonce.is_none(), "a nonce: an ID token");
        let iat = c.iat.expect("iat is required");
        assert!(iat <= NOW + LEEWAY && NOW.saturating_sub(iat) <= MAX_AGE + LEEWAY);
        assert!(
            c.events
                .as_ref()
                .is_some_and(|e| e.contains_key(BACKCHANNEL_LOGOUT_EVENT))
        );
        let _ = verified;
    }
});
