//! One test per attack an abusive client can send: each is refused with its documented code
//! before anything expensive runs, and the server stays healthy afterwards.
use crate::helpers::{Db, TestApp, code, gid};
use entity::Role;
use serde_json::{Value, json};

const JSON: [(&str, &str); 1] = [("content-type", "application/json")];
const GRAPHQL_RESPONSE: [(&str, &str); 2] = [
    ("content-type", "application/json"),
    ("accept", "application/graphql-response+json"),
];

async fn send(app: &TestApp, body: String, headers: &[(&str, &str)]) -> (u16, Value) {
    let resp = app.post_raw(body, headers).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn query(app: &TestApp, q: &str) -> (u16, Value) {
    send(app, json!({ "query": q }).to_string(), &JSON).await
}

async fn healthy(app: &TestApp) {
    let d = app
        .data("{ properties(first: 1) { totalCount } }", json!({}), None)
        .await;
    assert!(d["properties"]["totalCount"].as_i64().is_some());
}

#[tokio::test]
async fn abusive_documents_are_refused_before_they_run() {
    // Generous size and token budgets, so each shape limit is what refuses its attack (with
    // the defaults, most of these documents are already too large).
    let app = TestApp::spawn_with(
        Db::Postgres,
        &[
            ("graphql.max_document_bytes", "500000"),
            ("graphql.max_tokens", "50000"),
        ],
    )
    .await;
    app.seed(20, 10, 20).await;
    let before = app.statements().await;

    // Deeper than max_depth, and deeper than the parser's recursion limit: both are depth.
    let moderate = "{ properties(first: 1) { edges { node { owner { interactions(first: 1) { edges { node { property { owner { interactions(first: 1) { edges { node { property { title } } } } } } } } } } } } } }".to_owned();
    let mut deep = String::from("{ properties(first: 1) { edges { node { ");
    for _ in 0..20 {
        deep.push_str("owner { interactions(first: 1) { edges { node { property { ");
    }
    deep.push_str("title");
    deep.push_str(&" } } } } }".repeat(20));
    deep.push_str(" } } } }");
    let aliases: String = (0..1000)
        .map(|i| format!("a{i}: similarProperties(first: 5) {{ title }} "))
        .collect();
    let aliases = format!("properties(first: 1) {{ edges {{ node {{ {aliases} }} }} }}");
    let duplicates = format!(
        "{{ properties(first: 1) {{ edges {{ node {{ {} }} }} }} }}",
        "title ".repeat(1000)
    );
    let directives = format!(
        "{{ properties(first: 1) {{ totalCount {} }} }}",
        "@include(if: true) ".repeat(50)
    );
    let tokens = format!("{{ {} }}", "a ".repeat(60_000));
    let root_fields = format!(
        "{{ {} }}",
        (0..40)
            .map(|i| format!("f{i}: __typename "))
            .collect::<String>()
    );
    // A fragment bomb: each fragment spreads the next twice, forty deep.
    let mut bomb = String::from("{ properties(first: 1) { ...F0 } }");
    for i in 0..40 {
        bomb.push_str(&format!(
            " fragment F{i} on PropertyConnection {{ ...F{n} ...F{n} }}",
            n = i + 1
        ));
    }
    bomb.push_str(" fragment F40 on PropertyConnection { totalCount }");
    for (what, doc, expected) in [
        ("fragment bomb", bomb, "MAX_FIELDS_EXCEEDED"),
        ("deep nesting", moderate, "MAX_DEPTH_EXCEEDED"),
        ("very deep nesting", deep, "MAX_DEPTH_EXCEEDED"),
        (
            "1,000 aliases of a real field",
            format!("{{ {aliases} }}"),
            "MAX_ALIASES_EXCEEDED",
        ),
        (
            "1,000 duplicated fields",
            duplicates,
            "MAX_DUPLICATE_FIELDS_EXCEEDED",
        ),
        ("directive flooding", directives, "MAX_DIRECTIVES_EXCEEDED"),
        ("token flood", tokens, "MAX_TOKENS_EXCEEDED"),
        (
            "too many root fields",
            root_fields,
            "MAX_ROOT_FIELDS_EXCEEDED",
        ),
    ] {
        // application/json: 200 with the error; the GraphQL response type: 400.
        let (status, body) = query(&app, &doc).await;
        assert_eq!((status, code(&body)), (200, expected), "{what}: {body}");
        assert!(body.get("data").is_none(), "{what}: nothing ran");
        let (status, body) =
            send(&app, json!({ "query": doc }).to_string(), &GRAPHQL_RESPONSE).await;
        assert_eq!((status, code(&body)), (400, expected), "{what}");
    }
    assert_eq!(
        app.statements().await,
        before,
        "nothing reached the database"
    );

    healthy(&app).await;
    app.cleanup().await;
}

#[tokio::test]
async fn wrong_methods_and_media_types_are_refused() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(5, 5, 5).await;
    let resp = app
        .client
        .get(format!("{}/graphql", app.base))
        .query(&[("query", "mutation { deactivateProperty(id: \"x\") { id } }")])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    // A named mutation, the document's only operation, without operationName: still 405.
    let resp = app
        .client
        .get(format!("{}/graphql", app.base))
        .query(&[(
            "query",
            "mutation Sneaky { deactivateProperty(id: \"x\") { id } }",
        )])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 405);
    // A document of almost 1 MB fits the body limit but not the document limit.
    let big = format!("{{ __typename }} #{}", "x".repeat(1_000_000));
    let (status, body) = query(&app, &big).await;
    assert_eq!((status, code(&body)), (200, "MAX_DOCUMENT_SIZE_EXCEEDED"));
    // Over the body limit: 413 before the body is read whole.
    let (status, body) = query(&app, &format!("{big}{}", "x".repeat(100_000))).await;
    assert_eq!((status, code(&body)), (413, "PAYLOAD_TOO_LARGE"));
    for ct in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        let (status, body) = send(
            &app,
            json!({ "query": "{ __typename }" }).to_string(),
            &[("content-type", ct)],
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (415, "UNSUPPORTED_MEDIA_TYPE"),
            "{ct}"
        );
    }
    healthy(&app).await;
    app.cleanup().await;
}

/// GraphiQL's own introspection query (graphql-js `getIntrospectionQuery` with descriptions,
/// as GraphiQL sends it) nests `ofType` deeper than max_depth: it must still work.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}"#;

#[tokio::test]
async fn graphiql_introspection_works_in_development_and_production_hides_the_schema() {
    let dev = TestApp::spawn(Db::Sqlite).await;
    let (status, body) = query(&dev, INTROSPECTION).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body}");
    assert!(
        body["data"]["__schema"]["types"]
            .as_array()
            .is_some_and(|t| t.len() > 10)
    );
    let (_, body) = query(&dev, "{ propertie(first: 1) { totalCount } }").await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Did you mean")),
        "development suggests: {body}"
    );
    dev.cleanup().await;

    let prod = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("graphql.introspection", "false"),
            ("graphql.suggestions", "false"),
        ],
    )
    .await;
    let (_, body) = query(&prod, INTROSPECTION).await;
    assert!(
        body["data"]["__schema"].is_null(),
        "introspection is off: {body}"
    );
    let (_, body) = query(&prod, "{ propertie(first: 1) { totalCount } }").await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert!(!message.contains("Did you mean"), "{message}");
    assert!(!message.contains("properties"), "{message}");
    prod.cleanup().await;
}

#[tokio::test]
async fn unbounded_and_malformed_inputs_get_bad_user_input() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(20, 10, 20).await;
    let owner = app.token(u.owner, Role::Owner);
    let user = app.token(u.user, Role::User);
    let amenities = vec!["BALCONY"; 1001];
    let cases: Vec<(&str, &str, Value, Option<&str>)> = vec![
        (
            "1,001 amenities",
            "query($a: [Amenity!]) { properties(filter: { amenities: $a }) { totalCount } }",
            json!({ "a": amenities }),
            None,
        ),
        (
            "a NUL byte in search text",
            "query($q: String!) { searchProperties(query: $q) { totalCount } }",
            json!({ "q": "sunny\u{0}balcony" }),
            None,
        ),
        (
            "a NUL byte in a city filter",
            "query($c: String) { properties(filter: { city: $c }) { totalCount } }",
            json!({ "c": "Ber\u{0}lin" }),
            None,
        ),
        (
            "a NUL byte in a title",
            "mutation($t: String!) { createProperty(input: { title: $t, description: \"d\", monthlyPrice: 900, city: \"Berlin\", neighbourhood: \"Mitte\", latitude: 52.5, longitude: 13.4, bedrooms: 1, bathrooms: 1, area: 40, propertyType: APARTMENT }) { id } }",
            json!({ "t": "Nice\u{0}flat" }),
            Some(&owner),
        ),
        (
            "a huge string",
            "query($c: String) { properties(filter: { city: $c }) { totalCount } }",
            json!({ "c": "x".repeat(10_000) }),
            None,
        ),
        (
            "too many preferred cities",
            "mutation($c: [String!]!) { updatePreferences(input: { cities: $c }) { id } }",
            json!({ "c": (0..100).map(|i| format!("c{i}")).collect::<Vec<_>>() }),
            Some(&user),
        ),
    ];
    for (what, q, vars, token) in cases {
        let (status, body) = app.gql(q, vars, token).await;
        assert_eq!(
            (status, code(&body)),
            (200, "BAD_USER_INPUT"),
            "{what}: {body}"
        );
    }

    // Crafted search cursors: out of range, not a 500 and not an overflow.
    use base64::Engine;
    let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    for offset in [
        i64::MAX.to_string(),
        u64::MAX.to_string(),
        "99999999999999999999999".into(),
    ] {
        let (status, body) = app
            .gql(
                "query($a: String) { searchProperties(query: \"flat\", after: $a) { totalCount } }",
                json!({ "a": enc(&format!("offset:{offset}")) }),
                None,
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (200, "BAD_USER_INPUT"),
            "{offset}: {body}"
        );
    }
    // Duplicated preference types are stored once, whatever their order.
    let d = app
        .data(
            "mutation { updatePreferences(input: { propertyTypes: [HOUSE, STUDIO, HOUSE, STUDIO] }) { preferences { propertyTypes } } }",
            json!({}),
            Some(&user),
        )
        .await;
    assert_eq!(
        d["updatePreferences"]["preferences"]["propertyTypes"],
        json!(["HOUSE", "STUDIO"])
    );
    healthy(&app).await;
    app.cleanup().await;
}

#[tokio::test]
async fn internal_errors_carry_a_request_id_and_no_internal_text() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn(Db::Postgres).await;
    app.seed(10, 5, 10).await;
    // Something breaks underneath: the images table is gone.
    let db = app.db_connection().await;
    db.execute_unprepared("DROP TABLE property_images CASCADE")
        .await
        .expect("drop");
    let resp = app
        .post_raw(
            json!({ "query": "{ properties(first: 2) { edges { node { title images { url } } } } }" })
                .to_string(),
            &[("content-type", "application/json"), ("x-request-id", "trace-42")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-42")
    );
    let body: Value = resp.json().await.expect("json");
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["code"], "INTERNAL_SERVER_ERROR", "{body}");
    assert_eq!(err["extensions"]["requestId"], "trace-42");
    assert_eq!(err["message"], "internal error");
    let text = body.to_string();
    assert!(
        !text.contains("property_images") && !text.contains("relation"),
        "{text}"
    );
    // A request id that could forge log lines is replaced, not echoed.
    let resp = app
        .post_raw(
            json!({ "query": "{ __typename }" }).to_string(),
            &[
                ("content-type", "application/json"),
                ("x-request-id", "a b forged=1"),
            ],
        )
        .await;
    let id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(id.len(), 32, "a generated id: {id}");
    app.cleanup().await;
}

#[tokio::test]
async fn field_errors_on_non_null_root_fields_are_200_for_both_media_types() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(5, 5, 5).await;
    let q = json!({ "query": "{ properties(first: -1) { totalCount } }" }).to_string();
    for headers in [&JSON[..], &GRAPHQL_RESPONSE[..]] {
        let (status, body) = send(&app, q.clone(), headers).await;
        assert_eq!((status, code(&body)), (200, "BAD_USER_INPUT"), "{body}");
        assert_eq!(body["data"], Value::Null);
        assert!(body["errors"][0]["path"].is_array());
    }
    app.cleanup().await;
}

#[tokio::test]
async fn readiness_says_what_failed_but_not_why() {
    let url = crate::helpers::absent_redis_url();
    let app = TestApp::spawn_with(Db::Sqlite, &[("redis.url", &url)]).await;
    let resp = app.get("/ready").await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["checks"]["redis"], "error");
    assert_eq!(body["checks"]["database"], "ok");
    let text = body.to_string();
    assert!(
        !text.contains("refused") && !text.contains("127.0.0.1"),
        "{text}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn slow_clients_cannot_hold_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(Db::Sqlite, &[("server.header_read_timeout_ms", "300")]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    // The server closes the connection (possibly after a 408) instead of waiting for ever.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        slow.read_to_end(&mut buf),
    )
    .await;
    assert!(read.is_ok(), "the connection was still open after 30 s");
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    healthy(&app).await;
    app.cleanup().await;
}

#[tokio::test]
async fn deactivated_listings_and_owner_profiles_are_visible_only_to_who_may_see_them() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(30, 30, 50).await;
    let owner = app.token(u.owner, Role::Owner);
    let user = app.token(u.user, Role::User);
    let admin = app.token(u.admin, Role::Admin);
    let listing = app
        .data(
            "query($o: ID!) { user(id: $o) { id } properties(first: 100) { edges { node { id owner { id } } } } }",
            json!({ "o": gid("User", u.owner) }),
            Some(&admin),
        )
        .await["properties"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["node"]["owner"]["id"] == gid("User", u.owner))
        .map(|e| e["node"]["id"].as_str().unwrap_or_default().to_owned())
        .expect("the owner has a listing");
    app.data(
        "mutation($id: ID!) { recordInteraction(propertyId: $id, type: SAVE) { id } }",
        json!({ "id": listing }),
        Some(&user),
    )
    .await;
    let count = "{ me { savedProperties(first: 1) { totalCount } } }";
    let saved_before =
        app.data(count, json!({}), Some(&user)).await["me"]["savedProperties"]["totalCount"]
            .as_i64()
            .expect("count");
    app.data(
        "mutation($id: ID!) { deactivateProperty(id: $id) { id } }",
        json!({ "id": listing }),
        Some(&owner),
    )
    .await;
    let saved_after =
        app.data(count, json!({}), Some(&user)).await["me"]["savedProperties"]["totalCount"]
            .as_i64()
            .expect("count");
    assert_eq!(
        saved_after,
        saved_before - 1,
        "totalCount counts what the list shows"
    );
    let mine = "{ me { savedProperties(first: 50) { edges { node { id } } }
                     interactions(first: 50) { edges { node { type property { id } } } } } }";
    let d = app.data(mine, json!({}), Some(&user)).await;
    let saved = d["me"]["savedProperties"]["edges"].to_string();
    assert!(
        !saved.contains(&listing),
        "a deactivated listing is not in savedProperties"
    );
    let saves: Vec<&Value> = d["me"]["interactions"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["node"]["type"] == "SAVE")
        .collect();
    assert!(!saves.is_empty());
    assert!(
        saves
            .iter()
            .all(|e| e["node"]["property"] != json!({ "id": listing }))
    );
    let node = "query($id: ID!) { node(id: $id) { id } property(id: $id) { id } }";
    let d = app.data(node, json!({ "id": listing }), Some(&user)).await;
    assert_eq!(
        (d["node"].clone(), d["property"].clone()),
        (Value::Null, Value::Null)
    );
    let d = app.data(node, json!({ "id": listing }), Some(&owner)).await;
    assert_eq!(d["property"]["id"], listing.as_str());

    // Anonymous callers see an owner's display name only.
    let d = app
        .data(
            "{ properties(first: 1) { edges { node { owner { displayName role createdAt email } } } } }",
            json!({}),
            None,
        )
        .await;
    let o = &d["properties"]["edges"][0]["node"]["owner"];
    assert!(o["displayName"].is_string());
    assert_eq!(
        (
            o["role"].clone(),
            o["createdAt"].clone(),
            o["email"].clone()
        ),
        (Value::Null, Value::Null, Value::Null)
    );
    app.cleanup().await;
}

/// PostgreSQL terminates the server's connections while a read is running on one of them, as
/// a restart or failover does, twice: the read still answers. Deterministic: another client
/// holds a lock the read waits on, so the read is certainly in flight when its backend is
/// terminated, and the lock is released only afterwards.
#[tokio::test]
async fn reads_survive_terminated_connections() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn(Db::Postgres).await;
    app.seed(50, 20, 100).await;
    let db_name = app
        .settings
        .database
        .url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let admin = app.db_connection().await;
    let q = "{ properties(first: 20) { totalCount edges { node { title owner { displayName } images { url } stats { views } } } } }";
    for round in 0..2 {
        let locker = app.db_connection().await;
        let txn = locker.begin().await.expect("begin");
        txn.execute_unprepared("LOCK TABLE properties IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
        let client = app.client.clone();
        let url = format!("{}/graphql", app.base);
        let read = tokio::spawn(async move {
            let resp = client
                .post(&url)
                .header("content-type", "application/json")
                .body(json!({ "query": q }).to_string())
                .send()
                .await
                .expect("request");
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        });
        // Wait until the server's read is blocked on the lock, then terminate exactly the
        // backends that are waiting (the server's, mid-statement).
        let waiting = format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{db_name}' AND wait_event_type = 'Lock'"
        );
        let mut terminated = 0;
        for _ in 0..500 {
            let rows = admin
                .query_all_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    format!("SELECT pg_terminate_backend(pid) AS t FROM ({waiting}) w"),
                ))
                .await
                .expect("terminate");
            terminated = rows.len();
            if terminated > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            terminated > 0,
            "round {round}: the read never reached the database"
        );
        txn.rollback().await.expect("unlock");
        let (status, body) = read.await.expect("read");
        assert_eq!(status, 200, "round {round}: {body}");
        assert!(
            body.get("errors").is_none(),
            "round {round}: the read failed: {body}"
        );
        assert!(
            body["data"]["properties"]["totalCount"]
                .as_i64()
                .is_some_and(|n| n > 0)
        );
    }
    app.cleanup().await;
}
