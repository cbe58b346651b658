//! Authenticated encryption of cookie values: AES-256-GCM (aws-lc-rs) with a random 96-bit
//! nonce, the cookie's purpose bound in as associated data (a state cookie can never be
//! replayed as a session cookie), base64url without padding. The first key encrypts; every key
//! decrypts, so secrets can be rotated without logging everyone out.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
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
    rng: SystemRandom,
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
        Ok(Self {
            keys,
            rng: SystemRandom::new(),
        })
    }

    pub fn seal(&self, purpose: Purpose, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut buf = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        buf.push(VERSION);
        buf.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        let key = self.keys.first().ok_or(SealError::NoKey)?;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose.aad()),
            &mut body,
        )
        .map_err(|_| SealError::NoKey)?;
        buf.extend_from_slice(&body);
        Ok(B64.encode(buf))
    }

    /// `None` for anything that is not a value we sealed for this purpose with a known key:
    /// tampered, truncated, foreign or garbage input all look the same.
    pub fn open(&self, purpose: Purpose, sealed: &str) -> Option<Vec<u8>> {
        if sealed.len() > 64 * 1024 {
            return None;
        }
        let mut raw = B64.decode(sealed.as_bytes()).ok()?;
        let (&version, rest) = raw.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN + 16 {
            return None;
        }
        let nonce: [u8; NONCE_LEN] = rest.get(..NONCE_LEN)?.try_into().ok()?;
        // The ciphertext and tag follow the version byte and the nonce.
        let body = 1 + NONCE_LEN..;
        let open = |key: &LessSafeKey, buf: &mut Vec<u8>| {
            let n = key
                .open_within(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(purpose.aad()),
                    buf,
                    body.clone(),
                )
                .ok()?
                .len();
            buf.truncate(n);
            Some(())
        };
        // A failed open may leave its buffer overwritten, so every key but the last works on a
        // copy; the last (with a single key, the only one) decrypts in place.
        let (last, earlier) = self.keys.split_last()?;
        for key in earlier {
            let mut buf = raw.clone();
            if open(key, &mut buf).is_some() {
                return Some(buf);
            }
        }
        open(last, &mut raw).map(|()| raw)
    }

    /// Random bytes, base64url: for state, nonce, PKCE verifiers and session ids.
    pub fn random_token(&self, bytes: usize) -> Result<String, SealError> {
        random_token(bytes)
    }
}

/// `bytes` random bytes from the system's secure generator, base64url without padding.
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
