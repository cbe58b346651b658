//! The connection limit, and who gives way at it.
//!
//! At most `max_connections` connections are served at once ([`Connections::admit`]). When
//! all slots are taken, the connections that are doing nothing give way first: the ones with
//! no request being answered are asked to close, longest-quiet first, a batch at a time
//! ([`EVICT_DIVISOR`]). hyper closes such a connection at once if it sits between requests
//! (an idle keep-alive connection, or one that has not yet sent its first bytes) and
//! otherwise lets the request it is reading finish and then closes it. A client pool
//! (Traefik's Go transport) retries a request that meets a connection closed while idle.
//!
//! Only when no connection is idle does accepting wait: new connections then queue in the
//! kernel's listen backlog (and past it are refused by the kernel), never growing memory
//! until the pod is OOM-killed. So thousands of idle or abandoned connections cannot lock
//! out the clients that have requests to make.
//!
//! Cost on the hot path: two atomic operations and a monotonic clock read per request
//! ([`Tracked::busy`]); the registry's lock is taken only when a connection opens or closes
//! and when the limit is reached.

use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// At the limit, `limit / EVICT_DIVISOR` idle connections (at least one) are asked to close
/// at once, so the registry is scanned once per batch of new connections, not for each.
pub const EVICT_DIVISOR: usize = 32;

/// While waiting for a slot, how often idle connections are looked for again.
const RECHECK: Duration = Duration::from_millis(100);

/// How often, at most, reaching the limit is logged (every time is counted in the metric).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The slots and the connections holding them.
pub struct Connections {
    limit: usize,
    slots: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
    epoch: Instant,
    last_logged: Mutex<Option<Instant>>,
    metrics: Arc<Metrics>,
}

/// What the registry knows about one connection.
pub struct Tracked {
    /// Requests being answered on it (HTTP/2 may have several).
    in_flight: AtomicU32,
    /// Milliseconds since [`Connections::epoch`] of its last finished request (or of its
    /// opening).
    quiet_since: AtomicU64,
    /// Whether a request was ever answered on it: such a connection is idle between requests
    /// and closes at once when asked; one that never sent a complete request head may be a
    /// slow client mid-head, which hyper lets finish (or time out) first.
    served: AtomicBool,
    /// When it was asked to close (milliseconds since the epoch, plus one; 0: never). Not
    /// asked twice.
    evicted_at: AtomicU64,
    evict: Notify,
    epoch: Instant,
}

/// A slot held by one connection; dropping it frees the slot and forgets the connection.
pub struct Admitted {
    id: u64,
    tracked: Arc<Tracked>,
    connections: Arc<Connections>,
    _permit: OwnedSemaphorePermit,
}

/// Counts one request as in flight for as long as it lives.
pub struct Busy(Arc<Tracked>);

impl Connections {
    pub fn new(limit: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            limit,
            slots: Arc::new(Semaphore::new(limit)),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
            last_logged: Mutex::new(None),
            metrics,
        })
    }

    /// A slot for the next connection: at once if one is free; otherwise idle connections are
    /// asked to close and this waits for the first slot to come free.
    pub async fn admit(self: &Arc<Self>) -> Admitted {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => self.admit_at_limit().await,
        };
        let tracked = Arc::new(Tracked {
            in_flight: AtomicU32::new(0),
            quiet_since: AtomicU64::new(0),
            served: AtomicBool::new(false),
            evicted_at: AtomicU64::new(0),
            evict: Notify::new(),
            epoch: self.epoch,
        });
        tracked.mark_quiet();
        let id = self.next_id.fetch_add(1, Relaxed);
        self.registry().insert(id, tracked.clone());
        self.metrics.open_connections.fetch_add(1, Relaxed);
        Admitted {
            id,
            tracked,
            connections: self.clone(),
            _permit: permit,
        }
    }

    /// Full: evict a batch of idle connections and wait for a slot; while waiting, look again
    /// every [`RECHECK`] (a busy connection may have become idle).
    async fn admit_at_limit(&self) -> OwnedSemaphorePermit {
        let batch = self.batch();
        self.limit_reached(self.evict_idle(batch));
        loop {
            tokio::select! {
                permit = self.slots.clone().acquire_owned() => match permit {
                    Ok(p) => return p,
                    Err(_) => unreachable!("the connection semaphore is never closed"),
                },
                () = tokio::time::sleep(RECHECK) => {
                    // Evicted connections close within milliseconds; only when none is on
                    // its way out are more asked.
                    if self.slots.available_permits() == 0 && !self.any_leaving() {
                        self.evict_idle(batch);
                    }
                }
            }
        }
    }

    /// Whether a connection asked to close in the last [`RECHECK`] may still be on its way
    /// out (one asked earlier that is still open is not closing soon: a slow request head).
    fn any_leaving(&self) -> bool {
        let recent = self.now_ms().saturating_sub(RECHECK.as_millis() as u64);
        self.registry()
            .values()
            .any(|t| t.evicted_at.load(Relaxed) > recent)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Accepting failed for want of file descriptors: a batch of idle connections is asked
    /// to close, as at the limit (the process's descriptor limit was lower than
    /// `max_connections` allows for).
    pub fn out_of_descriptors(&self) {
        let closed = self.evict_idle(self.batch());
        self.limit_reached(closed);
    }

    fn batch(&self) -> usize {
        (self.limit / EVICT_DIVISOR).max(1)
    }

    /// Asks up to `n` connections without a request in flight to close: those idle between
    /// requests first, longest-quiet first. Returns how many were asked.
    pub fn evict_idle(&self, n: usize) -> usize {
        let mut idle: Vec<((bool, u64), Arc<Tracked>)> = self
            .registry()
            .values()
            .filter(|t| t.in_flight.load(Relaxed) == 0 && t.evicted_at.load(Relaxed) == 0)
            .map(|t| {
                let key = (!t.served.load(Relaxed), t.quiet_since.load(Relaxed));
                (key, t.clone())
            })
            .collect();
        if idle.len() > n {
            idle.select_nth_unstable_by_key(n, |(key, _)| *key);
            idle.truncate(n);
        }
        let stamp = self.now_ms().saturating_add(1);
        for (_, t) in &idle {
            t.evicted_at.store(stamp, Relaxed);
            t.evict.notify_one();
        }
        if !idle.is_empty() {
            self.metrics
                .idle_connections_closed
                .fetch_add(idle.len() as u64, Relaxed);
        }
        idle.len()
    }

    fn limit_reached(&self, evicted: usize) {
        self.metrics.connection_limit_reached.fetch_add(1, Relaxed);
        let now = Instant::now();
        let mut last = self
            .last_logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return;
        }
        *last = Some(now);
        if evicted > 0 {
            tracing::warn!(
                code = "server.connection_limit",
                limit = self.limit,
                idle_closed = evicted,
                "connection limit reached; closing idle connections to make room"
            );
        } else {
            tracing::warn!(
                code = "server.connection_limit",
                limit = self.limit,
                "connection limit reached and every connection is busy; new connections wait"
            );
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Admitted {
    pub fn tracked(&self) -> &Arc<Tracked> {
        &self.tracked
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.registry().remove(&self.id);
        self.connections
            .metrics
            .open_connections
            .fetch_sub(1, Relaxed);
    }
}

impl Tracked {
    /// Marks a request in flight until the returned guard drops.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Relaxed);
        Busy(self.clone())
    }

    /// Completes when the registry asks this connection to close.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }

    fn mark_quiet(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.quiet_since.store(ms, Relaxed);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.served.store(true, Relaxed);
        self.0.mark_quiet();
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn metrics() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    async fn closes_soon(t: &Tracked) -> bool {
        tokio::time::timeout(Duration::from_millis(50), t.evicted())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn at_the_limit_the_longest_quiet_idle_connection_gives_way_and_busy_ones_do_not() {
        let c = Connections::new(3, metrics());
        let oldest = c.admit().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let newer = c.admit().await;
        let busy = c.admit().await;
        let _request = busy.tracked().busy();

        // The fourth waits for a slot; the oldest idle connection is asked to close.
        let fourth = tokio::spawn({
            let c = c.clone();
            async move { c.admit().await }
        });
        assert!(closes_soon(oldest.tracked()).await);
        assert!(
            !fourth.is_finished(),
            "no slot until the evicted one closes"
        );
        // It closes (at once, as an idle connection does; one that lingers past `RECHECK`
        // gets company), and the newcomer takes its slot.
        drop(oldest);
        let fourth = tokio::time::timeout(Duration::from_secs(1), fourth)
            .await
            .unwrap()
            .unwrap();
        assert!(!closes_soon(newer.tracked()).await);
        assert!(!closes_soon(busy.tracked()).await);
        assert_eq!(c.metrics.idle_connections_closed.load(Relaxed), 1);
        assert_eq!(c.metrics.connection_limit_reached.load(Relaxed), 1);
        assert_eq!(c.metrics.open_connections.load(Relaxed), 3);
        drop((newer, busy, fourth));
        assert_eq!(c.metrics.open_connections.load(Relaxed), 0);
    }

    #[tokio::test]
    async fn when_an_evicted_connection_lingers_the_waiting_newcomer_asks_the_next() {
        let c = Connections::new(2, metrics());
        let slow = c.admit().await; // e.g. a slow client mid-head: hyper lets it finish first
        tokio::time::sleep(Duration::from_millis(5)).await;
        let idle = c.admit().await;
        let next = tokio::spawn({
            let c = c.clone();
            async move { c.admit().await }
        });
        assert!(closes_soon(slow.tracked()).await);
        // `slow` stays open past RECHECK: the next idle one is asked too.
        assert!(
            tokio::time::timeout(RECHECK * 5, idle.tracked().evicted())
                .await
                .is_ok()
        );
        drop(idle);
        tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.metrics.idle_connections_closed.load(Relaxed), 2);
        drop(slow);
    }

    #[tokio::test]
    async fn the_connection_quiet_the_longest_goes_first_and_nobody_is_asked_twice() {
        let c = Connections::new(8, metrics());
        let a = c.admit().await;
        let b = c.admit().await;
        drop(b.tracked().busy());
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(a.tracked().busy()); // `a` just answered a request: `b` has been quiet longer
        assert_eq!(c.evict_idle(1), 1);
        assert!(closes_soon(b.tracked()).await);
        assert!(!closes_soon(a.tracked()).await);
        assert_eq!(c.evict_idle(1), 1);
        assert!(closes_soon(a.tracked()).await);
        assert_eq!(c.evict_idle(1), 0);
    }

    #[tokio::test]
    async fn a_connection_idle_between_requests_goes_before_one_that_never_sent_a_request() {
        let c = Connections::new(8, metrics());
        let fresh = c.admit().await; // perhaps a slow client still sending its first head
        tokio::time::sleep(Duration::from_millis(5)).await;
        let served = c.admit().await;
        drop(served.tracked().busy());
        assert_eq!(c.evict_idle(1), 1);
        assert!(closes_soon(served.tracked()).await);
        assert!(!closes_soon(fresh.tracked()).await);
    }

    #[tokio::test]
    async fn when_every_connection_is_busy_nobody_is_evicted_and_the_newcomer_waits() {
        let c = Connections::new(1, metrics());
        let only = c.admit().await;
        let request = only.tracked().busy();
        let next = tokio::spawn({
            let c = c.clone();
            async move { c.admit().await }
        });
        assert!(!closes_soon(only.tracked()).await);
        assert!(!next.is_finished());
        // Once its request is done, the waiting newcomer has it evicted.
        drop(request);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), only.tracked().evicted())
                .await
                .is_ok()
        );
        drop(only);
        tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .unwrap()
            .unwrap();
    }
}
