use crate::{run, run_for_backend};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000002_property_stats"
    }
}

/// Recounts every listing's counters from the interactions. The migration backfills with it and
/// `rentgraph seed` runs it after a bulk load.
pub const REBUILD_PROPERTY_STATS: &str = "INSERT INTO property_stats
    (property_id, views, likes, saves, inquiries, dismissals)
    SELECT property_id,
           SUM(CASE WHEN kind = 'VIEW' THEN 1 ELSE 0 END),
           SUM(CASE WHEN kind = 'LIKE' THEN 1 ELSE 0 END),
           SUM(CASE WHEN kind = 'SAVE' THEN 1 ELSE 0 END),
           SUM(CASE WHEN kind = 'INQUIRY' THEN 1 ELSE 0 END),
           SUM(CASE WHEN kind = 'DISMISS' THEN 1 ELSE 0 END)
    FROM interactions GROUP BY property_id";

const POSTGRES_UP: &[&str] = &[
    "CREATE TABLE property_stats (
        property_id uuid PRIMARY KEY REFERENCES properties(id) ON DELETE CASCADE,
        views bigint NOT NULL DEFAULT 0,
        likes bigint NOT NULL DEFAULT 0,
        saves bigint NOT NULL DEFAULT 0,
        inquiries bigint NOT NULL DEFAULT 0,
        dismissals bigint NOT NULL DEFAULT 0,
        score bigint GENERATED ALWAYS AS (views + 3 * (likes + saves + inquiries) - dismissals) STORED
    )",
    "CREATE INDEX property_stats_score ON property_stats (score DESC, property_id)",
    REBUILD_PROPERTY_STATS,
    // Property.stats no longer counts interactions per listing.
    "DROP INDEX IF EXISTS interactions_property_kind",
    "CREATE INDEX interactions_property ON interactions (property_id)",
];

const SQLITE_UP: &[&str] = &[
    "CREATE TABLE property_stats (
        property_id blob PRIMARY KEY REFERENCES properties(id) ON DELETE CASCADE,
        views integer NOT NULL DEFAULT 0,
        likes integer NOT NULL DEFAULT 0,
        saves integer NOT NULL DEFAULT 0,
        inquiries integer NOT NULL DEFAULT 0,
        dismissals integer NOT NULL DEFAULT 0,
        score integer GENERATED ALWAYS AS (views + 3 * (likes + saves + inquiries) - dismissals) STORED
    )",
    "CREATE INDEX property_stats_score ON property_stats (score DESC, property_id)",
    REBUILD_PROPERTY_STATS,
    "DROP INDEX IF EXISTS interactions_property_kind",
    "CREATE INDEX interactions_property ON interactions (property_id)",
];

const DOWN: &[&str] = &[
    "DROP TABLE IF EXISTS property_stats",
    "DROP INDEX IF EXISTS interactions_property",
    "CREATE INDEX interactions_property_kind ON interactions (property_id, kind)",
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
