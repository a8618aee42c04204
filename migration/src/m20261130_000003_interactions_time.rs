use crate::run;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000003_interactions_time"
    }
}

/// The listing index counts each listing's interactions of the last weeks (its recent
/// popularity) with one range scan instead of reading the whole table.
const UP: &[&str] = &["CREATE INDEX interactions_time ON interactions (created_at)"];
const DOWN: &[&str] = &["DROP INDEX IF EXISTS interactions_time"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}
