use crate::run;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000005_area_order"
    }
}

/// Listings ordered by area (`orderBy: { field: AREA }`) were the one order without an index,
/// so a page of them sorted every active listing whatever its size. Now each order reads its
/// own index, as price and creation time do.
const UP: &[&str] =
    &["CREATE INDEX properties_active_area ON properties (area, id) WHERE is_active"];
const DOWN: &[&str] = &["DROP INDEX IF EXISTS properties_active_area"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}
