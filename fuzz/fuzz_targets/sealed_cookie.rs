//! The sealed cookie opener and what it hands on: `Sealer::open` for every purpose, the
//! session decoder behind it, and the Redis store's ticket and record openers.
//!
//! Input: arbitrary bytes. As text they are a cookie value to open (the fuzzer cannot forge
//! AES-GCM, so this checks the base64, length and version handling in front of it). As bytes
//! they are also (a) sealed here and opened again, and (b) handed to the session decoder as
//! if they had been authenticated, which is what a leaked cookie key would let an attacker
//! send.
//!
//! Checks: nothing panics; seal → open gives the input back under its purpose only; a
//! session the decoder accepts encodes and decodes to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::seal::Purpose;
use portcullis::session::compact;
use portcullis::session::cookies::SessionCookies;
use portcullis::session::ticket::{SessionTicket, record_version};
use portcullis_fuzz::sealer;
use std::sync::OnceLock;

const PURPOSES: [Purpose; 3] = [Purpose::Session, Purpose::LoginState, Purpose::SessionId];

fn ticket() -> &'static SessionTicket {
    static TICKET: OnceLock<SessionTicket> = OnceLock::new();
    TICKET.get_or_init(|| SessionTicket::generate().expect("randomness"))
}

fuzz_target!(|data: &[u8]| {
    let sealer = sealer();
    if let Ok(text) = std::str::from_utf8(data) {
        for purpose in PURPOSES {
            let _ = sealer.open(purpose, text);
        }
        let _ = SessionCookies::open(sealer, text);
        let _ = SessionTicket::open(sealer, text);
    }

    let _ = record_version(data);
    let _ = ticket().open_record(data);

    if let Some(session) = compact::decode(data) {
        let again = compact::encode(&session).and_then(|e| compact::decode(&e));
        assert_eq!(
            again.as_ref(),
            Some(&session),
            "a decoded session does not round-trip"
        );
    }

    let sealed = sealer
        .seal(Purpose::Session, data)
        .expect("sealing never fails");
    if sealed.len() > 64 * 1024 {
        return; // over the opener's size limit
    }
    assert_eq!(
        sealer.open(Purpose::Session, &sealed).as_deref(),
        Some(data)
    );
    assert_eq!(sealer.open(Purpose::LoginState, &sealed), None);
    assert_eq!(sealer.open(Purpose::SessionId, &sealed), None);
});
