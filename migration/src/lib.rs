//! Schema migrations. Written as explicit SQL per backend rather than through the schema
//! builder: the parts that matter most here (partial indexes, the PostgreSQL tsvector column and
//! GIN index, the SQLite FTS5 table and its triggers) have no builder equivalent, and reading the
//! real DDL next to the EXPLAIN output in docs/ is what an operator wants.
pub use sea_orm_migration::prelude::*;

mod m20261129_000001_init;
mod m20261129_000002_property_stats;
mod m20261130_000003_interactions_time;
mod m20261201_000004_external_subject;
mod m20261201_000005_area_order;
mod m20261201_000006_taken_down;
mod m20261201_000007_interactions_once;
mod m20261201_000008_geo;

pub use m20261129_000001_init::POSTGRES_UP as INIT_POSTGRES;
pub use m20261129_000002_property_stats::REBUILD_PROPERTY_STATS;

pub struct Migrator;

/// Runs the statements written for the connected backend.
async fn run_for_backend(
    manager: &SchemaManager<'_>,
    postgres: &[&str],
    sqlite: &[&str],
) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::DbBackend;
    match manager.get_database_backend() {
        DbBackend::Postgres => run(manager, postgres).await,
        DbBackend::Sqlite => run(manager, sqlite).await,
        other => Err(DbErr::Migration(format!(
            "unsupported database backend {other:?}"
        ))),
    }
}

/// Runs a migration's statements in order.
async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::ConnectionTrait;
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_init::Migration),
            Box::new(m20261129_000002_property_stats::Migration),
            Box::new(m20261130_000003_interactions_time::Migration),
            Box::new(m20261201_000004_external_subject::Migration),
            Box::new(m20261201_000005_area_order::Migration),
            Box::new(m20261201_000006_taken_down::Migration),
            Box::new(m20261201_000007_interactions_once::Migration),
            Box::new(m20261201_000008_geo::Migration),
        ]
    }
}
