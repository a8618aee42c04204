use crate::helpers::{Db, TestApp, code};
use serde_json::{Value, json};
use std::collections::HashSet;

const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String, $filter: PropertyFilter, $order: PropertyOrder) {
  properties(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $order) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id title monthlyPrice city bedrooms propertyType amenities isActive area createdAt } }
  }
}";

async fn page(app: &TestApp, vars: Value) -> Value {
    app.data(PAGE, vars, None).await["properties"].clone()
}

fn nodes(p: &Value) -> Vec<Value> {
    p["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Walks every page forward; returns the nodes in order.
async fn walk_forward(app: &TestApp, filter: Value, order: Value, size: i32) -> (Vec<Value>, i64) {
    let mut after: Option<String> = None;
    let mut all = Vec::new();
    let total;
    loop {
        let p = page(
            app,
            json!({ "first": size, "after": after, "filter": filter, "order": order }),
        )
        .await;
        let count = p["totalCount"].as_i64().unwrap_or(-1);
        all.extend(nodes(&p));
        if !p["pageInfo"]["hasNextPage"].as_bool().unwrap_or(false) {
            total = count;
            break;
        }
        after = p["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    (all, total)
}

async fn walk_backward(app: &TestApp, filter: Value, order: Value, size: i32) -> Vec<Value> {
    let mut before: Option<String> = None;
    let mut all: Vec<Value> = Vec::new();
    loop {
        let p = page(
            app,
            json!({ "last": size, "before": before, "filter": filter, "order": order }),
        )
        .await;
        let mut chunk = nodes(&p);
        chunk.extend(all);
        all = chunk;
        if !p["pageInfo"]["hasPreviousPage"].as_bool().unwrap_or(false) {
            break;
        }
        before = p["pageInfo"]["startCursor"].as_str().map(str::to_owned);
    }
    all
}

fn ids(nodes: &[Value]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| n["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn pagination_covers_every_row_once(db: Db) {
    let app = TestApp::spawn(db).await;
    app.seed(480, 40, 500).await;
    for order in [
        json!({ "field": "PRICE", "direction": "ASC" }),
        json!({ "field": "CREATED_AT", "direction": "DESC" }),
        json!({ "field": "AREA", "direction": "DESC" }),
    ] {
        let filter = json!({ "city": "Berlin" });
        let (fwd, total) = walk_forward(&app, filter.clone(), order.clone(), 17).await;
        assert!(total > 17, "the seed has enough Berlin listings ({total})");
        assert_eq!(
            fwd.len() as i64,
            total,
            "forward pages add up to totalCount for {order}"
        );
        let unique: HashSet<String> = ids(&fwd).into_iter().collect();
        assert_eq!(unique.len(), fwd.len(), "no listing appears twice");
        if order["field"] == "PRICE" {
            let prices: Vec<i64> = fwd
                .iter()
                .map(|n| n["monthlyPrice"].as_i64().unwrap_or(0))
                .collect();
            assert!(
                prices.windows(2).all(|w| w[0] <= w[1]),
                "ascending by price"
            );
        }
        let back = walk_backward(&app, filter, order.clone(), 13).await;
        assert_eq!(
            ids(&back),
            ids(&fwd),
            "backward pages give the same sequence for {order}"
        );
    }
    app.cleanup().await;
}

#[tokio::test]
async fn pagination_covers_every_row_once_postgres() {
    pagination_covers_every_row_once(Db::Postgres).await;
}

#[tokio::test]
async fn pagination_covers_every_row_once_sqlite() {
    pagination_covers_every_row_once(Db::Sqlite).await;
}

async fn filters_return_only_matching(db: Db) {
    let app = TestApp::spawn(db).await;
    app.seed(400, 40, 500).await;
    let filter = json!({
        "minPrice": 700, "maxPrice": 3000, "minBedrooms": 1, "maxBedrooms": 3,
        "types": ["APARTMENT", "CONDO"], "amenities": ["BALCONY"]
    });
    let (all, total) = walk_forward(
        &app,
        filter,
        json!({ "field": "PRICE", "direction": "ASC" }),
        50,
    )
    .await;
    assert!(total > 0, "the filter matches some of the seed");
    assert_eq!(all.len() as i64, total);
    for n in &all {
        let price = n["monthlyPrice"].as_i64().unwrap_or(-1);
        let beds = n["bedrooms"].as_i64().unwrap_or(-1);
        assert!((700..=3000).contains(&price), "{n}");
        assert!((1..=3).contains(&beds), "{n}");
        assert!(
            ["APARTMENT", "CONDO"].contains(&n["propertyType"].as_str().unwrap_or("")),
            "{n}"
        );
        assert!(
            n["amenities"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("BALCONY"))),
            "{n}"
        );
        assert_eq!(n["isActive"], json!(true));
    }
    // The unfiltered count is larger, and a city filter narrows to that city.
    let everything = page(&app, json!({ "first": 1 })).await["totalCount"]
        .as_i64()
        .unwrap_or(0);
    assert!(everything > total);
    let paris = page(&app, json!({ "first": 100, "filter": { "city": "Paris" } })).await;
    assert!(nodes(&paris).iter().all(|n| n["city"] == "Paris"));
    app.cleanup().await;
}

#[tokio::test]
async fn filters_return_only_matching_postgres() {
    filters_return_only_matching(Db::Postgres).await;
}

#[tokio::test]
async fn filters_return_only_matching_sqlite() {
    filters_return_only_matching(Db::Sqlite).await;
}

#[tokio::test]
async fn page_arguments_are_checked() {
    let app = TestApp::spawn(Db::Postgres).await;
    app.seed(60, 20, 100).await;
    let cases = [
        json!({ "first": 101 }),
        json!({ "first": -1 }),
        json!({ "last": 1000 }),
        json!({ "first": 2, "last": 2 }),
        json!({ "first": 2, "after": "not-a-cursor" }),
        json!({ "last": 2, "after": "eA" }),
        json!({ "first": 2, "filter": { "minPrice": 900, "maxPrice": 100 } }),
        json!({ "first": 2, "filter": { "minBedrooms": -1 } }),
    ];
    for vars in cases {
        let (status, body) = app.gql(PAGE, vars.clone(), None).await;
        assert_eq!(status, 200);
        assert_eq!(code(&body), "BAD_USER_INPUT", "{vars} -> {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // A cursor belongs to its ordering.
    let by_price = page(&app, json!({ "first": 2, "order": { "field": "PRICE" } })).await;
    let cursor = by_price["pageInfo"]["endCursor"].clone();
    let (_, body) = app
        .gql(
            PAGE,
            json!({ "first": 2, "after": cursor, "order": { "field": "AREA" } }),
            None,
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    // first: 0 is a valid, empty page.
    let empty = page(&app, json!({ "first": 0 })).await;
    assert_eq!(nodes(&empty).len(), 0);
    assert_eq!(empty["pageInfo"]["hasNextPage"], json!(true));
    // The configured page size is the cap: 100 is fine.
    let all = page(&app, json!({ "first": 100 })).await;
    assert_eq!(Some(nodes(&all).len() as i64), all["totalCount"].as_i64());
    app.cleanup().await;
}

#[tokio::test]
async fn max_page_size_is_configurable() {
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("graphql.max_page_size", "5"),
            ("graphql.default_page_size", "3"),
        ],
    )
    .await;
    app.seed(20, 10, 10).await;
    let (_, body) = app.gql(PAGE, json!({ "first": 6 }), None).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains('5')
    );
    assert_eq!(
        nodes(&page(&app, json!({})).await).len(),
        3,
        "default page size"
    );
    app.cleanup().await;
}
