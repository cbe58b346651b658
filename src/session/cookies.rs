//! Reading and writing the session cookie: AEAD-sealed JSON, split into `NAME_0`, `NAME_1`…
//! when the sealed value is larger than one cookie should be, reassembled on read. A cookie
//! that is tampered, truncated, foreign or sealed with an unknown key is simply no session.
//!
//! A `Cookie` header may carry several cookies of our name: with `cookie_domain` set, any host
//! under that domain can set one ("cookie tossing"), and a longer `Path` makes browsers send
//! it before ours (RFC 6265 §5.4). So the header is read into [`SessionCookieValues`]: every
//! candidate value, bounded. One value (the normal case) is taken as it is, with no more work
//! than before; several are all tried by the caller ([`crate::access`]), which decides what
//! happens when more than one opens.

use super::Session;
use super::cookie_domains::{CookieContext, CookieDomains};
use crate::clock::UnixTime;
use crate::config::SessionConfig;
use crate::seal::{Purpose, Sealer};
use std::borrow::Cow;

/// Largest value per cookie; browsers allow ~4096 bytes for name, value and attributes.
pub const CHUNK_SIZE: usize = 3800;
/// We never read more chunks than this (a forged header can't make us assemble megabytes).
const MAX_CHUNKS: usize = 8;
/// Unchunked values of our name kept from one header: the **last** ones, since browsers send
/// our own cookie (`Path=/`, the shortest path) after those tossed with longer paths.
const MAX_WHOLE_VALUES: usize = 4;

/// Encodes, decodes and clears the session cookie per `[session]`.
#[derive(Debug)]
pub struct SessionCookies {
    pub name: String,
    domains: CookieDomains,
    secure: bool,
}

impl SessionCookies {
    pub fn new(cfg: &SessionConfig) -> Self {
        Self {
            name: cfg.cookie_name.clone(),
            domains: cfg.cookie_domains.clone(),
            secure: cfg.cookie_secure,
        }
    }

    /// The session in a `Cookie` header, if it carries exactly one session cookie (whole or
    /// chunked) and that one is valid.
    pub fn read(&self, sealer: &Sealer, cookie_header: &str) -> Option<Session> {
        Self::open(sealer, &self.sealed_value(cookie_header)?)
    }

    /// The session in a sealed cookie value, if it is valid.
    pub fn open(sealer: &Sealer, sealed: &str) -> Option<Session> {
        super::compact::decode(&sealer.open(Purpose::Session, sealed)?)
    }

    /// The sealed value, reassembled from chunks when needed, when the header carries exactly
    /// one; `None` when it carries none **or several** (see [`Self::values`]).
    pub fn sealed_value<'a>(&'a self, cookie_header: &'a str) -> Option<Cow<'a, str>> {
        self.values(cookie_header).single()
    }

    /// Every session cookie value in a `Cookie` header, in one pass and without allocating.
    pub fn values<'a>(&'a self, cookie_header: &'a str) -> SessionCookieValues<'a> {
        let mut found = SessionCookieValues {
            header: cookie_header,
            name: &self.name,
            whole: [""; MAX_WHOLE_VALUES],
            whole_kept: 0,
            chunked: false,
        };
        for (rest, v) in session_pairs(cookie_header, &self.name) {
            if rest.is_empty() {
                found.push_whole(v);
            } else if chunk_index(rest) == Some(0) {
                found.chunked = true;
            }
        }
        found
    }

    /// `Set-Cookie` values that store `session`, clearing chunks the request carried that the
    /// new value no longer uses; for the domain of the request's host.
    pub fn write(
        &self,
        sealer: &Sealer,
        session: &Session,
        now: UnixTime,
        request: CookieContext<'_>,
    ) -> Option<Vec<SetCookie>> {
        let sealed = sealer
            .seal(Purpose::Session, &super::compact::encode(session)?)
            .ok()?;
        self.write_sealed(&sealed, session.expires_at.saturating_sub(now), request)
    }

    /// `Set-Cookie` values that store an already sealed value (chunked when large), clearing
    /// chunks the request carried that the new value no longer uses.
    pub fn write_sealed(
        &self,
        sealed: &str,
        max_age: u64,
        request: CookieContext<'_>,
    ) -> Option<Vec<SetCookie>> {
        let mut out = Vec::new();
        let present = |name: &str| {
            request
                .header
                .is_some_and(|h| find_cookie(h, name).is_some())
        };
        let host = request.host;
        if sealed.len() <= CHUNK_SIZE {
            out.push(self.set_cookie(&self.name, sealed, max_age, host));
            for i in 0..MAX_CHUNKS {
                if present(&self.chunk_name(i)) {
                    out.push(self.set_cookie(&self.chunk_name(i), "", 0, host));
                }
            }
        } else {
            let chunks: Vec<&str> = sealed
                .as_bytes()
                .chunks(CHUNK_SIZE)
                .filter_map(|c| std::str::from_utf8(c).ok())
                .collect();
            if chunks.len() > MAX_CHUNKS {
                return None;
            }
            for (i, c) in chunks.iter().enumerate() {
                out.push(self.set_cookie(&self.chunk_name(i), c, max_age, host));
            }
            if present(&self.name) {
                out.push(self.set_cookie(&self.name, "", 0, host));
            }
            for i in chunks.len()..MAX_CHUNKS {
                if present(&self.chunk_name(i)) {
                    out.push(self.set_cookie(&self.chunk_name(i), "", 0, host));
                }
            }
        }
        Some(out)
    }

    /// `Set-Cookie` values that delete every session cookie the request carried (or the main
    /// one when there is no request header).
    pub fn clear(&self, request: CookieContext<'_>) -> Vec<SetCookie> {
        let mut out = vec![self.set_cookie(&self.name, "", 0, request.host)];
        for i in 0..MAX_CHUNKS {
            let name = self.chunk_name(i);
            if request
                .header
                .is_some_and(|h| find_cookie(h, &name).is_some())
            {
                out.push(self.set_cookie(&name, "", 0, request.host));
            }
        }
        out
    }

    fn chunk_name(&self, i: usize) -> String {
        format!("{}_{i}", self.name)
    }

    /// One `Set-Cookie` value with the session attributes, for the domain of `host` (the
    /// request's; [`CookieDomains::for_host`]); `max_age` 0 deletes.
    pub fn set_cookie(
        &self,
        name: &str,
        value: &str,
        max_age: u64,
        host: Option<&str>,
    ) -> SetCookie {
        set_cookie(
            name,
            value,
            "/",
            self.domains.for_host(host),
            self.secure,
            max_age,
        )
    }
}

/// `_N` (one digit below [`MAX_CHUNKS`]) after the cookie name: the index of a chunk.
fn chunk_index(rest: &str) -> Option<usize> {
    match rest.as_bytes() {
        [b'_', d @ b'0'..=b'9'] => Some(usize::from(d - b'0')).filter(|i| *i < MAX_CHUNKS),
        _ => None,
    }
}

/// Every `(rest, value)` of a cookie whose name starts with `name`, `rest` being what follows
/// it (`""` for the session cookie itself, `_0` for its first chunk).
fn session_pairs<'a>(header: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
    pairs(header).filter_map(move |pair| {
        let (k, v) = pair.split_once('=')?;
        let rest = k.trim().strip_prefix(name)?;
        Some((rest, v.trim().trim_matches('"')))
    })
}

/// The session cookie values one `Cookie` header carries. The pass over the header keeps the
/// whole `NAME` values (the last [`MAX_WHOLE_VALUES`]) and whether a chunk `NAME_0` was
/// sent; chunks are read only when there are some. Small and on the stack: reading the header
/// of a request allocates nothing.
#[derive(Debug)]
pub struct SessionCookieValues<'a> {
    header: &'a str,
    name: &'a str,
    whole: [&'a str; MAX_WHOLE_VALUES],
    whole_kept: usize,
    chunked: bool,
}

/// For each chunk `NAME_i`: the first and last value sent, and how many there were.
#[derive(Debug, Default, Clone, Copy)]
struct ChunkValues<'a> {
    first: &'a str,
    last: &'a str,
    count: u32,
}

/// Which occurrence of each chunk an assembly takes.
#[derive(Clone, Copy)]
enum Pick {
    First,
    Last,
}

impl<'a> SessionCookieValues<'a> {
    fn push_whole(&mut self, v: &'a str) {
        if self.whole_kept == MAX_WHOLE_VALUES {
            self.whole.rotate_left(1);
            self.whole[MAX_WHOLE_VALUES - 1] = v;
        } else {
            self.whole[self.whole_kept] = v;
            self.whole_kept += 1;
        }
    }

    /// The chunks sent, and how many from `NAME_0` on are present without a gap.
    fn chunks(&self) -> ([ChunkValues<'a>; MAX_CHUNKS], usize) {
        let mut chunks = [ChunkValues::default(); MAX_CHUNKS];
        if self.chunked {
            for (rest, v) in session_pairs(self.header, self.name) {
                if let Some(c) = chunk_index(rest).and_then(|i| chunks.get_mut(i)) {
                    if c.count == 0 {
                        c.first = v;
                    }
                    c.last = v;
                    c.count = c.count.saturating_add(1);
                }
            }
        }
        let run = chunks.iter().take_while(|c| c.count > 0).count();
        (chunks, run)
    }

    /// No session cookie at all (a chunk without `NAME_0` is none either).
    pub fn is_empty(&self) -> bool {
        self.whole_kept == 0 && !self.chunked
    }

    /// The one session cookie value, when exactly one was sent: a single `NAME`, or a single
    /// set of chunks. This is the request path's case and costs what reading one cookie did.
    pub fn single(&self) -> Option<Cow<'a, str>> {
        match (self.whole_kept, self.chunked) {
            (1, false) => Some(Cow::Borrowed(self.whole[0])),
            (0, true) => {
                let (chunks, run) = self.chunks();
                chunks[..run]
                    .iter()
                    .all(|c| c.count == 1)
                    .then(|| Cow::Owned(assemble(&chunks, Pick::First, run)))
            }
            _ => None,
        }
    }

    /// Every value to try when several were sent, bounded: the whole values, then each
    /// chunk set assembled from the first and from the last occurrence of every chunk, each
    /// also cut short at every length (a stray chunk after our last one must not hide it).
    /// Duplicates are dropped. At most 4 + 2 × 8 values.
    pub fn candidates(&self) -> Vec<Cow<'a, str>> {
        let mut out: Vec<Cow<'a, str>> = Vec::new();
        let mut add = |v: Cow<'a, str>| {
            if !v.is_empty() && !out.contains(&v) {
                out.push(v);
            }
        };
        for v in &self.whole[..self.whole_kept] {
            add(Cow::Borrowed(v));
        }
        let (chunks, run) = self.chunks();
        for pick in [Pick::First, Pick::Last] {
            for len in (1..=run).rev() {
                add(Cow::Owned(assemble(&chunks, pick, len)));
            }
        }
        out
    }
}

/// The first `len` chunks joined, each taken as `pick` says.
fn assemble(chunks: &[ChunkValues<'_>], pick: Pick, len: usize) -> String {
    let mut out = String::with_capacity(len * CHUNK_SIZE);
    for c in chunks.iter().take(len) {
        out.push_str(match pick {
            Pick::First => c.first,
            Pick::Last => c.last,
        });
    }
    out
}

/// One `Set-Cookie` header value. Made only by [`set_cookie`], so every cookie Portcullis sets
/// is `HttpOnly` and `SameSite=Lax`, with the configured path, domain and `Secure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie(String);

impl SetCookie {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Read-only: a `SetCookie` can be looked at as the header text, never made from one.
impl std::ops::Deref for SetCookie {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SetCookie {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SetCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds a `Set-Cookie` value: always `HttpOnly` and `SameSite=Lax`.
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    domain: Option<&str>,
    secure: bool,
    max_age: u64,
) -> SetCookie {
    let mut c = cookie::Cookie::build((name.to_string(), value.to_string()))
        .path(path.to_string())
        .http_only(true)
        .secure(secure)
        .same_site(cookie::SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age).unwrap_or(i64::MAX),
        ));
    if let Some(d) = domain {
        c = c.domain(d.to_string());
    }
    SetCookie(c.build().to_string())
}

/// The value of the first cookie called `name` in a `Cookie` header (RFC 6265 §5.4), without
/// allocating.
pub fn find_cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    pairs(header).find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// The `;`-separated parts of a `Cookie` header. The session cookie makes the header a few KB
/// long and it is split on every request: `memchr` finds the separators a vector at a time.
fn pairs(header: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        let s = rest?;
        match memchr::memchr(b';', s.as_bytes()) {
            Some(i) => {
                // `;` is ASCII, so both sides of it are on character boundaries.
                let (pair, tail) = s.split_at(i);
                rest = tail.get(1..);
                Some(pair)
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

/// Every `(name, value)` whose name starts with `prefix`.
pub fn cookies_with_prefix<'a>(
    header: &'a str,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    pairs(header).filter_map(move |pair| {
        let (k, v) = pair.split_once('=')?;
        let k = k.trim();
        k.starts_with(prefix).then(|| (k, v.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::time::Duration;

    fn cfg() -> SessionConfig {
        SessionConfig {
            keys: Secret::new(vec![[5u8; 32]]),
            cookie_name: "_portcullis".into(),
            cookie_domains: CookieDomains::new(vec!["example.com".into()], "auth.example.com"),
            cookie_secure: true,
            expire: Duration::from_secs(3600),
            refresh: None,
            cache_capacity: 100,
            store: crate::config::StoreConfig::Cookie,
        }
    }

    /// A session whose refresh token is `token_len` characters of incompressible text (the
    /// cookie compresses the session).
    fn session(token_len: usize) -> Session {
        let mut x: u32 = 0x9e37_79b9;
        let random_text = (0..token_len)
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
            refresh_token: Some(random_text),
            ..crate::session::test_session(100)
        }
    }

    fn header_from(set_cookies: &[SetCookie]) -> String {
        set_cookies
            .iter()
            .map(|c| c.split(';').next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn round_trip_with_attributes_and_nothing_readable() {
        let sealer = Sealer::new(&[[5u8; 32]]).unwrap();
        let c = SessionCookies::new(&cfg());
        let set = c
            .write(&sealer, &session(10), 100, CookieContext::default())
            .unwrap();
        assert_eq!(set.len(), 1);
        let sc = &set[0];
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Domain=example.com",
            "Max-Age=3600",
        ] {
            assert!(sc.contains(attr), "{sc} lacks {attr}");
        }
        assert!(!sc.contains("alice") && !sc.contains("user-1"));
        let header = format!("other=1; {}; x=y", header_from(&set));
        assert_eq!(c.read(&sealer, &header).unwrap(), session(10));
    }

    #[test]
    fn large_sessions_are_chunked_and_reassembled_and_stale_chunks_cleared() {
        let sealer = Sealer::new(&[[5u8; 32]]).unwrap();
        let c = SessionCookies::new(&cfg());
        let big = c
            .write(&sealer, &session(9000), 100, CookieContext::default())
            .unwrap();
        assert!(big.len() >= 3, "{}", big.len());
        assert!(big.iter().all(|s| s.len() < 4096));
        let header = header_from(&big);
        assert_eq!(c.read(&sealer, &header).unwrap(), session(9000));
        // Shrinking back to one cookie deletes the chunks the browser still has.
        let small = c
            .write(
                &sealer,
                &session(10),
                100,
                CookieContext::new(Some(&header), None),
            )
            .unwrap();
        assert!(
            small
                .iter()
                .any(|s| s.starts_with("_portcullis_0=;") && s.contains("Max-Age=0"))
        );
    }

    #[test]
    fn garbage_and_foreign_cookies_are_no_session() {
        let sealer = Sealer::new(&[[5u8; 32]]).unwrap();
        let other = Sealer::new(&[[6u8; 32]]).unwrap();
        let c = SessionCookies::new(&cfg());
        let foreign = header_from(
            &c.write(&other, &session(10), 100, CookieContext::default())
                .unwrap(),
        );
        assert!(c.read(&sealer, &foreign).is_none());
        for h in [
            "",
            "_portcullis=",
            "_portcullis=%%%",
            "_portcullis_0=abc",
            "_portcullis=AAAA; _portcullis_0=BBBB",
        ] {
            assert!(c.read(&sealer, h).is_none(), "{h}");
        }
    }

    #[test]
    fn every_session_cookie_value_is_a_candidate() {
        let c = SessionCookies::new(&cfg());
        let single = |h: &str| c.values(h).single().map(|v| v.into_owned());
        let candidates = |h: &str| {
            c.values(h)
                .candidates()
                .into_iter()
                .map(|v| v.into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(single("a=1; _portcullis=X; b=2").as_deref(), Some("X"));
        assert_eq!(
            single("_portcullis_0=A; _portcullis_1=B").as_deref(),
            Some("AB")
        );
        assert!(
            c.values("a=1; _portcullis_1=B").is_empty(),
            "no NAME_0: no session"
        );
        assert!(
            c.values("_portcullis_csrf_1=x; _portcullis_10=y; _portcullisx=z")
                .is_empty(),
            "other cookies that share the prefix"
        );
        // Tossed: several values, no single one.
        let tossed = "_portcullis=EVIL; _portcullis=OURS";
        assert_eq!(single(tossed), None);
        assert_eq!(candidates(tossed), ["EVIL", "OURS"]);
        // The last four are kept: ours is sent last (shortest Path).
        assert_eq!(
            candidates("_portcullis=1; _portcullis=2; _portcullis=3; _portcullis=4; _portcullis=5"),
            ["2", "3", "4", "5"]
        );
        // Chunks: first and last occurrence of each, and every shorter reading.
        assert_eq!(
            candidates("_portcullis_0=E; _portcullis_0=A; _portcullis_1=B; _portcullis_2=X"),
            ["EBX", "EB", "E", "ABX", "AB", "A"]
        );
        assert_eq!(
            candidates("_portcullis=W; _portcullis_0=A; _portcullis=W"),
            ["W", "A"],
            "duplicates are tried once"
        );
        assert!(candidates("_portcullis=; _portcullis_0=").is_empty());
    }

    #[test]
    fn cookie_lookup() {
        assert_eq!(find_cookie("a=1; b=2;c=3", "c"), Some("3"));
        assert_eq!(find_cookie("ab=1", "a"), None);
        assert_eq!(
            find_cookie("a=1; a=2", "a"),
            Some("1"),
            "the first one counts"
        );
        assert_eq!(find_cookie(";; a=\"q\" ;", "a"), Some("q"));
        assert_eq!(
            find_cookie("x=ü€; a=1", "a"),
            Some("1"),
            "UTF-8 elsewhere is fine"
        );
        assert_eq!(find_cookie("a", "a"), None, "no '='");
        assert_eq!(find_cookie("", "a"), None);
        assert_eq!(find_cookie("b=1;", "a"), None);
        assert_eq!(
            cookies_with_prefix("x_csrf_1=a; y=2; x_csrf_2=b", "x_csrf_").count(),
            2
        );
    }
}
