//! Small helpers: wall clock, random identifiers, base64url and PKCE.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Seconds since the Unix epoch (or `fixed` when non-zero), shifted by `skew_secs`.
///
/// The IdP stands in for a real external server, so it deliberately reads the real
/// wall clock rather than the proxy's injected clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now_secs(fixed: u64, skew_secs: i64) -> u64 {
    if fixed != 0 {
        return fixed.saturating_add_signed(skew_secs);
    }
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    real.saturating_add_signed(skew_secs)
}

/// `n` random bytes from aws-lc-rs, base64url without padding.
pub(crate) fn random_id(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // Filling from the system RNG only fails if the OS RNG is broken.
    if aws_lc_rs::rand::fill(&mut buf).is_err() {
        let fallback = format!("{:?}{}", std::time::Instant::now(), now_secs(0, 0));
        return b64url(fallback.as_bytes());
    }
    b64url(&buf)
}

/// A UUID-shaped random string (Keycloak uses UUIDs for `jti`, `sid`, codes).
pub(crate) fn random_uuid() -> String {
    let mut b = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return random_id(16);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// base64url without padding.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode base64url (padding tolerated).
pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// PKCE S256: `BASE64URL(SHA256(verifier))`.
pub(crate) fn pkce_s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    b64url(digest.as_ref())
}

/// Decode the payload of a compact JWT without verifying anything.
pub(crate) fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&b64url_decode(payload)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_example() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn uuid_shape() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
    }
}
