//! Geography: `near` (a radius) and `within` (a map viewport) on `properties`,
//! `searchProperties` and `recommendations`, on PostgreSQL and SQLite, against listings placed
//! at known distances; edges of a box are included; bad input is refused with
//! BAD_USER_INPUT.
use crate::helpers::{Db, TestApp, code};
use entity::Role;
use serde_json::{Value, json};

/// Kilometres per degree of latitude, as the server computes distance.
const KM_PER_DEGREE: f64 = 111.195_08;

const CREATE: &str = "mutation($lat: Float!, $lon: Float!, $title: String!) { createProperty(input: { title: $title, description: \"geo test listing with a balcony\", monthlyPrice: 900, city: \"Geoville\", neighbourhood: \"Centre\", latitude: $lat, longitude: $lon, bedrooms: 1, bathrooms: 1, area: 40, propertyType: APARTMENT }) { id } }";

fn titles(v: &Value, field: &str) -> Vec<String> {
    let mut t: Vec<String> = v[field]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["node"]["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    t.sort();
    t
}

async fn check(db: Db) {
    let app = TestApp::spawn(db).await;
    let u = app.seed(20, 10, 0).await;
    let owner = app.token(u.owner, Role::Owner);
    // A centre far from the seeded cities, and listings north of it at 0.5, 0.99, 1.01 and 3
    // radii of 2 km, one on the box's east edge and one just outside it.
    let (lat0, lon0) = (10.0, 20.0);
    let north = |km: f64| lat0 + km / KM_PER_DEGREE;
    for (title, lat, lon) in [
        ("a 1.0 km", north(1.0), lon0),
        ("b 1.98 km", north(1.98), lon0),
        ("c 2.02 km", north(2.02), lon0),
        ("d 6 km", north(6.0), lon0),
        ("e east edge", lat0, 20.5),
        ("f past the east edge", lat0, 20.500001),
    ] {
        app.data(
            CREATE,
            json!({ "lat": lat, "lon": lon, "title": title }),
            Some(&owner),
        )
        .await;
    }
    let near = json!({ "near": { "latitude": lat0, "longitude": lon0, "radiusKm": 2.0 } });
    let page = "query($f: PropertyFilter) { properties(first: 50, filter: $f) { totalCount edges { node { title } } } }";
    let inside = app.data(page, json!({ "f": near }), None).await;
    assert_eq!(
        titles(&inside, "properties"),
        ["a 1.0 km", "b 1.98 km"],
        "{inside}"
    );
    assert_eq!(inside["properties"]["totalCount"], 2);
    let boxed = json!({ "within": { "south": 9.9, "north": 10.1, "west": 19.9, "east": 20.5 } });
    let viewport = app.data(page, json!({ "f": boxed }), None).await;
    assert_eq!(
        titles(&viewport, "properties"),
        [
            "a 1.0 km",
            "b 1.98 km",
            "c 2.02 km",
            "d 6 km",
            "e east edge"
        ],
        "the east edge is in, a micro-degree past it is not: {viewport}"
    );
    // Map clusters see listings created since the index loaded (its latitude order follows
    // changes).
    let clusters = app
        .data(
            "query($w: Bounds!) { mapClusters(within: $w, zoom: 10) { count } }",
            json!({ "w": boxed["within"] }),
            None,
        )
        .await;
    let sum: i64 = clusters["mapClusters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["count"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(sum, 5, "{clusters}");
    // Inside the search index's filters too, and in recommendations' candidates.
    let search = app
        .data(
            "query($f: PropertyFilter) { searchProperties(query: \"balcony\", first: 50, filter: $f) { edges { node { title } } } }",
            json!({ "f": near }),
            None,
        )
        .await;
    assert_eq!(
        titles(&search, "searchProperties"),
        ["a 1.0 km", "b 1.98 km"]
    );
    let user = app.token(u.user, Role::User);
    let recs = app
        .data(
            "query($f: PropertyFilter) { recommendations(first: 10, filter: $f) { property { title } } }",
            json!({ "f": near }),
            Some(&user),
        )
        .await;
    let mut recommended: Vec<String> = recs["recommendations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            r["property"]["title"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    recommended.sort();
    assert_eq!(recommended, ["a 1.0 km", "b 1.98 km"], "{recs}");
    // Bad input: a clear error, never a panic or a scan of everything.
    for (filter, says) in [
        (
            json!({ "near": { "latitude": 91.0, "longitude": 0.0, "radiusKm": 1.0 } }),
            "latitude",
        ),
        (
            json!({ "near": { "latitude": 0.0, "longitude": 0.0, "radiusKm": 0.0 } }),
            "radiusKm",
        ),
        (
            json!({ "near": { "latitude": 0.0, "longitude": 0.0, "radiusKm": 500.0 } }),
            "radiusKm",
        ),
        (
            json!({ "within": { "south": 1.0, "north": 0.0, "west": 0.0, "east": 1.0 } }),
            "south",
        ),
        (
            json!({ "within": { "south": 0.0, "north": 1.0, "west": 170.0, "east": -170.0 } }),
            "antimeridian",
        ),
    ] {
        let (_, body) = app.gql(page, json!({ "f": filter }), None).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{filter}: {body}");
        assert!(body.to_string().contains(says), "{body}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn near_and_within_filter_listings_searches_and_recommendations_postgres() {
    check(Db::Postgres).await;
}

#[tokio::test]
async fn near_and_within_filter_listings_searches_and_recommendations_sqlite() {
    check(Db::Sqlite).await;
}

/// Map clusters for a viewport: every active listing inside it that passes the filter is in
/// exactly one cluster (the counts sum to `totalCount` of the same filter and box), each
/// cluster's centroid and cheapest price lie within its cell, and a zoom out of range is
/// refused.
async fn clusters(db: Db) {
    let app = TestApp::spawn(db).await;
    app.seed(400, 10, 0).await;
    let page = "query($f: PropertyFilter) { properties(first: 1, filter: $f) { totalCount } }";
    let map = "query($f: PropertyFilter, $w: Bounds!, $z: Int!) { mapClusters(filter: $f, within: $w, zoom: $z) {
        count latitude longitude minPrice bounds { north south east west } } }";
    // All of Europe, then closer in.
    let europe = json!({ "south": 34.0, "north": 62.0, "west": -11.0, "east": 30.0 });
    for (zoom, filter) in [
        (3, json!({})),
        (6, json!({ "minBedrooms": 2 })),
        (12, json!({ "city": "Berlin" })),
    ] {
        let mut f = filter.clone();
        f["within"] = europe.clone();
        let total = app.data(page, json!({ "f": f }), None).await["properties"]["totalCount"]
            .as_i64()
            .unwrap_or(-1);
        let got = app
            .data(map, json!({ "f": filter, "w": europe, "z": zoom }), None)
            .await;
        let cells = got["mapClusters"].as_array().cloned().unwrap_or_default();
        let sum: i64 = cells.iter().map(|c| c["count"].as_i64().unwrap_or(0)).sum();
        assert!(total > 0, "listings in the box at zoom {zoom}");
        assert_eq!(sum, total, "zoom {zoom}: {got}");
        for c in &cells {
            let b = &c["bounds"];
            let (lat, lon) = (
                c["latitude"].as_f64().unwrap_or(f64::NAN),
                c["longitude"].as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                lat >= b["south"].as_f64().unwrap_or(0.0)
                    && lat <= b["north"].as_f64().unwrap_or(0.0),
                "{c}"
            );
            assert!(
                lon >= b["west"].as_f64().unwrap_or(0.0)
                    && lon <= b["east"].as_f64().unwrap_or(0.0),
                "{c}"
            );
        }
        assert!(cells.len() <= 2500);
    }
    let (_, body) = app
        .gql(map, json!({ "f": {}, "w": europe, "z": 40 }), None)
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn map_clusters_cover_the_viewport_postgres() {
    clusters(Db::Postgres).await;
}

#[tokio::test]
async fn map_clusters_cover_the_viewport_sqlite() {
    clusters(Db::Sqlite).await;
}
