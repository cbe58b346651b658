//! The readings of the path of a forwarded request (`X-Forwarded-Uri`).
//!
//! An attacker can spell a path so that the auth proxy and the upstream server read it
//! differently (`/public/..%2fadmin`, `/..;/admin`, `%252e`, `\`, `//`, `#`). Instead of
//! guessing how the upstream reads it, [`forwarded_path`] computes every plausible reading,
//! each in the normal form of RFC 3986 §6.2.2, so that the rule engine can take the strictest
//! verdict over all of them.
//!
//! The readings are the closure of the raw path under five transforms that real servers
//! apply in some order or other:
//!
//! * T1: decode every percent-escape once (RFC 3986 §2.1); applied again, it decodes double
//!   encodings (`%252e` → `%2e` → `.`);
//! * T2: read `\` as `/`;
//! * T3: strip path parameters, from the first `;` of a segment to its end (RFC 3986 §3.3;
//!   Tomcat, Jetty, Spring);
//! * T4: merge runs of `/` (nginx `merge_slashes`);
//! * T5: remove dot segments (RFC 3986 §5.2.4) before decoding.
//!
//! When the path is ended by a raw `#`, the reading in which the `#` and what follows it (up
//! to `?`) belong to the path is added as well. A `#` in the query is part of the query.
//!
//! The normal form of a reading (RFC 3986 §6.2.2): escapes of unreserved characters are
//! decoded (§2.3, §6.2.2.2), every other escape is kept with uppercase hex (§6.2.2.1), every
//! character that is neither a `pchar` nor `/` (§3.3) is percent-encoded (its UTF-8 bytes),
//! and dot segments are removed (§5.2.4, §6.2.2.3; a path never climbs above the root). One
//! exception keeps the readings apart: a segment that is `.` or `..` only once decoded
//! (`%2e`, `.%2E`, `%2E%2e`, ...) is written `%2E` or `%2E%2E` and is not removed, because a
//! server that resolves dot segments before decoding keeps it as a name. So
//! `/a/%2e%2e/b` has the readings `/a/%2E%2E/b` and `/b`.

use std::borrow::Cow;
use std::fmt;

/// The most distinct raw readings a path may have before it is refused as
/// [`PathError::TooAmbiguous`].
pub const MAX_READINGS: usize = 64;

/// How the path of a forwarded request reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardedPath<'a> {
    /// Every server reads it the same way: the RFC 3986 §6 normal form. Borrowed from the
    /// header when the path was already in normal form and could be read in only one way.
    Clean(Cow<'a, str>),
    /// Servers may read it differently: every plausible reading, each in normal form,
    /// deduplicated, sorted (byte order), 2..=[`MAX_READINGS`] entries.
    Ambiguous(Vec<String>),
}

impl ForwardedPath<'_> {
    /// Every reading in normal form: the one of a clean path, or all of an ambiguous one.
    pub fn readings(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[String]) = match self {
            ForwardedPath::Clean(path) => (Some(path), &[]),
            ForwardedPath::Ambiguous(readings) => (None, readings),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }

    /// Whether servers may read the path differently.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, ForwardedPath::Ambiguous(_))
    }
}

/// Why a forwarded path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The path does not start with `/` (RFC 3986 §3.3 `path-absolute`).
    NotAbsolute,
    /// The path holds a byte that is not visible ASCII (controls, space, DEL, non-ASCII).
    BadCharacter,
    /// A `%` is not followed by two hex digits (RFC 3986 §2.1).
    BadEscape,
    /// An escape, at some decoding depth, stands for a control byte (0x00–0x1F, 0x7F).
    ControlCharacter,
    /// Decoding the escapes once does not give UTF-8 (this includes overlong forms such as
    /// `%C0%AE`).
    InvalidUtf8,
    /// The path has more than [`MAX_READINGS`] readings.
    TooAmbiguous,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotAbsolute => "the path does not start with /",
            PathError::BadCharacter => "the path holds a character that is not allowed",
            PathError::BadEscape => "the path holds a % that is not followed by two hex digits",
            PathError::ControlCharacter => "the path encodes a control character",
            PathError::InvalidUtf8 => "the path does not decode to UTF-8",
            PathError::TooAmbiguous => "the path can be read in too many ways",
        })
    }
}

impl std::error::Error for PathError {}

/// The readings of the path of `uri`, the request target as forwarded
/// (`/admin/users?x=1`).
///
/// The path is `uri` up to the first `?` or `#` (RFC 3986 §3.3–§3.5). A path that is already
/// in normal form and has a single reading (no `%`, `\`, `;`, `//`, dot segment, and not ended
/// by `#`) is returned borrowed, without allocating.
///
/// Invalid UTF-8 from the first decoding is [`PathError::InvalidUtf8`]; from a deeper one
/// (`%25C0`) it is kept as a reading, its bytes percent-encoded in normal form.
pub fn forwarded_path(uri: &str) -> Result<ForwardedPath<'_>, PathError> {
    if let Some(path) = plain_path(uri) {
        return Ok(ForwardedPath::Clean(Cow::Borrowed(path)));
    }
    let end = uri
        .bytes()
        .position(|b| b == b'?' || b == b'#')
        .unwrap_or(uri.len());
    let (path, rest) = uri.split_at_checked(end).unwrap_or((uri, ""));
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    read_slow(path, rest)
}

/// A byte that may stay as it is in a plain path: `pchar` (RFC 3986 §3.3) less `%` (escapes
/// need decoding) and `;` (path parameters).
const PLAIN: u8 = 0;
/// `/`.
const SLASH: u8 = 1;
/// `?`, the end of the path.
const QUERY: u8 = 2;
/// Anything else, `#` included: the path needs the slow path.
const OTHER: u8 = 3;

/// The class of every byte for [`plain_path`].
const CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if b == b'/' {
            SLASH
        } else if b == b'?' {
            QUERY
        } else if is_pchar_raw(b) && b != b';' {
            PLAIN
        } else {
            OTHER
        };
        i += 1;
    }
    table
};

/// The path of `uri` if it is in normal form and has a single reading: it starts with `/`,
/// holds only [`PLAIN`] bytes and `/`, no empty segment inside (`//`), no `.` or `..`
/// segment, and is ended by `?` or the end of `uri` (not by `#`). One pass, no allocation.
fn plain_path(uri: &str) -> Option<&str> {
    let bytes = uri.as_bytes();
    if bytes.first() != Some(&b'/') {
        return None;
    }
    // What the current segment is so far: 0 empty, 1 ".", 2 "..", 3 anything else.
    let mut segment = 0u8;
    let mut end = bytes.len();
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        match CLASS.get(usize::from(b)).copied().unwrap_or(OTHER) {
            PLAIN => {
                segment = if b == b'.' && segment < 3 {
                    segment + 1
                } else {
                    3
                }
            }
            SLASH if segment == 3 => segment = 0,
            QUERY => {
                end = i;
                break;
            }
            _ => return None,
        }
    }
    if segment == 1 || segment == 2 {
        return None;
    }
    uri.get(..end)
}

/// The readings of `path`, followed in the request target by `rest` (empty, or starting with
/// `?` or `#`), without the fast path.
fn read_slow<'a>(path: &str, rest: &str) -> Result<ForwardedPath<'a>, PathError> {
    validate(path.as_bytes())?;
    let mut seeds = vec![path.as_bytes().to_vec()];
    if let Some(after_hash) = rest.strip_prefix('#') {
        let fragment = after_hash.split('?').next().unwrap_or("");
        validate(fragment.as_bytes())?;
        let mut with_fragment = path.as_bytes().to_vec();
        with_fragment.extend_from_slice(b"%23");
        for &b in fragment.as_bytes() {
            if b == b'#' {
                with_fragment.extend_from_slice(b"%23");
            } else {
                with_fragment.push(b);
            }
        }
        seeds.push(with_fragment);
    }
    for seed in &seeds {
        if std::str::from_utf8(&decode_once(seed)?).is_err() {
            return Err(PathError::InvalidUtf8);
        }
    }
    let readings = closure(seeds)?;
    let mut normal: Vec<String> = readings.iter().map(|r| normal_form(r)).collect();
    normal.sort_unstable();
    normal.dedup();
    Ok(match <[String; 1]>::try_from(normal) {
        Ok([only]) => ForwardedPath::Clean(Cow::Owned(only)),
        Err(normal) => ForwardedPath::Ambiguous(normal),
    })
}

/// Checks the raw bytes: visible ASCII only, every `%` starting an escape (RFC 3986 §2.1).
fn validate(raw: &[u8]) -> Result<(), PathError> {
    for (i, &b) in raw.iter().enumerate() {
        if !(0x21..=0x7E).contains(&b) {
            return Err(PathError::BadCharacter);
        }
        if b == b'%' && escape_at(raw, i).is_none() {
            return Err(PathError::BadEscape);
        }
    }
    Ok(())
}

/// The closure of `seeds` under T1..T5, breadth-first, in order of discovery.
fn closure(seeds: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, PathError> {
    let mut readings: Vec<Vec<u8>> = Vec::with_capacity(8);
    for seed in seeds {
        if !readings.contains(&seed) {
            readings.push(seed);
        }
    }
    let mut next = 0;
    while let Some(reading) = readings.get(next) {
        let found = [
            decode_once(reading)?,
            backslash_as_slash(reading),
            strip_parameters(reading),
            merge_slashes(reading),
            remove_raw_dot_segments(reading),
        ];
        for candidate in found {
            if !readings.contains(&candidate) {
                readings.push(candidate);
                if readings.len() > MAX_READINGS {
                    return Err(PathError::TooAmbiguous);
                }
            }
        }
        next += 1;
    }
    Ok(readings)
}

/// T1: decodes every escape once (RFC 3986 §2.1); a `%` that starts no escape stays.
fn decode_once(reading: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(reading.len());
    let mut i = 0;
    while let Some(&b) = reading.get(i) {
        if let Some(decoded) = escape_at(reading, i) {
            if is_control(decoded) {
                return Err(PathError::ControlCharacter);
            }
            out.push(decoded);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// T2: reads every `\` as `/` (Windows servers, some frameworks).
fn backslash_as_slash(reading: &[u8]) -> Vec<u8> {
    reading
        .iter()
        .map(|&b| if b == b'\\' { b'/' } else { b })
        .collect()
}

/// T3: drops, in every segment, everything from its first `;` to its end (RFC 3986 §3.3
/// leaves the meaning of `;` to the server; Tomcat, Jetty and Spring drop parameters).
fn strip_parameters(reading: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(reading.len());
    let mut in_parameters = false;
    for &b in reading {
        if b == b'/' {
            in_parameters = false;
            out.push(b);
        } else if b == b';' {
            in_parameters = true;
        } else if !in_parameters {
            out.push(b);
        }
    }
    out
}

/// T4: merges every run of `/` into one.
fn merge_slashes(reading: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(reading.len());
    for &b in reading {
        if !(b == b'/' && out.last() == Some(&b'/')) {
            out.push(b);
        }
    }
    out
}

/// T5: removes dot segments (RFC 3986 §5.2.4) without decoding first.
fn remove_raw_dot_segments(reading: &[u8]) -> Vec<u8> {
    let body = reading.strip_prefix(b"/").unwrap_or(reading);
    let (kept, trailing_slash) = resolve_dots(body.split(|&b| b == b'/'));
    let mut out = Vec::with_capacity(reading.len());
    for segment in kept {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push(b'/');
    }
    out
}

/// RFC 3986 §5.2.4 on an absolute path given as its segments (what follows each `/`): the
/// segments kept, and whether the path ends with a `/` that a final dot segment left.
fn resolve_dots<'s, T>(segments: impl Iterator<Item = &'s T>) -> (Vec<&'s T>, bool)
where
    T: AsRef<[u8]> + ?Sized + 's,
{
    let mut kept = Vec::new();
    let mut trailing_slash = false;
    for segment in segments {
        trailing_slash = false;
        match segment.as_ref() {
            b"." => trailing_slash = true,
            b".." => {
                kept.pop();
                trailing_slash = true;
            }
            _ => kept.push(segment),
        }
    }
    (kept, trailing_slash)
}

/// The normal form of a reading (RFC 3986 §6.2.2; see the module documentation).
fn normal_form(reading: &[u8]) -> String {
    let body = reading.strip_prefix(b"/").unwrap_or(reading);
    let segments: Vec<String> = body.split(|&b| b == b'/').map(normal_segment).collect();
    let (kept, trailing_slash) = resolve_dots(segments.iter());
    let mut out = String::with_capacity(reading.len() + 8);
    for segment in kept {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    out
}

/// The normal form of one segment: unreserved escapes decoded (RFC 3986 §6.2.2.2), other
/// escapes in uppercase (§6.2.2.1), bytes that are not `pchar` (§3.3) percent-encoded; a
/// segment that is a dot segment only once decoded is written `%2E` or `%2E%2E`.
fn normal_segment(segment: &[u8]) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut had_escape = false;
    let mut i = 0;
    while let Some(&b) = segment.get(i) {
        if let Some(decoded) = escape_at(segment, i) {
            had_escape = true;
            push_normal_byte(&mut out, decoded, true);
            i += 3;
        } else {
            push_normal_byte(&mut out, b, false);
            i += 1;
        }
    }
    if had_escape {
        if out == "." {
            return "%2E".to_owned();
        }
        if out == ".." {
            return "%2E%2E".to_owned();
        }
    }
    out
}

/// Appends `b` in normal form: raw if unreserved, or if a `pchar` that was not escaped;
/// otherwise as an escape with uppercase hex.
pub(super) fn push_normal_byte(out: &mut String, b: u8, was_escaped: bool) {
    if is_unreserved(b) || (!was_escaped && is_pchar_raw(b)) {
        out.push(char::from(b));
    } else {
        out.push('%');
        out.push(char::from(hex_digit(b >> 4)));
        out.push(char::from(hex_digit(b & 0x0F)));
    }
}

/// The byte escaped at `i` if `bytes[i..]` starts with `%` and two hex digits.
pub(super) fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    match bytes.get(i..i.checked_add(3)?)? {
        [b'%', high, low] => Some(hex_value(*high)? << 4 | hex_value(*low)?),
        _ => None,
    }
}

/// The value of a hex digit.
pub(super) fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The uppercase hex digit of the low four bits of `n`.
pub(super) fn hex_digit(n: u8) -> u8 {
    match n & 0x0F {
        d @ 0..=9 => b'0' + d,
        d => b'A' + (d - 10),
    }
}

/// C0 controls and DEL.
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

/// `unreserved` (RFC 3986 §2.3).
pub(super) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `pchar` less `pct-encoded` (RFC 3986 §3.3): unreserved, sub-delims, `:` and `@`.
pub(super) const fn is_pchar_raw(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    fn clean(path: &str) -> Result<ForwardedPath<'static>, PathError> {
        Ok(ForwardedPath::Clean(Cow::Owned(path.to_owned())))
    }

    fn ambiguous(readings: &[&str]) -> Result<ForwardedPath<'static>, PathError> {
        let mut readings: Vec<String> = readings.iter().map(|r| (*r).to_owned()).collect();
        readings.sort();
        Ok(ForwardedPath::Ambiguous(readings))
    }

    /// The normal forms of the readings, as a sorted list.
    fn readings_of(uri: &str) -> Option<Vec<String>> {
        forwarded_path(uri)
            .ok()
            .map(|p| p.readings().map(str::to_owned).collect())
    }

    #[test]
    fn table() {
        let cases: &[(&str, Result<ForwardedPath<'static>, PathError>)] = &[
            // Plain paths.
            ("/", clean("/")),
            ("/admin", clean("/admin")),
            ("/a/b/", clean("/a/b/")),
            ("/ADMIN", clean("/ADMIN")),
            (
                "/.well-known/openid-configuration",
                clean("/.well-known/openid-configuration"),
            ),
            ("/a..b/c.", clean("/a..b/c.")),
            ("/admin.", clean("/admin.")),
            ("/a:b@c!$&'()*+,=~", clean("/a:b@c!$&'()*+,=~")),
            // Query and fragment end the path.
            ("/public?x=/../admin", clean("/public")),
            ("/public?x=..%2f#/../admin", clean("/public")),
            ("/?", clean("/")),
            // Dot segments (RFC 3986 §5.2.4).
            ("/a/./b", clean("/a/b")),
            ("/a/../b", clean("/b")),
            ("/a/b/.", clean("/a/b/")),
            ("/a/b/..", clean("/a/")),
            ("/..", clean("/")),
            ("/../../etc/passwd", clean("/etc/passwd")),
            ("/.", clean("/")),
            // Unreserved escapes decode, others are uppercased.
            ("/a%41", clean("/aA")),
            ("/%7euser", clean("/~user")),
            ("/caf%c3%a9", clean("/caf%C3%A9")),
            ("/a%20b", clean("/a%20b")),
            ("/100%25", clean("/100%25")),
            ("/a%23b", clean("/a%23b")),
            ("/a%3fb", clean("/a%3Fb")),
            ("/a\"b", clean("/a%22b")),
            ("/a|b{c}", clean("/a%7Cb%7Bc%7D")),
            // Encoded dots: servers that decode first resolve them, others keep them.
            ("/a/%2e%2e/b", ambiguous(&["/a/%2E%2E/b", "/b"])),
            ("/a/%2e/b", ambiguous(&["/a/%2E/b", "/a/b"])),
            ("/a/.%2E/b", ambiguous(&["/a/%2E%2E/b", "/b"])),
            ("/%2e%2e/admin", ambiguous(&["/%2E%2E/admin", "/admin"])),
            (
                "/static/%252e%252e/admin",
                ambiguous(&["/static/%252e%252e/admin", "/static/%2E%2E/admin", "/admin"]),
            ),
            // Encoded separators.
            (
                "/public/..%2fadmin",
                ambiguous(&["/admin", "/public/..%2Fadmin"]),
            ),
            ("/admin%2f..", ambiguous(&["/", "/admin%2F.."])),
            ("/a%252fb", ambiguous(&["/a%252fb", "/a%2Fb", "/a/b"])),
            ("/a%5cb", ambiguous(&["/a%5Cb", "/a/b"])),
            ("/a\\b", ambiguous(&["/a%5Cb", "/a/b"])),
            (
                "/public\\..\\admin",
                ambiguous(&["/public%5C..%5Cadmin", "/admin"]),
            ),
            // Path parameters.
            ("/a;x=1/b", ambiguous(&["/a;x=1/b", "/a/b"])),
            ("/..;/admin", ambiguous(&["/..;/admin", "/admin"])),
            (
                "/public/..;/admin",
                ambiguous(&["/public/..;/admin", "/admin"]),
            ),
            (
                "/admin;jsessionid=1A2B",
                ambiguous(&["/admin", "/admin;jsessionid=1A2B"]),
            ),
            (
                "/app;jsessionid=1A2B/admin",
                ambiguous(&["/app/admin", "/app;jsessionid=1A2B/admin"]),
            ),
            ("/a%3bx/b", ambiguous(&["/a%3Bx/b", "/a;x/b", "/a/b"])),
            // Empty segments.
            ("//admin", ambiguous(&["//admin", "/admin"])),
            ("/a//b/", ambiguous(&["/a//b/", "/a/b/"])),
            ("/public//../admin", ambiguous(&["/public/admin", "/admin"])),
            // Fragments.
            ("/public#/../admin", ambiguous(&["/public", "/admin"])),
            ("/a#b", ambiguous(&["/a", "/a%23b"])),
            ("/a#b#c?d", ambiguous(&["/a", "/a%23b%23c"])),
            ("/a#", ambiguous(&["/a", "/a%23"])),
            // Errors.
            ("", Err(PathError::NotAbsolute)),
            ("admin", Err(PathError::NotAbsolute)),
            ("?/admin", Err(PathError::NotAbsolute)),
            ("#/admin", Err(PathError::NotAbsolute)),
            ("*", Err(PathError::NotAbsolute)),
            ("http://host/admin", Err(PathError::NotAbsolute)),
            ("/a b", Err(PathError::BadCharacter)),
            ("/a\tb", Err(PathError::BadCharacter)),
            ("/a\u{7f}", Err(PathError::BadCharacter)),
            ("/caf\u{e9}", Err(PathError::BadCharacter)),
            ("/a#b c", Err(PathError::BadCharacter)),
            ("/a%", Err(PathError::BadEscape)),
            ("/a%2", Err(PathError::BadEscape)),
            ("/a%zz", Err(PathError::BadEscape)),
            ("/a%%41", Err(PathError::BadEscape)),
            ("/a#%x", Err(PathError::BadEscape)),
            ("/a%00", Err(PathError::ControlCharacter)),
            ("/a%0d%0aSet-Cookie:x", Err(PathError::ControlCharacter)),
            ("/a%7F", Err(PathError::ControlCharacter)),
            ("/a%2500", Err(PathError::ControlCharacter)),
            ("/a%25250a", Err(PathError::ControlCharacter)),
            ("/a#%0a", Err(PathError::ControlCharacter)),
            ("/%c0%ae%c0%ae/admin", Err(PathError::InvalidUtf8)),
            ("/a/%ff", Err(PathError::InvalidUtf8)),
            ("/a/%c3", Err(PathError::InvalidUtf8)),
            ("/a/%ed%a0%80", Err(PathError::InvalidUtf8)),
        ];
        for (uri, expected) in cases {
            assert_eq!(&forwarded_path(uri), expected, "{uri:?}");
        }
    }

    #[test]
    fn invalid_utf8_from_a_second_decoding_is_a_reading() {
        assert_eq!(
            forwarded_path("/a/%25ff"),
            ambiguous(&["/a/%25ff", "/a/%FF"])
        );
    }

    #[test]
    fn too_many_readings() {
        let uri = "/%2525252525252525252525252525252525252525252525252541\\;x//./";
        assert_eq!(forwarded_path(uri), Err(PathError::TooAmbiguous));
        let deep = format!("/%{}41", "25".repeat(MAX_READINGS + 1));
        assert_eq!(forwarded_path(&deep), Err(PathError::TooAmbiguous));
    }

    #[test]
    fn plain_paths_are_borrowed() {
        for uri in [
            "/",
            "/api/v1/users/123?x=1",
            "/a/b/",
            "/.well-known/x",
            "/a.",
            "/..a",
        ] {
            assert!(
                matches!(
                    forwarded_path(uri),
                    Ok(ForwardedPath::Clean(Cow::Borrowed(_)))
                ),
                "{uri:?}"
            );
        }
        for uri in [
            "/a/./b", "/a/..", "/a//b", "/a;b", "/a%41", "/a\\b", "/a#b", "/a\"b",
        ] {
            assert!(
                !matches!(
                    forwarded_path(uri),
                    Ok(ForwardedPath::Clean(Cow::Borrowed(_)))
                ),
                "{uri:?}"
            );
        }
    }

    #[test]
    fn readings_iterates_every_reading() {
        assert_eq!(readings_of("/a/./b"), Some(vec!["/a/b".to_owned()]));
        assert_eq!(
            readings_of("//a"),
            Some(vec!["//a".to_owned(), "/a".to_owned()])
        );
        assert!(forwarded_path("//a").unwrap().is_ambiguous());
        assert!(!forwarded_path("/a").unwrap().is_ambiguous());
    }

    #[test]
    fn normal_form_is_idempotent_and_its_own_reading() {
        for uri in [
            "/a/%2e%2e/b",
            "/x/%7e/%c3%a9/",
            "/a%2fb/.%2e",
            "/%252e",
            "/a|b",
        ] {
            for reading in readings_of(uri).unwrap() {
                assert_eq!(normal_form(reading.as_bytes()), reading, "{uri:?}");
            }
        }
    }

    #[test]
    fn errors_display_short_messages() {
        assert_eq!(
            PathError::NotAbsolute.to_string(),
            "the path does not start with /"
        );
        let err: Box<dyn std::error::Error> = Box::new(PathError::TooAmbiguous);
        assert!(!err.to_string().is_empty());
    }

    /// The transforms a server may apply to the raw path.
    fn transforms(raw: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![
            backslash_as_slash(raw),
            strip_parameters(raw),
            merge_slashes(raw),
            remove_raw_dot_segments(raw),
        ];
        if let Ok(decoded) = decode_once(raw) {
            out.push(decoded);
        }
        out
    }

    fn tricky_path() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "admin", "public", ".", "..", "%2e", "%2E%2e", "%2f", "%5c", "\\", ";x", "..;", "%25",
            "%252e", "", "a%41",
        ]);
        let segment = prop::collection::vec(piece, 1..=2).prop_map(|p| p.concat());
        (prop::collection::vec(segment, 1..=5), any::<bool>()).prop_map(|(segments, slash)| {
            let mut path = format!("/{}", segments.join("/"));
            if slash {
                path.push('/');
            }
            path
        })
    }

    fn plain_path() -> impl Strategy<Value = String> {
        "(/[a-zA-Z0-9._~!$&'()*+,=:@-]{0,6}){1,5}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn readings_are_closed_under_the_transforms(path in tricky_path()) {
            let Ok(readings) = forwarded_path(&path) else { return Ok(()) };
            let readings: Vec<&str> = readings.readings().collect();
            for transformed in transforms(path.as_bytes()) {
                let Ok(transformed) = String::from_utf8(transformed) else { continue };
                if transformed.contains(['?', '#']) {
                    continue;
                }
                if let Ok(sub) = forwarded_path(&transformed) {
                    for reading in sub.readings() {
                        prop_assert!(
                            readings.contains(&reading),
                            "{transformed:?} reads as {reading:?}, not a reading of {path:?}: {readings:?}"
                        );
                    }
                }
            }
        }

        #[test]
        fn fast_path_agrees_with_slow_path(path in prop_oneof![tricky_path(), plain_path()]) {
            let fast = forwarded_path(&path);
            let slow = read_slow(&path, "");
            prop_assert_eq!(&fast, &slow);
            if let Ok(ForwardedPath::Clean(Cow::Borrowed(p))) = fast {
                prop_assert_eq!(p, path.as_str());
                prop_assert!(matches!(slow, Ok(ForwardedPath::Clean(_))));
            }
        }

        #[test]
        fn never_panics(uri in "[/%a-fA-F0-9.;\\\\#?~ ]{0,24}") {
            if let Ok(path) = forwarded_path(&uri) {
                let readings: Vec<&str> = path.readings().collect();
                prop_assert!(!readings.is_empty() && readings.len() <= MAX_READINGS);
                prop_assert!(readings.iter().all(|r| r.starts_with('/')));
                prop_assert!(readings.windows(2).all(|w| w[0] < w[1]));
                prop_assert_eq!(path.is_ambiguous(), readings.len() > 1);
            }
        }
    }
}
