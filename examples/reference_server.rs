//! The load test's yardstick: a bare async-graphql + sqlx server that answers the listing
//! scenario (`property(id)` with its owner and images) in one statement, with none of
//! rentgraph's limits, auth, cost, caching or telemetry. benches/load/run.sh runs it beside
//! rentgraph on the same database, so "cache off" can be compared with the least a GraphQL
//! server can do.
//!
//! Usage: DATABASE_URL=postgres://… PORT=8098 cargo run --release --example reference_server
use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use axum::routing::post;
use axum::{Json, Router, extract::State};
use sqlx::PgPool;
use sqlx::Row;

struct Query;

#[derive(SimpleObject)]
struct Owner {
    display_name: String,
}

#[derive(SimpleObject)]
struct Image {
    url: String,
}

#[derive(SimpleObject)]
struct Property {
    id: ID,
    title: String,
    monthly_price: i32,
    owner: Owner,
    images: Vec<Image>,
}

#[Object]
impl Query {
    async fn property(
        &self,
        ctx: &async_graphql::Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Property>> {
        let id: uuid::Uuid = id.parse()?;
        let pool = ctx.data::<PgPool>()?;
        let row = sqlx::query(
            "SELECT p.id, p.title, p.monthly_price, u.display_name,
                    COALESCE((SELECT array_agg(i.url ORDER BY i.position) FROM property_images i
                              WHERE i.property_id = p.id), '{}') AS images
             FROM properties p JOIN users u ON u.id = p.owner_id
             WHERE p.id = $1 AND p.is_active",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: uuid::Uuid = row.try_get("id")?;
        let images: Vec<String> = row.try_get("images")?;
        Ok(Some(Property {
            id: ID(id.to_string()),
            title: row.try_get("title")?,
            monthly_price: row.try_get("monthly_price")?,
            owner: Owner {
                display_name: row.try_get("display_name")?,
            },
            images: images.into_iter().map(|url| Image { url }).collect(),
        }))
    }
}

type AppSchema = Schema<Query, EmptyMutation, EmptySubscription>;

async fn graphql(
    State(schema): State<AppSchema>,
    Json(req): Json<async_graphql::Request>,
) -> Json<async_graphql::Response> {
    Json(schema.execute(req).await)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/rentgraph_load".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "8098".into());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(&url)
        .await?;
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(pool)
        .finish();
    let app = Router::new()
        .route("/graphql", post(graphql))
        .with_state(schema);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
