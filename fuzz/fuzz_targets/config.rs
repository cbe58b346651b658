//! The configuration loader: arbitrary TOML through `Config::from_toml` (raw parse,
//! environment overrides, validation of every key, `[[rules]]` globs and host patterns,
//! redirect domains, CIDRs, durations, URLs).
//!
//! Input: TOML text, optionally followed by a NUL byte and `KEY=VALUE` lines as the
//! environment (`PORTCULLIS_*` overrides). Inputs that mention `_file` (any case) or hold a
//! TOML unicode escape (which could spell `_file` in a quoted key) are skipped: `*_file` keys
//! read or stat the named path, and a fuzzer must not read arbitrary files.
//!
//! Checks: nothing panics; a refused configuration reports at least one problem, each on one
//! non-empty line; the client secret and cookie secret never appear in a problem or in the
//! `Debug` output of an accepted configuration. A secret counts as shown when two runs, with
//! the secret's text replaced by two different same-shape stand-ins, each show their own
//! stand-in: text the output merely assembles from other parts of the input (a key name in
//! "unknown key") is the same in both runs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::config::Config;

/// `table.key` of the input as a string, if it parses as TOML at all.
fn string_at(doc: &toml::Table, table: &str, key: &str) -> Option<String> {
    doc.get(table)?.get(key)?.as_str().map(str::to_owned)
}

/// `s` with letters and digits rotated: same length, same base64 alphabet, other text.
fn rotate(s: &str, letters: u8, digits: u8) -> String {
    s.chars()
        .map(|c| {
            let (base, n, by) = match c {
                'a'..='z' => (b'a', 26, letters),
                'A'..='Z' => (b'A', 26, letters),
                '0'..='9' => (b'0', 10, digits),
                _ => return c,
            };
            char::from(base + (c as u8 - base + by) % n)
        })
        .collect()
}

/// What the loader says about `text`: the problems, or the accepted configuration's `Debug`.
fn shown(text: &str, env: &[(String, String)]) -> String {
    match Config::from_toml(text, env) {
        Ok(cfg) => format!("{cfg:?}"),
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a reason");
            for p in &problems {
                assert!(!p.trim().is_empty() && !p.contains('\n'), "{p:?}");
            }
            problems.join("\n")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let lower = input.to_ascii_lowercase();
    if lower.contains("_file") || input.contains("\\u") || input.contains("\\U") {
        return;
    }
    let (text, env_text) = input.split_once('\0').unwrap_or((input, ""));
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = shown(text, &env);

    let Ok(doc) = text.parse::<toml::Table>() else {
        return;
    };
    for secret in [
        string_at(&doc, "oidc", "client_secret"),
        string_at(&doc, "session", "cookie_secret"),
    ]
    .into_iter()
    .flatten()
    {
        let (a, b) = (rotate(&secret, 13, 5), rotate(&secret, 7, 3));
        if secret.len() < 8 || a == secret || text.matches(secret.as_str()).count() != 1 {
            continue; // too short to tell apart, or written with escapes or more than once
        }
        if text.contains(&a) || text.contains(&b) {
            continue;
        }
        let shown_a = shown(&text.replacen(&secret, &a, 1), &env);
        let shown_b = shown(&text.replacen(&secret, &b, 1), &env);
        assert!(
            !(shown_a.contains(&a) && shown_b.contains(&b)),
            "a secret was shown: {shown_a}"
        );
    }
});
