//! JSON Web Key Sets (RFC 7517): parsing published keys into jsonwebtoken verifying keys, each
//! bound to one algorithm. The algorithm a key may verify comes from the key (`alg`, else its
//! `kty`/`crv`), never from a token (RFC 8725 §3.1). Keys not meant for signatures (`use` other
//! than `sig`) and key types we don't know are skipped, not fatal — key by key, which is why the
//! set is parsed here and not with jsonwebtoken's `JwkSet` (it refuses a whole set for one key
//! of a type it does not know).
//!
//! Everything a verification needs is built once, when the JWKS is parsed: the key material
//! (checked by aws-lc-rs then, so a bad key is skipped instead of failing every token) as a
//! `jsonwebtoken::DecodingKey`, bound to the key's algorithm.

use crate::token::jwt::{JwtAlg, TokenError};
use aws_lc_rs::signature::ParsedPublicKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

/// How many keys one token may be tried against (kid-less tokens during a rotation; a JWKS
/// publishing a `kid` twice). Bounds the signature checks an attacker's token costs.
pub const MAX_CANDIDATE_KEYS: usize = 4;

/// One verifying key, bound to one algorithm.
pub struct VerifyingKey {
    pub kid: Option<String>,
    pub alg: JwtAlg,
    key: DecodingKey,
}

impl VerifyingKey {
    /// Verifies the signature of a compact JWS with this key, under this key's algorithm
    /// whatever the token's header says (RFC 8725 §3.1; `UnverifiedToken::verify_signature`
    /// refuses a header naming another). `Signature` when it does not verify.
    ///
    /// `jsonwebtoken::crypto::verify`, not `jsonwebtoken::decode`: the header and claims are
    /// already parsed (`UnverifiedToken::parse`) and checked by our rules on the injected
    /// clock; `decode` would parse both twice more (≈7 µs of the 35 µs a 1 KB RS256 token
    /// cost in the issue 12 run).
    pub fn verify(&self, token: &str) -> Result<(), TokenError> {
        let (message, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        match jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &self.key,
            self.alg.algorithm(),
        ) {
            Ok(true) => Ok(()),
            Ok(false) => Err(TokenError::Signature),
            Err(e) => Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::Base64(_) => TokenError::Malformed,
                // The key does not fit the algorithm: cannot happen, keys are built for theirs.
                _ => TokenError::Algorithm,
            }),
        }
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({:?}, {:?})", self.kid, self.alg)
    }
}

/// The usable keys of one JWKS document.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    /// How many published keys were skipped (wrong use, unknown type, malformed).
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwksError {
    #[error("JWKS document is not JSON with a \"keys\" array")]
    NotAJwks,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl KeySet {
    pub fn parse(json: &[u8]) -> Result<KeySet, JwksError> {
        let raw: RawJwks = serde_json::from_slice(json).map_err(|_| JwksError::NotAJwks)?;
        let mut set = KeySet::default();
        for value in raw.keys {
            let parsed = serde_json::from_value::<RawJwk>(value)
                .ok()
                .and_then(|k| parse_key(&k));
            match parsed {
                Some(keys) => set.keys.extend(keys),
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The first key a token with this header may be verified with: same algorithm, and same
    /// `kid` when the token names one. [`KeySet::candidates`] gives all of them.
    pub fn find(&self, kid: Option<&str>, alg: JwtAlg) -> Option<&VerifyingKey> {
        self.keys
            .iter()
            .find(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
    }

    /// The keys a token with this header may be verified with, in publication order: those of
    /// its algorithm carrying its `kid`, or, for a token without `kid`, every key of its
    /// algorithm. At most [`MAX_CANDIDATE_KEYS`]: a token can't make us try the whole set.
    ///
    /// RFC 7515 §4.1.4 makes `kid` optional. An IdP that omits it usually publishes one key
    /// per algorithm, but during a rotation it publishes the old and the new one: a kid-less
    /// token must be tried against both, not just the first.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: JwtAlg,
    ) -> impl Iterator<Item = &'a VerifyingKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .take(MAX_CANDIDATE_KEYS)
    }

    /// Whether some key of `self` is gone from `newer` (a key was withdrawn, not just added).
    pub fn loses_keys_in(&self, newer: &KeySet) -> bool {
        self.keys
            .iter()
            .any(|k| !newer.keys.iter().any(|n| n.kid == k.kid && n.alg == k.alg))
    }

    /// Whether any key carries this `kid` (to tell "unknown key" from "wrong algorithm").
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

fn parse_key(k: &RawJwk) -> Option<Vec<VerifyingKey>> {
    if k.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let algs: Vec<JwtAlg> = match (k.kty.as_str(), k.alg.as_deref()) {
        (_, Some(a)) => vec![JwtAlg::from_name(a)?],
        ("RSA", None) => vec![JwtAlg::RS256, JwtAlg::PS256],
        ("EC", None) => match k.crv.as_deref()? {
            "P-256" => vec![JwtAlg::ES256],
            "P-384" => vec![JwtAlg::ES384],
            _ => return None,
        },
        ("OKP", None) if k.crv.as_deref() == Some("Ed25519") => vec![JwtAlg::EdDSA],
        _ => return None,
    };
    let mut out = Vec::new();
    for alg in algs {
        let (material, key) = match (k.kty.as_str(), alg.family()) {
            ("RSA", "RSA") => {
                let (n, e) = (b64(k.n.as_deref()?)?, b64(k.e.as_deref()?)?);
                let (n, e) = (without_leading_zeros(&n), without_leading_zeros(&e));
                let key = DecodingKey::from_rsa_raw_components(n, e);
                (rsa_public_key_der(n, e), key)
            }
            ("EC", "EC") => {
                let (x, y) = (b64(k.x.as_deref()?)?, b64(k.y.as_deref()?)?);
                let size = if alg == JwtAlg::ES256 { 32 } else { 48 };
                let crv_ok = matches!(
                    (alg, k.crv.as_deref()),
                    (JwtAlg::ES256, Some("P-256")) | (JwtAlg::ES384, Some("P-384"))
                );
                if !crv_ok || x.len() != size || y.len() != size {
                    return None;
                }
                // The uncompressed point (SEC 1 §2.3.3), what jsonwebtoken's
                // `from_ec_components` builds and hands to aws-lc-rs.
                let mut p = vec![4u8];
                p.extend_from_slice(&x);
                p.extend_from_slice(&y);
                let key = DecodingKey::from_ec_der(&p);
                (p, key)
            }
            ("OKP", "OKP") if k.crv.as_deref() == Some("Ed25519") => {
                let x = b64(k.x.as_deref()?)?;
                if x.len() != 32 {
                    return None;
                }
                let key = DecodingKey::from_ed_der(&x);
                (x, key)
            }
            _ => return None, // `alg` contradicts `kty`: not a key we can trust.
        };
        // aws-lc-rs checks the key now (RSA modulus and exponent, point on the curve), so a
        // bad key is skipped with the others instead of failing every token it names.
        ParsedPublicKey::new(alg.verification(), &material).ok()?;
        out.push(VerifyingKey {
            kid: k.kid.clone(),
            alg,
            key,
        });
    }
    Some(out)
}

fn b64(s: &str) -> Option<Vec<u8>> {
    B64.decode(s.trim_end_matches('=')).ok()
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017 A.1.1).
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = der_integer(n);
    body.extend(der_integer(e));
    let mut out = vec![0x30];
    der_len(&mut out, body.len());
    out.extend(body);
    out
}

/// A big-endian integer without its leading zero bytes (aws-lc-rs refuses RSA components
/// with them; some IdPs publish `n` with one). Zero stays one byte.
fn without_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}

fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed = without_leading_zeros(bytes);
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    let mut out = vec![0x02];
    der_len(&mut out, content.len());
    out.extend(content);
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_enc_keys_unknown_types_and_bad_material() {
        let json = br#"{"keys":[
            {"kty":"XYZ","kid":"weird","use":"sig"},
            {"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},
            {"kty":"RSA","kid":"broken","use":"sig","alg":"RS256","n":"!!","e":"AQAB"},
            {"kty":"EC","kid":"short","use":"sig","crv":"P-256","x":"AQAB","y":"AQAB"},
            {"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
            "not even an object"
        ]}"#;
        let set = KeySet::parse(json).unwrap();
        assert!(set.is_empty());
        assert_eq!(set.skipped, 6);
    }

    #[test]
    fn not_a_jwks() {
        assert_eq!(KeySet::parse(b"[]").unwrap_err(), JwksError::NotAJwks);
        assert_eq!(KeySet::parse(b"garbage").unwrap_err(), JwksError::NotAJwks);
    }

    #[test]
    fn der_integer_adds_sign_byte_and_strips_leading_zeros() {
        assert_eq!(der_integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_integer(&[0x00, 0x00, 0x01]), vec![0x02, 0x01, 0x01]);
    }
}
