//! The performance regression gate: the load test's scenarios (benches/load, the same
//! documents) with deterministic budgets of the work each does, asserted exactly as counted
//! (never timed, so it holds on a noisy machine): SQL statements cold and warm, model runs and
//! rows scored, entity-cache lookups, and response bytes. A change that makes a scenario do
//! more fails here, naming the scenario and the budget; one that makes it do less passes, and
//! the table this prints says what to lower the budget to.
use crate::helpers::{Db, TestApp, metric};
use entity::Role;
use serde_json::{Value, json};

/// What one run of a scenario did, read off /metrics around it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Work {
    statements: f64,
    model_runs: f64,
    model_rows: f64,
    cache_lookups: f64,
    bytes: usize,
}

/// The most a scenario may do, cold (first run, empty caches) and warm (the same again).
struct Budget {
    name: &'static str,
    query: String,
    variables: Value,
    signed_in: bool,
    cold_statements: f64,
    warm_statements: f64,
    /// Per run (cold and warm alike: results are not reused in this test).
    model_runs: f64,
    model_rows: f64,
    warm_cache_lookups: f64,
    bytes: usize,
}

async fn counters(app: &TestApp) -> Work {
    let text = app.get("/metrics").await.text().await.unwrap_or_default();
    Work {
        statements: metric(&text, "rentgraph_db_queries_total", &[]),
        model_runs: metric(&text, "rentgraph_batcher_batch_rows_count", &[]),
        model_rows: metric(&text, "rentgraph_batcher_batch_rows_sum", &[]),
        cache_lookups: metric(&text, "rentgraph_cache_requests_total", &[]),
        bytes: 0,
    }
}

async fn run(app: &TestApp, b: &Budget, token: &str) -> Work {
    let before = counters(app).await;
    let mut req = reqwest::Client::new()
        .post(format!("{}/graphql", app.base))
        .json(&json!({ "query": b.query, "variables": b.variables }));
    if b.signed_in {
        req = req.bearer_auth(token);
    }
    let body = req
        .send()
        .await
        .expect("request")
        .bytes()
        .await
        .expect("body");
    let parsed: Value = serde_json::from_slice(&body).expect("json");
    assert!(parsed.get("errors").is_none(), "{}: {parsed}", b.name);
    let after = counters(app).await;
    Work {
        statements: after.statements - before.statements,
        model_runs: after.model_runs - before.model_runs,
        model_rows: after.model_rows - before.model_rows,
        cache_lookups: after.cache_lookups - before.cache_lookups,
        bytes: body.len(),
    }
}

fn load_test_document(file: &str) -> String {
    let path = format!("{}/benches/load/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .expect(&path)
        .trim()
        .to_owned()
}

#[tokio::test]
async fn the_load_tests_scenarios_stay_within_their_budgets() {
    let app = TestApp::spawn_with(
        Db::Postgres,
        &[
            ("limits.throttle", "false"),
            ("ml.results_ttl_secs", "0"),
            ("cache.warm_listings", "0"),
        ],
    )
    .await;
    let u = app.seed(2000, 200, 20000).await;
    let token = app.token(u.user, Role::User);
    let listing = app.first_listing().await;
    let by_id = |query: &str| Budget {
        name: "",
        query: query.to_owned(),
        variables: json!({ "id": listing }),
        signed_in: false,
        cold_statements: 0.0,
        warm_statements: 0.0,
        model_runs: 0.0,
        model_rows: 0.0,
        warm_cache_lookups: 0.0,
        bytes: 0,
    };
    let plain = |name: &'static str, query: String, signed_in: bool| Budget {
        name,
        query,
        signed_in,
        variables: json!({}),
        ..by_id("")
    };
    // The budgets: what each scenario did when they were set (2026-12-01; the table this test
    // prints is the measurement, identical run after run). Lower one when a change does less.
    let budgets = [
        Budget {
            name: "{ __typename }",
            bytes: 210,
            ..plain("", "{ __typename }".into(), false)
        },
        Budget {
            name: "listing by id + owner + images",
            cold_statements: 3.0,
            warm_statements: 0.0,
            warm_cache_lookups: 3.0,
            bytes: 470,
            ..by_id("query($id: ID!) { property(id: $id) { id title monthlyPrice owner { displayName } images { url } } }")
        },
        Budget {
            name: "listing by id + owner",
            // Cold is warm here: the scenario before loaded the listing and its owner.
            cold_statements: 0.0,
            warm_statements: 0.0,
            warm_cache_lookups: 2.0,
            bytes: 352,
            ..by_id("query($id: ID!) { property(id: $id) { id title owner { displayName } } }")
        },
        Budget {
            name: "page of 50 + owner + images + stats + amenities",
            cold_statements: 5.0,
            warm_statements: 2.0,
            warm_cache_lookups: 119.0,
            bytes: 25_972,
            ..plain("", load_test_document("nested.graphql"), false)
        },
        Budget {
            name: "page of 50 in a city by price",
            cold_statements: 1.0,
            warm_statements: 1.0,
            warm_cache_lookups: 0.0,
            bytes: 7_222,
            ..plain(
                "",
                "{ properties(first: 50, filter: { city: \"Berlin\" }, orderBy: { field: PRICE, direction: ASC }) { edges { node { id title monthlyPrice } } } }".into(),
                false,
            )
        },
        Budget {
            name: "page of 50 with matchScore, signed in",
            cold_statements: 4.0,
            warm_statements: 1.0,
            model_runs: 1.0,
            model_rows: 50.0,
            warm_cache_lookups: 2.0,
            bytes: 9_121,
            ..plain("", load_test_document("page_match_score.graphql"), true)
        },
        Budget {
            name: "recommendations(first: 10), signed in",
            // The candidates this small market yields (`ml.candidates` is 300).
            cold_statements: 1.0,
            warm_statements: 0.0,
            model_runs: 1.0,
            model_rows: 70.0,
            warm_cache_lookups: 12.0,
            bytes: 3_507,
            ..plain("", load_test_document("recommendations.graphql"), true)
        },
    ];
    let mut table = String::from(
        "| scenario | cold statements | warm statements | model runs | model rows | warm cache lookups | bytes |\n|---|---|---|---|---|---|---|\n",
    );
    let mut over = Vec::new();
    for b in &budgets {
        let cold = run(&app, b, &token).await;
        let warm = run(&app, b, &token).await;
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            b.name,
            cold.statements,
            warm.statements,
            warm.model_runs,
            warm.model_rows,
            warm.cache_lookups,
            warm.bytes
        ));
        let checks = [
            ("cold statements", cold.statements, b.cold_statements),
            ("warm statements", warm.statements, b.warm_statements),
            ("model runs", warm.model_runs, b.model_runs),
            ("model rows", warm.model_rows, b.model_rows),
            (
                "warm cache lookups",
                warm.cache_lookups,
                b.warm_cache_lookups,
            ),
            ("response bytes", warm.bytes as f64, b.bytes as f64),
        ];
        for (what, did, budget) in checks {
            if did > budget {
                over.push(format!(
                    "{}: {what} {did} over its budget of {budget}",
                    b.name
                ));
            }
        }
    }
    eprintln!("{table}");
    assert!(
        over.is_empty(),
        "over budget:\n{}\n\n{table}",
        over.join("\n")
    );
    app.cleanup().await;
}
