//! Prometheus metrics kept in plain atomics (no locks, no allocation on the request path),
//! rendered as text exposition format on `/metrics`.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ForwardAuth,
    Auth,
    Start,
    Callback,
    SignOut,
    Userinfo,
    BackchannelLogout,
    Other,
}

const ENDPOINTS: [(Endpoint, &str); 8] = [
    (Endpoint::ForwardAuth, "forward_auth"),
    (Endpoint::Auth, "auth"),
    (Endpoint::Start, "start"),
    (Endpoint::Callback, "callback"),
    (Endpoint::SignOut, "sign_out"),
    (Endpoint::Userinfo, "userinfo"),
    (Endpoint::BackchannelLogout, "backchannel_logout"),
    (Endpoint::Other, "other"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Redirected,
    Unauthenticated,
    Forbidden,
    BadRequest,
    Unavailable,
}

const DECISIONS: [(Decision, &str); 6] = [
    (Decision::Allowed, "allowed"),
    (Decision::Redirected, "redirected"),
    (Decision::Unauthenticated, "unauthenticated"),
    (Decision::Forbidden, "forbidden"),
    (Decision::BadRequest, "bad_request"),
    (Decision::Unavailable, "unavailable"),
];

impl Decision {
    /// Its label, as in `portcullis_requests_total{decision=…}`.
    pub fn as_str(self) -> &'static str {
        DECISIONS[index(&DECISIONS, self)].1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpCall {
    Discovery,
    Jwks,
    Code,
    Refresh,
}

const IDP_CALLS: [(IdpCall, &str); 4] = [
    (IdpCall::Discovery, "discovery"),
    (IdpCall::Jwks, "jwks"),
    (IdpCall::Code, "code"),
    (IdpCall::Refresh, "refresh"),
];

impl IdpCall {
    /// Its label, as in `portcullis_idp_calls_total{call=…}`.
    pub fn as_str(self) -> &'static str {
        IDP_CALLS[index(&IDP_CALLS, self)].1
    }
}

/// What a session refresh a request needed came to (`Gate`'s session check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// New tokens: the request passed on them.
    Refreshed,
    /// Failed while the old tokens were still valid: the request passed on those.
    FailedKept,
    /// Failed with the tokens expired (IdP unreachable, or another replica's refresh did not
    /// finish): refused for now, the session kept for a later try.
    FailedRefused,
    /// The session is over: the IdP refused the grant, there was no refresh token, or the
    /// session was signed out meanwhile.
    Ended,
    /// The session store (Redis) failed during the refresh.
    StoreUnavailable,
}

const REFRESH_OUTCOMES: [(RefreshOutcome, &str); 5] = [
    (RefreshOutcome::Refreshed, "refreshed"),
    (RefreshOutcome::FailedKept, "failed_kept"),
    (RefreshOutcome::FailedRefused, "failed_refused"),
    (RefreshOutcome::Ended, "ended"),
    (RefreshOutcome::StoreUnavailable, "store_unavailable"),
];

/// Latency bucket bounds in microseconds.
const BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000, 1_000_000, 5_000_000,
];

/// A latency histogram with [`BUCKETS_US`] bounds.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Prometheus text for the histogram `name` (in seconds).
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS_US) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                bound as f64 / 1e6
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Decisions of one access rule (or of `[authz]`, or of preflights), by outcome.
#[derive(Debug, Default)]
pub struct RuleDecisions([AtomicU64; DECISIONS.len()]);

impl RuleDecisions {
    pub fn record(&self, decision: Decision) {
        self.0[index(&DECISIONS, decision)].fetch_add(1, Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// Per rule name, in the order first configured. Names come from the configuration, so
    /// the label set is bounded; a rule removed by a reload keeps its counts.
    rules: std::sync::Mutex<Vec<(String, Arc<RuleDecisions>)>>,
    /// Connections being served now, times the connection limit was reached, and idle
    /// connections asked to close to make room (`http::connections`).
    pub open_connections: AtomicU64,
    pub connection_limit_reached: AtomicU64,
    pub idle_connections_closed: AtomicU64,
    /// Configuration reloads applied and refused.
    pub config_reloads_applied: AtomicU64,
    pub config_reloads_refused: AtomicU64,
    requests: [[AtomicU64; DECISIONS.len()]; ENDPOINTS.len()],
    latency: Histogram,
    idp: [[AtomicU64; 2]; IDP_CALLS.len()],
    pub token_cache_hits: AtomicU64,
    pub token_cache_misses: AtomicU64,
    /// Session cookies answered from the opened sessions' cache, and those opened (decrypted,
    /// and with the Redis store read) instead.
    pub session_cache_hits: AtomicU64,
    pub session_cache_misses: AtomicU64,
    pub jwks_refetch_suppressed: AtomicU64,
    pub state_cookies_dropped: AtomicU64,
    pub backchannel_logouts: AtomicU64,
    idp_down: std::sync::atomic::AtomicBool,
    store_latency: Histogram,
    pub store_errors: AtomicU64,
    /// Refreshes that waited for another replica's refresh of the same session.
    pub refresh_waits: AtomicU64,
    refreshes: [AtomicU64; REFRESH_OUTCOMES.len()],
}

fn index<T: PartialEq + Copy>(table: &[(T, &str)], v: T) -> usize {
    table.iter().position(|(x, _)| *x == v).unwrap_or(0)
}

impl Metrics {
    /// The counters of the rule named `name` (created on first use; kept across reloads).
    /// Called when a configuration is loaded, never per request.
    pub fn rule_decisions(&self, name: &str) -> Arc<RuleDecisions> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = rules.iter().find(|(n, _)| n == name) {
            return c.clone();
        }
        let c = Arc::new(RuleDecisions::default());
        rules.push((name.to_string(), c.clone()));
        c
    }

    pub fn request(&self, endpoint: Endpoint, decision: Decision, elapsed: Duration) {
        self.requests[index(&ENDPOINTS, endpoint)][index(&DECISIONS, decision)]
            .fetch_add(1, Relaxed);
        self.latency.observe(elapsed);
    }

    /// One session-store (Redis) command and whether it succeeded.
    pub fn store_op(&self, elapsed: Duration, ok: bool) {
        self.store_latency.observe(elapsed);
        if !ok {
            self.store_errors.fetch_add(1, Relaxed);
        }
    }

    /// One request's session refresh and what it came to.
    pub fn session_refresh(&self, outcome: RefreshOutcome) {
        self.refreshes[index(&REFRESH_OUTCOMES, outcome)].fetch_add(1, Relaxed);
    }

    pub fn idp_call(&self, call: IdpCall, ok: bool) {
        self.idp[index(&IDP_CALLS, call)][usize::from(!ok)].fetch_add(1, Relaxed);
    }

    /// Records whether the last call reached the IdP (an OAuth error answer counts as reached).
    pub fn idp_reachable(&self, reachable: bool) {
        self.idp_down.store(!reachable, Relaxed);
    }

    pub fn idp_is_down(&self) -> bool {
        self.idp_down.load(Relaxed)
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP portcullis_requests_total Requests by endpoint and decision."
        );
        let _ = writeln!(out, "# TYPE portcullis_requests_total counter");
        for (ei, (_, e)) in ENDPOINTS.iter().enumerate() {
            for (di, (_, d)) in DECISIONS.iter().enumerate() {
                let n = self.requests[ei][di].load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "portcullis_requests_total{{endpoint=\"{e}\",decision=\"{d}\"}} {n}"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_rule_decisions_total Decisions by the access rule that decided ((default) = [authz], (preflight) = skipped CORS preflight) and outcome."
        );
        let _ = writeln!(out, "# TYPE portcullis_rule_decisions_total counter");
        for (name, c) in self.rules.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            for (di, (_, d)) in DECISIONS.iter().enumerate() {
                let n = c.0[di].load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "portcullis_rule_decisions_total{{rule=\"{name}\",decision=\"{d}\"}} {n}"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_config_reloads_total Configuration reloads by outcome.\n# TYPE portcullis_config_reloads_total counter\nportcullis_config_reloads_total{{outcome=\"applied\"}} {}\nportcullis_config_reloads_total{{outcome=\"refused\"}} {}",
            self.config_reloads_applied.load(Relaxed),
            self.config_reloads_refused.load(Relaxed)
        );
        self.latency.render(
            &mut out,
            "portcullis_request_duration_seconds",
            "Time to answer a request.",
        );
        self.store_latency.render(
            &mut out,
            "portcullis_session_store_duration_seconds",
            "Time of each session-store (Redis) command.",
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_idp_requests_total Calls to the identity provider by kind and outcome."
        );
        let _ = writeln!(out, "# TYPE portcullis_idp_requests_total counter");
        for (i, (_, k)) in IDP_CALLS.iter().enumerate() {
            for (j, outcome) in ["ok", "error"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "portcullis_idp_requests_total{{kind=\"{k}\",outcome=\"{outcome}\"}} {}",
                    self.idp[i][j].load(Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_session_refreshes_total Session refreshes requests needed, by outcome (requests that shared one refresh count once each)."
        );
        let _ = writeln!(out, "# TYPE portcullis_session_refreshes_total counter");
        for (i, (_, outcome)) in REFRESH_OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "portcullis_session_refreshes_total{{outcome=\"{outcome}\"}} {}",
                self.refreshes[i].load(Relaxed)
            );
        }
        for (name, help, v) in [
            (
                "portcullis_token_cache_hits_total",
                "Bearer tokens answered from the verified-token cache.",
                &self.token_cache_hits,
            ),
            (
                "portcullis_token_cache_misses_total",
                "Bearer tokens that needed a signature check.",
                &self.token_cache_misses,
            ),
            (
                "portcullis_session_cache_hits_total",
                "Session cookies answered from the opened sessions' cache (no decryption, no Redis read).",
                &self.session_cache_hits,
            ),
            (
                "portcullis_session_cache_misses_total",
                "Session cookies opened (decrypted; with the Redis store, read from Redis).",
                &self.session_cache_misses,
            ),
            (
                "portcullis_jwks_refetch_suppressed_total",
                "Unknown-kid JWKS refetches that waited for the rate limit (one fetch per interval).",
                &self.jwks_refetch_suppressed,
            ),
            (
                "portcullis_backchannel_logouts_total",
                "Back-channel logout tokens accepted.",
                &self.backchannel_logouts,
            ),
            (
                "portcullis_session_store_errors_total",
                "Session-store (Redis) commands that failed or timed out.",
                &self.store_errors,
            ),
            (
                "portcullis_session_refresh_waits_total",
                "Session refreshes that waited for another replica's refresh.",
                &self.refresh_waits,
            ),
            (
                "portcullis_state_cookies_dropped_total",
                "Login-state cookies deleted because too many were pending.",
                &self.state_cookies_dropped,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_open_connections Connections being served.\n# TYPE portcullis_open_connections gauge\nportcullis_open_connections {}\n# HELP portcullis_connection_limit_reached_total Times a new connection found every max_connections slot taken.\n# TYPE portcullis_connection_limit_reached_total counter\nportcullis_connection_limit_reached_total {}\n# HELP portcullis_idle_connections_closed_total Idle connections closed at the connection limit to make room.\n# TYPE portcullis_idle_connections_closed_total counter\nportcullis_idle_connections_closed_total {}",
            self.open_connections.load(Relaxed),
            self.connection_limit_reached.load(Relaxed),
            self.idle_connections_closed.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_idp_up Whether the last call to the identity provider reached it.\n# TYPE portcullis_idp_up gauge\nportcullis_idp_up {}",
            u8::from(!self.idp_is_down())
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.request(
            Endpoint::ForwardAuth,
            Decision::Allowed,
            Duration::from_micros(80),
        );
        m.request(
            Endpoint::Auth,
            Decision::Unauthenticated,
            Duration::from_millis(3),
        );
        m.idp_call(IdpCall::Jwks, false);
        m.store_op(Duration::from_micros(300), true);
        m.store_op(Duration::from_millis(500), false);
        m.session_refresh(RefreshOutcome::Refreshed);
        m.session_refresh(RefreshOutcome::Refreshed);
        m.session_refresh(RefreshOutcome::FailedKept);
        let text = m.render();
        assert!(text.contains("portcullis_session_refreshes_total{outcome=\"refreshed\"} 2"));
        assert!(text.contains("portcullis_session_refreshes_total{outcome=\"failed_kept\"} 1"));
        assert!(
            text.contains("portcullis_session_refreshes_total{outcome=\"failed_refused\"} 0"),
            "every outcome is rendered, zero or not, so ratios have both sides"
        );
        assert!(text.contains("portcullis_session_store_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("portcullis_session_store_duration_seconds_count 2"));
        assert!(text.contains("portcullis_session_store_errors_total 1"));
        assert!(text.contains(
            "portcullis_requests_total{endpoint=\"forward_auth\",decision=\"allowed\"} 1"
        ));
        assert!(text.contains("portcullis_request_duration_seconds_bucket{le=\"0.0001\"} 1"));
        assert!(text.contains("portcullis_request_duration_seconds_count 2"));
        assert!(text.contains("portcullis_idp_requests_total{kind=\"jwks\",outcome=\"error\"} 1"));
    }
}
