//! Fault scenarios: what Portcullis does when the parts around it fail under load, measured
//! with real processes (Keycloak, Redis, nginx, the Portcullis binary). Each drives steady
//! load ([`crate::support::load`]) through the fault and asserts what users see: which
//! requests failed, how (status, never a hang or a crash), for how long, and that the
//! service recovers without a restart. Each prints its figures (the README's Reliability
//! section quotes them). The Keycloak restart is `z3_keycloak_restart` (it must run last).

pub mod connection_flood;
pub mod redis_restart;
pub mod replica_shutdown;

use crate::support::R;
use crate::support::browser_like::BrowserLike;

/// The `Cookie` header `b` sends to `url` (the session cookie after a login).
pub fn cookie_header(b: &BrowserLike, url: &str) -> R<String> {
    let cookies = b.cookies_for(url)?;
    if cookies.is_empty() {
        return Err(crate::support::err(format!("no cookies for {url}")));
    }
    Ok(cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; "))
}

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB.
pub fn memory_kib(pid: u32) -> R<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}
