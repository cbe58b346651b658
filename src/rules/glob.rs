//! Path globs of access rules (`/admin/**`, `/assets/*.css`), matched against paths in the
//! RFC 3986 §6.2.2 normal form that the path module produces.
//!
//! A pattern starts with `/` and is a list of segments (RFC 3986 §3.3). In a segment, `*`
//! matches any run of characters (possibly none) within that one segment; a segment that is
//! exactly `**` matches any number of segments, none included. Every other character matches
//! itself, case-sensitively (RFC 3986 §6.2.2.1: only the scheme and host are
//! case-insensitive). A pattern is put into normal form when parsed (escapes of unreserved
//! characters decoded, RFC 3986 §2.3, §6.2.2.2; other escapes in uppercase hex, §6.2.2.1;
//! characters that are not `pchar` percent-encoded), so `/%41dmin` is `/Admin`. `*` is always
//! a wildcard; `%2A` matches an encoded asterisk.
//!
//! A single trailing `/` of the path is ignored (`/admin` matches `/admin/`), except for the
//! root `/`, which is one empty segment: `/` matches only the root, `/*` and `/**` match it
//! too. Matching does not allocate and takes at most about (pattern segments × path segments)
//! segment comparisons, each linear-times-pattern in the segment's length: a wildcard has a
//! single backtracking point at each level.

use super::path::{escape_at, push_normal_byte};
use std::fmt;

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    /// The pattern as written.
    source: String,
    /// The segments in normal form, runs of `**` merged into one.
    segments: Vec<Segment>,
}

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of segments.
    AnySegments,
    /// A segment without `*`, matched by equality.
    Literal(String),
    /// A segment with at least one `*`.
    Wildcard(String),
}

/// Why a path pattern was refused: the message quotes the pattern, says what is wrong and how
/// to write it.
#[derive(Debug, PartialEq, Eq)]
pub struct GlobError(pub String);

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GlobError {}

impl PathGlob {
    /// Parses and normalises `pattern` (see the module documentation).
    pub fn parse(pattern: &str) -> Result<PathGlob, GlobError> {
        let error = |message: &str| GlobError(format!("{pattern:?}: {message}"));
        let Some(body) = pattern.strip_prefix('/') else {
            return Err(error(
                "a path pattern must start with / (write \"/admin\", or \"/**\" for every path)",
            ));
        };
        check_characters(pattern.as_bytes()).map_err(error)?;
        if body.is_empty() {
            return Ok(PathGlob {
                source: pattern.to_owned(),
                segments: vec![Segment::Literal(String::new())],
            });
        }
        if let Some(stem) = pattern
            .strip_suffix('/')
            .filter(|stem| !stem.ends_with('/'))
        {
            return Err(error(&format!(
                "a pattern cannot end with / (a trailing / of the path is ignored): write \
                 {stem:?} for it alone, or \"{stem}/**\" for it and everything below it"
            )));
        }
        let mut segments = Vec::new();
        for raw in body.split('/') {
            if raw.is_empty() {
                return Err(error(
                    "empty segment (//): separate segments with a single /",
                ));
            }
            if raw == "**" {
                if segments.last() != Some(&Segment::AnySegments) {
                    segments.push(Segment::AnySegments);
                }
                continue;
            }
            if raw.contains("**") {
                return Err(error(
                    "** must be a whole segment (\"/a/**/b\"); use * to match characters \
                     within a segment",
                ));
            }
            let normal = normal_segment(raw.as_bytes()).map_err(error)?;
            if normal == "." || normal == ".." {
                return Err(error(
                    ". and .. segments are not allowed: paths are matched with dot segments \
                     removed, so write the path they lead to",
                ));
            }
            segments.push(if normal.contains('*') {
                Segment::Wildcard(normal)
            } else {
                Segment::Literal(normal)
            });
        }
        Ok(PathGlob {
            source: pattern.to_owned(),
            segments,
        })
    }

    /// Whether `normal_path`, a path in normal form (starting with `/`), matches. Anything
    /// that does not start with `/` matches nothing. Does not allocate.
    pub fn matches(&self, normal_path: &str) -> bool {
        let Some(body) = normal_path.strip_prefix('/') else {
            return false;
        };
        let body = if body.is_empty() {
            body
        } else {
            body.strip_suffix('/').unwrap_or(body)
        };
        let body = body.as_bytes();
        // The standard two-pointer wildcard algorithm over segments: `back` remembers the
        // latest `**` (the pattern index after it, and where in the path it stops absorbing
        // segments); on a mismatch it absorbs one more segment. Earlier `**`s never need to be
        // revisited, so the work is bounded by (pattern segments × path segments).
        let mut at = 0;
        let mut position = 0;
        let mut back: Option<(usize, usize)> = None;
        while let Some((segment, next)) = segment_at(body, position) {
            match self.segments.get(at) {
                Some(Segment::AnySegments) => {
                    back = Some((at + 1, position));
                    at += 1;
                }
                Some(pattern) if pattern.matches(segment) => {
                    at += 1;
                    position = next;
                }
                _ => {
                    let Some((after_any, absorbed)) = back else {
                        return false;
                    };
                    let Some((_, after_absorbed)) = segment_at(body, absorbed) else {
                        return false;
                    };
                    back = Some((after_any, after_absorbed));
                    at = after_any;
                    position = after_absorbed;
                }
            }
        }
        self.segments
            .get(at..)
            .is_some_and(|rest| rest.iter().all(|s| *s == Segment::AnySegments))
    }

    /// The pattern as written (before normalisation).
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for PathGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Segment {
    /// Whether this segment of a pattern matches one path segment.
    fn matches(&self, segment: &[u8]) -> bool {
        match self {
            Segment::AnySegments => true,
            Segment::Literal(literal) => literal.as_bytes() == segment,
            Segment::Wildcard(pattern) => wildcard_matches(pattern.as_bytes(), segment),
        }
    }
}

/// The segment of `body` (a path without its leading `/`) starting at byte `position`, and
/// where the next one starts; `None` past the last segment.
fn segment_at(body: &[u8], position: usize) -> Option<(&[u8], usize)> {
    let rest = body.get(position..)?;
    let length = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    Some((rest.get(..length)?, position + length + 1))
}

/// Whether `segment` matches `pattern`, in which `*` matches any run of bytes: the standard
/// two-pointer algorithm, backtracking only to the latest `*`.
fn wildcard_matches(pattern: &[u8], segment: &[u8]) -> bool {
    let mut p = 0;
    let mut s = 0;
    let mut back: Option<(usize, usize)> = None;
    while let Some(&byte) = segment.get(s) {
        match pattern.get(p) {
            Some(b'*') => {
                back = Some((p + 1, s));
                p += 1;
            }
            Some(&expected) if expected == byte => {
                p += 1;
                s += 1;
            }
            _ => {
                let Some((after_star, absorbed)) = back else {
                    return false;
                };
                back = Some((after_star, absorbed + 1));
                p = after_star;
                s = absorbed + 1;
            }
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
}

/// Refuses the characters a pattern may not hold, with what to write instead.
fn check_characters(pattern: &[u8]) -> Result<(), &'static str> {
    for (i, &b) in pattern.iter().enumerate() {
        match b {
            b'?' => {
                return Err(
                    "? is not allowed: patterns match the path, never the query; use * for \
                     any characters within a segment",
                );
            }
            b'#' => return Err("# is not allowed: the fragment is never part of the path"),
            b'\\' => return Err("\\ is not allowed: separate segments with /"),
            b';' => {
                return Err(
                    "; is not allowed: servers strip path parameters (;...), so paths with \
                     them are matched through their readings without them",
                );
            }
            b' ' => return Err("spaces are not allowed: write %20"),
            0x00..=0x1F | 0x7F => return Err("control characters are not allowed"),
            0x80..=0xFF => {
                return Err(
                    "non-ASCII characters are not allowed: percent-encode their UTF-8 bytes \
                     (\u{e9} is %C3%A9)",
                );
            }
            b'%' => match escape_at(pattern, i) {
                None => {
                    return Err(
                        "% must be followed by two hex digits (RFC 3986 \u{a7}2.1); write %25 \
                         for a literal %",
                    );
                }
                Some(b'/' | b'\\') => {
                    return Err(
                        "an encoded / or \\ (%2F, %5C) is not allowed: a path holding one is \
                         always ambiguous and is matched through its decoded readings; write /",
                    );
                }
                Some(0x00..=0x1F | 0x7F) => {
                    return Err(
                        "escapes of control characters (%00-%1F, %7F) are not allowed: such \
                         paths are refused before matching",
                    );
                }
                Some(_) => {}
            },
            _ => {}
        }
    }
    Ok(())
}

/// The normal form of one pattern segment (already checked by [`check_characters`]):
/// unreserved escapes decoded (RFC 3986 §6.2.2.2), other escapes in uppercase hex
/// (§6.2.2.1), characters that are neither `pchar` (§3.3) nor `*` percent-encoded.
fn normal_segment(segment: &[u8]) -> Result<String, &'static str> {
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while let Some(&b) = segment.get(i) {
        if b == b'%' {
            let decoded = escape_at(segment, i).ok_or("% must be followed by two hex digits")?;
            push_normal_byte(&mut out, decoded, true);
            i += 3;
        } else {
            push_normal_byte(&mut out, b, false);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    fn glob(pattern: &str) -> PathGlob {
        PathGlob::parse(pattern).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn matching_table() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("/", &["/"], &["/a", "/a/", "//a"]),
            (
                "/admin",
                &["/admin", "/admin/"],
                &["/admin/x", "/ADMIN", "/Admin", "/admin//", "/adminx", "/"],
            ),
            (
                "/admin/**",
                &["/admin", "/admin/", "/admin/x", "/admin/x/y", "/admin/x/"],
                &["/adminx", "/x/admin", "/"],
            ),
            ("/**", &["/", "/a", "/a/b/c", "//", "/a//b"], &[]),
            ("/*", &["/", "/a", "/a/", "/%2E%2E"], &["/a/b"]),
            (
                "/a/**/b",
                &["/a/b", "/a/x/b", "/a/x/y/b", "/a/b/b", "/a/b/"],
                &["/a", "/a/b/c", "/b"],
            ),
            (
                "/assets/*.css",
                &["/assets/site.css", "/assets/.css"],
                &["/assets/css", "/assets/a/b.css", "/assets/site.css.map"],
            ),
            (
                "/api/*/keys",
                &["/api/v1/keys", "/api//keys"],
                &["/api/keys", "/api/v1/x/keys"],
            ),
            (
                "/a*b*c",
                &["/abc", "/aXbYc", "/abbbc", "/acbc"],
                &["/ab", "/acb"],
            ),
            (
                "/**/a/**/b",
                &["/a/b", "/x/a/y/b", "/a/a/b"],
                &["/b/a", "/a"],
            ),
            ("/%41dmin", &["/Admin"], &["/admin", "/%41dmin"]),
            ("/%7euser", &["/~user"], &[]),
            ("/caf%c3%a9", &["/caf%C3%A9"], &["/caf%c3%a9"]),
            ("/a|b", &["/a%7Cb"], &["/a|b"]),
            ("/x%2a", &["/x%2A"], &["/x*", "/xy"]),
            ("/x*", &["/x*", "/x%2A", "/x"], &["/y"]),
            ("/a/**/**/b", &["/a/b", "/a/x/b"], &[]),
            (
                "/.well-known/*",
                &["/.well-known/openid-configuration"],
                &["/%2E%2E/x"],
            ),
        ];
        for (pattern, yes, no) in cases {
            let g = glob(pattern);
            assert_eq!(g.as_str(), *pattern);
            for path in *yes {
                assert!(g.matches(path), "{pattern} should match {path}");
            }
            for path in *no {
                assert!(!g.matches(path), "{pattern} should not match {path}");
            }
        }
        assert!(!glob("/**").matches(""));
        assert!(!glob("/**").matches("admin"));
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, &str)] = &[
            ("admin", "must start with /"),
            ("", "must start with /"),
            ("*", "must start with /"),
            ("/admin/", "write \"/admin\" for it alone, or \"/admin/**\""),
            ("/a//b", "empty segment"),
            ("//", "empty segment"),
            ("/a/./b", ". and .. segments"),
            ("/a/..", ". and .. segments"),
            ("/a/%2e%2E", ". and .. segments"),
            ("/a/%2e", ". and .. segments"),
            ("/admin/**x", "** must be a whole segment"),
            ("/***", "** must be a whole segment"),
            ("/a**/b", "** must be a whole segment"),
            ("/a?b", "? is not allowed"),
            ("/a#b", "# is not allowed"),
            ("/a\\b", "\\ is not allowed"),
            ("/a;b", "; is not allowed"),
            ("/a b", "%20"),
            ("/a\tb", "control characters"),
            ("/caf\u{e9}", "non-ASCII"),
            ("/a%", "two hex digits"),
            ("/a%4", "two hex digits"),
            ("/a%zz", "two hex digits"),
            ("/a%2fb", "%2F, %5C"),
            ("/a%5Cb", "%2F, %5C"),
            ("/a%00", "control characters"),
        ];
        for (pattern, needle) in cases {
            let GlobError(message) = PathGlob::parse(pattern).expect_err(pattern);
            assert!(message.contains(needle), "{pattern:?}: {message}");
            assert!(message.starts_with(&format!("{pattern:?}: ")), "{message}");
        }
        assert_eq!(
            PathGlob::parse("/admin/**x"),
            Err(GlobError(
                "\"/admin/**x\": ** must be a whole segment (\"/a/**/b\"); use * to match \
                 characters within a segment"
                    .to_owned()
            ))
        );
    }

    #[test]
    fn long_paths_are_not_exponential() {
        let g = glob("/**/a/**/a/**/a/**/a/**/b");
        let path = "/a".repeat(1000);
        let started = std::time::Instant::now();
        assert!(!g.matches(&path));
        assert!(g.matches(&format!("{path}/b")));
        let chars = glob("/*a*a*a*a*a*a*b");
        let long = format!("/{}", "a".repeat(5000));
        assert!(!chars.matches(&long));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    /// The reference: recursive, exponential, obviously right.
    fn reference(pattern: &str, path: &str) -> bool {
        fn segments(s: &str) -> Vec<&str> {
            s[1..].split('/').collect()
        }
        fn chars(p: &[u8], s: &[u8]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some((b'*', rest)) => chars(rest, s) || (!s.is_empty() && chars(p, &s[1..])),
                Some((c, rest)) => s.first() == Some(c) && chars(rest, &s[1..]),
            }
        }
        fn segs(p: &[&str], s: &[&str]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some((&"**", rest)) => segs(rest, s) || (!s.is_empty() && segs(p, &s[1..])),
                Some((first, rest)) => {
                    !s.is_empty() && chars(first.as_bytes(), s[0].as_bytes()) && segs(rest, &s[1..])
                }
            }
        }
        let path = if path.len() > 1 && path.ends_with('/') {
            &path[..path.len() - 1]
        } else {
            path
        };
        segs(&segments(pattern), &segments(path))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn agrees_with_the_reference(
            pattern in prop::collection::vec(
                prop::sample::select(vec!["**", "*", "a", "b", "ab", "a*", "*b", "a*b", "*a*", "**"]),
                0..5,
            ),
            path in prop::collection::vec(
                prop::sample::select(vec!["", "a", "b", "ab", "ba", "aab", "abb", "*"]),
                0..7,
            ),
            slash in any::<bool>(),
        ) {
            let pattern = format!("/{}", pattern.join("/"));
            let mut path = format!("/{}", path.join("/"));
            if slash {
                path.push('/');
            }
            let g = glob(&pattern);
            prop_assert_eq!(g.matches(&path), reference(&pattern, &path), "{} vs {}", pattern, path);
        }
    }
}
