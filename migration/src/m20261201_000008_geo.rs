use crate::run;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000008_geo"
    }
}

/// `PropertyFilter.near` and `within` narrow active listings to a latitude band first (a
/// radius is searched as its bounding box, then by distance): a range scan here instead of a
/// pass over every active listing.
const UP: &[&str] =
    &["CREATE INDEX properties_active_lat_lon ON properties (latitude, longitude) WHERE is_active"];
const DOWN: &[&str] = &["DROP INDEX IF EXISTS properties_active_lat_lon"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}
