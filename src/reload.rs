//! Configuration reload without a restart: on SIGHUP, and when the configuration file's
//! content changes (polled, so a Kubernetes ConfigMap's symlink swap is seen like any edit).
//!
//! A new configuration is loaded and validated like at start-up; with any problem it is
//! refused, every problem is logged, and the running one keeps serving. Otherwise a new
//! [`App`] is built around what outlives reloads (metrics, revocations), started, and swapped
//! in once it is ready (discovery and keys loaded); requests in flight finish on the old one,
//! whose background tasks then end. Settings bound at start-up (`listen`, the TLS file paths,
//! `log_format`, `shutdown_grace`, `max_connections`) are logged as needing a restart.

use crate::app::{App, CurrentApp};
use crate::clock::SharedClock;
use crate::config::Config;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// How long a new configuration may take to become ready before it is refused.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("invalid configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("cannot build it: {0}")]
    Build(crate::app::StartupError),
    #[error(
        "the identity provider's discovery document and keys (or the session store) were not ready within {0:?}"
    )]
    NotReady(Duration),
}

/// Watches one configuration file and reloads it into a [`CurrentApp`].
pub struct ConfigReloader {
    path: PathBuf,
    /// The environment at start-up (`PORTCULLIS_*` overrides apply to every reload).
    env: Vec<(String, String)>,
    current: Arc<CurrentApp>,
    clock: SharedClock,
    /// The file's content when last loaded (or tried).
    last_text: Option<String>,
    ready_timeout: Duration,
}

impl ConfigReloader {
    pub fn new(
        path: PathBuf,
        env: Vec<(String, String)>,
        current: Arc<CurrentApp>,
        clock: SharedClock,
    ) -> Self {
        let last_text = std::fs::read_to_string(&path).ok();
        Self {
            path,
            env,
            current,
            clock,
            last_text,
            ready_timeout: READY_TIMEOUT,
        }
    }

    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Reloads on SIGHUP and whenever the file's content differs from the last one seen
    /// (checked every `poll`). Runs until the task is dropped.
    pub async fn run(mut self, poll: Duration) {
        let mut hangup = hangup_signal();
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = next_hangup(&mut hangup) => true,
            };
            let text = std::fs::read_to_string(&self.path).ok();
            if !forced && (text.is_none() || text == self.last_text) {
                continue;
            }
            self.last_text = text;
            let _ = self.reload().await;
        }
    }

    /// Loads the file now and, if it is valid and becomes ready, swaps it in.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let outcome = self.try_reload().await;
        let metrics = self.current.load().metrics().clone();
        match &outcome {
            Ok(()) => {
                metrics.config_reloads_applied.fetch_add(1, Relaxed);
                tracing::info!(code = "config.reloaded", path = %self.path.display(), "configuration reloaded");
            }
            Err(ReloadError::Invalid(problems)) => {
                metrics.config_reloads_refused.fetch_add(1, Relaxed);
                for p in problems {
                    tracing::error!(code = "config.reload_refused", problem = %p, "configuration problem");
                }
                tracing::error!(code = "config.reload_refused", path = %self.path.display(), problems = problems.len(), "new configuration refused; the running one keeps serving");
            }
            Err(e) => {
                metrics.config_reloads_refused.fetch_add(1, Relaxed);
                tracing::error!(code = "config.reload_refused", path = %self.path.display(), error = %e, "new configuration refused; the running one keeps serving");
            }
        }
        outcome
    }

    async fn try_reload(&self) -> Result<(), ReloadError> {
        let mut config = Config::load(&self.path, &self.env).map_err(ReloadError::Invalid)?;
        let old = self.current.load();
        warn_restart_only(old.config(), &config);
        // Which listener serves /metrics is decided at start-up and stays so until a restart.
        config.metrics_listen = old.config().metrics_listen;
        // So is the trace exporter (installed with logging, before the runtime starts).
        config.telemetry = old.config().telemetry.clone();
        let app = App::with_carried(config, self.clock.clone(), old.carried())
            .map_err(ReloadError::Build)?;
        app.spawn_background();
        let ready = async {
            while !app.is_ready() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(self.ready_timeout, ready)
            .await
            .is_err()
        {
            return Err(ReloadError::NotReady(self.ready_timeout));
        }
        self.current.replace(app);
        Ok(())
    }
}

/// Settings read once at start-up: a changed value is applied at the next restart.
fn warn_restart_only(old: &Config, new: &Config) {
    let changed = [
        ("listen", old.listen != new.listen),
        ("metrics_listen", old.metrics_listen != new.metrics_listen),
        (
            "tls_cert_file/tls_key_file",
            old.tls.as_ref().map(|t| (&t.cert, &t.key))
                != new.tls.as_ref().map(|t| (&t.cert, &t.key)),
        ),
        ("log_format", old.log_json != new.log_json),
        ("[telemetry]", old.telemetry != new.telemetry),
        ("shutdown_grace", old.shutdown_grace != new.shutdown_grace),
        (
            "max_connections",
            old.max_connections != new.max_connections,
        ),
    ];
    for (key, _) in changed.iter().filter(|(_, c)| *c) {
        tracing::warn!(
            code = "config.restart_needed",
            key,
            "changed; takes effect after a restart (the rest is applied now)"
        );
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup()).ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The next SIGHUP; never completes where there is none.
async fn next_hangup(h: &mut Hangup) -> Option<()> {
    #[cfg(unix)]
    if let Some(s) = h {
        return s.recv().await;
    }
    let _ = h;
    std::future::pending().await
}
