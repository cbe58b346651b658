//! The bytes a session cookie seals: the session's JSON, compressed with zstd.
//!
//! A session carries Keycloak's ID and refresh tokens (for logout and refresh), which makes
//! its JSON 2–4 KB, close to the 4 KB a browser keeps per cookie once encrypted and
//! base64-encoded, and it is sent with every request to every application behind the proxy.
//! Compressed, the cookie is about 30 % smaller (with Keycloak about 2.1 KB instead of 3 KB;
//! the e2e suite prints it).
//!
//! Compressing before encrypting leaks the compressed length. That matters when an attacker
//! can put chosen text next to a secret in the same compressed value and watch the length
//! (CRIME, BREACH). Nothing an attacker chooses goes into someone else's session: its
//! content comes from the user's own tokens and claims. Redirect targets and other request
//! data live in the (uncompressed) login-state cookie, never here.
//!
//! Format: `0x01` then one zstd frame (which records the JSON's size). Plain JSON (first
//! byte `{`) is still read, so cookies sealed before compression keep working. Decompressing
//! only ever runs on a value that passed AES-GCM authentication, and is capped at
//! [`MAX_JSON`] anyway.
//!
//! Why zstd and not DEFLATE: a session is mostly base64 text, which both compress to about
//! the same size, but inflating one took 6.5 µs and zstd takes 2.4 µs (with a decompression
//! context kept per thread; creating one costs more than the decompression itself).

use super::Session;
use std::cell::RefCell;

const ZSTD: u8 = 0x01;
/// Largest session JSON accepted when decompressing.
pub const MAX_JSON: usize = 64 * 1024;
/// zstd's default level: the session is compressed at login and refresh only.
const LEVEL: i32 = 3;

thread_local! {
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// The session as the bytes to seal.
pub fn encode(session: &Session) -> Option<Vec<u8>> {
    let json = serde_json::to_vec(session).ok()?;
    let compressed = zstd::bulk::compress(&json, LEVEL).ok()?;
    let mut out = Vec::with_capacity(compressed.len() + 1);
    out.push(ZSTD);
    out.extend_from_slice(&compressed);
    Some(out)
}

/// The session in opened (authenticated) bytes, compressed or legacy plain JSON.
pub fn decode(plain: &[u8]) -> Option<Session> {
    match plain.split_first()? {
        (&ZSTD, frame) => serde_json::from_slice(&decompress(frame)?).ok(),
        (b'{', _) => serde_json::from_slice(plain).ok(),
        _ => None,
    }
}

/// The frame's content, if it declares a size of at most [`MAX_JSON`] and holds exactly that.
fn decompress(frame: &[u8]) -> Option<Vec<u8>> {
    let size = zstd::zstd_safe::get_frame_content_size(frame).ok()??;
    let size = usize::try_from(size).ok().filter(|&n| n <= MAX_JSON)?;
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().ok()?);
        }
        let json = slot.as_mut()?.decompress(frame, size).ok()?;
        (json.len() == size).then_some(json)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::test_session;

    /// A session holding token-sized (random base64url) values, like a real one.
    fn realistic() -> Session {
        let token = |seed: u8| -> String {
            let header = r#"{"alg":"RS256","typ":"JWT","kid":"Xk9q3ZsL0"}"#;
            let claims = format!(
                r#"{{"exp":1795784749,"iat":1795777549,"jti":"13680c92-1579-4817-aa4a-dd11ee32{seed:02x}","iss":"https://sso.example.com/realms/platform","aud":"portcullis","sub":"a1b2c3-alice","typ":"ID","azp":"portcullis","sid":"4cc17731-818a-444a-865c-0e1d9cc2b5b1","email_verified":true,"preferred_username":"alice","email":"alice@example.com"}}"#
            );
            // A signature is random bytes: the part that does not compress.
            let sig: Vec<u8> = (0..256u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
                .collect();
            use base64::Engine;
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!(
                "{}.{}.{}",
                b.encode(header),
                b.encode(claims),
                b.encode(sig)
            )
        };
        Session {
            refresh_token: Some(token(1)),
            id_token: Some(token(2)),
            ..test_session(1000)
        }
    }

    #[test]
    fn round_trip_and_at_least_30_percent_smaller() {
        let s = realistic();
        let encoded = encode(&s).unwrap();
        assert_eq!(decode(&encoded), Some(s.clone()));
        let json = serde_json::to_vec(&s).unwrap();
        assert!(
            encoded.len() * 10 < json.len() * 7,
            "{} bytes compressed, {} as JSON",
            encoded.len(),
            json.len()
        );
    }

    #[test]
    fn plain_json_from_before_compression_is_still_read() {
        let s = realistic();
        assert_eq!(decode(&serde_json::to_vec(&s).unwrap()), Some(s));
    }

    #[test]
    fn garbage_and_bombs_are_no_session() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"\x02abc"), None);
        assert_eq!(decode(b"\x01not zstd"), None);
        assert_eq!(decode(b"{not json"), None);
        let spaces = vec![b' '; MAX_JSON * 4];
        let mut bomb = vec![ZSTD];
        bomb.extend(zstd::bulk::compress(&spaces, LEVEL).unwrap());
        assert!(bomb.len() < 1024);
        assert_eq!(decode(&bomb), None, "nothing over MAX_JSON is decompressed");
        // A frame that does not say how large it is (streamed) is refused too.
        let mut streamed = vec![ZSTD];
        streamed.extend(zstd::stream::encode_all(&b"{}"[..], LEVEL).unwrap());
        assert_eq!(decode(&streamed), None);
        // A valid frame with bytes after it.
        let mut trailing = encode(&realistic()).unwrap();
        trailing.push(0);
        assert_eq!(decode(&trailing), None);
    }
}
