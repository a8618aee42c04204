//! Loading a generated data set: PostgreSQL with COPY on several connections, SQLite with
//! multi-row INSERTs in one transaction, then the listing counters rebuilt from the
//! interactions by the same SQL the migration runs.
use super::{Dataset, SeedOptions, SeedReport, generate};
use chrono::{DateTime, Utc};
use entity::{interaction, property, property_amenity, property_image, user};
use rentgraph::store::{Store, StoreError, StoreResult};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, IntoActiveModel, TransactionTrait};
use std::fmt::Write as _;
use std::time::Instant;

/// Generates and loads a data set; refuses a database that already has listings, so a
/// mistyped command never mixes two data sets or loses what is stored.
pub async fn seed(
    store: &Store,
    opts: SeedOptions,
    progress: impl Fn(&str) + Send + Sync,
) -> StoreResult<SeedReport> {
    if store.any_property().await? {
        return Err(StoreError::Invalid(
            "the database already has listings; seed an empty database".into(),
        ));
    }
    let started = Instant::now();
    progress(&format!(
        "generating {} users, {} properties, {} interactions (seed {})",
        opts.users, opts.properties, opts.interactions, opts.seed
    ));
    let data = tokio::task::spawn_blocking(move || generate(opts))
        .await
        .map_err(|e| StoreError::Invalid(format!("data generation failed: {e}")))?;
    let generate_ms = started.elapsed().as_millis();
    let loading = Instant::now();
    match store.backend() {
        DbBackend::Postgres => load_postgres(store, &data, &progress).await?,
        _ => load_generic(store, &data, &progress).await?,
    }
    progress("counting interactions per listing");
    store
        .conn()
        .execute_unprepared(migration::REBUILD_PROPERTY_STATS)
        .await?;
    if store.backend() == DbBackend::Postgres {
        // Fresh statistics, and the GIN index's pending list merged (a bulk load leaves it
        // full, which makes the planner shun full-text index scans until autovacuum runs).
        progress("vacuum and analyze");
        store.conn().execute_unprepared("VACUUM ANALYZE").await?;
    }
    Ok(SeedReport {
        users: data.users.len(),
        properties: data.properties.len(),
        images: data.images.len(),
        amenities: data.amenities.len(),
        interactions: data.interactions.len(),
        repeats_left_out: data.repeats_left_out,
        generate_ms,
        load_ms: loading.elapsed().as_millis(),
    })
}

async fn load_postgres(
    store: &Store,
    data: &Dataset,
    progress: &(impl Fn(&str) + Sync),
) -> StoreResult<()> {
    let pool = store.conn().get_postgres_connection_pool();
    let copy_err =
        |e: sea_orm::sqlx::Error| StoreError::Db(DbErr::Custom(format!("COPY failed: {e}")));
    const USERS: &str =
        "COPY users (id, email, display_name, role, preferences, created_at) FROM STDIN";
    const PROPERTIES: &str = "COPY properties (id, owner_id, title, description, monthly_price, city, neighbourhood, latitude, longitude, bedrooms, bathrooms, area, property_type, is_active, created_at, updated_at) FROM STDIN";
    const IMAGES: &str = "COPY property_images (id, property_id, url, position) FROM STDIN";
    const AMENITIES: &str = "COPY property_amenities (property_id, amenity) FROM STDIN";
    const INTERACTIONS: &str =
        "COPY interactions (id, user_id, property_id, kind, created_at) FROM STDIN";

    copy_table(pool, USERS, "users", &data.users, user_line, progress)
        .await
        .map_err(copy_err)?;
    copy_table(
        pool,
        PROPERTIES,
        "properties",
        &data.properties,
        property_line,
        progress,
    )
    .await
    .map_err(copy_err)?;
    // The rest only refers to users and listings: load it on three connections at once.
    let half = data.interactions.len() / 2;
    let (first, second) = data.interactions.split_at(half);
    let side_tables = async {
        copy_table(
            pool,
            IMAGES,
            "property_images",
            &data.images,
            image_line,
            progress,
        )
        .await?;
        copy_table(
            pool,
            AMENITIES,
            "property_amenities",
            &data.amenities,
            amenity_line,
            progress,
        )
        .await
    };
    tokio::try_join!(
        side_tables,
        copy_table(
            pool,
            INTERACTIONS,
            "interactions (1/2)",
            first,
            interaction_line,
            progress
        ),
        copy_table(
            pool,
            INTERACTIONS,
            "interactions (2/2)",
            second,
            interaction_line,
            progress
        ),
    )
    .map_err(copy_err)?;
    Ok(())
}

async fn load_generic(
    store: &Store,
    data: &Dataset,
    progress: &(impl Fn(&str) + Sync),
) -> StoreResult<()> {
    let txn = store.conn().begin().await?;
    macro_rules! load {
        ($entity:ty, $rows:expr, $name:expr, $chunk:expr) => {{
            let rows = $rows;
            for chunk in rows.chunks($chunk) {
                <$entity>::insert_many(chunk.iter().cloned().map(|m| m.into_active_model()))
                    .exec_without_returning(&txn)
                    .await?;
            }
            progress(&format!("{}: {} rows loaded", $name, rows.len()));
        }};
    }
    // SQLite allows 32766 bound values per statement.
    load!(user::Entity, &data.users, "users", 2000);
    load!(property::Entity, &data.properties, "properties", 1500);
    load!(
        property_image::Entity,
        &data.images,
        "property_images",
        5000
    );
    load!(
        property_amenity::Entity,
        &data.amenities,
        "property_amenities",
        10000
    );
    load!(
        interaction::Entity,
        &data.interactions,
        "interactions",
        5000
    );
    txn.commit().await?;
    Ok(())
}

fn user_line(u: &user::Model, b: &mut String) {
    let prefs = serde_json::to_string(&u.preferences).unwrap_or_else(|_| "{}".into());
    let _ = writeln!(
        b,
        "{}\t{}\t{}\t{}\t{}\t{}",
        u.id,
        esc(&u.email),
        esc(&u.display_name),
        enum_str(&u.role),
        esc(&prefs),
        ts(&u.created_at)
    );
}

fn property_line(p: &property::Model, b: &mut String) {
    let _ = writeln!(
        b,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        p.id,
        p.owner_id,
        esc(&p.title),
        esc(&p.description),
        p.monthly_price,
        esc(&p.city),
        esc(&p.neighbourhood),
        p.latitude,
        p.longitude,
        p.bedrooms,
        p.bathrooms,
        p.area,
        enum_str(&p.property_type),
        if p.is_active { "t" } else { "f" },
        ts(&p.created_at),
        ts(&p.updated_at)
    );
}

fn image_line(i: &property_image::Model, b: &mut String) {
    let _ = writeln!(
        b,
        "{}\t{}\t{}\t{}",
        i.id,
        i.property_id,
        esc(&i.url),
        i.position
    );
}

fn amenity_line(a: &property_amenity::Model, b: &mut String) {
    let _ = writeln!(b, "{}\t{}", a.property_id, enum_str(&a.amenity));
}

fn interaction_line(i: &interaction::Model, b: &mut String) {
    let _ = writeln!(
        b,
        "{}\t{}\t{}\t{}\t{}",
        i.id,
        i.user_id,
        i.property_id,
        enum_str(&i.kind),
        ts(&i.created_at)
    );
}

/// Streams `rows` into one COPY on a connection of its own. The session drops the statement
/// timeout (a large COPY is one long statement) and, where the role may, skips foreign-key
/// triggers: the generator's rows are consistent by construction, and the checks would double
/// the load time. Both settings are reset before the connection goes back to the pool.
async fn copy_table<T>(
    pool: &sea_orm::sqlx::PgPool,
    statement: &str,
    name: &str,
    rows: &[T],
    line: impl Fn(&T, &mut String),
    progress: &(impl Fn(&str) + Sync),
) -> Result<(), sea_orm::sqlx::Error> {
    use sea_orm::sqlx::Executor;
    let mut conn = pool.acquire().await?;
    conn.execute("SET statement_timeout = 0").await?;
    let fast = conn
        .execute("SET session_replication_role = replica")
        .await
        .is_ok();
    let result = async {
        let mut copy = conn.copy_in_raw(statement).await?;
        let mut buf = String::with_capacity(1 << 20);
        let step = (rows.len() / 5).max(100_000);
        for (i, row) in rows.iter().enumerate() {
            line(row, &mut buf);
            if buf.len() >= 1 << 20 {
                copy.send(buf.as_bytes()).await?;
                buf.clear();
            }
            if (i + 1) % step == 0 {
                progress(&format!("{name}: {}/{}", i + 1, rows.len()));
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_bytes()).await?;
        }
        copy.finish().await?;
        Ok::<(), sea_orm::sqlx::Error>(())
    }
    .await;
    let reset = conn
        .execute("RESET statement_timeout; RESET session_replication_role")
        .await;
    if reset.is_err() {
        // Never hand a connection with checks switched off back to the pool.
        conn.detach();
    }
    result?;
    progress(&format!(
        "{name}: {} rows loaded{}",
        rows.len(),
        if fast {
            ""
        } else {
            " (with foreign-key checks)"
        }
    ));
    Ok(())
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn ts(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// The stored string of an enum column, taken from sea-orm so it cannot disagree with it.
fn enum_str<E: sea_orm::ActiveEnum<Value = String>>(e: &E) -> String {
    e.to_value()
}
