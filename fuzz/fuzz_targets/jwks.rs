//! A JWKS document (RFC 7517) as the IdP (or anyone between it and Portcullis) serves it:
//! parsed into verifying keys, keys of unknown type or use skipped.
//!
//! Input: arbitrary bytes as the document body.
//!
//! Checks: nothing panics (the RSA key DER is built by hand from `n` and `e`); a set never
//! loses keys to itself; every key found by kid and algorithm has that kid and algorithm;
//! verifying a token of its algorithm with any parsed key does not panic, and a forged
//! signature never verifies.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use portcullis::token::jwks::KeySet;
use portcullis::token::jwt::JwtAlg;

const ALGS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// A token of `alg` with an all-zero signature: never valid under any key.
fn forged(alg: JwtAlg) -> String {
    let header = format!(r#"{{"alg":"{}"}}"#, alg.name());
    format!("{}.e30.{}", B64.encode(header), B64.encode([0u8; 64]))
}

fuzz_target!(|data: &[u8]| {
    let Ok(set) = KeySet::parse(data) else {
        return;
    };
    assert!(!set.loses_keys_in(&set));
    for alg in ALGS.iter().filter_map(|a| JwtAlg::from_name(a)) {
        for kid in [None, Some("rsa"), Some("ec"), Some("ed"), Some("")] {
            if let Some(key) = set.find(kid, alg) {
                assert_eq!(key.alg, alg);
                assert!(kid.is_none() || key.kid.as_deref() == kid);
                assert!(
                    key.verify(&forged(alg)).is_err(),
                    "a forged signature verified"
                );
            }
        }
    }
});
