//! Redis I/O for the server-side session store: one connection manager (multiplexed, reconnects
//! by itself), every command bounded by [`COMMAND_TIMEOUT`], timed into the metrics, and a
//! health flag kept current by a background ping (it drives `/ready`). Knows keys and bytes,
//! not sessions: formats live in [`super::ticket`], decisions in [`super::store`].

use crate::app::StartupError;
use crate::config::RedisConfig;
use crate::metrics::Metrics;
use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, IntoConnectionInfo, Pipeline};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest any one command may take before the request fails closed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest a (re)connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How often the health of the connection is checked (and a lost connection re-established).
const PING_INTERVAL: Duration = Duration::from_millis(500);

/// Redis could not answer in time (down, unreachable, refused auth, timed out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session store unavailable ({0})")]
pub struct StoreUnavailable(pub &'static str);

pub struct RedisIo {
    client: redis::Client,
    connection: ArcSwapOption<ConnectionManager>,
    healthy: AtomicBool,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for RedisIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisIo")
            .field("healthy", &self.is_healthy())
            .finish_non_exhaustive()
    }
}

impl RedisIo {
    /// Builds the client (no connection yet: [`RedisIo::run`] connects in the background, so
    /// Portcullis starts while Redis is down and reports not-ready until it is up).
    pub fn new(cfg: &RedisConfig, metrics: Arc<Metrics>) -> Result<Self, StartupError> {
        let mut info = cfg
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| StartupError::RedisUrl(e.to_string()))?;
        if let Some(pw) = &cfg.password {
            info.redis.password = Some(pw.expose().clone());
        }
        let client = match &cfg.ca_file {
            None => redis::Client::open(info),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|reason| StartupError::Unreadable {
                    key: "session.redis_ca_file",
                    path: path.clone(),
                    reason,
                })?;
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
            }
        }
        .map_err(|e| StartupError::RedisUrl(e.to_string()))?;
        Ok(Self {
            client,
            connection: ArcSwapOption::empty(),
            healthy: AtomicBool::new(false),
            metrics,
        })
    }

    /// Whether the last command or ping succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Connects (retrying while Redis is down), then pings forever, keeping the health flag
    /// current. The connection manager reconnects on its own after a failed command; the ping
    /// makes sure that happens even when no request comes.
    pub async fn run(self: Arc<Self>) {
        loop {
            if self.connection.load().is_none() {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(COMMAND_TIMEOUT)
                    .set_number_of_retries(1)
                    .set_max_delay(200);
                let started = Instant::now();
                match tokio::time::timeout(
                    CONNECT_TIMEOUT * 2,
                    ConnectionManager::new_with_config(self.client.clone(), config),
                )
                .await
                {
                    Ok(Ok(manager)) => {
                        tracing::info!("connected to the session store (Redis)");
                        self.connection.store(Some(Arc::new(manager)));
                    }
                    Ok(Err(e)) => {
                        self.metrics.store_op(started.elapsed(), false);
                        self.set_healthy(false);
                        tracing::warn!(code = "store.connect_failed", error = %e, "cannot connect to the session store (Redis); retrying");
                    }
                    Err(_) => {
                        self.metrics.store_op(started.elapsed(), false);
                        self.set_healthy(false);
                        tracing::warn!(
                            code = "store.connect_failed",
                            "connecting to the session store (Redis) timed out; retrying"
                        );
                    }
                }
            }
            if self.connection.load().is_some() {
                let _ = self.query::<String>(redis::cmd("PING")).await;
            }
            tokio::time::sleep(PING_INTERVAL).await;
        }
    }

    fn set_healthy(&self, ok: bool) {
        let was = self.healthy.swap(ok, Ordering::AcqRel);
        if was && !ok {
            tracing::error!(
                code = "store.unavailable",
                "session store (Redis) unavailable: requests with sessions fail with 503"
            );
        } else if !was && ok {
            tracing::info!(code = "store.available", "session store (Redis) available");
        }
    }

    /// Runs one command within [`COMMAND_TIMEOUT`].
    pub async fn query<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T, StoreUnavailable> {
        let Some(conn) = self.connection.load_full() else {
            return Err(StoreUnavailable("not connected"));
        };
        let mut conn = (*conn).clone();
        let started = Instant::now();
        let result = tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async::<T>(&mut conn)).await;
        self.finish(started, result)
    }

    /// Runs a pipeline (one round trip) within [`COMMAND_TIMEOUT`].
    pub async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipe: Pipeline,
    ) -> Result<T, StoreUnavailable> {
        let Some(conn) = self.connection.load_full() else {
            return Err(StoreUnavailable("not connected"));
        };
        let mut conn = (*conn).clone();
        let started = Instant::now();
        let result = tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<T>(&mut conn)).await;
        self.finish(started, result)
    }

    fn finish<T>(
        &self,
        started: Instant,
        result: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreUnavailable> {
        let result = match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::warn!(code = "store.command_failed", error = %e, "session store (Redis) command failed");
                Err(StoreUnavailable("command failed"))
            }
            Err(_) => {
                tracing::warn!(
                    code = "store.timeout",
                    "session store (Redis) command timed out"
                );
                Err(StoreUnavailable("timed out"))
            }
        };
        self.metrics.store_op(started.elapsed(), result.is_ok());
        self.set_healthy(result.is_ok());
        result
    }
}
