use crate::{run, run_for_backend};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000007_interactions_once"
    }
}

/// Interactions become state where they are state (`entity::interaction::OnceKey`): one like,
/// save, inquiry or dismissal per user and listing, one view per user, listing and UTC day,
/// held by unique indexes so two concurrent requests cannot both write one. Popularity counted
/// events, so one account could inflate a listing by repeating itself; it now counts people.
///
/// Rows that repeat an earlier one are moved, not deleted, to `interactions_collapsed` (an
/// operator may drop that table once satisfied), and the counters are recounted.
const POSTGRES_UP: &[&str] = &[
    "CREATE TABLE interactions_collapsed AS SELECT * FROM interactions WHERE false",
    "INSERT INTO interactions_collapsed
     SELECT id, user_id, property_id, kind, created_at FROM (
        SELECT *, ROW_NUMBER() OVER (
            PARTITION BY user_id, property_id, kind,
                CASE WHEN kind = 'VIEW' THEN (created_at AT TIME ZONE 'UTC')::date END
            ORDER BY created_at, id) AS rn
        FROM interactions) r
     WHERE rn > 1",
    "DELETE FROM interactions WHERE id IN (SELECT id FROM interactions_collapsed)",
    "CREATE UNIQUE INDEX interactions_once ON interactions (user_id, property_id, kind)
     WHERE kind <> 'VIEW'",
    "CREATE UNIQUE INDEX interactions_view_daily
     ON interactions (user_id, property_id, ((created_at AT TIME ZONE 'UTC')::date))
     WHERE kind = 'VIEW'",
    "DELETE FROM property_stats",
    crate::m20261129_000002_property_stats::REBUILD_PROPERTY_STATS,
];

/// SQLite keeps times as text that starts with the UTC date.
const SQLITE_UP: &[&str] = &[
    "CREATE TABLE interactions_collapsed AS SELECT * FROM interactions WHERE 0",
    "INSERT INTO interactions_collapsed
     SELECT id, user_id, property_id, kind, created_at FROM (
        SELECT *, ROW_NUMBER() OVER (
            PARTITION BY user_id, property_id, kind,
                CASE WHEN kind = 'VIEW' THEN substr(created_at, 1, 10) END
            ORDER BY created_at, id) AS rn
        FROM interactions) r
     WHERE rn > 1",
    "DELETE FROM interactions WHERE id IN (SELECT id FROM interactions_collapsed)",
    "CREATE UNIQUE INDEX interactions_once ON interactions (user_id, property_id, kind)
     WHERE kind <> 'VIEW'",
    "CREATE UNIQUE INDEX interactions_view_daily
     ON interactions (user_id, property_id, substr(created_at, 1, 10))
     WHERE kind = 'VIEW'",
    "DELETE FROM property_stats",
    crate::m20261129_000002_property_stats::REBUILD_PROPERTY_STATS,
];

const DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS interactions_once",
    "DROP INDEX IF EXISTS interactions_view_daily",
    "INSERT INTO interactions SELECT * FROM interactions_collapsed",
    "DROP TABLE interactions_collapsed",
    "DELETE FROM property_stats",
    crate::m20261129_000002_property_stats::REBUILD_PROPERTY_STATS,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_for_backend(manager, POSTGRES_UP, SQLITE_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}
