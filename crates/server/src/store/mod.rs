//! All data access. The only module that builds SQL; it knows sea-orm and the entities but
//! nothing of GraphQL, so it can be reused by the CLI (seed, export) and by later batch jobs.
//! Functions that back dataloaders take a slice of keys and answer with one statement.
mod interactions;
mod pagination;
mod properties;
mod recommend;
mod replicas;
mod users;

pub use interactions::{HistoryCursor, SavedRow};
pub use pagination::{Page, PageRequest, SortKey};
pub use properties::{
    Bounds, Near, NewProperty, OrderDirection, PropertyFilter, PropertyOrder, PropertyOrderField,
    PropertyPatch, PropertyStats,
};
pub use recommend::{IndexRow, InteractionEvent};

use crate::infra::telemetry::Metrics;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot create the database directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl StoreError {
    /// PostgreSQL cancelled the statement at its `statement_timeout` (SQLSTATE 57014).
    pub fn is_statement_timeout(&self) -> bool {
        use sea_orm::RuntimeErr;
        let StoreError::Db(
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)),
        ) = self
        else {
            return false;
        };
        matches!(e.as_ref(), sea_orm::sqlx::Error::Database(db) if db.code().as_deref() == Some("57014"))
    }

    /// The error of a load shared by several callers (single flight, loaders): the error
    /// itself when this is the last holder, else a database error with its text.
    pub fn unshare(e: Arc<StoreError>) -> StoreError {
        Arc::try_unwrap(e).unwrap_or_else(|e| StoreError::Db(DbErr::Custom(e.to_string())))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// PostgreSQL only: the pool anonymous callers' primary reads use, with its own shorter
    /// statement timeout and its own connections, so a flood of anonymous queries can neither
    /// run long nor take the connections signed-in users need.
    anonymous: Option<DatabaseConnection>,
    /// `database.replica_urls`, for the reads that tolerate lag (`store::replicas`).
    replicas: Option<Arc<replicas::Replicas>>,
    /// Users who wrote lately: their reads go to the primary for
    /// `database.read_your_writes_secs` (only with replicas).
    writers: Option<moka::sync::Cache<uuid::Uuid, ()>>,
}

/// Where an operation's reads may go (`reads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// A mutation, or a caller who wrote lately: the primary only.
    Primary,
    /// An anonymous caller: a replica, else the anonymous pool.
    Anonymous,
    /// A signed-in caller: a replica, else the primary.
    SignedIn,
}

tokio::task_local! {
    static READS: Reads;
}

/// Runs `work` with its reads routed as `route` says (the gateway wraps each operation; work
/// outside an operation, such as the listing index's reloads, may use replicas).
pub async fn reads<F: std::future::Future>(route: Reads, work: F) -> F::Output {
    READS.scope(route, work).await
}

impl Store {
    /// Opens the pool and installs the statement hook that feeds the query counter, the
    /// duration histogram and the slow-statement log.
    pub async fn connect(settings: &DatabaseSettings, metrics: Arc<Metrics>) -> StoreResult<Self> {
        ensure_sqlite_dir(&settings.url)?;
        let mut opts = pool_options(settings, &settings.url);
        if settings.url.starts_with("sqlite") {
            // WAL lets readers run while the single writer commits; busy_timeout makes a
            // second writer wait instead of failing with SQLITE_BUSY.
            opts.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            });
        }
        let anonymous = if settings.url.starts_with("postgres")
            && settings.anonymous_statement_timeout_ms > 0
            && settings.anonymous_max_connections > 0
        {
            let mut anon = opts.clone();
            anon.max_connections(settings.anonymous_max_connections)
                .min_connections(0)
                .statement_timeout(Duration::from_millis(
                    settings.anonymous_statement_timeout_ms,
                ));
            let mut pool = Database::connect(anon).await?;
            pool.set_metric_callback(statement_hook(settings, metrics.clone(), "anonymous"));
            Some(pool)
        } else {
            None
        };
        let replicas = replicas::Replicas::connect(settings, &metrics).await?;
        let writers = replicas.as_ref().map(|_| {
            moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(settings.read_your_writes_secs.max(1)))
                .build()
        });
        let mut db = Database::connect(opts).await?;
        db.set_metric_callback(statement_hook(settings, metrics, "primary"));
        Ok(Self {
            db,
            anonymous,
            replicas,
            writers,
        })
    }

    /// This user wrote (here, or on another instance, as the bus says): their reads go to the
    /// primary for `database.read_your_writes_secs`.
    pub fn wrote(&self, user: uuid::Uuid) {
        if let Some(w) = &self.writers {
            w.insert(user, ());
        }
    }

    /// Where a caller's operation reads: `mutation` is whether it writes.
    pub fn route_for(&self, user: Option<uuid::Uuid>, mutation: bool) -> Reads {
        match user {
            _ if mutation => Reads::Primary,
            None => Reads::Anonymous,
            Some(u) if self.writers.as_ref().is_some_and(|w| w.contains_key(&u)) => Reads::Primary,
            Some(_) => Reads::SignedIn,
        }
    }

    /// Each replica's name, whether it is in use and its last measured lag in ms.
    pub fn replicas(&self) -> Vec<(&'static str, bool, u64)> {
        self.replicas
            .as_ref()
            .map(|r| r.describe())
            .unwrap_or_default()
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The connection for read-only statements, which retry once on a fresh connection when
    /// theirs turns out to be broken (see `Reader`).
    pub(crate) fn read(&self) -> Reader<'_> {
        let route = READS.try_with(|r| *r).unwrap_or(Reads::SignedIn);
        if route != Reads::Primary
            && let Some(replica) = self.replicas.as_ref().and_then(|r| r.pick())
        {
            return Reader {
                conn: &replica.conn,
                replica: Some(replica),
                fallback: self.primary_for(route),
            };
        }
        self.read_primary()
    }

    /// A read that must see every committed write: the rows the entity cache is filled with
    /// (a fill from a lagging replica would outlive the write's invalidation), and what follows
    /// a change the bus announced.
    pub(crate) fn read_primary(&self) -> Reader<'_> {
        let route = READS.try_with(|r| *r).unwrap_or(Reads::SignedIn);
        let conn = self.primary_for(route);
        Reader {
            conn,
            replica: None,
            fallback: conn,
        }
    }

    fn primary_for(&self, route: Reads) -> &DatabaseConnection {
        match (&self.anonymous, route) {
            (Some(pool), Reads::Anonymous) => pool,
            _ => &self.db,
        }
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    pub async fn ping(&self) -> StoreResult<()> {
        self.db.ping().await?;
        Ok(())
    }

    /// Runs `EXPLAIN` for a statement built by this module (docs and the index test use it).
    pub async fn explain(&self, stmt: &sea_orm::Statement) -> StoreResult<String> {
        let prefix = match self.backend() {
            DbBackend::Sqlite => "EXPLAIN QUERY PLAN ",
            _ => "EXPLAIN ",
        };
        let explained = sea_orm::Statement {
            sql: format!("{prefix}{}", stmt.sql),
            values: stmt.values.clone(),
            db_backend: stmt.db_backend,
        };
        let rows = self.db.query_all_raw(explained).await?;
        let mut out = String::new();
        for row in rows {
            let line: String = match self.backend() {
                DbBackend::Sqlite => row.try_get_by_index(3)?,
                _ => row.try_get_by_index(0)?,
            };
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }
}

/// A connection for reads. When PostgreSQL restarts, fails over or terminates backends, the
/// statements that were running, or that next use a connection the pool still holds, fail with
/// a connection error although nothing is wrong with them. A read is safe to repeat, so it
/// gets one more try, on another connection (the pool drops the broken one and checks idle
/// ones before handing them out); a second failure is real. Writes are never retried here:
/// the first attempt may have committed.
pub(crate) struct Reader<'a> {
    conn: &'a DatabaseConnection,
    /// When `conn` is a replica's: it is taken out if its connection breaks.
    replica: Option<&'a replicas::Replica>,
    /// Where a read that lost its connection is repeated: the same pool for the primary, the
    /// primary for a replica.
    fallback: &'a DatabaseConnection,
}

impl Reader<'_> {
    /// Whether a failed read is repeated: its connection broke; on a replica also when no
    /// connection could be had (a replica that went away refuses new ones).
    fn repeatable(&self, e: &DbErr) -> bool {
        is_connection_error(e)
            || (self.replica.is_some() && matches!(e, DbErr::ConnectionAcquire(_)))
    }

    /// A read that lost its connection, repeated once: on the primary when it was a replica's
    /// (taken out until its next check passes), else on another connection of the same pool.
    fn retry_on(&self, e: &DbErr) -> &DatabaseConnection {
        if let Some(replica) = self.replica {
            replica.take_out();
            tracing::warn!(error = %e, replica = replica.name, "a read on a replica lost its connection; repeating it on the primary");
        } else {
            tracing::warn!(error = %e, "a read lost its connection; retrying once");
        }
        self.fallback
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Reader<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        self.conn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.conn.execute_unprepared(sql).await
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        use tracing::Instrument;
        let span = sql_span(&stmt);
        let first = {
            let _counted = self.replica.map(|r| r.begin());
            self.conn.query_one_raw(stmt.clone()).instrument(span).await
        };
        match first {
            Err(e) if self.repeatable(&e) => self.retry_on(&e).query_one_raw(stmt).await,
            other => other,
        }
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        use tracing::Instrument;
        let span = sql_span(&stmt);
        let first = {
            let _counted = self.replica.map(|r| r.begin());
            self.conn.query_all_raw(stmt.clone()).instrument(span).await
        };
        match first {
            Err(e) if self.repeatable(&e) => self.retry_on(&e).query_all_raw(stmt).await,
            other => other,
        }
    }
}

/// A span per read statement: its first words (the table it reads) but never its values.
fn sql_span(stmt: &sea_orm::Statement) -> tracing::Span {
    let head: String = stmt.sql.chars().take(120).collect();
    tracing::debug_span!("sql", statement = %head)
}

/// A pool of `url` with the `[database]` sizes and timeouts (the primary's; replicas adjust
/// theirs, `store::replicas`).
pub(crate) fn pool_options(settings: &DatabaseSettings, url: &str) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .idle_timeout(Duration::from_millis(settings.idle_timeout_ms))
        .max_lifetime(Duration::from_millis(settings.max_lifetime_ms))
        .sqlx_logging(false);
    if url.starts_with("postgres") && settings.statement_timeout_ms > 0 {
        opts.statement_timeout(Duration::from_millis(settings.statement_timeout_ms));
    }
    opts
}

/// The pool's statement hook: the query counter (by pool), the duration histogram, the
/// operation's statement count and the slow-statement log.
pub(crate) fn statement_hook(
    settings: &DatabaseSettings,
    metrics: Arc<Metrics>,
    pool: &'static str,
) -> impl Fn(&sea_orm::metric::Info<'_>) + Send + Sync + 'static {
    let slow = Duration::from_millis(settings.slow_statement_ms);
    move |info| {
        metrics.record_db_statement(pool, info.elapsed, info.failed);
        crate::limits::Statements::ran();
        if info.elapsed >= slow {
            tracing::warn!(
                elapsed_ms = info.elapsed.as_millis() as u64,
                failed = info.failed,
                sql = %info.statement.sql,
                pool,
                "slow SQL statement"
            );
        }
    }
}

/// The connection failed, not the statement: I/O and protocol errors, PostgreSQL's
/// connection-exception class (08) and its shutdown codes (57P01-57P03).
fn is_connection_error(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let (DbErr::Conn(RuntimeErr::SqlxError(e))
    | DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))) = e
    else {
        return false;
    };
    match e.as_ref() {
        Sqlx::Io(_) | Sqlx::Protocol(_) | Sqlx::Tls(_) => true,
        Sqlx::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// The ids as one PostgreSQL `uuid[]` parameter.
fn uuid_array(ids: &[uuid::Uuid]) -> sea_orm::Value {
    let values = ids.iter().map(|id| sea_orm::Value::from(*id)).collect();
    sea_orm::Value::Array(sea_orm::sea_query::ArrayType::Uuid, Some(Box::new(values)))
}

/// `column IN (ids)` for the batched lookups. On PostgreSQL it is `column = ANY($1)` with one
/// array parameter, so the statement text, and the plan PostgreSQL caches for it, is the same
/// however many ids a batch has; an `IN` list is a new statement for every batch size.
pub(crate) fn id_in<C: sea_orm::ColumnTrait>(
    backend: DbBackend,
    column: C,
    ids: &[uuid::Uuid],
) -> sea_orm::sea_query::Expr {
    use sea_orm::sea_query::{Expr, ExprTrait, PgFunc};
    match backend {
        DbBackend::Postgres => {
            Expr::col(column.as_column_ref()).eq(PgFunc::any(Expr::val(uuid_array(ids))))
        }
        _ => column.is_in(ids.iter().copied()),
    }
}

/// Builds placeholders in the backend's style while values are pushed, for the statements
/// written as SQL text (window functions the query builder cannot express).
pub(super) struct Params {
    backend: DbBackend,
    values: Vec<sea_orm::Value>,
}

impl Params {
    pub(super) fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, v: impl Into<sea_orm::Value>) -> String {
        self.values.push(v.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    /// `column IN (ids)`, as `column = ANY($n)` on PostgreSQL (see `id_in`).
    pub(super) fn in_list(&mut self, column: &str, ids: &[uuid::Uuid]) -> String {
        match self.backend {
            DbBackend::Postgres => format!("{column} = ANY({})", self.push(uuid_array(ids))),
            _ => {
                let list: Vec<String> = ids.iter().map(|id| self.push(*id)).collect();
                format!("{column} IN ({})", list.join(", "))
            }
        }
    }

    pub(super) fn statement(self, sql: String) -> sea_orm::Statement {
        sea_orm::Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

fn ensure_sqlite_dir(url: &str) -> StoreResult<()> {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
            path: parent.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    /// PostgreSQL: anonymous callers' reads run on a pool of their own with this statement
    /// timeout (0: they share the main pool and its timeout).
    pub anonymous_statement_timeout_ms: u64,
    pub anonymous_max_connections: u32,
    /// PostgreSQL streaming replicas for the reads that tolerate lag (`store::replicas`).
    #[serde(deserialize_with = "crate::infra::list_or_csv")]
    pub replica_urls: Vec<String>,
    /// A caller's reads go to the primary this long after their own write.
    pub read_your_writes_secs: u64,
    /// A replica further behind than this is not used until it catches up.
    pub max_replica_lag_ms: u64,
    /// How often each replica's health and lag are checked.
    pub replica_check_ms: u64,
    pub idle_timeout_ms: u64,
    pub max_lifetime_ms: u64,
    pub slow_statement_ms: u64,
    pub migrate_on_start: bool,
    pub seed_if_empty: bool,
}

impl From<PropertyStats> for rentgraph_model::features::Popularity {
    fn from(s: PropertyStats) -> Self {
        let c = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        Self {
            views: c(s.views),
            likes: c(s.likes),
            saves: c(s.saves),
            inquiries: c(s.inquiries),
            dismissals: c(s.dismissals),
        }
    }
}
