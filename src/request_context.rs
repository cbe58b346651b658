//! What ties one request's log lines, audit events, error page and trace together: its request
//! id, and where the request came from (client address, host, path). The HTTP edge makes a
//! [`RequestContext`] for every request ([`crate::http::handle`]) and runs the request inside
//! it ([`scope`]); anything the request calls, the pure core included, reads it with
//! [`with_current`] (audit events, the error page's "quote this id"). No HTTP types.
//!
//! The id is the proxy's `X-Request-Id` when it is a plain token ([`RequestId::accept`]),
//! else the trace id of its W3C `traceparent` (so the id and the trace are one search), else a
//! new one ([`RequestId::generate`]).

use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest request id taken from a proxy; a longer one is replaced (log lines stay bounded).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request id: 1 to [`MAX_REQUEST_ID_LEN`] characters out of letters, digits and
/// `-._~:/+=@`, so it can be logged, put in a header and shown on a page as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Box<str>);

impl RequestId {
    /// The proxy's id (`X-Request-Id`) if acceptable, else `traceparent`'s trace id, else a
    /// new one.
    pub fn choose(given: Option<&str>, traceparent: Option<&str>) -> Self {
        given
            .and_then(Self::accept)
            .or_else(|| traceparent.and_then(Self::from_traceparent))
            .unwrap_or_else(Self::generate)
    }

    /// `given` as an id, if it is one (see [`RequestId`]); anything else (empty, too long,
    /// spaces, quotes, control characters, non-ASCII) is not taken.
    pub fn accept(given: &str) -> Option<Self> {
        let ok = !given.is_empty()
            && given.len() <= MAX_REQUEST_ID_LEN
            && given
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:/+=@".contains(&b));
        ok.then(|| Self(given.into()))
    }

    /// The trace id of a W3C Trace Context `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`;
    /// a later version may append fields). `None` for version `ff`, an all-zero trace id, or
    /// anything malformed.
    pub fn from_traceparent(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let lower_hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let valid = lower_hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.next().is_none())
            && lower_hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && lower_hex(parent_id, 16)
            && parent_id.bytes().any(|b| b != b'0')
            && lower_hex(flags, 2);
        valid.then(|| Self(trace_id.into()))
    }

    /// A new id, unique across processes: 32 hex digits (the shape of a trace id), a random
    /// per-process prefix and a scrambled counter (a bijection, so ids never repeat within a
    /// process, and they don't read as a request count).
    pub fn generate() -> Self {
        static PREFIX: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = *PREFIX.get_or_init(process_random);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let scrambled = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (n >> 29);
        Self(format!("{prefix:016x}{scrambled:016x}").into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 64 random bits for this process's request ids; should the system's generator fail, the
/// process id (ids then repeat only across restarts, enough for correlating log lines, which
/// is all an id does).
fn process_random() -> u64 {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .is_ok()
    {
        return u64::from_le_bytes(bytes);
    }
    u64::from(std::process::id()) << 32
}

/// One request, as its log lines and audit events describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub id: RequestId,
    /// The client's address: see [`client_ip`].
    pub client_ip: Option<IpAddr>,
    /// The host the request is for (the original request's, for a decision).
    pub host: Option<Box<str>>,
    /// Its path, without the query (a query can hold a code or a token).
    pub path: Option<Box<str>>,
}

impl RequestContext {
    /// `path` may carry a query; it is cut off here.
    pub fn new(
        id: RequestId,
        client_ip: Option<IpAddr>,
        host: Option<&str>,
        path: Option<&str>,
    ) -> Self {
        let path = path.map(|p| p.split(['?', '#']).next().unwrap_or(p));
        Self {
            id,
            client_ip,
            host: host.map(Into::into),
            path: path.map(Into::into),
        }
    }
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Runs `request` with `context` as the current request's.
pub fn scope<F: Future>(
    context: RequestContext,
    request: F,
) -> tokio::task::futures::TaskLocalFuture<RequestContext, F> {
    CURRENT.scope(context, request)
}

/// `f` of the current request's context; `None` outside a request (background tasks, or a
/// caller that made none, such as [`crate::http::layer`]).
pub fn with_current<R>(f: impl FnOnce(&RequestContext) -> R) -> Option<R> {
    CURRENT.try_with(f).ok()
}

/// The client's address. `peer` is the TCP peer. A peer outside `trusted` (the
/// `trusted_proxies`) is the client itself. From a trusted proxy, `X-Forwarded-For` is read
/// from the right: the first address that is not a trusted proxy is the client (the ones to
/// its left were written by the client and prove nothing). With no `trusted_proxies`, every
/// caller is a proxy and the rightmost entry, which the nearest proxy appended, is the client.
/// Entries that are not addresses end the walk at the last good one.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| {
        let ip = ip.to_canonical();
        trusted.iter().any(|net| net.contains(&ip))
    };
    if let Some(p) = peer
        && !trusted.is_empty()
        && !is_trusted(p)
    {
        return Some(p.to_canonical());
    }
    let Some(forwarded) = forwarded_for else {
        return peer.map(|p| p.to_canonical());
    };
    let mut last = peer.map(|p| p.to_canonical());
    for entry in forwarded.rsplit(',') {
        let Some(ip) = parse_forwarded_ip(entry.trim()) else {
            break;
        };
        last = Some(ip);
        if trusted.is_empty() || !is_trusted(ip) {
            return Some(ip);
        }
    }
    last
}

/// One `X-Forwarded-For` entry: an address, optionally `[v6]` or with a port.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = entry.parse::<std::net::SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests;
