//! The Redis store's two formats, pure and unit-tested without Redis:
//!
//! - the **ticket** a browser carries instead of its session: a random 16-byte id and a random
//!   32-byte key, sealed with the cookie secret (`Purpose::SessionId`). About 100 characters.
//! - the **record** stored in Redis under `portcullis:session:<hex(sha256(id))>`: the session
//!   JSON, AES-256-GCM-encrypted with the ticket's key (random nonce, the storage key bound in as
//!   associated data). Redis never sees the id or the key, so a dump of Redis alone opens
//!   nothing, and a record can't be moved to another session's slot.

use super::Session;
use crate::seal::{Purpose, SealError, Sealer, frame_nonce, open_frame, seal_frame};
use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, NONCE_LEN, UnboundKey};
use aws_lc_rs::digest;

const ID_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// First byte of every record.
const RECORD_VERSION: u8 = 1;
const RECORD_AAD: &[u8] = b"portcullis/redis-session/v1:";

/// Which version of a record was read: its nonce, unique per write. A refresh that waited for
/// another replica knows the session was rewritten when this changes.
pub type RecordVersion = [u8; NONCE_LEN];

/// An opaque pointer to a server-side session, and the key that decrypts it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionTicket {
    id: [u8; ID_LEN],
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for SessionTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionTicket(..)")
    }
}

impl SessionTicket {
    /// A new random ticket, for a new login.
    pub fn generate() -> Result<Self, SealError> {
        let mut id = [0u8; ID_LEN];
        let mut key = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| SealError::Random)?;
        aws_lc_rs::rand::fill(&mut key).map_err(|_| SealError::Random)?;
        Ok(Self { id, key })
    }

    /// The cookie value.
    pub fn seal(&self, sealer: &Sealer) -> Result<String, SealError> {
        let mut plain = [0u8; ID_LEN + KEY_LEN];
        plain[..ID_LEN].copy_from_slice(&self.id);
        plain[ID_LEN..].copy_from_slice(&self.key);
        sealer.seal(Purpose::SessionId, &plain)
    }

    /// The ticket in a cookie value; `None` for anything we did not seal.
    pub fn open(sealer: &Sealer, value: &str) -> Option<Self> {
        if value.len() > 512 {
            return None;
        }
        let plain = sealer.open(Purpose::SessionId, value)?;
        if plain.len() != ID_LEN + KEY_LEN {
            return None;
        }
        let (id, key) = plain.split_at(ID_LEN);
        Some(Self {
            id: id.try_into().ok()?,
            key: key.try_into().ok()?,
        })
    }

    /// `hex(sha256(id))`: names the session in Redis without revealing the id.
    pub(super) fn digest(&self) -> String {
        hex(digest::digest(&digest::SHA256, &self.id).as_ref())
    }

    fn cipher(&self) -> Result<LessSafeKey, SealError> {
        UnboundKey::new(&AES_256_GCM, &self.key)
            .map(LessSafeKey::new)
            .map_err(|_| SealError::NoKey)
    }

    fn aad(&self) -> Vec<u8> {
        [RECORD_AAD, super::redis::session_key(self).as_bytes()].concat()
    }

    /// The encrypted record for `session`, in the one framing of `crate::seal`.
    pub fn seal_record(&self, session: &Session) -> Result<Vec<u8>, SealError> {
        let json = serde_json::to_vec(session).map_err(|_| SealError::NoKey)?;
        seal_frame(&self.cipher()?, RECORD_VERSION, &self.aad(), &json)
    }

    /// The session in a record, and which version of the record it was; `None` when the record
    /// is not ours (tampered, truncated, another session's).
    pub fn open_record(&self, record: &[u8]) -> Option<(Session, RecordVersion)> {
        let version = record_version(record)?;
        let plain = open_frame(
            &self.cipher().ok()?,
            RECORD_VERSION,
            &self.aad(),
            record.to_vec(),
        )?;
        Some((serde_json::from_slice(&plain).ok()?, version))
    }
}

/// The version of a record, without decrypting it.
pub fn record_version(record: &[u8]) -> Option<RecordVersion> {
    frame_nonce(record, RECORD_VERSION)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            id: Some("login-1".into()),
            refresh_token: Some("refresh-token-secret".into()),
            id_token: Some("id-token".into()),
            ..crate::session::test_session(100)
        }
    }

    #[test]
    fn ticket_round_trips_through_a_small_cookie_value() {
        let sealer = Sealer::new(&[[5u8; 32]]).unwrap();
        let t = SessionTicket::generate().unwrap();
        let value = t.seal(&sealer).unwrap();
        assert!(value.len() < 120, "{}", value.len());
        assert_eq!(SessionTicket::open(&sealer, &value).unwrap(), t);
        assert_ne!(SessionTicket::generate().unwrap(), t);
        assert_eq!(format!("{t:?}"), "SessionTicket(..)");
    }

    #[test]
    fn tickets_are_bound_to_the_cookie_secret_and_purpose() {
        let sealer = Sealer::new(&[[5u8; 32]]).unwrap();
        let other = Sealer::new(&[[6u8; 32]]).unwrap();
        let t = SessionTicket::generate().unwrap();
        assert!(SessionTicket::open(&other, &t.seal(&sealer).unwrap()).is_none());
        // A cookie-store session cookie is not a ticket.
        let session_cookie = sealer.seal(Purpose::Session, &[0u8; 48]).unwrap();
        assert!(SessionTicket::open(&sealer, &session_cookie).is_none());
        let short = sealer.seal(Purpose::SessionId, &[0u8; 20]).unwrap();
        assert!(SessionTicket::open(&sealer, &short).is_none());
        assert!(SessionTicket::open(&sealer, "garbage").is_none());
    }

    #[test]
    fn the_digest_hides_the_id() {
        let t = SessionTicket {
            id: [1u8; ID_LEN],
            key: [2u8; KEY_LEN],
        };
        assert_eq!(t.digest().len(), 64);
        assert!(!t.digest().contains("0101"), "the raw id never appears");
    }

    #[test]
    fn record_round_trip_reveals_nothing_and_changes_version_per_write() {
        let t = SessionTicket::generate().unwrap();
        let rec = t.seal_record(&session()).unwrap();
        let text = String::from_utf8_lossy(&rec);
        for secret in ["alice", "user-1", "refresh-token-secret", "id-token"] {
            assert!(!text.contains(secret), "{secret} readable in the record");
        }
        let (s, v) = t.open_record(&rec).unwrap();
        assert_eq!(s, session());
        assert_eq!(record_version(&rec), Some(v));
        let again = t.seal_record(&session()).unwrap();
        assert_ne!(
            record_version(&again),
            Some(v),
            "a rewrite is a new version"
        );
    }

    #[test]
    fn records_open_only_with_their_own_ticket_and_untampered() {
        let t = SessionTicket::generate().unwrap();
        let other = SessionTicket::generate().unwrap();
        let rec = t.seal_record(&session()).unwrap();
        assert!(other.open_record(&rec).is_none());
        // Same key, different id: the record was moved to another slot.
        let moved = SessionTicket {
            id: other.id,
            key: t.key,
        };
        assert!(moved.open_record(&rec).is_none());
        let mut bad = rec.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(t.open_record(&bad).is_none());
        assert!(t.open_record(&rec[..rec.len() - 5]).is_none());
        assert!(t.open_record(&[]).is_none());
        assert!(t.open_record(&[9u8; 40]).is_none());
    }
}
