//! Unit tests with keys generated in-process and a fixed clock.

use super::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair,
};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;

pub(crate) struct Keys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    ed: Ed25519KeyPair,
}

impl Keys {
    pub(crate) fn new() -> Keys {
        Keys {
            rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            ec: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            ed: Ed25519KeyPair::generate().unwrap(),
        }
    }

    pub(crate) fn jwks(&self) -> Value {
        let pk = self.rsa.public_key();
        let n = B64.encode(pk.modulus().big_endian_without_leading_zero());
        let e = B64.encode(pk.exponent().big_endian_without_leading_zero());
        let ec = self.ec.public_key().as_ref();
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256", "n": n, "e": e},
            {"kty": "RSA", "kid": "rsa-ps", "use": "sig", "alg": "PS256", "n": n, "e": e},
            {"kty": "EC", "kid": "ec", "use": "sig", "crv": "P-256", "x": B64.encode(&ec[1..33]), "y": B64.encode(&ec[33..65])},
            {"kty": "OKP", "kid": "ed", "use": "sig", "crv": "Ed25519", "x": B64.encode(self.ed.public_key().as_ref())}
        ]})
    }

    pub(crate) fn keyset(&self) -> KeySet {
        KeySet::parse(self.jwks().to_string().as_bytes()).unwrap()
    }

    pub(crate) fn sign(&self, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let sig = match header["alg"].as_str().unwrap() {
            "RS256" | "PS256" => {
                let mut s = vec![0u8; self.rsa.public_modulus_len()];
                let pad = if header["alg"] == "RS256" {
                    &RSA_PKCS1_SHA256
                } else {
                    &RSA_PSS_SHA256
                };
                self.rsa.sign(pad, &rng, input.as_bytes(), &mut s).unwrap();
                s
            }
            "ES256" => self
                .ec
                .sign(&rng, input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            "EdDSA" => self.ed.sign(input.as_bytes()).as_ref().to_vec(),
            _ => b"not-a-signature".to_vec(),
        };
        format!("{input}.{}", B64.encode(sig))
    }
}

fn access_claims() -> Value {
    json!({"iss": "https://idp/realms/r", "sub": "u1", "aud": ["portcullis", "account"], "azp": "portcullis",
           "exp": NOW + 300, "iat": NOW - 10, "typ": "Bearer", "preferred_username": "alice"})
}

fn rules() -> (Vec<String>, Vec<String>) {
    (vec!["portcullis".to_string()], vec![])
}

fn check_access(keys: &Keys, token: &str) -> Result<(), TokenError> {
    let set = keys.keyset();
    let t = UnverifiedToken::parse(token)?;
    t.verify_with(&set)?;
    let (aud, clients) = rules();
    AccessTokenRules {
        issuer: "https://idp/realms/r",
        audiences: &aud,
        allowed_clients: &clients,
        leeway: 30,
    }
    .check(&t, NOW)
}

fn with(claims: Value, patch: Value) -> Value {
    let mut c = claims;
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

#[test]
fn every_supported_algorithm_verifies() {
    let keys = Keys::new();
    for (alg, kid) in [
        ("RS256", "rsa"),
        ("PS256", "rsa-ps"),
        ("ES256", "ec"),
        ("EdDSA", "ed"),
    ] {
        let tok = keys.sign(
            json!({"alg": alg, "kid": kid, "typ": "JWT"}),
            access_claims(),
        );
        assert_eq!(check_access(&keys, &tok), Ok(()), "{alg}");
    }
}

#[test]
fn algorithm_comes_from_the_key() {
    let keys = Keys::new();
    // RS256 key, token claims PS256 with the RS256 kid: refused, even though PS256 is supported.
    let tok = keys.sign(json!({"alg": "PS256", "kid": "rsa"}), access_claims());
    assert_eq!(check_access(&keys, &tok), Err(TokenError::Algorithm));
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none"}"#),
        B64.encode(access_claims().to_string())
    );
    assert_eq!(check_access(&keys, &none), Err(TokenError::Malformed));
    let none_sig = format!(
        "{}.{}.AAAA",
        B64.encode(r#"{"alg":"none","kid":"rsa"}"#),
        B64.encode(access_claims().to_string())
    );
    assert_eq!(check_access(&keys, &none_sig), Err(TokenError::Algorithm));
    let hs = keys.sign(json!({"alg": "HS256", "kid": "rsa"}), access_claims());
    assert_eq!(check_access(&keys, &hs), Err(TokenError::Algorithm));
}

#[test]
fn tampered_payload_fails_signature() {
    let keys = Keys::new();
    let tok = keys.sign(json!({"alg": "RS256", "kid": "rsa"}), access_claims());
    let mut parts: Vec<&str> = tok.split('.').collect();
    let evil = B64.encode(with(access_claims(), json!({"sub": "admin"})).to_string());
    parts[1] = &evil;
    assert_eq!(
        check_access(&keys, &parts.join(".")),
        Err(TokenError::Signature)
    );
}

#[test]
fn claim_rules() {
    let keys = Keys::new();
    let cases = [
        (json!({"exp": NOW - 31}), TokenError::Expired),
        (json!({"exp": null}), TokenError::MissingClaim),
        (json!({"nbf": NOW + 60}), TokenError::NotYetValid),
        (json!({"iat": NOW + 60}), TokenError::NotYetValid),
        (
            json!({"iss": "https://idp/realms/other"}),
            TokenError::Issuer,
        ),
        (json!({"iss": "https://idp/realms/r/"}), TokenError::Issuer),
        (json!({"aud": "other"}), TokenError::Audience),
        (
            json!({"aud": "account", "azp": "some-other-client"}),
            TokenError::Audience,
        ),
        (json!({"typ": "ID"}), TokenError::TokenType),
        (json!({"typ": "Logout"}), TokenError::TokenType),
        (json!({"typ": null, "nonce": "n"}), TokenError::TokenType),
        (
            json!({"events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
            TokenError::TokenType,
        ),
        (json!({"sub": null}), TokenError::MissingClaim),
    ];
    for (patch, want) in cases {
        let tok = keys.sign(
            json!({"alg": "ES256", "kid": "ec"}),
            with(access_claims(), patch.clone()),
        );
        assert_eq!(check_access(&keys, &tok), Err(want), "{patch}");
    }
    // Within leeway passes.
    let tok = keys.sign(
        json!({"alg": "ES256", "kid": "ec"}),
        with(access_claims(), json!({"exp": NOW - 5})),
    );
    assert_eq!(check_access(&keys, &tok), Ok(()));
    let tok = keys.sign(
        json!({"alg": "ES256", "kid": "ec", "typ": "logout+jwt"}),
        access_claims(),
    );
    assert_eq!(check_access(&keys, &tok), Err(TokenError::TokenType));
}

#[test]
fn azp_from_allowed_clients_passes_without_audience() {
    let keys = Keys::new();
    let set = keys.keyset();
    let tok = keys.sign(
        json!({"alg": "EdDSA", "kid": "ed"}),
        with(access_claims(), json!({"aud": "account", "azp": "cli"})),
    );
    let t = UnverifiedToken::parse(&tok).unwrap();
    t.verify_signature(t.find_key(&set).unwrap()).unwrap();
    let aud = vec!["portcullis".to_string()];
    let clients = vec!["cli".to_string()];
    let rules = AccessTokenRules {
        issuer: "https://idp/realms/r",
        audiences: &aud,
        allowed_clients: &clients,
        leeway: 0,
    };
    assert_eq!(rules.check(&t, NOW), Ok(()));
}

#[test]
fn unknown_kid_and_garbage() {
    let keys = Keys::new();
    let tok = keys.sign(json!({"alg": "RS256", "kid": "nope"}), access_claims());
    assert_eq!(check_access(&keys, &tok), Err(TokenError::UnknownKey));
    let other = Keys::new();
    let foreign = other.sign(json!({"alg": "RS256", "kid": "rsa"}), access_claims());
    assert_eq!(check_access(&keys, &foreign), Err(TokenError::Signature));
    for junk in [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "e30.e30.",
        "!!!.e30.AAAA",
        &"A".repeat(MAX_TOKEN_LEN + 1),
    ] {
        assert!(check_access(&keys, junk).is_err(), "{junk:.20}");
    }
}

#[test]
fn the_signature_check_reads_no_clock() {
    // Expired in 2001 by the system clock; jsonwebtoken only checks the signature, and the
    // time rules use the `now` passed in.
    let keys = Keys::new();
    let then = 1_000_000_000;
    let claims = with(
        access_claims(),
        json!({"exp": then + 300, "iat": then - 10}),
    );
    let tok = keys.sign(json!({"alg": "ES256", "kid": "ec"}), claims);
    let t = UnverifiedToken::parse(&tok).unwrap();
    assert_eq!(t.verify_with(&keys.keyset()), Ok(()));
    assert_eq!(check_times(&t.claims, then, 0), Ok(()));
    assert_eq!(check_times(&t.claims, NOW, 30), Err(TokenError::Expired));
}

#[test]
fn a_header_names_the_algorithm_by_its_jws_name_only() {
    // "Ed25519" names an OKP key's curve in a JWK (accepted there), not a JWS algorithm.
    let keys = Keys::new();
    let tok = keys.sign(json!({"alg": "Ed25519", "kid": "ed"}), access_claims());
    assert!(matches!(
        UnverifiedToken::parse(&tok),
        Err(TokenError::Algorithm)
    ));
}

#[test]
fn an_rsa_modulus_published_with_a_leading_zero_byte_still_verifies() {
    let keys = Keys::new();
    let mut jwk = rsa_jwk(&keys, "rsa");
    let n = B64.decode(jwk["n"].as_str().unwrap()).unwrap();
    jwk["n"] = json!(B64.encode([&[0u8][..], &n].concat()));
    let set = KeySet::parse(json!({ "keys": [jwk] }).to_string().as_bytes()).unwrap();
    let tok = keys.sign(json!({"alg": "RS256", "kid": "rsa"}), access_claims());
    assert_eq!(
        UnverifiedToken::parse(&tok).unwrap().verify_with(&set),
        Ok(())
    );
}

/// The RS256 JWK of `keys` under another `kid`.
fn rsa_jwk(keys: &Keys, kid: &str) -> Value {
    let mut jwk = keys.jwks()["keys"][0].clone();
    jwk["kid"] = json!(kid);
    jwk
}

#[test]
fn a_token_without_kid_is_tried_against_each_key_of_its_algorithm_at_most_four() {
    let ring: Vec<Keys> = (0..5).map(|_| Keys::new()).collect();
    let mut published: Vec<Value> = ring
        .iter()
        .enumerate()
        .map(|(i, k)| rsa_jwk(k, &format!("rsa-{i}")))
        .collect();
    // Keys of other algorithms don't count against the bound.
    published.insert(1, ring[0].jwks()["keys"][2].clone());
    let set = KeySet::parse(json!({ "keys": published }).to_string().as_bytes()).unwrap();
    let kidless = |k: &Keys| {
        let tok = k.sign(json!({"alg": "RS256", "typ": "JWT"}), access_claims());
        UnverifiedToken::parse(&tok).unwrap().verify_with(&set)
    };
    // The rotation case: old key first, new key second.
    assert_eq!(kidless(&ring[0]), Ok(()));
    assert_eq!(kidless(&ring[1]), Ok(()), "the second RS256 key is tried");
    assert_eq!(kidless(&ring[3]), Ok(()), "the fourth still is");
    assert_eq!(
        kidless(&ring[4]),
        Err(TokenError::UnknownKey),
        "a fifth key of the same algorithm is never tried"
    );
    assert_eq!(kidless(&Keys::new()), Err(TokenError::UnknownKey));
    // With a `kid`, only the key it names counts.
    let named = ring[1].sign(
        json!({"alg": "RS256", "kid": "rsa-0", "typ": "JWT"}),
        access_claims(),
    );
    assert_eq!(
        UnverifiedToken::parse(&named).unwrap().verify_with(&set),
        Err(TokenError::Signature)
    );
    let named = ring[1].sign(
        json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}),
        access_claims(),
    );
    assert_eq!(
        UnverifiedToken::parse(&named).unwrap().verify_with(&set),
        Ok(())
    );
    // Kid-less with an algorithm no key has: unknown, whatever the signature.
    let ps = ring[0].sign(json!({"alg": "PS256"}), access_claims());
    assert_eq!(
        UnverifiedToken::parse(&ps).unwrap().verify_with(&set),
        Err(TokenError::UnknownKey)
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Arbitrary strings never panic the parser.
        #[test]
        fn parse_never_panics(s in ".{0,400}") {
            let _ = UnverifiedToken::parse(&s);
        }

        /// Arbitrary JSON-ish headers and payloads, correctly framed, never panic and never verify.
        #[test]
        fn framed_garbage_never_verifies(h in "\\PC{0,60}", p in "\\PC{0,200}", sig in proptest::collection::vec(any::<u8>(), 0..300)) {
            let keys = Keys::new_cached();
            let tok = format!("{}.{}.{}", B64.encode(h), B64.encode(p), B64.encode(sig));
            prop_assert!(check_access(keys, &tok).is_err());
        }

        /// Any single-character change to a valid token makes it fail.
        #[test]
        fn any_mutation_is_rejected(pos in 0usize..10_000, c in prop::sample::select(vec!['A', 'b', '-', '_', '.', '0'])) {
            let keys = Keys::new_cached();
            let tok = keys.sign(json!({"alg": "ES256", "kid": "ec"}), access_claims());
            let pos = pos % tok.len();
            let mut chars: Vec<char> = tok.chars().collect();
            if chars[pos] == c { return Ok(()); }
            chars[pos] = c;
            let mutated: String = chars.into_iter().collect();
            prop_assert!(check_access(keys, &mutated).is_err());
        }
    }
}

impl Keys {
    fn new_cached() -> &'static Keys {
        static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
        KEYS.get_or_init(Keys::new)
    }
}
