//! The IdP's fixed signing keys (PEM files committed under `test-idp/keys/`)
//! and their public JWK form.
//!
//! Key ids:
//! - `rsa-1`  RSA 2048, RS256, published until rotation
//! - `rsa-1-ps` the same RSA key published a second time for PS256
//! - `rsa-2`  RSA 2048, RS256, published after `rotate_to_rsa2()`
//! - `ec-1`   EC P-256, ES256
//! - `ed-1`   Ed25519, EdDSA
//! - `rsa-rogue` RSA 2048, never published (tokens signed by an unknown key)
//! - `rsa-enc` RSA 2048, published with `use: "enc"` only (must be ignored for signatures)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// One private key the IdP can sign with.
pub(crate) struct NamedKey {
    /// Key id written into the JWT header.
    pub kid: &'static str,
    /// Default signing algorithm for this key.
    pub alg: Algorithm,
    /// Private key for signing.
    pub encoding: EncodingKey,
    /// SubjectPublicKeyInfo PEM of the public half.
    pub public_pem: &'static str,
    /// Public JWK (`kty`, `kid`, `alg`, `use` and key material).
    pub jwk: Value,
}

/// All keys of the IdP.
pub(crate) struct KeyRing {
    keys: Vec<NamedKey>,
}

const RSA_1: &str = include_str!("../keys/rsa-1.pem");
const RSA_1_PUB: &str = include_str!("../keys/rsa-1.pub.pem");
const RSA_2: &str = include_str!("../keys/rsa-2.pem");
const RSA_2_PUB: &str = include_str!("../keys/rsa-2.pub.pem");
const RSA_ROGUE: &str = include_str!("../keys/rsa-rogue.pem");
const RSA_ROGUE_PUB: &str = include_str!("../keys/rsa-rogue.pub.pem");
const RSA_ENC: &str = include_str!("../keys/rsa-enc.pem");
const RSA_ENC_PUB: &str = include_str!("../keys/rsa-enc.pub.pem");
const EC_1: &str = include_str!("../keys/ec-1.pem");
const EC_1_PUB: &str = include_str!("../keys/ec-1.pub.pem");
const ED_1: &str = include_str!("../keys/ed-1.pem");
const ED_1_PUB: &str = include_str!("../keys/ed-1.pub.pem");

/// Error while loading the built-in keys (only possible if the PEM files are broken).
#[derive(Debug)]
pub(crate) struct KeyError(String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "test-idp key error: {}", self.0)
    }
}

fn err(kid: &str, e: impl std::fmt::Display) -> KeyError {
    KeyError(format!("{kid}: {e}"))
}

fn rsa(
    kid: &'static str,
    alg: Algorithm,
    pem: &str,
    public_pem: &'static str,
    key_use: &str,
) -> Result<NamedKey, KeyError> {
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| err(kid, e))?;
    let jwk = jwk_from_encoding(kid, alg, &encoding, key_use)?;
    Ok(NamedKey {
        kid,
        alg,
        encoding,
        public_pem,
        jwk,
    })
}

fn jwk_from_encoding(
    kid: &str,
    alg: Algorithm,
    key: &EncodingKey,
    key_use: &str,
) -> Result<Value, KeyError> {
    let jwk = Jwk::from_encoding_key(key, alg).map_err(|e| err(kid, e))?;
    let mut value = serde_json::to_value(&jwk).map_err(|e| err(kid, e))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| err(kid, "JWK is not an object"))?;
    obj.insert("kid".into(), json!(kid));
    obj.insert("use".into(), json!(key_use));
    if key_use == "enc" {
        obj.insert("alg".into(), json!("RSA-OAEP"));
    }
    Ok(value)
}

impl KeyRing {
    /// Load every built-in key.
    pub(crate) fn load() -> Result<Self, KeyError> {
        let ec = EncodingKey::from_ec_pem(EC_1.as_bytes()).map_err(|e| err("ec-1", e))?;
        let ec_jwk = jwk_from_encoding("ec-1", Algorithm::ES256, &ec, "sig")?;

        let ed = EncodingKey::from_ed_pem(ED_1.as_bytes()).map_err(|e| err("ed-1", e))?;
        // jsonwebtoken cannot turn an Ed25519 key into a JWK, so derive `x` ourselves.
        let ed_pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(ed.inner())
            .or_else(|_| {
                aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(ed.inner())
            })
            .map_err(|e| err("ed-1", e))?;
        let ed_public = aws_lc_rs::signature::KeyPair::public_key(&ed_pair);
        let ed_jwk = json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": "ed-1",
            "use": "sig",
            "alg": "EdDSA",
            "x": URL_SAFE_NO_PAD.encode(ed_public.as_ref()),
        });

        let keys = vec![
            rsa("rsa-1", Algorithm::RS256, RSA_1, RSA_1_PUB, "sig")?,
            rsa("rsa-1-ps", Algorithm::PS256, RSA_1, RSA_1_PUB, "sig")?,
            rsa("rsa-2", Algorithm::RS256, RSA_2, RSA_2_PUB, "sig")?,
            rsa(
                "rsa-rogue",
                Algorithm::RS256,
                RSA_ROGUE,
                RSA_ROGUE_PUB,
                "sig",
            )?,
            rsa("rsa-enc", Algorithm::RS256, RSA_ENC, RSA_ENC_PUB, "enc")?,
            NamedKey {
                kid: "ec-1",
                alg: Algorithm::ES256,
                encoding: ec,
                public_pem: EC_1_PUB,
                jwk: ec_jwk,
            },
            NamedKey {
                kid: "ed-1",
                alg: Algorithm::EdDSA,
                encoding: ed,
                public_pem: ED_1_PUB,
                jwk: ed_jwk,
            },
        ];
        Ok(Self { keys })
    }

    /// Look a key up by id.
    pub(crate) fn get(&self, kid: &str) -> Option<&NamedKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Look a key up by id, panicking with a helpful message when unknown.
    pub(crate) fn must(&self, kid: &str) -> &NamedKey {
        match self.get(kid) {
            Some(k) => k,
            None => {
                let known: Vec<&str> = self.keys.iter().map(|k| k.kid).collect();
                panic!("test-idp: unknown key id {kid:?}; known: {known:?}")
            }
        }
    }

    /// The JWK set for the given rotation phase, in publication order.
    /// Decoys come first so that a client that blindly takes `keys[0]` fails.
    pub(crate) fn jwks(&self, phase: crate::controls::JwksPhase) -> Value {
        use crate::controls::JwksPhase;
        let mut out = Vec::new();
        if let Some(enc) = self.get("rsa-enc") {
            out.push(enc.jwk.clone());
        }
        out.push(
            json!({"kty": "XYZ", "kid": "weird", "use": "sig", "alg": "XYZ-1", "xyz": "AQAB"}),
        );
        let kids: &[&str] = match phase {
            JwksPhase::Rsa1 => &["rsa-1", "rsa-1-ps", "ec-1", "ed-1"],
            JwksPhase::Both => &["rsa-1", "rsa-1-ps", "rsa-2", "ec-1", "ed-1"],
            JwksPhase::Rsa2 => &["rsa-2", "ec-1", "ed-1"],
        };
        for kid in kids {
            if let Some(k) = self.get(kid) {
                out.push(k.jwk.clone());
            }
        }
        json!({ "keys": out })
    }
}
