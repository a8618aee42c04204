//! PostgreSQL read replicas (`database.replica_urls`). Reads that tolerate a little lag (listing
//! pages and counts, search, the listing index's full reloads, user-state loads, counters) go
//! to the usable replica with the fewest statements in flight; writes, mutations' reads, the
//! reads of a caller within `database.read_your_writes_secs` of their own write, and the rows
//! the entity cache is filled with go to the primary. A replica that fails a check, lags more
//! than `database.max_replica_lag_ms` or loses a connection under a statement is taken out
//! (that statement is repeated on the primary) and put back by the next check that passes.
//!
//! Cache fills read the primary because a fill from a lagging replica, after the write's
//! invalidation, would put the old row back for `cache.l2_ttl_secs`: the versioned fill only
//! guards against invalidations that come after the read.
use super::{DatabaseSettings, StoreResult};
use crate::infra::telemetry::Metrics;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) struct Replica {
    /// `replica-N`, the statement counter's `pool` label.
    pub(crate) name: &'static str,
    pub(crate) conn: DatabaseConnection,
    /// One connection of its own for the checks, so they do not count as the pool's work.
    check: DatabaseConnection,
    usable: AtomicBool,
    lag_ms: AtomicU64,
    inflight: AtomicUsize,
}

impl Replica {
    /// A statement on this replica has started; dropping the guard ends it.
    pub(crate) fn begin(&self) -> InFlight<'_> {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Out until the next check passes (its connection broke under a statement).
    pub(crate) fn take_out(&self) {
        if self.usable.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                replica = self.name,
                "read replica taken out: a connection failed"
            );
        }
    }
}

pub(crate) struct InFlight<'a>(&'a Replica);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) struct Replicas {
    members: Vec<Replica>,
    max_lag_ms: u64,
}

/// How far the replica is behind: 0 when it has replayed all it received, else the age of the
/// last transaction it replayed. `None` when it is not a replica at all.
const LAG_SQL: &str = "SELECT pg_is_in_recovery() AS replica,
    CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
         ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0)
    END::bigint AS lag_ms";

impl Replicas {
    /// The configured replicas' pools (opened lazily: a replica that is down at start-up does
    /// not stop the server), checked once before this returns and then every
    /// `database.replica_check_ms`. `None` without replicas.
    pub(crate) async fn connect(
        settings: &DatabaseSettings,
        metrics: &Arc<Metrics>,
    ) -> StoreResult<Option<Arc<Self>>> {
        if settings.replica_urls.is_empty() {
            return Ok(None);
        }
        let mut members = Vec::new();
        for (i, url) in settings.replica_urls.iter().enumerate() {
            let mut opts = super::pool_options(settings, url);
            // A replica that went away must not hold a read up for the primary's acquire
            // timeout: at most a second, then the read is repeated on the primary.
            let acquire = Duration::from_millis(settings.acquire_timeout_ms.min(1000));
            opts.min_connections(0)
                .acquire_timeout(acquire)
                .connect_timeout(acquire)
                .connect_lazy(true);
            // A metric label must live as long as the process; the list is fixed at start.
            let name: &'static str = Box::leak(format!("replica-{i}").into_boxed_str());
            let mut check = opts.clone();
            check.max_connections(1);
            let check = Database::connect(check).await?;
            let mut conn = Database::connect(opts).await?;
            conn.set_metric_callback(super::statement_hook(settings, metrics.clone(), name));
            members.push(Replica {
                name,
                conn,
                check,
                usable: AtomicBool::new(false),
                lag_ms: AtomicU64::new(0),
                inflight: AtomicUsize::new(0),
            });
        }
        let replicas = Arc::new(Self {
            members,
            max_lag_ms: settings.max_replica_lag_ms,
        });
        replicas.check_all().await;
        let every = Duration::from_millis(settings.replica_check_ms.max(100));
        let weak = Arc::downgrade(&replicas);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(replicas) = weak.upgrade() else {
                    return;
                };
                replicas.check_all().await;
            }
        });
        Ok(Some(replicas))
    }

    /// The usable replica with the fewest statements in flight.
    pub(crate) fn pick(&self) -> Option<&Replica> {
        self.members
            .iter()
            .filter(|r| r.usable.load(Ordering::Acquire))
            .min_by_key(|r| r.inflight.load(Ordering::Relaxed))
    }

    /// Each replica's name, whether it is used, and its last measured lag (for `/ready`).
    pub(crate) fn describe(&self) -> Vec<(&'static str, bool, u64)> {
        self.members
            .iter()
            .map(|r| {
                (
                    r.name,
                    r.usable.load(Ordering::Acquire),
                    r.lag_ms.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    async fn check_all(&self) {
        for r in &self.members {
            let verdict = match tokio::time::timeout(Duration::from_secs(1), lag(&r.check)).await {
                Ok(Ok(Some(lag))) if lag <= self.max_lag_ms => {
                    r.lag_ms.store(lag, Ordering::Relaxed);
                    Ok(())
                }
                Ok(Ok(Some(lag))) => {
                    r.lag_ms.store(lag, Ordering::Relaxed);
                    Err(format!(
                        "{lag} ms behind (database.max_replica_lag_ms = {})",
                        self.max_lag_ms
                    ))
                }
                Ok(Ok(None)) => Err("not a replica (pg_is_in_recovery() is false)".to_owned()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the check timed out".to_owned()),
            };
            let was = r.usable.swap(verdict.is_ok(), Ordering::AcqRel);
            match verdict {
                Ok(()) if !was => tracing::info!(replica = r.name, "read replica in use"),
                Err(why) if was => tracing::warn!(replica = r.name, %why, "read replica taken out"),
                _ => {}
            }
        }
    }
}

/// `None`: the server is not in recovery (not a replica).
async fn lag(conn: &DatabaseConnection) -> Result<Option<u64>, sea_orm::DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), LAG_SQL))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let replica: bool = row.try_get("", "replica")?;
    let lag: i64 = row.try_get("", "lag_ms")?;
    Ok(replica.then_some(lag.max(0) as u64))
}
