//! Fixtures shared by the fuzz targets: one fixed configuration (parsed by Portcullis' own
//! loader, so the targets see what a deployment sees), a fixed instant, a fixed key set with
//! one Ed25519 key whose private half is known here (so targets can sign what the fuzzer
//! writes and reach the claim checks behind the signature), and helpers to split an input.
//!
//! Everything is deterministic: the same input takes the same path on every run, which
//! libFuzzer needs to learn from coverage.

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use portcullis::config::Config;
use portcullis::seal::Sealer;
use portcullis::token::jwks::KeySet;
use std::sync::OnceLock;

/// The instant every target runs at.
pub const NOW: u64 = 1_800_000_000;

/// Issuer and client of the fixture configuration.
pub const ISSUER: &str = "https://sso.example.com/realms/platform";
pub const CLIENT_ID: &str = "portcullis";

/// The fixture configuration: a cookie secret plus a previous one (so opening a cookie tries
/// two keys), cookie domain, redirect domains, and rules using every matcher and action.
pub const FIXTURE_TOML: &str = r#"
public_url = "https://auth.example.com"

[oidc]
issuer_url = "https://sso.example.com/realms/platform"
client_id = "portcullis"
client_secret = "fuzz-client-secret"

[session]
cookie_secret = "q2J1dW1seS1ub3QtYS1yZWFsLXNlY3JldC0xMjM0NTY="
previous_cookie_secrets = ["AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="]
cookie_name = "_portcullis"
cookie_domain = "example.com"

[redirect]
allowed_domains = [".example.com", "app.example.org:8443", "localhost", "[::1]", "127.0.0.1"]

[authz]
email_domains = ["example.com"]
skip_preflight = true

[[rules]]
name = "health"
paths = ["/healthz", "/static/**"]
methods = ["GET", "HEAD"]
action = "public"

[[rules]]
name = "denied"
paths = ["/denied/**", "/**/secret"]
action = "deny"

[[rules]]
name = "grafana-admin"
hosts = ["grafana.example.com"]
paths = ["/admin/**", "/api/*/keys"]
methods = ["GET", "POST"]
allowed_groups = ["grafana-admins"]

[[rules]]
name = "n8n"
hosts = [".n8n.example.com"]
allowed_roles = ["automation", "n8n:editor"]

[[rules]]
name = "webhooks"
hosts = [".n8n.example.com"]
paths = ["/webhook/*"]
action = "public"

[[rules]]
name = "ip-only"
hosts = ["[::1]"]
paths = ["/local/**"]
allowed_emails = ["root@example.com"]
"#;

/// The fixture configuration, parsed once.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| match Config::from_toml(FIXTURE_TOML, &[]) {
        Ok(c) => c,
        Err(problems) => panic!("the fuzz fixture configuration is invalid: {problems:?}"),
    })
}

/// The cookie sealer of the fixture configuration (current and previous secret).
pub fn sealer() -> &'static Sealer {
    static SEALER: OnceLock<Sealer> = OnceLock::new();
    SEALER.get_or_init(|| {
        Sealer::new(config().session.keys.expose()).expect("the fixture has cookie keys")
    })
}

/// Fixed RSA-2048 and P-256 public keys (private halves discarded), so the key set holds
/// every key family. Their signatures can only be forged by the fuzzer, i.e. never.
const RSA_N: &str = "yJCApH6RgKH94M9lzDPOg-AXxvl2nkP3G2tQOkXL8xhtPmk8GBV8dSHtbE_AHAkftcU8TetwIEfXWQj1PpK14EqAIVPNFgRTuPTcpzXvTDZ5lvaq1lyQTxFXR5JhjnZPEwzvWfvIKESPmrJq-Gk4A-C8dSy3CGIY3QzWRQPzRluHoFo8GG-iGld-4BK9S1oftEnHX7F3Ou_gOKInB2jSQYSLyvHi1PpBwdRyZnUI1-m6EgTkibc3PW5VjyTPTR6YzIS0h-fZXK_XzWqgX_Zkmg3nmpOKVGGJ3RbLEpmTldUUlRVQtEsIWByUhGzlYMYtXtGR3Qa5Z2yzuuE5LXmQlQ";
const EC_X: &str = "KC6KALHRY6w7nQaR1yuS0KWeDyxjaKdmgPpomMelMAA";
const EC_Y: &str = "xd9ezJSBahZ_NXfEigqAHIfEJijbyvmY_DwYAxfvFJU";

/// The Ed25519 key the targets sign with (a fixed seed: deterministic signatures).
pub fn signing_key() -> &'static Ed25519KeyPair {
    static KEY: OnceLock<Ed25519KeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        Ed25519KeyPair::from_seed_unchecked(&[42u8; 32]).expect("a 32-byte seed is a key")
    })
}

/// The kid of [`signing_key`] in [`keyset`].
pub const SIGNING_KID: &str = "ed";

/// The JWKS document of [`keyset`]: RS256 and PS256 (same RSA key), ES256, and the EdDSA
/// signing key; the only EdDSA key, so a kid-less EdDSA token also finds it.
pub fn jwks_json() -> String {
    let ed = B64.encode(signing_key().public_key().as_ref());
    serde_json::json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256", "n": RSA_N, "e": "AQAB"},
        {"kty": "RSA", "kid": "rsa-ps", "use": "sig", "alg": "PS256", "n": RSA_N, "e": "AQAB"},
        {"kty": "EC", "kid": "ec", "use": "sig", "crv": "P-256", "x": EC_X, "y": EC_Y},
        {"kty": "OKP", "kid": SIGNING_KID, "use": "sig", "crv": "Ed25519", "x": ed},
    ]})
    .to_string()
}

/// The key set tokens are verified against.
pub fn keyset() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let set = KeySet::parse(jwks_json().as_bytes()).expect("the fixture JWKS parses");
        assert_eq!(set.len(), 4, "every fixture key is usable");
        set
    })
}

/// A compact JWS of `header` and `claims` (raw bytes, base64url-encoded as they are), signed
/// with [`signing_key`] whatever the header says.
pub fn sign(header: &[u8], claims: &[u8]) -> String {
    let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let sig = signing_key().sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig.as_ref()))
}

/// The first line of `text` and the rest (`""` when there is no newline).
pub fn first_line(text: &str) -> (&str, &str) {
    text.split_once('\n').unwrap_or((text, ""))
}

/// `Some(line)` unless the line is `-`, the corpus files' spelling of "header not sent".
pub fn optional(line: &str) -> Option<&str> {
    (line != "-").then_some(line)
}
