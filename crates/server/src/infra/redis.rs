//! The shared Redis tier: one auto-reconnecting connection per process, a key prefix, and a
//! short timeout on every call. Redis holds state that many instances share (throttling
//! buckets, persisted queries) but is never required: a call that fails or times out answers
//! `None`, and the caller falls back to its in-process state. After a failure, calls are not
//! even tried for `redis.retry_after_ms`, so an outage costs requests no waiting; then one call
//! probes again. Failures are counted
//! (`rentgraph_redis_errors_total`) and logged at most once per interval, so an outage does not
//! write a log line per request; the connection manager reconnects by itself.
use opentelemetry::metrics::Counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const LOG_EVERY_SECS: u64 = 10;

/// A connection to one Redis or to a Redis Cluster; commands are the same, except that a
/// cluster cannot run a pipeline whose keys live on different nodes (see `run_pipeline`).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(Arc<Cluster>),
}

/// A cluster client, connected on first use (start-up never waits for Redis).
pub struct Cluster {
    client: redis::cluster::ClusterClient,
    conn: tokio::sync::OnceCell<redis::cluster_async::ClusterConnection>,
}

impl Cluster {
    async fn connection(&self) -> redis::RedisResult<redis::cluster_async::ClusterConnection> {
        self.conn
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(cluster) => {
                Box::pin(async move { cluster.connection().await?.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(cluster) => Box::pin(async move {
                cluster
                    .connection()
                    .await?
                    .req_packed_commands(cmd, offset, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(_) => 0,
        }
    }
}

#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: Conn,
    prefix: Arc<str>,
    timeout: Duration,
    /// One warning per `LOG_EVERY_SECS` for all failing calls.
    logged: Arc<crate::infra::telemetry::LogGate>,
    /// Per kind of call (`what`), the Unix ms before which it is not tried (it just failed):
    /// during an outage requests pay no timeout, and one call per interval probes whether Redis
    /// is back. Per kind, so one slow call (a big MGET) does not switch off throttling and
    /// invalidations with it.
    down_until_ms: Arc<std::sync::RwLock<std::collections::HashMap<&'static str, Arc<AtomicU64>>>>,
    retry_after: Duration,
    errors: Counter<u64>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl RedisStore {
    /// `None` when `redis.url` is empty. Connects lazily: a Redis that is down at start-up is
    /// an outage like any other, not a failed start.
    pub fn connect(
        settings: &RedisSettings,
        meter: &opentelemetry::metrics::Meter,
    ) -> Result<Option<Self>, redis::RedisError> {
        let url = settings.url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let timeout = Duration::from_millis(settings.timeout_ms);
        let connect_timeout = Duration::from_millis(settings.connect_timeout_ms);
        let (client, conn) = if settings.cluster {
            let nodes: Vec<&str> = url
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect();
            let cluster = redis::cluster::ClusterClient::builder(nodes.clone())
                .connection_timeout(connect_timeout)
                .response_timeout(timeout)
                .retries(1)
                .build()?;
            // Invalidations are published cluster-wide: any one node hears them all.
            let first = redis::Client::open(nodes.first().copied().unwrap_or_default())?;
            let cluster = Cluster {
                client: cluster,
                conn: tokio::sync::OnceCell::new(),
            };
            (first, Conn::Cluster(Arc::new(cluster)))
        } else {
            let client = redis::Client::open(url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(2));
            let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
            (client, Conn::Single(conn))
        };
        Ok(Some(Self {
            client,
            conn,
            prefix: settings.prefix.clone().into(),
            timeout,
            logged: Arc::new(crate::infra::telemetry::LogGate::new(LOG_EVERY_SECS)),
            down_until_ms: Arc::default(),
            retry_after: Duration::from_millis(settings.retry_after_ms),
            errors: meter
                .u64_counter("rentgraph_redis_errors")
                .with_description("Redis calls that failed or timed out (the caller fell back)")
                .build(),
        }))
    }

    /// The key under this deployment's prefix.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// The client, for connections of their own (pub/sub).
    pub fn client(&self) -> redis::Client {
        self.client.clone()
    }

    pub fn connection(&self) -> Conn {
        self.conn.clone()
    }

    /// Runs a pipeline of independent commands (`.ignore()`d results). A cluster cannot run
    /// one whose keys live on several nodes: there they run one by one, concurrently.
    pub async fn run_pipeline(&self, what: &'static str, pipe: redis::Pipeline) -> Option<()> {
        let mut conn = self.connection();
        match &conn {
            Conn::Single(_) => self.run(what, pipe.query_async(&mut conn)).await,
            Conn::Cluster(..) => {
                let calls = pipe.cmd_iter().map(|cmd| {
                    let mut conn = conn.clone();
                    async move { cmd.query_async::<redis::Value>(&mut conn).await.map(|_| ()) }
                });
                let all = async {
                    futures_util::future::join_all(calls)
                        .await
                        .into_iter()
                        .collect::<redis::RedisResult<Vec<()>>>()
                        .map(|_| ())
                };
                self.run(what, all).await
            }
        }
    }

    /// `run_pipeline` past the breaker: for retries that must go out even while their kind of
    /// call is failing (still bounded by the timeout, still counted).
    pub(crate) async fn run_pipeline_unguarded(
        &self,
        what: &'static str,
        pipe: redis::Pipeline,
    ) -> Option<()> {
        self.breaker(what).store(0, Ordering::Relaxed);
        self.run_pipeline(what, pipe).await
    }

    /// One JSON value by key: `None` when absent, unreadable or Redis failed.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        key: &str,
    ) -> Option<T> {
        let mut conn = self.connection();
        let bytes: Option<Vec<u8>> = self
            .run(what, redis::cmd("GET").arg(key).query_async(&mut conn))
            .await?;
        bytes.and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Adds `SET key <json> EX ttl` to a pipeline (nothing when the value does not serialise).
    pub(crate) fn set_json_in<T: serde::Serialize>(
        pipe: &mut redis::Pipeline,
        key: String,
        value: &T,
        ttl: Duration,
    ) {
        if let Ok(bytes) = serde_json::to_vec(value) {
            pipe.cmd("SET")
                .arg(key)
                .arg(bytes)
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .ignore();
        }
    }

    /// Stores one JSON value for `ttl` (at least a second).
    pub(crate) async fn set_json<T: serde::Serialize>(
        &self,
        what: &'static str,
        key: String,
        value: &T,
        ttl: Duration,
    ) {
        let mut pipe = redis::pipe();
        Self::set_json_in(&mut pipe, key, value, ttl);
        let _ = self.run_pipeline(what, pipe).await;
    }

    /// The breaker of one kind of call (made on its first use; kinds are a fixed set of names).
    fn breaker(&self, what: &'static str) -> Arc<AtomicU64> {
        let known = self
            .down_until_ms
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(what)
            .cloned();
        known.unwrap_or_else(|| {
            self.down_until_ms
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(what)
                .or_default()
                .clone()
        })
    }

    /// Runs one call with the timeout; `None` (logged and counted) when it fails.
    pub async fn run<T, F>(&self, what: &'static str, call: F) -> Option<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let breaker = self.breaker(what);
        if now_ms() < breaker.load(Ordering::Relaxed) {
            self.errors.add(
                1,
                &[
                    opentelemetry::KeyValue::new("call", what),
                    opentelemetry::KeyValue::new("outcome", "skipped"),
                ],
            );
            return None;
        }
        let error = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
        };
        breaker.store(
            now_ms() + self.retry_after.as_millis() as u64,
            Ordering::Relaxed,
        );
        self.errors.add(
            1,
            &[
                opentelemetry::KeyValue::new("call", what),
                opentelemetry::KeyValue::new("outcome", "failed"),
            ],
        );
        if let Some(held) = self.logged.admit() {
            tracing::warn!(call = what, %error, more_since_last_line = held, "Redis call failed; using in-process state");
        }
        None
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
    /// `url` lists Redis Cluster nodes, comma-separated.
    pub cluster: bool,
    pub connect_timeout_ms: u64,
    /// Each call's deadline; past it the caller uses its in-process state.
    pub timeout_ms: u64,
    /// After a failed call, how long Redis is not tried (requests use in-process state).
    pub retry_after_ms: u64,
    /// Put before every key, so deployments (and tests) can share one Redis.
    pub prefix: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> RedisStore {
        let settings = RedisSettings {
            url: "redis://127.0.0.1:9".into(),
            cluster: false,
            connect_timeout_ms: 100,
            timeout_ms: 100,
            retry_after_ms: 60_000,
            prefix: "t:".into(),
        };
        let provider = opentelemetry_sdk::metrics::SdkMeterProvider::default();
        use opentelemetry::metrics::MeterProvider as _;
        RedisStore::connect(&settings, &provider.meter("t"))
            .expect("settings")
            .expect("configured")
    }

    #[tokio::test]
    async fn a_failing_kind_of_call_does_not_switch_off_the_others() {
        let s = store();
        let fail =
            || async { Err::<(), _>(redis::RedisError::from((redis::ErrorKind::Io, "down"))) };
        let ok = || async { Ok::<u8, redis::RedisError>(7) };
        assert_eq!(s.run("cache_mget", fail()).await, None);
        // The same kind is skipped for retry_after_ms...
        assert_eq!(s.run("cache_mget", ok()).await, None);
        // ...others are still tried.
        assert_eq!(s.run("throttle", ok()).await, Some(7));
        assert_eq!(s.run("cache_invalidate", ok()).await, Some(7));
    }
}
