//! Everything the session store says to Redis, and every key name it uses, in one file:
//!
//! - [`RedisIo`]: one connection manager (multiplexed, reconnects by itself), every command
//!   bounded by [`COMMAND_TIMEOUT`], timed into the metrics, and a health flag kept current by
//!   a background ping (it drives `/ready`). Standalone and Sentinel connections speak RESP3
//!   with `CLIENT TRACKING ON`: Redis pushes an invalidation for every key this replica read
//!   that anyone changes, and [`RedisIo::follow_invalidations`] applies it to the opened
//!   sessions' cache (`session/session_cache.rs`), so a repeated cookie skips the round trip
//!   and a sign-out on any replica still ends the session here within milliseconds.
//!   (Not redis-rs's own `cache-aio`: it is experimental, and it caches raw replies, so a hit
//!   would still cost the record's decryption and JSON.) Cluster connections are not tracked
//!   (redis-rs's cluster client delivers no pushes), so there every request reads Redis.
//! - [`RedisStore`]: the commands. Records under `portcullis:session:<h>` (`SET … PX`, `GET`,
//!   `DEL`), back-channel revocations under `portcullis:revoked:sid:<sid>` / `:sub:<sub>`
//!   (`SET … EX`, checked on every load), and the cross-replica single-flight refresh
//!   (`SET portcullis:lock:refresh:<h> NX PX`, released by a compare-and-delete script).
//!
//! Formats live in [`super::ticket`], decisions in [`super::store`].

use super::Session;
use super::session_cache::SessionCache;
use super::store::{Origin, RefreshFailure, Refresher, Revoke, StoredSession};
use super::ticket::{RecordVersion, SessionTicket, hex};
use crate::app::StartupError;
use crate::clock::UnixTime;
use crate::config::{RedisConfig, RedisTopology};
use crate::metrics::Metrics;
use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Cmd, FromRedisValue, IntoConnectionInfo, Pipeline};
use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tracing::Instrument;
use tracing::field::Empty;

/// The longest any one command may take before the request fails closed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest a (re)connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a login waits for a replica to acknowledge its record (Sentinel mode: `WAIT`).
const REPLICATION_WAIT: Duration = Duration::from_millis(250);
/// How often the health of the connection is checked (and a lost connection re-established).
const PING_INTERVAL: Duration = Duration::from_millis(500);

/// Redis could not answer in time (down, unreachable, refused auth, timed out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session store unavailable ({0})")]
pub struct StoreUnavailable(pub &'static str);

pub struct RedisIo {
    servers: Servers,
    connection: ArcSwapOption<Connection>,
    healthy: AtomicBool,
    /// Wakes [`RedisIo::run`] early: in Sentinel mode a failed command means "ask the
    /// Sentinels again" (the master may have moved).
    rediscover: tokio::sync::Notify,
    metrics: Arc<Metrics>,
    /// The opened sessions this replica serves without reading Redis, live while Redis
    /// tracks this connection's reads.
    cache: Arc<SessionCache>,
    /// Where the connection delivers Redis's pushes (`None`: not tracked: cluster mode, or
    /// `session.cache_capacity = 0`, which also keeps RESP2 for servers older than Redis 6).
    pushes: Option<UnboundedSender<PushInfo>>,
    received: std::sync::Mutex<Option<UnboundedReceiver<PushInfo>>>,
    /// `store.tracking_refused` was logged.
    tracking_refused: AtomicBool,
}

/// How the servers are found (`session.redis_mode`).
enum Servers {
    Standalone(redis::Client),
    /// Asked for the current master on every (re)connection.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    /// The cluster client follows `MOVED`/`ASK` and failovers by itself.
    Cluster(ClusterClient),
}

/// A live connection: to one server (standalone, or the master the Sentinels named), or to
/// the cluster (a connection per master, routed by key slot).
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
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
    pub fn new(
        cfg: &RedisConfig,
        metrics: Arc<Metrics>,
        cache: Arc<SessionCache>,
        tracked: bool,
    ) -> Result<Self, StartupError> {
        let tracked = tracked && !matches!(cfg.topology, RedisTopology::Cluster(_));
        let protocol = if tracked {
            ProtocolVersion::RESP3
        } else {
            ProtocolVersion::RESP2
        };
        let bad = |e: redis::RedisError| StartupError::RedisUrl(e.to_string());
        let certificates = match &cfg.ca_file {
            None => None,
            Some(path) => Some(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(path).map_err(|reason| {
                    StartupError::Unreadable {
                        key: "session.redis_ca_file",
                        path: path.clone(),
                        reason,
                    }
                })?),
            }),
        };
        let password = cfg.password.as_ref().map(|p| p.expose().clone());
        let servers = match &cfg.topology {
            RedisTopology::Standalone(url) => {
                let mut info = url.as_str().into_connection_info().map_err(bad)?;
                if let Some(user) = &cfg.username {
                    info.redis.username = Some(user.clone());
                }
                if let Some(pw) = &password {
                    info.redis.password = Some(pw.clone());
                }
                info.redis.protocol = protocol;
                Servers::Standalone(
                    match certificates {
                        None => redis::Client::open(info),
                        Some(certs) => redis::Client::build_with_tls(info, certs),
                    }
                    .map_err(bad)?,
                )
            }
            RedisTopology::Sentinel {
                sentinels,
                master,
                sentinel_password,
            } => {
                let addrs = sentinels
                    .iter()
                    .map(|u| u.as_str().into_connection_info().map(|i| i.addr))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(bad)?;
                let mut builder =
                    SentinelClientBuilder::new(addrs, master.clone(), SentinelServerType::Master)
                        .map_err(bad)?
                        .set_client_to_redis_protocol(protocol);
                if cfg.topology.tls() {
                    builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
                    if let Some(certs) = &certificates {
                        builder = builder
                            .set_client_to_redis_certificates(certs.clone())
                            .set_client_to_sentinel_certificates(certs.clone());
                    }
                }
                if let Some(user) = &cfg.username {
                    builder = builder.set_client_to_redis_username(user.clone());
                }
                if let Some(pw) = &password {
                    builder = builder.set_client_to_redis_password(pw.clone());
                }
                if let Some(pw) = sentinel_password {
                    builder = builder.set_client_to_sentinel_password(pw.expose().clone());
                }
                Servers::Sentinel(tokio::sync::Mutex::new(builder.build().map_err(bad)?))
            }
            RedisTopology::Cluster(nodes) => {
                let mut builder = ClusterClient::builder(
                    nodes
                        .iter()
                        .map(|u| u.as_str().into_connection_info())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(bad)?,
                )
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(COMMAND_TIMEOUT)
                .retries(2)
                .min_retry_wait(20)
                .max_retry_wait(200);
                if let Some(certs) = certificates {
                    builder = builder.certs(certs);
                }
                if let Some(user) = &cfg.username {
                    builder = builder.username(user.clone());
                }
                if let Some(pw) = password {
                    builder = builder.password(pw);
                }
                Servers::Cluster(builder.build().map_err(bad)?)
            }
        };
        let (pushes, received) = if tracked {
            let (tx, rx) = unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        Ok(Self {
            servers,
            connection: ArcSwapOption::empty(),
            healthy: AtomicBool::new(false),
            rediscover: tokio::sync::Notify::new(),
            metrics,
            cache,
            pushes,
            received: std::sync::Mutex::new(received),
            tracking_refused: AtomicBool::new(false),
        })
    }

    /// One connection attempt: to the standalone server, to the master the Sentinels name
    /// now, or to the cluster.
    async fn connect(&self) -> redis::RedisResult<Connection> {
        let manager = |client: redis::Client| {
            let mut config = ConnectionManagerConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(COMMAND_TIMEOUT)
                .set_number_of_retries(1)
                .set_max_delay(200);
            if let Some(tx) = &self.pushes {
                config = config.set_push_sender(tx.clone());
            }
            ConnectionManager::new_with_config(client, config)
        };
        match &self.servers {
            Servers::Standalone(client) => Ok(Connection::Single(manager(client.clone()).await?)),
            Servers::Sentinel(sentinels) => {
                let master = sentinels.lock().await.async_get_client().await?;
                Ok(Connection::Single(manager(master).await?))
            }
            Servers::Cluster(client) => {
                Ok(Connection::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// Whether the last command or ping succeeded (in cluster mode: the last ping).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Connects (retrying while Redis is down), then pings forever, keeping the health flag
    /// current. The connection manager reconnects on its own after a failed command; the ping
    /// makes sure that happens even when no request comes.
    pub async fn run(self: Arc<Self>) {
        loop {
            if self.connection.load().is_none() {
                let started = Instant::now();
                match tokio::time::timeout(CONNECT_TIMEOUT * 2, self.connect()).await {
                    Ok(Ok(connection)) => {
                        tracing::info!("connected to the session store (Redis)");
                        // A new connection tracks nothing yet.
                        self.cache.tracking_lost();
                        self.connection.store(Some(Arc::new(connection)));
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
                let pong = self.query::<String>(redis::cmd("PING")).await;
                if matches!(self.servers, Servers::Cluster(_)) {
                    self.set_healthy(pong.is_ok());
                }
                if pong.is_ok() && self.pushes.is_some() && !self.cache.is_live() {
                    self.start_tracking().await;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(PING_INTERVAL) => {}
                () = self.rediscover.notified() => {}
            }
        }
    }

    /// Asks Redis to track this connection's reads; the cache goes live unless the
    /// connection was lost meanwhile (then the next ping tries again).
    async fn start_tracking(&self) {
        let before = self.cache.before_tracking();
        let Some(conn) = self.connection.load_full() else {
            return;
        };
        let mut conn = (*conn).clone();
        // Not through `query`: a refusal (an ACL without CLIENT TRACKING) says nothing about
        // the store's health, and must not mark it down or drop the connection.
        let enable = redis::cmd("CLIENT").arg("TRACKING").arg("ON").clone();
        match tokio::time::timeout(COMMAND_TIMEOUT, enable.query_async::<()>(&mut conn))
            .await
            .map_err(|_| ())
            .and_then(|r| r.map_err(|_| ()))
        {
            Ok(()) => {
                if self.cache.tracking_started(before) {
                    tracing::debug!("session store (Redis) tracks this replica's reads");
                }
            }
            // Said once: the ping retries every PING_INTERVAL.
            Err(_) if !self.tracking_refused.swap(true, Ordering::Relaxed) => tracing::warn!(
                code = "store.tracking_refused",
                "Redis refused CLIENT TRACKING (an ACL without it?): every request reads Redis"
            ),
            Err(_) => {}
        }
    }

    /// Applies Redis's pushes to the opened sessions' cache, until the store is dropped.
    /// A changed record ends its entry; a changed revocation key (or a flush) ends them all;
    /// a lost connection stops the cache until tracking is on again.
    pub async fn follow_invalidations(self: Arc<Self>) {
        let Some(mut pushes) = self.received.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        while let Some(push) = pushes.recv().await {
            match push.kind {
                PushKind::Invalidate => match push.data.first() {
                    Some(Value::Array(keys)) => {
                        for key in keys {
                            match key {
                                Value::BulkString(k) if k.starts_with(SESSION_KEY_PREFIX) => {
                                    self.cache
                                        .invalidate(std::str::from_utf8(k).unwrap_or_default());
                                }
                                _ => self.cache.invalidate_all(),
                            }
                        }
                    }
                    _ => self.cache.invalidate_all(),
                },
                PushKind::Disconnection => self.cache.tracking_lost(),
                _ => {}
            }
        }
    }

    fn set_healthy(&self, ok: bool) {
        if !ok {
            // Invalidations may be missed while commands fail.
            self.cache.tracking_lost();
        }
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

    /// Runs one command within [`COMMAND_TIMEOUT`], in its span (the command's name, never
    /// its keys or values: a key names a session).
    pub async fn query<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T, StoreUnavailable> {
        let Some(conn) = self.connection.load_full() else {
            return Err(StoreUnavailable("not connected"));
        };
        let mut conn = (*conn).clone();
        let span = command_span(command_name(&cmd));
        let started = Instant::now();
        let result = tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async::<T>(&mut conn))
            .instrument(span.clone())
            .await;
        self.finish(started, result, &span)
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
        let span = command_span("PIPELINE");
        let started = Instant::now();
        let result = tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<T>(&mut conn))
            .instrument(span.clone())
            .await;
        self.finish(started, result, &span)
    }

    fn finish<T>(
        &self,
        started: Instant,
        result: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
        span: &tracing::Span,
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
        if let Err(StoreUnavailable(why)) = &result {
            span.record("error.type", *why);
            span.record("otel.status_code", "error");
        }
        self.metrics.store_op(started.elapsed(), result.is_ok());
        if !matches!(self.servers, Servers::Cluster(_)) {
            // A cluster with one shard down still serves the others: there, only the ping
            // (sent to every master) decides health, so `/ready` and the store.unavailable
            // log change once per outage, not with every command on the missing shard.
            self.set_healthy(result.is_ok());
        }
        if result.is_err() && matches!(self.servers, Servers::Sentinel(_)) {
            // The master may have failed over (or been demoted: `READONLY`): drop the
            // connection, and ask the Sentinels where the master is now.
            self.connection.store(None);
            self.cache.tracking_lost();
            self.rediscover.notify_one();
        }
        result
    }
}

/// A Redis command's client span (disabled unless traced: see [`crate::telemetry`]).
fn command_span(name: &str) -> tracing::Span {
    tracing::debug_span!(
        "redis",
        otel.name = name,
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.name = name,
        otel.status_code = Empty,
        error.type = Empty,
    )
}

/// The command's name (`GET`, `SET`, `EVALSHA`…): its first argument.
fn command_name(cmd: &Cmd) -> &str {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => std::str::from_utf8(name).unwrap_or("?"),
        _ => "?",
    }
}

pub struct RedisStore {
    io: Arc<RedisIo>,
    /// `session.expire`: how long revocations are kept.
    lifetime: Duration,
    metrics: Arc<Metrics>,
    /// In-process single-flight of the cross-replica refresh, keyed by record version. Only
    /// successes are kept: a failure (Redis blip, IdP down) is retried by the next request.
    pub refreshes: moka::future::Cache<String, Arc<Session>>,
}

/// How long a replica may hold a session's refresh lock (longer than any token call).
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How long a replica without the lock waits for the winner's rewritten session.
/// Longer than `oidc.timeout`'s default (5 s), so a waiting replica outlasts a slow IdP.
const WAIT_FOR_REFRESH: Duration = Duration::from_secs(7);
const POLL_INTERVAL: Duration = Duration::from_millis(40);
/// Deletes the lock only if we still hold it.
const RELEASE_LOCK: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

impl RedisStore {
    /// `cache`: the opened sessions' cache, tracked (and so used) unless `tracked` is false.
    pub fn new(
        cfg: &RedisConfig,
        lifetime: Duration,
        metrics: Arc<Metrics>,
        cache: Arc<SessionCache>,
        tracked: bool,
    ) -> Result<Self, StartupError> {
        Ok(RedisStore {
            io: Arc::new(RedisIo::new(cfg, metrics.clone(), cache, tracked)?),
            lifetime,
            metrics,
            refreshes: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
        })
    }

    /// The connection's background task (connects, reconnects, pings, applies invalidations).
    pub fn background(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (io, pushes) = (self.io.clone(), self.io.clone());
        async move {
            tokio::join!(io.run(), pushes.follow_invalidations());
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.io.is_healthy()
    }

    /// Writes a new session's record, for as long as the session lives.
    pub async fn create(
        &self,
        ticket: &SessionTicket,
        record: Vec<u8>,
        session: &Session,
        now: UnixTime,
    ) -> Result<(), StoreUnavailable> {
        let set = redis::cmd("SET")
            .arg(session_key(ticket))
            .arg(record)
            .arg("PX")
            .arg(ttl_ms(session, now))
            .clone();
        if !matches!(self.io.servers, Servers::Sentinel(_)) {
            return self.io.query::<()>(set).await;
        }
        // With Sentinel, a login waits (up to REPLICATION_WAIT) until a replica holds the
        // record, so a failover right after the login does not lose it.
        let ((), replicas): ((), i64) = self
            .io
            .query_pipeline(
                redis::pipe()
                    .add_command(set)
                    .cmd("WAIT")
                    .arg(1)
                    .arg(u64::try_from(REPLICATION_WAIT.as_millis()).unwrap_or(250))
                    .clone(),
            )
            .await?;
        if replicas < 1 {
            tracing::warn!(
                code = "store.not_replicated",
                "no replica acknowledged the new session in time; a failover now would lose it"
            );
        }
        Ok(())
    }

    /// Deletes a session's record: a copied cookie stops working on every replica.
    pub async fn end(&self, ticket: &SessionTicket) -> Result<(), StoreUnavailable> {
        let key = session_key(ticket);
        let deleted = self
            .io
            .query::<()>(redis::cmd("DEL").arg(&key).clone())
            .await;
        // Here at once; on the other replicas by Redis's invalidation push.
        self.io.cache.invalidate(&key);
        deleted
    }

    /// Records a back-channel revocation where every replica sees it, for `session.expire`.
    pub async fn revoke(&self, what: Revoke<'_>, now: UnixTime) -> Result<(), StoreUnavailable> {
        let key = match what {
            Revoke::Sid(sid) => revoked_sid_key(sid),
            Revoke::Sub(sub) => revoked_sub_key(sub),
        };
        let written = self
            .io
            .query::<()>(
                redis::cmd("SET")
                    .arg(key)
                    .arg(now)
                    .arg("EX")
                    .arg(self.lifetime.as_secs().max(1))
                    .clone(),
            )
            .await;
        self.io.cache.invalidate_all();
        written
    }

    pub async fn load(
        &self,
        ticket: SessionTicket,
    ) -> Result<Option<StoredSession>, StoreUnavailable> {
        let record: Option<Vec<u8>> = self
            .io
            .query(redis::cmd("GET").arg(session_key(&ticket)).clone())
            .await?;
        let Some((session, version)) = record.and_then(|r| ticket.open_record(&r)) else {
            return Ok(None);
        };
        if self.is_revoked(&session).await? {
            return Ok(None);
        }
        Ok(Some(StoredSession {
            session,
            origin: Origin::Redis { ticket, version },
        }))
    }

    /// Was this session ended by a back-channel logout received by any replica?
    async fn is_revoked(&self, s: &Session) -> Result<bool, StoreUnavailable> {
        let sid_key = s
            .identity
            .sid
            .as_deref()
            .map_or_else(|| "portcullis:revoked:sid:".into(), revoked_sid_key);
        let sub_key = revoked_sub_key(&s.identity.sub);
        let (sid, sub): (Option<UnixTime>, Option<UnixTime>) =
            if matches!(self.io.servers, Servers::Cluster(_)) {
                // Two keys in two slots: two commands (sent together on the connection).
                let get = |key: &str| self.io.query(redis::cmd("GET").arg(key).clone());
                tokio::try_join!(get(&sid_key), get(&sub_key))?
            } else {
                self.io
                    .query(redis::cmd("MGET").arg(sid_key).arg(sub_key).clone())
                    .await?
            };
        Ok((s.identity.sid.is_some() && sid.is_some()) || sub.is_some_and(|at| s.created_at <= at))
    }

    /// One refresh of one record version: take the lock and refresh, or wait for whoever has it.
    pub async fn refresh(
        &self,
        refresher: &impl Refresher,
        ticket: &SessionTicket,
        version: RecordVersion,
        session: &Session,
        now: UnixTime,
    ) -> Result<Arc<Session>, RefreshFailure> {
        let lock = refresh_lock_key(ticket);
        let Ok(token) = crate::seal::random_token(16) else {
            return Err(RefreshFailure::NotCompleted);
        };
        let acquired: Option<String> = self
            .io
            .query(
                redis::cmd("SET")
                    .arg(&lock)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(u64::try_from(LOCK_TTL.as_millis()).unwrap_or(10_000))
                    .clone(),
            )
            .await
            .map_err(RefreshFailure::Store)?;
        if acquired.is_none() {
            self.metrics.refresh_waits.fetch_add(1, Ordering::Relaxed);
            return self.wait_for_refresh(ticket, version, &lock).await;
        }
        let result = self
            .refresh_holding_lock(refresher, ticket, version, session, now)
            .await;
        let released = self
            .io
            .query::<i64>(
                redis::cmd("EVAL")
                    .arg(RELEASE_LOCK)
                    .arg(1)
                    .arg(&lock)
                    .arg(&token)
                    .clone(),
            )
            .await;
        if released.is_err() {
            tracing::warn!(
                code = "store.lock_release_failed",
                "refresh lock not released; it expires by itself"
            );
        }
        result
    }

    async fn refresh_holding_lock(
        &self,
        refresher: &impl Refresher,
        ticket: &SessionTicket,
        version: RecordVersion,
        session: &Session,
        now: UnixTime,
    ) -> Result<Arc<Session>, RefreshFailure> {
        // Another replica may have refreshed between our read and our lock.
        let key = session_key(ticket);
        let current: Option<Vec<u8>> = self
            .io
            .query(redis::cmd("GET").arg(&key).clone())
            .await
            .map_err(RefreshFailure::Store)?;
        if let Some(done) = already_rewritten(ticket, current, version) {
            return done;
        }
        match refresher.refresh(session, now).await {
            Ok(fresh) => {
                // XX: a session signed out meanwhile is not brought back.
                let written = match ticket.seal_record(&fresh) {
                    Ok(record) => self
                        .io
                        .query::<Option<String>>(
                            redis::cmd("SET")
                                .arg(&key)
                                .arg(record)
                                .arg("XX")
                                .arg("PX")
                                .arg(ttl_ms(&fresh, now))
                                .clone(),
                        )
                        .await
                        .map(|_| ()),
                    Err(_) => Err(StoreUnavailable("cannot encode")),
                };
                if let Err(e) = written {
                    // The tokens are fresh: this request passes; the next one retries.
                    tracing::warn!(code = "store.refresh_not_saved", error = %e, "refreshed session could not be stored");
                }
                Ok(fresh)
            }
            Err(e) if e.ends_session() => {
                // The refresh token is dead, so is the session, on every replica.
                let _ = self
                    .io
                    .query::<()>(redis::cmd("DEL").arg(&key).clone())
                    .await;
                Err(RefreshFailure::Idp(e))
            }
            Err(e) => Err(RefreshFailure::Idp(e)),
        }
    }

    /// Polls until the lock holder rewrote the record (use its session), deleted it (ended),
    /// or gave up without rewriting (a transient failure, like an unreachable IdP).
    async fn wait_for_refresh(
        &self,
        ticket: &SessionTicket,
        version: RecordVersion,
        lock: &str,
    ) -> Result<Arc<Session>, RefreshFailure> {
        let deadline = Instant::now() + WAIT_FOR_REFRESH;
        let key = session_key(ticket);
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            // EXISTS before GET: the holder writes, then unlocks, so "unlocked" followed by
            // "unchanged" really means it gave up.
            let (locked, record): (bool, Option<Vec<u8>>) = self
                .io
                .query_pipeline(
                    redis::pipe()
                        .cmd("EXISTS")
                        .arg(lock)
                        .cmd("GET")
                        .arg(&key)
                        .clone(),
                )
                .await
                .map_err(RefreshFailure::Store)?;
            if let Some(done) = already_rewritten(ticket, record, version) {
                return done;
            }
            if !locked || Instant::now() >= deadline {
                tracing::info!(
                    code = "refresh.wait_gave_up",
                    "another replica's refresh did not complete"
                );
                return Err(RefreshFailure::NotCompleted);
            }
        }
    }
}

/// What a freshly read record says about a refresh of `version`: the session ended (gone or
/// unreadable), someone else already refreshed it (a newer version), or `None`: still ours to
/// refresh or wait for.
fn already_rewritten(
    ticket: &SessionTicket,
    record: Option<Vec<u8>>,
    version: RecordVersion,
) -> Option<Result<Arc<Session>, RefreshFailure>> {
    match record.and_then(|r| ticket.open_record(&r)) {
        None => Some(Err(RefreshFailure::Ended)),
        Some((s, v)) if v != version => Some(Ok(Arc::new(s))),
        Some(_) => None,
    }
}

/// Remaining session lifetime in milliseconds (at least 1: Redis refuses `PX 0`).
fn ttl_ms(s: &Session, now: UnixTime) -> u64 {
    s.expires_at.saturating_sub(now).saturating_mul(1000).max(1)
}

/// Where a session's record lives: `portcullis:session:<hex(sha256(id))>` (the id itself
/// never reaches Redis). Also bound into the record's associated data (`session/ticket.rs`).
pub fn session_key(ticket: &SessionTicket) -> String {
    format!("portcullis:session:{}", ticket.digest())
}

const SESSION_KEY_PREFIX: &[u8] = b"portcullis:session:";

/// The cross-replica refresh lock of a session (`SET … NX PX`). Its hash tag is the whole
/// record key, so in a cluster both live in one slot (the waiters read both in one pipeline).
pub fn refresh_lock_key(ticket: &SessionTicket) -> String {
    format!("{{{}}}:refresh-lock", session_key(ticket))
}

/// The in-process single-flight key of one refresh of one record version.
pub fn refresh_flight_key(ticket: &SessionTicket, version: &RecordVersion) -> String {
    format!("{}:{}", session_key(ticket), hex(version))
}

fn revoked_sid_key(sid: &str) -> String {
    format!("portcullis:revoked:sid:{sid}")
}

fn revoked_sub_key(sub: &str) -> String {
    format!("portcullis:revoked:sub:{sub}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_hash_the_id() {
        let t = SessionTicket::generate().unwrap();
        let k = session_key(&t);
        assert!(
            k.starts_with("portcullis:session:") && k.len() == 19 + 64,
            "{k}"
        );
        assert_eq!(refresh_lock_key(&t), format!("{{{k}}}:refresh-lock"));
    }

    #[test]
    fn key_names_and_ttls() {
        assert_eq!(revoked_sid_key("kc-1"), "portcullis:revoked:sid:kc-1");
        assert_eq!(revoked_sub_key("alice"), "portcullis:revoked:sub:alice");
        let s = Session {
            id: None,
            identity: Default::default(),
            created_at: 0,
            tokens_at: 0,
            access_expires_at: 300,
            expires_at: 1000,
            refresh_token: None,
            id_token: None,
            access_token: None,
        };
        assert_eq!(ttl_ms(&s, 400), 600_000);
        assert_eq!(ttl_ms(&s, 2000), 1);
    }
}
