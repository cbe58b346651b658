//! The `Cookie` header of a request → the session cookie (one value or `NAME_0`, `NAME_1`…
//! chunks) and the login-state cookies of a callback.
//!
//! Input: line 1 is the `Cookie` header, line 2 (optional) the callback's `state` parameter.
//! Placeholders let the fuzzer move genuine sealed values around (cookie tossing, chunk
//! shuffling): `@S` is a sealed small session, `@B0`…`@B2` the chunks of a sealed large one,
//! `@L` the name and value of a pending login's state cookie and `@T` its state.
//!
//! Checks: nothing panics; a session read from the header is one of the two sealed here (no
//! value the fuzzer wrote, and no mix of chunks, opens); a login attempt taken is the one
//! begun here; every `Set-Cookie` produced for the header deletes or sets a session cookie.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::config::CALLBACK_PATH;
use portcullis::identity::Identity;
use portcullis::login::state_cookies::{LoginAttempt, LoginStateCookies};
use portcullis::session::Session;
use portcullis::session::cookie_domains::CookieContext;
use portcullis::session::cookies::{
    CHUNK_SIZE, SessionCookies, SetCookie, cookies_with_prefix, find_cookie,
};
use portcullis_fuzz::{NOW, config, first_line, sealer};
use std::sync::OnceLock;

struct Fixture {
    cookies: SessionCookies,
    state_cookies: LoginStateCookies,
    small: Session,
    large: Session,
    sealed_small: String,
    large_chunks: Vec<String>,
    attempt: LoginAttempt,
    /// `name=value` of the attempt's state cookie.
    state_pair: String,
}

fn session(refresh_token_len: usize) -> Session {
    // Incompressible text, so the large session needs several chunks.
    let mut x: u32 = 0x9e37_79b9;
    let token: String = (0..refresh_token_len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                    [(x % 64) as usize],
            )
        })
        .collect();
    Session {
        id: Some(format!("sess-{refresh_token_len}")),
        identity: Identity {
            sub: "user-1".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            groups: vec!["admins".into()],
            ..Default::default()
        },
        created_at: NOW - 100,
        tokens_at: NOW - 100,
        access_expires_at: NOW + 200,
        expires_at: NOW + 3600,
        refresh_token: Some(token),
        id_token: None,
        access_token: None,
    }
}

/// The value of each `Set-Cookie` line, without its attributes.
fn values(set_cookies: &[SetCookie]) -> Vec<String> {
    set_cookies
        .iter()
        .map(|c| c.split(';').next().unwrap_or("").to_string())
        .collect()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let cfg = &config().session;
        let cookies = SessionCookies::new(cfg);
        let small = session(10);
        let large = session(2 * CHUNK_SIZE + 500);
        let sealed_small = values(
            &cookies
                .write(sealer(), &small, NOW, CookieContext::default())
                .expect("seals"),
        )
        .remove(0)
        .split_once('=')
        .expect("name=value")
        .1
        .to_string();
        let large_chunks: Vec<String> = values(
            &cookies
                .write(sealer(), &large, NOW, CookieContext::default())
                .expect("seals"),
        )
        .iter()
        .map(|v| v.split_once('=').expect("name=value").1.to_string())
        .collect();
        assert_eq!(
            large_chunks.len(),
            3,
            "the large session takes three chunks"
        );
        let state_cookies = LoginStateCookies::new(
            &cfg.cookie_name,
            CALLBACK_PATH,
            cfg.cookie_domains.clone(),
            true,
        );
        let (attempt, set_cookie) = state_cookies
            .begin(
                sealer(),
                "https://app.example.com/".into(),
                NOW - 10,
                None,
                None,
            )
            .expect("seals");
        let state_pair = set_cookie.split(';').next().unwrap_or("").to_string();
        Fixture {
            cookies,
            state_cookies,
            small,
            large,
            sealed_small,
            large_chunks,
            attempt,
            state_pair,
        }
    })
}

fn expand(text: &str, f: &Fixture) -> String {
    text.replace("@S", &f.sealed_small)
        .replace("@B0", &f.large_chunks[0])
        .replace("@B1", &f.large_chunks[1])
        .replace("@B2", &f.large_chunks[2])
        .replace("@L", &f.state_pair)
        .replace("@T", &f.attempt.state)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let (header, state) = first_line(text);
    let header = expand(header, f);
    let state = expand(state, f);

    if let Some(s) = f.cookies.read(sealer(), &header) {
        assert!(
            s == f.small || s == f.large,
            "a session nobody sealed was read: {s:?}"
        );
    }
    let name = &f.cookies.name;
    let _ = find_cookie(&header, name);
    let _ = cookies_with_prefix(&header, name).count();

    for set_cookie in f.cookies.clear(CookieContext::new(Some(&header), None)) {
        assert!(set_cookie.starts_with(name.as_str()), "{set_cookie}");
    }
    if let Some(lines) =
        f.cookies
            .write_sealed(&f.sealed_small, 60, CookieContext::new(Some(&header), None))
    {
        assert!(lines.iter().all(|l| l.starts_with(name.as_str())));
    }

    let state = (!state.is_empty()).then_some(state.as_str());
    let taken = f.state_cookies.take(
        sealer(),
        CookieContext::new(Some(&header), None),
        state,
        NOW,
    );
    let (found, clear) = (taken.attempt, taken.clear);
    if let Ok(attempt) = found {
        assert_eq!(attempt, f.attempt, "a login attempt nobody began was taken");
    }
    assert!(
        clear
            .iter()
            .all(|c| c.starts_with(&format!("{name}_csrf_")))
    );
});
