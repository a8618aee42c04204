use crate::run;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000006_taken_down"
    }
}

/// A listing an admin took off the market stays off until an admin puts it back: its owner
/// could otherwise reactivate it the next minute.
const UP: &[&str] =
    &["ALTER TABLE properties ADD COLUMN taken_down BOOLEAN NOT NULL DEFAULT FALSE"];
const DOWN: &[&str] = &["ALTER TABLE properties DROP COLUMN taken_down"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}
