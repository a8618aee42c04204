use crate::{run, run_for_backend};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261129_000001_init"
    }
}

/// The PostgreSQL schema as first created (the column lengths input limits are checked against).
pub const POSTGRES_UP: &[&str] = &[
    "CREATE TABLE users (
        id uuid PRIMARY KEY,
        email varchar(320) NOT NULL UNIQUE,
        display_name varchar(200) NOT NULL,
        role varchar(16) NOT NULL,
        preferences jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL
    )",
    "CREATE TABLE properties (
        id uuid PRIMARY KEY,
        owner_id uuid NOT NULL REFERENCES users(id),
        title varchar(200) NOT NULL,
        description text NOT NULL,
        monthly_price integer NOT NULL,
        city varchar(100) NOT NULL,
        neighbourhood varchar(100) NOT NULL,
        latitude double precision NOT NULL,
        longitude double precision NOT NULL,
        bedrooms integer NOT NULL,
        bathrooms integer NOT NULL,
        area integer NOT NULL,
        property_type varchar(16) NOT NULL,
        is_active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        search_vector tsvector GENERATED ALWAYS AS
            (to_tsvector('english', title || ' ' || description)) STORED
    )",
    // Browsing active listings in a city, cheapest first or within a price range.
    "CREATE INDEX properties_active_city_price ON properties (city, monthly_price, id) WHERE is_active",
    // Filtering by type and price with a bedroom minimum.
    "CREATE INDEX properties_active_type_price_bedrooms ON properties (property_type, monthly_price, bedrooms) WHERE is_active",
    // The default order (newest first) and its keyset cursor.
    "CREATE INDEX properties_active_created ON properties (created_at DESC, id DESC) WHERE is_active",
    "CREATE INDEX properties_active_price ON properties (monthly_price, id) WHERE is_active",
    "CREATE INDEX properties_owner ON properties (owner_id)",
    "CREATE INDEX properties_search ON properties USING GIN (search_vector)",
    "CREATE TABLE property_images (
        id uuid PRIMARY KEY,
        property_id uuid NOT NULL REFERENCES properties(id) ON DELETE CASCADE,
        url varchar(500) NOT NULL,
        position integer NOT NULL
    )",
    "CREATE INDEX property_images_property ON property_images (property_id, position)",
    "CREATE TABLE property_amenities (
        property_id uuid NOT NULL REFERENCES properties(id) ON DELETE CASCADE,
        amenity varchar(24) NOT NULL,
        PRIMARY KEY (property_id, amenity)
    )",
    "CREATE INDEX property_amenities_amenity ON property_amenities (amenity, property_id)",
    "CREATE TABLE interactions (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id),
        property_id uuid NOT NULL REFERENCES properties(id),
        kind varchar(16) NOT NULL,
        created_at timestamptz NOT NULL
    )",
    // A user's history, newest first (User.interactions, User.savedProperties).
    "CREATE INDEX interactions_user_time ON interactions (user_id, created_at DESC, id DESC)",
    // Per-listing counters (Property.stats).
    "CREATE INDEX interactions_property_kind ON interactions (property_id, kind)",
];

const SQLITE_UP: &[&str] = &[
    "CREATE TABLE users (
        id blob PRIMARY KEY,
        email text NOT NULL UNIQUE,
        display_name text NOT NULL,
        role text NOT NULL,
        preferences text NOT NULL DEFAULT '{}',
        created_at text NOT NULL
    )",
    "CREATE TABLE properties (
        id blob PRIMARY KEY,
        owner_id blob NOT NULL REFERENCES users(id),
        title text NOT NULL,
        description text NOT NULL,
        monthly_price integer NOT NULL,
        city text NOT NULL,
        neighbourhood text NOT NULL,
        latitude real NOT NULL,
        longitude real NOT NULL,
        bedrooms integer NOT NULL,
        bathrooms integer NOT NULL,
        area integer NOT NULL,
        property_type text NOT NULL,
        is_active integer NOT NULL DEFAULT 1,
        created_at text NOT NULL,
        updated_at text NOT NULL
    )",
    "CREATE INDEX properties_active_city_price ON properties (city, monthly_price, id) WHERE is_active",
    "CREATE INDEX properties_active_type_price_bedrooms ON properties (property_type, monthly_price, bedrooms) WHERE is_active",
    "CREATE INDEX properties_active_created ON properties (created_at DESC, id DESC) WHERE is_active",
    "CREATE INDEX properties_active_price ON properties (monthly_price, id) WHERE is_active",
    "CREATE INDEX properties_owner ON properties (owner_id)",
    // A contentful FTS5 table keyed by the listing id: external-content tables key on rowid,
    // which VACUUM may renumber for a table whose key is not an INTEGER PRIMARY KEY.
    "CREATE VIRTUAL TABLE properties_fts USING fts5(property_id UNINDEXED, title, description, tokenize = 'porter unicode61')",
    "CREATE TRIGGER properties_fts_insert AFTER INSERT ON properties BEGIN
        INSERT INTO properties_fts (property_id, title, description) VALUES (new.id, new.title, new.description);
    END",
    "CREATE TRIGGER properties_fts_update AFTER UPDATE OF title, description ON properties BEGIN
        DELETE FROM properties_fts WHERE property_id = old.id;
        INSERT INTO properties_fts (property_id, title, description) VALUES (new.id, new.title, new.description);
    END",
    "CREATE TRIGGER properties_fts_delete AFTER DELETE ON properties BEGIN
        DELETE FROM properties_fts WHERE property_id = old.id;
    END",
    "CREATE TABLE property_images (
        id blob PRIMARY KEY,
        property_id blob NOT NULL REFERENCES properties(id) ON DELETE CASCADE,
        url text NOT NULL,
        position integer NOT NULL
    )",
    "CREATE INDEX property_images_property ON property_images (property_id, position)",
    "CREATE TABLE property_amenities (
        property_id blob NOT NULL REFERENCES properties(id) ON DELETE CASCADE,
        amenity text NOT NULL,
        PRIMARY KEY (property_id, amenity)
    )",
    "CREATE INDEX property_amenities_amenity ON property_amenities (amenity, property_id)",
    "CREATE TABLE interactions (
        id blob PRIMARY KEY,
        user_id blob NOT NULL REFERENCES users(id),
        property_id blob NOT NULL REFERENCES properties(id),
        kind text NOT NULL,
        created_at text NOT NULL
    )",
    "CREATE INDEX interactions_user_time ON interactions (user_id, created_at DESC, id DESC)",
    "CREATE INDEX interactions_property_kind ON interactions (property_id, kind)",
];

const DOWN: &[&str] = &[
    "DROP TABLE IF EXISTS interactions",
    "DROP TABLE IF EXISTS property_amenities",
    "DROP TABLE IF EXISTS property_images",
    "DROP TABLE IF EXISTS properties_fts",
    "DROP TABLE IF EXISTS properties",
    "DROP TABLE IF EXISTS users",
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
