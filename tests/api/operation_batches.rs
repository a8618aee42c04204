//! Batched operations: a POST body that is a JSON array runs each operation on its own (limits,
//! cost charged to the caller, errors) and answers the array of answers in order; Apollo
//! Client's `BatchHttpLink` is the client.
use crate::helpers::{Db, TestApp};
use serde_json::{Value, json};

const LISTINGS: &str = "{ properties(first: 2) { edges { node { id } } } }";

async fn post(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .post_raw(body.to_string(), &[("content-type", "application/json")])
        .await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_batch_answers_each_operation_in_order_with_its_own_errors() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(10, 5, 5).await;
    let (status, body) = post(
        &app,
        json!([
            { "query": LISTINGS },
            { "query": "{ properties(first: -1) { totalCount } }" },
            { "query": "{ __typename }", "operationName": null },
            { "variables": "not an object", "query": "{ __typename }" },
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let answers = body.as_array().expect("an array of answers");
    assert_eq!(answers.len(), 4);
    assert_eq!(
        answers[0]["data"]["properties"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert!(answers[0]["extensions"]["cost"]["requestedQueryCost"].is_u64());
    assert_eq!(code(&answers[1]), "BAD_USER_INPUT");
    assert_eq!(answers[2]["data"]["__typename"], "Query");
    assert_eq!(code(&answers[3]), "BAD_REQUEST");
}

#[tokio::test]
async fn an_empty_or_oversized_batch_is_refused_with_its_code() {
    let app = TestApp::spawn_with(Db::Sqlite, &[("server.max_batch_operations", "3")]).await;
    let (status, body) = post(&app, json!([])).await;
    assert_eq!(
        (status, code(&body)),
        (400, "MAX_BATCH_OPERATIONS_EXCEEDED")
    );
    let four: Vec<Value> = (0..4)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let (status, body) = post(&app, Value::Array(four)).await;
    assert_eq!(
        (status, code(&body)),
        (400, "MAX_BATCH_OPERATIONS_EXCEEDED")
    );
    let three: Vec<Value> = (0..3)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let (status, body) = post(&app, Value::Array(three)).await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(3)));
}

/// Every operation of a batch is charged: a bucket that holds one operation's cost lets one
/// of three identical operations run and throttles the others.
#[tokio::test]
async fn the_whole_batch_is_charged_to_the_caller() {
    let probe = TestApp::spawn(Db::Sqlite).await;
    let (_, one) = post(&probe, json!({ "query": LISTINGS })).await;
    let cost = one["extensions"]["cost"]["requestedQueryCost"]
        .as_u64()
        .expect("a cost");
    let capacity = (cost + cost / 2).to_string();
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("limits.budgets.anonymous.capacity", &capacity),
            ("limits.budgets.anonymous.restore_rate", "0.001"),
        ],
    )
    .await;
    app.seed(10, 5, 5).await;
    let three: Vec<Value> = (0..3).map(|_| json!({ "query": LISTINGS })).collect();
    let (status, body) = post(&app, Value::Array(three)).await;
    assert_eq!(status, 200);
    let codes: Vec<&str> = body.as_array().into_iter().flatten().map(code).collect();
    assert_eq!(
        codes.iter().filter(|c| c.is_empty()).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "THROTTLED").count(),
        2,
        "{codes:?}"
    );
}

/// Apollo Client's `BatchHttpLink` (tests/apollo, installed by scripts/test).
#[tokio::test]
async fn apollo_clients_batch_link_works() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(10, 5, 5).await;
    let report = crate::helpers::apollo_script("batch.mjs", format!("{}/graphql", app.base)).await;
    assert_eq!(
        report["wire"],
        json!([{ "method": "POST", "operations": 3 }]),
        "{report}"
    );
    assert_eq!(report["edges"], json!([2, 3]));
    assert_eq!(report["error"], "BAD_USER_INPUT");
}
