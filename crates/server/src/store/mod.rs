//! All data access. The only module that builds SQL; it knows sea-orm and the entities but
//! nothing of GraphQL, so it can be reused by the CLI (seed, export) and by later batch jobs.
//! Functions that back dataloaders take a slice of keys and answer with one statement.
mod interactions;
mod pagination;
mod properties;
mod recommend;
mod users;

pub use interactions::{HistoryCursor, SavedRow};
pub use pagination::{Page, PageRequest, SortKey};
pub use properties::{
    NewProperty, OrderDirection, PropertyFilter, PropertyOrder, PropertyOrderField, PropertyPatch,
    PropertyStats,
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
    /// PostgreSQL only: the pool anonymous callers' reads use (`anonymous_reads`), with its own
    /// shorter statement timeout and its own connections, so a flood of anonymous queries can
    /// neither run long nor take the connections signed-in users need.
    anonymous: Option<DatabaseConnection>,
}

tokio::task_local! {
    static ANONYMOUS: ();
}

/// Runs `work` with its reads on the anonymous pool, where there is one (the gateway wraps an
/// anonymous caller's operation in it).
pub async fn anonymous_reads<F: std::future::Future>(work: F) -> F::Output {
    ANONYMOUS.scope((), work).await
}

impl Store {
    /// Opens the pool and installs the statement hook that feeds the query counter, the
    /// duration histogram and the slow-statement log.
    pub async fn connect(settings: &DatabaseSettings, metrics: Arc<Metrics>) -> StoreResult<Self> {
        ensure_sqlite_dir(&settings.url)?;
        let mut opts = ConnectOptions::new(settings.url.clone());
        opts.max_connections(settings.max_connections)
            .min_connections(settings.min_connections)
            .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
            .connect_timeout(Duration::from_millis(settings.acquire_timeout_ms))
            .idle_timeout(Duration::from_millis(settings.idle_timeout_ms))
            .max_lifetime(Duration::from_millis(settings.max_lifetime_ms))
            .sqlx_logging(false);
        if settings.url.starts_with("postgres") && settings.statement_timeout_ms > 0 {
            opts.statement_timeout(Duration::from_millis(settings.statement_timeout_ms));
        }
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
            pool.set_metric_callback(statement_hook(settings, metrics.clone()));
            Some(pool)
        } else {
            None
        };
        let mut db = Database::connect(opts).await?;
        db.set_metric_callback(statement_hook(settings, metrics));
        Ok(Self { db, anonymous })
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
        match &self.anonymous {
            Some(pool) if ANONYMOUS.try_with(|_| ()).is_ok() => Reader(pool),
            _ => Reader(&self.db),
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
pub(crate) struct Reader<'a>(&'a DatabaseConnection);

#[async_trait::async_trait]
impl ConnectionTrait for Reader<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.0.get_database_backend()
    }

    async fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        self.0.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.0.execute_unprepared(sql).await
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        use tracing::Instrument;
        let span = sql_span(&stmt);
        match self.0.query_one_raw(stmt.clone()).instrument(span).await {
            Err(e) if is_connection_error(&e) => {
                tracing::warn!(error = %e, "a read lost its connection; retrying once");
                self.0.query_one_raw(stmt).await
            }
            other => other,
        }
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        use tracing::Instrument;
        let span = sql_span(&stmt);
        match self.0.query_all_raw(stmt.clone()).instrument(span).await {
            Err(e) if is_connection_error(&e) => {
                tracing::warn!(error = %e, "a read lost its connection; retrying once");
                self.0.query_all_raw(stmt).await
            }
            other => other,
        }
    }
}

/// A span per read statement: its first words (the table it reads) but never its values.
fn sql_span(stmt: &sea_orm::Statement) -> tracing::Span {
    let head: String = stmt.sql.chars().take(120).collect();
    tracing::debug_span!("sql", statement = %head)
}

/// The connection failed, not the statement: I/O and protocol errors, PostgreSQL's
/// connection-exception class (08) and its shutdown codes (57P01-57P03).
/// The pool's statement hook: the query counter, the duration histogram, the operation's
/// statement count and the slow-statement log.
fn statement_hook(
    settings: &DatabaseSettings,
    metrics: Arc<Metrics>,
) -> impl Fn(&sea_orm::metric::Info<'_>) + Send + Sync + 'static {
    let slow = Duration::from_millis(settings.slow_statement_ms);
    move |info| {
        metrics.record_db_statement(info.elapsed, info.failed);
        crate::limits::Statements::ran();
        if info.elapsed >= slow {
            tracing::warn!(
                elapsed_ms = info.elapsed.as_millis() as u64,
                failed = info.failed,
                sql = %info.statement.sql,
                "slow SQL statement"
            );
        }
    }
}

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
