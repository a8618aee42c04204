use crate::helpers::{Db, TestApp};
use serde_json::json;

const NESTED: &str = "query($n: Int!) { properties(first: $n) { edges { node {
    title owner { displayName interactions(first: 5) { totalCount edges { node { type property { title } } } } }
    images { url } stats { views likes saves inquiries } amenities matchScore } } } }";

async fn statements_for(app: &TestApp, n: i32, token: &str) -> (u64, usize) {
    let before = app.statements().await;
    let data = app.data(NESTED, json!({ "n": n }), Some(token)).await;
    let after = app.statements().await;
    let rows = data["properties"]["edges"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    (after - before, rows)
}

async fn check(db: Db) {
    let app = TestApp::spawn(db).await;
    let users = app.seed(600, 60, 4000).await;
    let token = app.token(users.admin, entity::Role::Admin);
    // The token's user and their recommendation state (for matchScore) are loaded once and
    // then cached: measure warm requests.
    statements_for(&app, 1, &token).await;
    let (small, rows_small) = statements_for(&app, 10, &token).await;
    let (large, rows_large) = statements_for(&app, 100, &token).await;
    assert_eq!((rows_small, rows_large), (10, 100));
    assert_eq!(
        small, large,
        "statement count must not depend on the number of rows ({small} for 10, {large} for 100)"
    );
    // properties, owners, owners' interactions, their count, their listings, images, stats,
    // amenities (match scores come from memory): a fixed number, whatever the page size.
    assert!(large <= 16, "{large} statements for a depth-4 query");
    app.cleanup().await;
}

#[tokio::test]
async fn statement_count_depends_on_shape_not_rows_postgres() {
    check(Db::Postgres).await;
}

#[tokio::test]
async fn statement_count_depends_on_shape_not_rows_sqlite() {
    check(Db::Sqlite).await;
}
