//! JWT verification (RFC 7519, RFC 8725 best practices, RFC 9068 access-token profile, OIDC
//! Back-Channel Logout §2.6). One path checks access tokens and logout tokens (ID tokens are
//! openidconnect's, in `crate::login::oidc`):
//! split → header → key chosen by `kid` **and** the key's own algorithm → signature → claims.
//! A token without `kid` (RFC 7515 §4.1.4 makes it optional) is tried against each published
//! key of its algorithm, at most four. Nothing here does I/O; the key set and `now` are
//! passed in.
//!
//! The signature is checked by jsonwebtoken (aws-lc-rs), with the `DecodingKey` that
//! `crate::jwks` built for the key, under the key's algorithm. Every claim rule is ours and
//! reads only the `now` passed in: jsonwebtoken checks no claims.

mod claims;

pub use claims::{Audience, TokenClaims};

use crate::clock::UnixTime;
use crate::identity::{ClaimMapping, IdentityClaims};
use crate::token::jwks::{KeySet, VerifyingKey};
use aws_lc_rs::signature::{self as sig, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Asymmetric algorithms we verify (RFC 7518 §3). No `none`, no HMAC: a public key must never
/// be usable as an HMAC secret (RFC 8725 §2.1 "algorithm confusion").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum JwtAlg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwtAlg {
    pub fn from_name(name: &str) -> Option<JwtAlg> {
        Some(match name {
            "RS256" => JwtAlg::RS256,
            "RS384" => JwtAlg::RS384,
            "RS512" => JwtAlg::RS512,
            "PS256" => JwtAlg::PS256,
            "PS384" => JwtAlg::PS384,
            "PS512" => JwtAlg::PS512,
            "ES256" => JwtAlg::ES256,
            "ES384" => JwtAlg::ES384,
            "EdDSA" | "Ed25519" => JwtAlg::EdDSA,
            _ => return None,
        })
    }

    /// The JWS name (RFC 7518 §3.1); the only spelling a token header may use.
    pub fn name(self) -> &'static str {
        match self {
            JwtAlg::RS256 => "RS256",
            JwtAlg::RS384 => "RS384",
            JwtAlg::RS512 => "RS512",
            JwtAlg::PS256 => "PS256",
            JwtAlg::PS384 => "PS384",
            JwtAlg::PS512 => "PS512",
            JwtAlg::ES256 => "ES256",
            JwtAlg::ES384 => "ES384",
            JwtAlg::EdDSA => "EdDSA",
        }
    }

    /// The same algorithm for jsonwebtoken.
    pub fn algorithm(self) -> Algorithm {
        match self {
            JwtAlg::RS256 => Algorithm::RS256,
            JwtAlg::RS384 => Algorithm::RS384,
            JwtAlg::RS512 => Algorithm::RS512,
            JwtAlg::PS256 => Algorithm::PS256,
            JwtAlg::PS384 => Algorithm::PS384,
            JwtAlg::PS512 => Algorithm::PS512,
            JwtAlg::ES256 => Algorithm::ES256,
            JwtAlg::ES384 => Algorithm::ES384,
            JwtAlg::EdDSA => Algorithm::EdDSA,
        }
    }

    pub fn family(self) -> &'static str {
        match self {
            JwtAlg::RS256
            | JwtAlg::RS384
            | JwtAlg::RS512
            | JwtAlg::PS256
            | JwtAlg::PS384
            | JwtAlg::PS512 => "RSA",
            JwtAlg::ES256 | JwtAlg::ES384 => "EC",
            JwtAlg::EdDSA => "OKP",
        }
    }

    /// The aws-lc-rs algorithm a published key is checked with when the JWKS is parsed.
    pub fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            JwtAlg::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            JwtAlg::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            JwtAlg::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            JwtAlg::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            JwtAlg::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            JwtAlg::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
            JwtAlg::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
            JwtAlg::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
            JwtAlg::EdDSA => &sig::ED25519,
        }
    }
}

/// Why a token was refused. [`TokenError::description`] is what a client may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is not a well-formed JWS")]
    Malformed,
    #[error("token too large")]
    TooLarge,
    #[error("algorithm not accepted")]
    Algorithm,
    #[error("signing key not known")]
    UnknownKey,
    #[error("signature invalid")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("issuer not trusted")]
    Issuer,
    #[error("audience not accepted")]
    Audience,
    #[error("wrong token type")]
    TokenType,
    #[error("required claim missing")]
    MissingClaim,
    #[error("nonce mismatch")]
    Nonce,
    #[error("token revoked")]
    Revoked,
}

impl TokenError {
    /// The stable reason code of audit events (`bearer.refused`).
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::TooLarge => "too_large",
            TokenError::Algorithm => "algorithm",
            TokenError::UnknownKey => "unknown_key",
            TokenError::Signature => "signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Issuer => "issuer",
            TokenError::Audience => "audience",
            TokenError::TokenType => "token_type",
            TokenError::MissingClaim => "missing_claim",
            TokenError::Nonce => "nonce",
            TokenError::Revoked => "revoked",
        }
    }

    /// The `error_description` sent to clients (RFC 6750 §3): short, nothing internal.
    pub fn description(self) -> &'static str {
        match self {
            TokenError::Malformed | TokenError::TooLarge => "The access token is malformed",
            TokenError::Algorithm | TokenError::UnknownKey | TokenError::Signature => {
                "The access token signature is invalid"
            }
            TokenError::Expired => "The access token expired",
            TokenError::NotYetValid => "The access token is not yet valid",
            TokenError::Issuer
            | TokenError::Audience
            | TokenError::TokenType
            | TokenError::MissingClaim
            | TokenError::Nonce => "The access token is not valid here",
            TokenError::Revoked => "The access token was revoked",
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct JwtHeader {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    /// Critical extensions we don't implement make the token invalid (RFC 7515 §4.1.11).
    pub crit: Option<serde_json::Value>,
}

/// A token split into its parts, not yet trusted.
pub struct UnverifiedToken<'a> {
    pub header: JwtHeader,
    pub alg: JwtAlg,
    pub claims: TokenClaims,
    /// The whole compact JWS, handed to jsonwebtoken to verify.
    token: &'a str,
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and decodes a compact JWS. Refuses `none`, HMAC and unknown algorithms before
    /// anything else looks at the token.
    pub fn parse(token: &'a str) -> Result<UnverifiedToken<'a>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let (signing_input, sig_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header_b64, payload_b64) =
            signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        if payload_b64.contains('.')
            || header_b64.is_empty()
            || payload_b64.is_empty()
            || sig_b64.is_empty()
        {
            return Err(TokenError::Malformed);
        }
        let header: JwtHeader = decode_json(header_b64)?;
        if header.crit.is_some() {
            return Err(TokenError::Malformed);
        }
        // The JWS spelling only ("EdDSA", not a JWK's "Ed25519"): jsonwebtoken knows no other.
        let alg = JwtAlg::from_name(&header.alg)
            .filter(|a| a.name() == header.alg)
            .ok_or(TokenError::Algorithm)?;
        let claims: TokenClaims = decode_json(payload_b64)?;
        if B64.decode(sig_b64).is_err() {
            return Err(TokenError::Malformed);
        }
        Ok(UnverifiedToken {
            header,
            alg,
            claims,
            token,
        })
    }

    /// Moves the user-describing claims out, read as `mapping` says: when it names claims
    /// the typed [`TokenClaims`] don't hold (`[headers.claims]`, another email, groups or
    /// user id claim), the payload is read again as JSON. Call it on a verified token only.
    pub fn identity_claims(
        &mut self,
        mapping: &ClaimMapping,
    ) -> Result<IdentityClaims, TokenError> {
        let mut claims = self.claims.take_identity();
        if !mapping.is_standard() {
            mapping.apply(&payload_json(self.token)?, &mut claims);
        }
        Ok(claims)
    }

    /// Verifies the signature with the keys of `keys` this token may use: the key its `kid`
    /// names, or, without a `kid`, each key of its algorithm in turn (at most
    /// [`crate::token::jwks::MAX_CANDIDATE_KEYS`]).
    ///
    /// `UnknownKey` when no key fits, and also when a kid-less token verifies with none of
    /// its algorithm's keys: it may be signed by a key we have not fetched yet, exactly like
    /// an unknown `kid`, so the caller may refetch (rate-limited) and try again.
    pub fn verify_with(&self, keys: &KeySet) -> Result<(), TokenError> {
        let kid = self.header.kid.as_deref();
        let mut tried = false;
        for key in keys.candidates(kid, self.alg) {
            match self.verify_signature(key) {
                Ok(()) => return Ok(()),
                Err(TokenError::Signature) => tried = true,
                // About the token, not the key (jsonwebtoken could not read it): no other key
                // will do better.
                Err(other) => return Err(other),
            }
        }
        match kid {
            Some(_) if tried => Err(TokenError::Signature),
            // No key of its own algorithm: `find_key` tells an algorithm attack from a new key.
            Some(_) => self.find_key(keys).map(|_| ()),
            None => Err(TokenError::UnknownKey),
        }
    }

    /// The key this token names, with the algorithm that key allows (for a kid-less token,
    /// the first key of its algorithm: [`Self::verify_with`] tries the others too).
    pub fn find_key<'k>(&self, keys: &'k KeySet) -> Result<&'k VerifyingKey, TokenError> {
        let kid = self.header.kid.as_deref();
        match keys.find(kid, self.alg) {
            Some(k) => Ok(k),
            // A published kid with another algorithm is an algorithm attack, not a new key.
            None if kid.is_some_and(|k| keys.has_kid(k)) => Err(TokenError::Algorithm),
            None => Err(TokenError::UnknownKey),
        }
    }

    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), TokenError> {
        if key.alg != self.alg {
            return Err(TokenError::Algorithm);
        }
        key.verify(self.token)
    }
}

/// The payload of a compact JWS as JSON (not verified here: the caller has verified the
/// signature, or is about to).
pub fn payload_json(compact: &str) -> Result<serde_json::Value, TokenError> {
    let payload = compact.split('.').nth(1).ok_or(TokenError::Malformed)?;
    decode_json(payload)
}

fn decode_json<T: for<'de> Deserialize<'de>>(b64: &str) -> Result<T, TokenError> {
    let bytes = B64.decode(b64).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// Time rules shared by every token kind: `exp` required, `nbf`/`iat` honoured, with leeway.
pub fn check_times(c: &TokenClaims, now: UnixTime, leeway: u64) -> Result<(), TokenError> {
    let exp = c.exp.ok_or(TokenError::MissingClaim)?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if c.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(TokenError::NotYetValid);
    }
    if c.iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// `iss` is exactly `issuer` and `aud` contains `client_id`: tokens the IdP issued to us.
fn check_issued_to(c: &TokenClaims, issuer: &str, client_id: &str) -> Result<(), TokenError> {
    if c.iss.as_deref() != Some(issuer) {
        return Err(TokenError::Issuer);
    }
    if !c.aud.iter().any(|a| a == client_id) {
        return Err(TokenError::Audience);
    }
    Ok(())
}

/// What an access token must satisfy (RFC 9068 §4, adapted to Keycloak).
pub struct AccessTokenRules<'a> {
    pub issuer: &'a str,
    pub audiences: &'a [String],
    pub allowed_clients: &'a [String],
    pub leeway: u64,
}

impl AccessTokenRules<'_> {
    pub fn check(&self, token: &UnverifiedToken<'_>, now: UnixTime) -> Result<(), TokenError> {
        let c = &token.claims;
        if c.iss.as_deref() != Some(self.issuer) {
            return Err(TokenError::Issuer);
        }
        check_times(c, now, self.leeway)?;
        // ID tokens and logout tokens are not access tokens (RFC 8725 §3.11, §2.8).
        let header_typ = token.header.typ.as_deref().map(str::to_ascii_lowercase);
        if header_typ
            .as_deref()
            .is_some_and(|t| !matches!(t, "jwt" | "at+jwt" | "application/at+jwt"))
        {
            return Err(TokenError::TokenType);
        }
        if c.typ
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(TokenError::TokenType);
        }
        if c.events.is_some() || (c.typ.is_none() && c.nonce.is_some()) {
            return Err(TokenError::TokenType);
        }
        // Keycloak adds "account" to every token of the realm: it never counts by itself.
        let aud_ok = c
            .aud
            .iter()
            .any(|a| a != "account" && self.audiences.iter().any(|x| x == a));
        let azp_ok = c
            .azp
            .as_deref()
            .is_some_and(|azp| self.allowed_clients.iter().any(|x| x == azp));
        if !(aud_ok || azp_ok) {
            return Err(TokenError::Audience);
        }
        if c.sub.as_deref().is_none_or(str::is_empty) {
            return Err(TokenError::MissingClaim);
        }
        Ok(())
    }
}

/// The `events` member that marks a logout token (OIDC Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a back-channel logout token must satisfy (OIDC Back-Channel Logout 1.0 §2.6).
pub struct LogoutTokenRules<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub leeway: u64,
    /// Tokens issued longer ago than this are refused (bounds the `jti` replay window).
    pub max_age: u64,
}

impl LogoutTokenRules<'_> {
    pub fn check(&self, token: &UnverifiedToken<'_>, now: UnixTime) -> Result<(), TokenError> {
        let c = &token.claims;
        check_issued_to(c, self.issuer, self.client_id)?;
        let iat = c.iat.ok_or(TokenError::MissingClaim)?;
        if iat > now.saturating_add(self.leeway) {
            return Err(TokenError::NotYetValid);
        }
        if now.saturating_sub(iat) > self.max_age.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        if c.exp.is_some() {
            check_times(c, now, self.leeway)?;
        }
        let header_typ = token.header.typ.as_deref().map(str::to_ascii_lowercase);
        if header_typ
            .as_deref()
            .is_some_and(|t| !matches!(t, "logout+jwt" | "application/logout+jwt" | "jwt"))
        {
            return Err(TokenError::TokenType);
        }
        let event_ok = c
            .events
            .as_ref()
            .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT))
            .is_some_and(serde_json::Value::is_object);
        if !event_ok || c.nonce.is_some() {
            return Err(TokenError::TokenType);
        }
        if c.sid.as_deref().is_none_or(str::is_empty) && c.sub.as_deref().is_none_or(str::is_empty)
        {
            return Err(TokenError::MissingClaim);
        }
        if c.jti.as_deref().is_none_or(str::is_empty) {
            return Err(TokenError::MissingClaim);
        }
        Ok(())
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
