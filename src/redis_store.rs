//! The shared Redis tier: one auto-reconnecting connection per process, a key prefix, and a
//! short timeout on every call. Redis holds state that many instances share (throttling
//! buckets, persisted queries) but is never required: a call that fails or times out answers
//! `None`, and the caller falls back to its in-process state. After a failure, calls are not
//! even tried for `redis.retry_after_ms`, so an outage costs requests no waiting; then one call
//! probes again. Failures are counted
//! (`rentgraph_redis_errors_total`) and logged at most once per interval, so an outage does not
//! write a log line per request; the connection manager reconnects by itself.
use crate::config::RedisSettings;
use opentelemetry::metrics::Counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const LOG_EVERY_SECS: u64 = 10;

#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
    last_logged: Arc<AtomicU64>,
    /// Unix ms before which calls are not tried (Redis just failed): during an outage requests
    /// pay no timeout, and one call per interval probes whether Redis is back.
    down_until_ms: Arc<AtomicU64>,
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
        let client = redis::Client::open(url)?;
        let timeout = Duration::from_millis(settings.timeout_ms);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Some(Self {
            client,
            conn,
            prefix: settings.prefix.clone().into(),
            timeout,
            last_logged: Arc::new(AtomicU64::new(0)),
            down_until_ms: Arc::new(AtomicU64::new(0)),
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

    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs one call with the timeout; `None` (logged and counted) when it fails.
    pub async fn run<T, F>(&self, what: &'static str, call: F) -> Option<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        if now_ms() < self.down_until_ms.load(Ordering::Relaxed) {
            self.errors
                .add(1, &[opentelemetry::KeyValue::new("call", what)]);
            return None;
        }
        let error = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
        };
        self.down_until_ms.store(
            now_ms() + self.retry_after.as_millis() as u64,
            Ordering::Relaxed,
        );
        self.errors
            .add(1, &[opentelemetry::KeyValue::new("call", what)]);
        let now = now_ms() / 1000;
        let last = self.last_logged.load(Ordering::Relaxed);
        if now >= last + LOG_EVERY_SECS
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(call = what, %error, "Redis call failed; using in-process state");
        }
        None
    }
}
