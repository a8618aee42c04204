use crate::helpers::{Db, TestApp, code, gid};
use serde_json::{Value, json};

async fn body_of(resp: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, ct, body)
}

#[tokio::test]
async fn malformed_requests_get_clear_errors() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(10, 10, 10).await;
    let json_ct = [("content-type", "application/json")];

    let (s, _, b) = body_of(app.post_raw("{\"query\": ".into(), &json_ct).await).await;
    assert_eq!((s, code(&b)), (400, "BAD_REQUEST"));
    let (s, _, b) = body_of(app.post_raw("[1, 2]".into(), &json_ct).await).await;
    assert_eq!((s, code(&b)), (400, "BAD_REQUEST"));
    let (s, _, b) = body_of(
        app.post_raw(json!({ "variables": {} }).to_string(), &json_ct)
            .await,
    )
    .await;
    assert_eq!((s, code(&b)), (400, "BAD_REQUEST"));
    let (s, _, b) = body_of(
        app.post_raw(
            json!({ "query": "{ me { id } }", "variables": [1] }).to_string(),
            &json_ct,
        )
        .await,
    )
    .await;
    assert_eq!((s, code(&b)), (400, "BAD_REQUEST"));
    let (s, _, b) = body_of(
        app.post_raw(
            "query=%7B%7D".into(),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await,
    )
    .await;
    assert_eq!((s, code(&b)), (415, "UNSUPPORTED_MEDIA_TYPE"));
    let (s, _, b) = body_of(
        app.post_raw(
            json!({ "query": "{ me { id } }" }).to_string(),
            &[("content-type", "application/json"), ("accept", "text/csv")],
        )
        .await,
    )
    .await;
    assert_eq!((s, code(&b)), (406, "NOT_ACCEPTABLE"));

    // Syntax errors: nothing runs; per GraphQL over HTTP, 200 for application/json and 400 for
    // the GraphQL response type.
    let q = json!({ "query": "{ properties(first: ) }" }).to_string();
    let (s, _, b) = body_of(app.post_raw(q.clone(), &json_ct).await).await;
    assert_eq!((s, code(&b)), (200, "GRAPHQL_PARSE_FAILED"));
    let (s, ct, b) = body_of(
        app.post_raw(
            q,
            &[
                ("content-type", "application/json"),
                ("accept", "application/graphql-response+json"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!((s, code(&b)), (400, "GRAPHQL_PARSE_FAILED"));
    assert_eq!(ct.as_deref(), Some("application/graphql-response+json"));
    // Validation errors: 200 for application/json, 400 for the GraphQL response type.
    let q = json!({ "query": "{ noSuchField }" }).to_string();
    let (s, _, b) = body_of(app.post_raw(q.clone(), &json_ct).await).await;
    assert_eq!((s, code(&b)), (200, "GRAPHQL_VALIDATION_FAILED"));
    let (s, ct, b) = body_of(
        app.post_raw(
            q,
            &[
                ("content-type", "application/json"),
                ("accept", "application/graphql-response+json"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!((s, code(&b)), (400, "GRAPHQL_VALIDATION_FAILED"));
    assert_eq!(ct.as_deref(), Some("application/graphql-response+json"));

    // Ids: malformed is an error, unknown is null.
    let (_, b) = app
        .gql("{ property(id: \"%%%\") { id } }", json!({}), None)
        .await;
    assert_eq!(code(&b), "BAD_USER_INPUT");
    let (_, b) = app
        .gql(
            "query($id: ID!) { property(id: $id) { id } }",
            json!({ "id": gid("User", uuid::Uuid::new_v4()) }),
            None,
        )
        .await;
    assert_eq!(code(&b), "BAD_USER_INPUT", "a user id is not a property id");
    let d = app
        .data(
            "query($id: ID!) { property(id: $id) { id } }",
            json!({ "id": gid("Property", uuid::Uuid::new_v4()) }),
            None,
        )
        .await;
    assert_eq!(d["property"], Value::Null);
    // Wrong variable types are validation errors, not crashes.
    let (_, b) = app
        .gql(
            "query($n: Int) { properties(first: $n) { totalCount } }",
            json!({ "n": "ten" }),
            None,
        )
        .await;
    assert!(b["errors"].as_array().is_some_and(|e| !e.is_empty()), "{b}");
    // Too deep.
    let deep = "{ properties(first: 1) { edges { node { owner { interactions(first: 1) { edges { node { property { owner { interactions(first: 1) { edges { node { property { title } } } } } } } } } } } } } }";
    let (_, b) = app.gql(deep, json!({}), None).await;
    assert_eq!(code(&b), "MAX_DEPTH_EXCEEDED", "{b}");
    app.cleanup().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::spawn_with(Db::Sqlite, &[("server.body_limit_bytes", "2048")]).await;
    let big = json!({ "query": format!("{{ me {{ id }} }} # {}", "x".repeat(4096)) }).to_string();
    let resp = app
        .post_raw(big, &[("content-type", "application/json")])
        .await;
    assert_eq!(resp.status(), 413);
    let b: Value = resp.json().await.expect("json");
    assert_eq!(code(&b), "PAYLOAD_TOO_LARGE");
    // The server is still fine afterwards.
    assert_eq!(
        app.data("{ me { id } }", json!({}), None).await["me"],
        Value::Null
    );
    app.cleanup().await;
}

/// Anonymous callers' reads run on a pool of their own with a shorter statement timeout: an
/// anonymous query stuck behind a lock gets `STATEMENT_TIMEOUT` after
/// `database.anonymous_statement_timeout_ms`, while a signed-in caller's same query waits for
/// the lock and is answered. Deterministic: the lock is held until the test lets go.
#[tokio::test]
async fn anonymous_statements_time_out_sooner() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn_with(
        Db::Postgres,
        &[("database.anonymous_statement_timeout_ms", "200")],
    )
    .await;
    let u = app.seed(10, 10, 10).await;
    let token = app.token(u.user, entity::Role::User);
    let other = app.db_connection().await;
    let txn = other.begin().await.expect("begin");
    txn.execute_unprepared("LOCK TABLE properties IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let query = "{ properties(first: 5) { totalCount } }";
    let started = std::time::Instant::now();
    let (status, body) = app.gql(query, json!({}), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(code(&body), "STATEMENT_TIMEOUT", "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let signed_in = tokio::spawn({
        let base = app.base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .expect("request")
                .json::<Value>()
                .await
                .expect("json")
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    txn.rollback().await.expect("unlock");
    let answered = signed_in.await.expect("task");
    assert!(answered["errors"].is_null(), "{answered}");
    assert!(
        answered["data"]["properties"]["totalCount"]
            .as_i64()
            .is_some()
    );
    // Without the lock the anonymous query is answered as usual.
    app.data(query, json!({}), None).await;
    app.cleanup().await;
}

/// Deterministic: another client holds a lock the query must wait for, so the request cannot
/// finish before its timeout however fast or slow the machine is.
#[tokio::test]
async fn slow_requests_time_out() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn_with(Db::Postgres, &[("server.request_timeout_ms", "500")]).await;
    app.seed(10, 10, 10).await;
    let other = app.db_connection().await;
    let txn = other.begin().await.expect("begin");
    txn.execute_unprepared("LOCK TABLE properties IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let resp = app
        .post_raw(
            json!({ "query": "{ properties(first: 5) { totalCount } }" }).to_string(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("x-request-id").is_some());
    let b: Value = resp.json().await.expect("json");
    assert_eq!(code(&b), "REQUEST_TIMEOUT");
    txn.rollback().await.expect("unlock");
    // The cancelled query left nothing behind: the server answers again.
    let d = app.data("{ __typename }", json!({}), None).await;
    assert_eq!(d["__typename"], "Query");
    app.cleanup().await;
}
