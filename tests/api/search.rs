use crate::helpers::{Db, TestApp, code};
use serde_json::json;

const SEARCH: &str = "query($q: String!, $first: Int, $after: String, $filter: PropertyFilter) {
  searchProperties(query: $q, first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id title description city } }
  }
}";

async fn search_finds_ranked_matches(db: Db) {
    let app = TestApp::spawn(db).await;
    app.seed(300, 20, 100).await;
    let first = app
        .data(SEARCH, json!({ "q": "balcony", "first": 10 }), None)
        .await;
    let s = &first["searchProperties"];
    let total = s["totalCount"].as_i64().unwrap_or(0);
    assert!(total > 10, "many listings mention a balcony ({total})");
    for e in s["edges"].as_array().into_iter().flatten() {
        let text = format!("{} {}", e["node"]["title"], e["node"]["description"]).to_lowercase();
        assert!(text.contains("balcon"), "{text}");
    }
    // The next page continues without repeating.
    let after = s["pageInfo"]["endCursor"].clone();
    let second = app
        .data(
            SEARCH,
            json!({ "q": "balcony", "first": 10, "after": after }),
            None,
        )
        .await;
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["searchProperties"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["node"]["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (a, b) = (ids(&first), ids(&second));
    assert_eq!(b.len(), 10);
    assert!(a.iter().all(|x| !b.contains(x)));
    // Two words narrow the result, filters apply, and a neighbourhood name finds its listings.
    let both = app
        .data(SEARCH, json!({ "q": "balcony garden", "first": 5 }), None)
        .await;
    assert!(both["searchProperties"]["totalCount"].as_i64().unwrap_or(0) < total);
    let berlin = app
        .data(
            SEARCH,
            json!({ "q": "balcony", "first": 50, "filter": { "city": "Berlin" } }),
            None,
        )
        .await;
    assert!(
        berlin["searchProperties"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["node"]["city"] == "Berlin")
    );
    let hood = app
        .data(SEARCH, json!({ "q": "Kreuzberg", "first": 5 }), None)
        .await;
    assert!(
        hood["searchProperties"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["node"]["title"]
                .as_str()
                .unwrap_or("")
                .contains("Kreuzberg"))
    );
    // Query syntax characters are words, not errors.
    let odd = app
        .data(
            SEARCH,
            json!({ "q": "\"balcony* OR (NEAR & |", "first": 3 }),
            None,
        )
        .await;
    assert!(odd["searchProperties"]["totalCount"].as_i64().is_some());
    // An empty query is a client error.
    let (_, body) = app.gql(SEARCH, json!({ "q": "   " }), None).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    app.cleanup().await;
}

#[tokio::test]
async fn search_finds_ranked_matches_postgres() {
    search_finds_ranked_matches(Db::Postgres).await;
}

#[tokio::test]
async fn search_finds_ranked_matches_sqlite() {
    search_finds_ranked_matches(Db::Sqlite).await;
}

/// A search ranks at most `graphql.max_search_ranked` matches that pass its filter (so its work
/// does not grow with how common its words are), counts all of them in `totalCount`, and costs
/// a point per 100 it may rank.
async fn searches_rank_a_bounded_set_and_are_priced_by_it(db: Db) {
    let ranked = |n: &'static str| [("graphql.max_search_ranked", n)];
    let small = TestApp::spawn_with(db, &ranked("7")).await;
    small.seed(300, 20, 0).await;
    let filter = json!({ "city": "Berlin" });
    let vars = json!({ "q": "balcony", "first": 50, "filter": filter });
    let (_, body) = small.gql(SEARCH, vars.clone(), None).await;
    let s = &body["data"]["searchProperties"];
    let edges = s["edges"].as_array().cloned().unwrap_or_default();
    assert!(
        s["totalCount"].as_i64().unwrap_or(0) > 7,
        "more than the bound match: {s}"
    );
    assert_eq!(edges.len(), 7, "only the bound is ranked: {s}");
    assert_eq!(s["pageInfo"]["hasNextPage"], false);
    assert!(edges.iter().all(|e| e["node"]["city"] == "Berlin"), "{s}");
    let small_cost = body["extensions"]["cost"]["requestedQueryCost"].as_i64();
    small.cleanup().await;
    let large = TestApp::spawn_with(db, &ranked("2000")).await;
    large.seed(300, 20, 0).await;
    let (_, body) = large.gql(SEARCH, vars, None).await;
    let large_cost = body["extensions"]["cost"]["requestedQueryCost"].as_i64();
    assert_eq!(
        large_cost.zip(small_cost).map(|(l, s)| l - s),
        Some(20 - 1),
        "a point per 100 matches it may rank"
    );
    large.cleanup().await;
}

#[tokio::test]
async fn searches_rank_a_bounded_set_and_are_priced_by_it_sqlite() {
    searches_rank_a_bounded_set_and_are_priced_by_it(Db::Sqlite).await;
}

#[tokio::test]
async fn searches_rank_a_bounded_set_and_are_priced_by_it_postgres() {
    searches_rank_a_bounded_set_and_are_priced_by_it(Db::Postgres).await;
}
