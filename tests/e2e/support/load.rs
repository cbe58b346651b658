//! Steady load for the fault scenarios: a few workers per target, each sending one request
//! after another (keep-alive, like a proxy's pool) until stopped, recording every answer.
//! The report says how many requests got which status, which failed at the socket, the
//! slowest, and when the first and last unexpected answer came (the outage window).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{R, err};

/// The longest one request may take before it counts as hung.
pub const HUNG: Duration = Duration::from_secs(10);

/// One kind of request: `GET url` with these headers; `ok` lists the statuses that count as
/// success.
#[derive(Clone)]
pub struct Target {
    pub name: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub ok: &'static [u16],
}

impl Target {
    /// `GET /oauth2/forward-auth` on `base` as Traefik sends it for `app.localhost/api/load`,
    /// with one more header (a cookie or an `Authorization`).
    pub fn forward_auth(name: &'static str, base: &str, header: (&str, &str)) -> Self {
        Self {
            name,
            url: format!("{base}/oauth2/forward-auth"),
            headers: vec![
                ("accept".into(), "application/json".into()),
                ("x-forwarded-method".into(), "GET".into()),
                ("x-forwarded-proto".into(), "http".into()),
                ("x-forwarded-host".into(), "app.localhost".into()),
                ("x-forwarded-uri".into(), "/api/load".into()),
                (header.0.into(), header.1.into()),
            ],
            ok: &[200],
        }
    }
}

struct Sample {
    at: Duration,
    took: Duration,
    /// The status, or the socket/timeout error.
    outcome: Result<u16, String>,
}

pub struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    workers: Vec<(Target, tokio::task::JoinHandle<Vec<Sample>>)>,
}

/// What one target saw.
#[derive(Debug)]
pub struct TargetReport {
    pub name: &'static str,
    pub requests: usize,
    /// Statuses outside the target's `ok` list, and socket errors and timeouts.
    pub failures: usize,
    /// Up to 5 examples of failures, with when they happened.
    pub examples: Vec<String>,
    pub statuses: Vec<(u16, usize)>,
    pub slowest: Duration,
    pub p99: Duration,
    /// First and last failure, from the start of the load.
    pub failure_window: Option<(Duration, Duration)>,
}

impl TargetReport {
    /// Seconds between the first and the last failure (0 with none).
    pub fn outage_seconds(&self) -> f64 {
        self.failure_window
            .map(|(a, b)| (b - a).as_secs_f64())
            .unwrap_or(0.0)
    }
}

impl std::fmt::Display for TargetReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} requests, {} failed, statuses {:?}, p99 {:?}, slowest {:?}",
            self.name, self.requests, self.failures, self.statuses, self.p99, self.slowest
        )?;
        if let Some((a, b)) = self.failure_window {
            write!(f, ", failures from {a:.1?} to {b:.1?}")?;
        }
        for e in &self.examples {
            write!(f, "\n    {e}")?;
        }
        Ok(())
    }
}

impl Load {
    /// Starts `workers` workers per target, each pausing `pause` between requests.
    pub fn start(targets: &[Target], workers: usize, pause: Duration) -> R<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HUNG)
            .pool_max_idle_per_host(workers * targets.len())
            .build()?;
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for t in targets {
            for _ in 0..workers {
                let (client, t2, stop) = (client.clone(), t.clone(), stop.clone());
                let h = tokio::spawn(async move {
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let t0 = Instant::now();
                        let mut req = client.get(&t2.url);
                        for (k, v) in &t2.headers {
                            req = req.header(k, v);
                        }
                        let outcome = match req.send().await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                // Read the body: the answer is complete only then.
                                match r.bytes().await {
                                    Ok(_) => Ok(status),
                                    Err(e) => Err(format!("body: {e}")),
                                }
                            }
                            Err(e) => Err(format!("{e:?}")),
                        };
                        samples.push(Sample {
                            at: t0 - started,
                            took: t0.elapsed(),
                            outcome,
                        });
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    samples
                });
                handles.push((t.clone(), h));
            }
        }
        Ok(Self {
            started,
            stop,
            workers: handles,
        })
    }

    /// Time since the load started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the workers (each finishes its request) and reports per target, in the order
    /// the targets were given.
    pub async fn stop(self) -> R<Vec<TargetReport>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut by_target: Vec<(Target, Vec<Sample>)> = Vec::new();
        for (t, h) in self.workers {
            let samples = h.await.map_err(|e| err(format!("load worker: {e}")))?;
            match by_target.iter_mut().find(|(seen, _)| seen.name == t.name) {
                Some((_, all)) => all.extend(samples),
                None => by_target.push((t, samples)),
            }
        }
        Ok(by_target
            .into_iter()
            .map(|(t, mut samples)| {
                samples.sort_by_key(|s| s.at);
                let failed: Vec<&Sample> = samples
                    .iter()
                    .filter(|s| !matches!(s.outcome, Ok(code) if t.ok.contains(&code)))
                    .collect();
                let mut statuses: Vec<(u16, usize)> = Vec::new();
                for s in &samples {
                    if let Ok(code) = s.outcome {
                        match statuses.iter_mut().find(|(c, _)| *c == code) {
                            Some((_, n)) => *n += 1,
                            None => statuses.push((code, 1)),
                        }
                    }
                }
                statuses.sort();
                let mut took: Vec<Duration> = samples.iter().map(|s| s.took).collect();
                took.sort();
                let p99 = took
                    .get((took.len() * 99 / 100).min(took.len().saturating_sub(1)))
                    .copied()
                    .unwrap_or_default();
                TargetReport {
                    name: t.name,
                    requests: samples.len(),
                    failures: failed.len(),
                    examples: failed
                        .iter()
                        .take(5)
                        .map(|s| format!("at {:.2?} after {:.2?}: {:?}", s.at, s.took, s.outcome))
                        .collect(),
                    statuses,
                    slowest: took.last().copied().unwrap_or_default(),
                    p99,
                    failure_window: failed.first().zip(failed.last()).map(|(a, b)| (a.at, b.at)),
                }
            })
            .collect())
    }
}
