//! Facets for filter chips, counted in memory from the listing index, agree with SQL: every
//! value of every facet, turned back into a filter, has as many listings as `totalCount`
//! (a SQL COUNT) says, each facet counted without its own restriction. On PostgreSQL and SQLite.
use crate::helpers::{Db, TestApp};
use serde_json::{Value, json};

const FACETS: &str =
    "query($f: PropertyFilter) { properties(first: 1, filter: $f) { totalCount facets {
    cities { value count } neighbourhoods { city neighbourhood count } types { type count }
    bedrooms { bedrooms count } amenities { amenity count } prices { min max count } } } }";
const TOTAL: &str = "query($f: PropertyFilter) { properties(first: 1, filter: $f) { totalCount } }";

async fn total(app: &TestApp, filter: Value) -> i64 {
    app.data(TOTAL, json!({ "f": filter }), None).await["properties"]["totalCount"]
        .as_i64()
        .unwrap_or(-1)
}

/// `base` with `extra`'s fields set over it.
fn with(base: &Value, extra: Value) -> Value {
    let mut f = base.clone();
    for (k, v) in extra.as_object().into_iter().flatten() {
        f[k] = v.clone();
    }
    f
}

async fn check(db: Db) {
    let app = TestApp::spawn(db).await;
    let u = app.seed(400, 20, 0).await;
    let base = json!({ "city": "Berlin", "minBedrooms": 2, "types": ["APARTMENT", "HOUSE"],
                       "amenities": ["BALCONY"], "maxPrice": 2500 });
    let got = app.data(FACETS, json!({ "f": base }), None).await;
    let facets = &got["properties"]["facets"];
    let list = |name: &str| facets[name].as_array().cloned().unwrap_or_default();
    let count = |v: &Value| v["count"].as_i64().unwrap_or(-1);
    // Each facet drops its own restriction, keeps the others.
    let no_city = json!({ "minBedrooms": 2, "types": ["APARTMENT", "HOUSE"], "amenities": ["BALCONY"], "maxPrice": 2500 });
    assert!(!list("cities").is_empty(), "{got}");
    for c in list("cities") {
        assert_eq!(
            count(&c),
            total(&app, with(&no_city, json!({ "city": c["value"] }))).await,
            "city {c}"
        );
    }
    for n in list("neighbourhoods") {
        let f = with(&base, json!({ "neighbourhoods": [n["neighbourhood"]] }));
        assert_eq!(count(&n), total(&app, f).await, "neighbourhood {n}");
    }
    for t in list("types") {
        let f = with(&base, json!({ "types": [t["type"]] }));
        assert_eq!(count(&t), total(&app, f).await, "type {t}");
    }
    let no_bedrooms = json!({ "city": "Berlin", "types": ["APARTMENT", "HOUSE"], "amenities": ["BALCONY"], "maxPrice": 2500 });
    for b in list("bedrooms") {
        let f = with(
            &no_bedrooms,
            json!({ "minBedrooms": b["bedrooms"], "maxBedrooms": b["bedrooms"] }),
        );
        assert_eq!(count(&b), total(&app, f).await, "bedrooms {b}");
    }
    let no_amenities = json!({ "city": "Berlin", "minBedrooms": 2, "types": ["APARTMENT", "HOUSE"], "maxPrice": 2500 });
    for a in list("amenities") {
        let f = with(&no_amenities, json!({ "amenities": [a["amenity"]] }));
        assert_eq!(count(&a), total(&app, f).await, "amenity {a}");
    }
    let no_price = json!({ "city": "Berlin", "minBedrooms": 2, "types": ["APARTMENT", "HOUSE"], "amenities": ["BALCONY"] });
    let mut in_buckets = 0;
    for p in list("prices") {
        let mut f = with(&no_price, json!({ "minPrice": p["min"] }));
        if !p["max"].is_null() {
            f["maxPrice"] = p["max"].clone();
        }
        assert_eq!(count(&p), total(&app, f).await, "price {p}");
        in_buckets += count(&p);
    }
    assert_eq!(
        in_buckets,
        total(&app, no_price).await,
        "the buckets cover every listing"
    );
    // Search results and inactive listings have none (not counted from the index).
    let inactive = app
        .data(
            FACETS,
            json!({ "f": { "active": null } }),
            Some(&app.token(u.admin, entity::Role::Admin)),
        )
        .await;
    assert!(inactive["properties"]["facets"].is_null(), "{inactive}");
    app.cleanup().await;
}

#[tokio::test]
async fn facet_counts_agree_with_sql_postgres() {
    check(Db::Postgres).await;
}

#[tokio::test]
async fn facet_counts_agree_with_sql_sqlite() {
    check(Db::Sqlite).await;
}
