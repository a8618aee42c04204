use crate::run;
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000004_external_subject"
    }
}

/// Users who sign in through an identity provider (`auth.issuers`) are found by the provider's
/// subject: one local user per `ISSUER#SUB`, and only those users have one (a partial unique
/// index, the same DDL on PostgreSQL and SQLite).
const UP: &[&str] = &[
    "ALTER TABLE users ADD COLUMN external_subject TEXT",
    "CREATE UNIQUE INDEX users_external_subject ON users (external_subject) \
     WHERE external_subject IS NOT NULL",
];
const DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS users_external_subject",
    "ALTER TABLE users DROP COLUMN external_subject",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}
