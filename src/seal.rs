//! Authenticated encryption of cookie values: AES-256-GCM (aws-lc-rs) with a random 96-bit
//! nonce, the cookie's purpose bound in as associated data (a state cookie can never be
//! replayed as a session cookie), base64url without padding. The first key encrypts; every key
//! decrypts, so secrets can be rotated without logging everyone out.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// Format version, first byte of every sealed value.
const VERSION: u8 = 1;

/// What a sealed value is for; part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Session,
    LoginState,
    /// A server-side session's pointer (Redis store).
    SessionId,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"portcullis/session/v1",
            Purpose::LoginState => b"portcullis/login-state/v1",
            Purpose::SessionId => b"portcullis/session-id/v1",
        }
    }
}

pub struct Sealer {
    keys: Vec<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({} keys)", self.keys.len())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("no usable key")]
    NoKey,
    #[error("randomness unavailable")]
    Random,
}

impl Sealer {
    /// `keys[0]` encrypts; all decrypt. Returns `NoKey` when the list is empty.
    pub fn new(keys: &[[u8; 32]]) -> Result<Self, SealError> {
        let keys: Vec<LessSafeKey> = keys
            .iter()
            .map(|k| {
                UnboundKey::new(&AES_256_GCM, k)
                    .map(LessSafeKey::new)
                    .map_err(|_| SealError::NoKey)
            })
            .collect::<Result<_, _>>()?;
        if keys.is_empty() {
            return Err(SealError::NoKey);
        }
        Ok(Self { keys })
    }

    pub fn seal(&self, purpose: Purpose, plaintext: &[u8]) -> Result<String, SealError> {
        let key = self.keys.first().ok_or(SealError::NoKey)?;
        Ok(B64.encode(seal_frame(key, VERSION, purpose.aad(), plaintext)?))
    }

    /// `None` for anything that is not a value we sealed for this purpose with a known key:
    /// tampered, truncated, foreign or garbage input all look the same.
    pub fn open(&self, purpose: Purpose, sealed: &str) -> Option<Vec<u8>> {
        if sealed.len() > 64 * 1024 {
            return None;
        }
        let raw = B64.decode(sealed.as_bytes()).ok()?;
        // A failed open may leave its buffer overwritten, so every key but the last works on a
        // copy; the last (with a single key, the only one) decrypts in place.
        let (last, earlier) = self.keys.split_last()?;
        for key in earlier {
            if let Some(plain) = open_frame(key, VERSION, purpose.aad(), raw.clone()) {
                return Some(plain);
            }
        }
        open_frame(last, VERSION, purpose.aad(), raw)
    }
}

/// The one framing of everything Portcullis encrypts (cookies here, Redis records in
/// `session/ticket.rs`): a version byte, a random 96-bit nonce, then the AES-256-GCM
/// ciphertext and tag, with `aad` bound in.
pub fn seal_frame(
    key: &LessSafeKey,
    version: u8,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
    let mut frame = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
    frame.push(version);
    frame.extend_from_slice(&nonce);
    frame.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            frame.get_mut(1 + NONCE_LEN..).ok_or(SealError::NoKey)?,
        )
        .map_err(|_| SealError::NoKey)?;
    frame.extend_from_slice(tag.as_ref());
    Ok(frame)
}

/// The nonce of a frame of `version`, without decrypting it; `None` if it can't be one.
pub fn frame_nonce(frame: &[u8], version: u8) -> Option<[u8; NONCE_LEN]> {
    let (&v, rest) = frame.split_first()?;
    if v != version || rest.len() < NONCE_LEN + 16 {
        return None;
    }
    rest.get(..NONCE_LEN)?.try_into().ok()
}

/// The plaintext of a [`seal_frame`] frame, decrypted in place; `None` for anything that is
/// not a frame of `version` sealed with `key` and `aad`.
pub fn open_frame(
    key: &LessSafeKey,
    version: u8,
    aad: &[u8],
    mut frame: Vec<u8>,
) -> Option<Vec<u8>> {
    let nonce = frame_nonce(&frame, version)?;
    let n = key
        .open_within(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut frame,
            1 + NONCE_LEN..,
        )
        .ok()?
        .len();
    frame.truncate(n);
    Some(frame)
}

/// `bytes` random bytes from the system's secure generator, base64url without padding: for
/// state, nonce, PKCE verifiers, session ids and refresh-lock tokens.
pub fn random_token(bytes: usize) -> Result<String, SealError> {
    let mut b = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| SealError::Random)?;
    Ok(B64.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_purpose_binding() {
        let s = Sealer::new(&[[7u8; 32]]).unwrap();
        let sealed = s.seal(Purpose::Session, b"hello").unwrap();
        assert_eq!(s.open(Purpose::Session, &sealed).unwrap(), b"hello");
        assert_eq!(s.open(Purpose::LoginState, &sealed), None);
    }

    #[test]
    fn rotation_old_key_still_opens_new_key_seals() {
        let old = Sealer::new(&[[1u8; 32]]).unwrap();
        let sealed_old = old.seal(Purpose::Session, b"x").unwrap();
        let rotated = Sealer::new(&[[2u8; 32], [1u8; 32]]).unwrap();
        assert_eq!(rotated.open(Purpose::Session, &sealed_old).unwrap(), b"x");
        let sealed_new = rotated.seal(Purpose::Session, b"y").unwrap();
        assert_eq!(old.open(Purpose::Session, &sealed_new), None);
    }

    #[test]
    fn tampering_truncation_and_garbage_are_rejected() {
        let s = Sealer::new(&[[9u8; 32]]).unwrap();
        let sealed = s.seal(Purpose::Session, b"secret data").unwrap();
        let mut bytes = sealed.clone().into_bytes();
        let mid = bytes.len() / 2;
        bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.open(Purpose::Session, std::str::from_utf8(&bytes).unwrap()),
            None
        );
        assert_eq!(s.open(Purpose::Session, &sealed[..sealed.len() - 3]), None);
        for junk in [
            "",
            "a",
            "!!!!",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(s.open(Purpose::Session, junk), None);
        }
    }

    #[test]
    fn nonces_differ() {
        let s = Sealer::new(&[[3u8; 32]]).unwrap();
        assert_ne!(
            s.seal(Purpose::Session, b"same").unwrap(),
            s.seal(Purpose::Session, b"same").unwrap()
        );
    }
}
