//! Query cost and throttling through the real server: the cost block on every response, the
//! per-operation ceiling, buckets that empty, refuse with Retry-After and refill, one budget
//! across instances through Redis, and in-process buckets when Redis is gone.
use crate::helpers::{Db, TestApp, code, redis_prefix, redis_url};
use entity::Role;
use serde_json::{Value, json};

const PAGE: &str =
    "{ properties(first: 10) { totalCount edges { node { title owner { displayName } } } } }";
/// properties 5 + totalCount 10 + 10 edges x (edge 1 + node 1 + owner 1).
const PAGE_COST: u64 = 5 + 10 + 10 * 3;

async fn post(app: &TestApp, q: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, Value) {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let resp = app.post_raw(json!({ "query": q }).to_string(), &all).await;
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_response_reports_requested_and_actual_cost() {
    let app = TestApp::spawn(Db::Postgres).await;
    app.seed(5, 5, 5).await;
    let (status, _, body) = post(&app, PAGE, &[]).await;
    assert_eq!(status, 200, "{body}");
    let cost = &body["extensions"]["cost"];
    assert_eq!(cost["requestedQueryCost"], PAGE_COST, "{body}");
    // Fewer than ten listings came back: the unused part is refunded.
    let returned = body["data"]["properties"]["edges"]
        .as_array()
        .map_or(0, Vec::len) as u64;
    assert!(returned < 10, "{body}");
    assert_eq!(cost["actualQueryCost"], 5 + 10 + returned * 3, "{body}");
    let t = &cost["throttleStatus"];
    assert!(t["maximumAvailable"].as_f64().is_some() && t["restoreRate"].as_f64().is_some());
    // first: 0 is not free, and huge pages saturate instead of wrapping around.
    let (_, _, body) = post(&app, "{ properties(first: 0) { totalCount } }", &[]).await;
    assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 15);
    let (status, _, body) = post(
        &app,
        "{ properties(first: 1) { edges { node { similarProperties(first: 2147483647) { similarProperties(first: 2147483647) { similarProperties(first: 2147483647) { title } } } } } } }",
        &[],
    )
    .await;
    assert_eq!((status, code(&body)), (200, "MAX_COST_EXCEEDED"), "{body}");
    // rateLimit costs nothing and agrees with the cost block.
    let user = app.token(app.seed_user().await, Role::User);
    let d = app
        .data(
            "{ rateLimit { cost limit remaining restoreRate resetAt } }",
            json!({}),
            Some(&user),
        )
        .await;
    assert_eq!(d["rateLimit"]["cost"], 0);
    assert!(d["rateLimit"]["limit"].as_i64().is_some_and(|l| l > 0));
    assert!(d["rateLimit"]["resetAt"].is_string());
    app.cleanup().await;
}

#[tokio::test]
async fn the_alias_flood_is_refused_by_cost() {
    // Shape limits raised so that cost is what refuses: ~25,000 aliased `first: 0` counts.
    let app = TestApp::spawn_with(
        Db::Postgres,
        &[
            ("graphql.max_aliases", "100000"),
            ("graphql.max_root_fields", "100000"),
            ("graphql.max_selected_fields", "100000"),
            ("graphql.max_tokens", "1000000"),
            ("graphql.max_document_bytes", "2000000"),
            ("server.body_limit_bytes", "4000000"),
        ],
    )
    .await;
    app.seed(5, 5, 5).await;
    let before = app.statements().await;
    let flood: String = (0..25_000)
        .map(|i| format!("a{i}: properties(first: 0) {{ totalCount }} "))
        .collect();
    let q = format!("{{ {flood} }}");
    let (status, _, body) = post(&app, &q, &[]).await;
    assert_eq!(
        (status, code(&body)),
        (200, "MAX_COST_EXCEEDED"),
        "{}",
        &body.to_string()[..200.min(body.to_string().len())]
    );
    assert_eq!(body["errors"][0]["extensions"]["cost"], 25_000 * 15);
    assert_eq!(body["errors"][0]["extensions"]["maxCost"], 5000);
    assert_eq!(
        body["extensions"]["cost"]["requestedQueryCost"],
        25_000 * 15
    );
    let (status, _, body) =
        post(&app, &q, &[("accept", "application/graphql-response+json")]).await;
    assert_eq!((status, code(&body)), (400, "MAX_COST_EXCEEDED"));
    assert_eq!(app.statements().await, before, "no statement ran");
    app.cleanup().await;
}

/// Sends `PAGE` until refused (each costs more than the bucket refills meanwhile).
async fn until_throttled(app: &TestApp, headers: &[(&str, &str)]) -> (usize, u64, Value) {
    for sent in 1..=50 {
        let (status, retry, body) = post(app, PAGE, headers).await;
        if status == 429 {
            let retry: u64 = retry
                .and_then(|r| r.parse().ok())
                .expect("Retry-After in seconds");
            return (sent, retry, body);
        }
        assert_eq!(status, 200, "{body}");
    }
    panic!("never throttled");
}

const SMALL_BUCKET: [(&str, &str); 2] = [
    ("limits.budgets.anonymous.capacity", "100"),
    ("limits.budgets.anonymous.restore_rate", "10"),
];

#[tokio::test]
async fn an_empty_bucket_answers_429_with_retry_after_and_refills() {
    let app = TestApp::spawn_with(Db::Sqlite, &SMALL_BUCKET).await;
    app.seed(20, 5, 5).await;
    let (sent, retry, body) = until_throttled(&app, &[]).await;
    assert!(sent >= 2, "a full bucket pays for at least one page");
    assert_eq!(code(&body), "THROTTLED");
    assert!(retry >= 1);
    assert_eq!(body["errors"][0]["extensions"]["cost"], PAGE_COST);
    let status = &body["extensions"]["cost"]["throttleStatus"];
    assert_eq!(status["maximumAvailable"], 100.0);
    assert!(
        status["currentlyAvailable"]
            .as_f64()
            .is_some_and(|a| a < PAGE_COST as f64)
    );
    // A signed-in user has a bucket of their own.
    let user = app.token(app.seed_user().await, Role::User);
    let (s, _, _) = post(&app, PAGE, &[("authorization", &format!("Bearer {user}"))]).await;
    assert_eq!(s, 200);
    // After Retry-After seconds the page is affordable again.
    tokio::time::sleep(std::time::Duration::from_millis(retry * 1000 + 100)).await;
    let (s, _, body) = post(&app, PAGE, &[]).await;
    assert_eq!(s, 200, "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn two_instances_share_one_budget_through_redis() {
    let prefix = redis_prefix();
    let url = redis_url();
    let mut overrides = SMALL_BUCKET.to_vec();
    overrides.push(("redis.url", &url));
    overrides.push(("redis.prefix", &prefix));
    let a = TestApp::spawn_with(Db::Postgres, &overrides).await;
    a.seed(20, 5, 5).await;
    let b = a.peer(&[]).await;
    until_throttled(&a, &[]).await;
    // The same client, through the other instance: the same empty bucket.
    let resp = b.post(json!({ "query": PAGE }), &[]).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    b.stop().await;
    a.cleanup().await;
}

#[tokio::test]
async fn without_redis_buckets_are_kept_in_process() {
    // A Redis that is not there: no request fails, and throttling still works per instance.
    let url = crate::helpers::absent_redis_url();
    let mut overrides = SMALL_BUCKET.to_vec();
    overrides.push(("redis.url", &url));
    let app = TestApp::spawn_with(Db::Sqlite, &overrides).await;
    app.seed(20, 5, 5).await;
    let (_, _, body) = until_throttled(&app, &[]).await;
    assert_eq!(code(&body), "THROTTLED");
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    assert!(
        metrics.contains("rentgraph_redis_errors_total"),
        "Redis errors are counted"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn repeated_interactions_are_recorded_once_and_charged_once() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(10, 10, 10).await;
    let user = app.token(u.user, Role::User);
    let listing = app
        .data(
            "{ properties(first: 1) { edges { node { id stats { likes } } } } }",
            json!({}),
            None,
        )
        .await["properties"]["edges"][0]["node"]
        .clone();
    let id = listing["id"].as_str().expect("id");
    let likes = listing["stats"]["likes"].as_i64().expect("likes");
    let m = "mutation($id: ID!) { recordInteraction(propertyId: $id, type: LIKE) { id } }";
    let mut ids = Vec::new();
    let mut actual = Vec::new();
    for _ in 0..3 {
        let (status, body) = app.gql(m, json!({ "id": id }), Some(&user)).await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["data"]["recordInteraction"]["id"].clone());
        actual.push(
            body["extensions"]["cost"]["actualQueryCost"]
                .as_u64()
                .expect("cost"),
        );
    }
    assert!(ids.iter().all(|i| *i == ids[0]), "one interaction: {ids:?}");
    assert!(
        actual[0] >= 10 && actual[1] < 10 && actual[2] < 10,
        "{actual:?}"
    );
    let after = app
        .data(
            "query($id: ID!) { property(id: $id) { stats { likes } } }",
            json!({ "id": id }),
            None,
        )
        .await;
    assert_eq!(
        after["property"]["stats"]["likes"].as_i64(),
        Some(likes + 1)
    );
    // Another type is another interaction.
    let (_, body) = app
        .gql(
            "mutation($id: ID!) { recordInteraction(propertyId: $id, type: SAVE) { id } }",
            json!({ "id": id }),
            Some(&user),
        )
        .await;
    assert_ne!(body["data"]["recordInteraction"]["id"], ids[0]);
    app.cleanup().await;
}

/// Behind a proxy, the client is the address the proxy appended to `X-Forwarded-For`, not what
/// the client put in front of it: a client inventing a new first entry per request still drains
/// one bucket. From a peer that is not a trusted proxy the header is ignored altogether.
#[tokio::test]
async fn a_client_cannot_pick_a_fresh_bucket_by_forging_x_forwarded_for() {
    let behind = |proxies: &'static str| {
        let mut o = SMALL_BUCKET.to_vec();
        o.extend([
            ("limits.trusted_proxy_header", "x-forwarded-for"),
            ("limits.trusted_proxies", proxies),
        ]);
        o
    };
    // The test client is the proxy (127.0.0.1): the rightmost entry is the client.
    let app = TestApp::spawn_with(Db::Sqlite, &behind("127.0.0.1/32, ::1")).await;
    app.seed(20, 5, 5).await;
    let mut throttled_at = None;
    for i in 0..40 {
        let forged = format!("198.51.100.{i}, 203.0.113.9");
        let (status, _, _) = post(&app, PAGE, &[("x-forwarded-for", &forged)]).await;
        if status == 429 {
            throttled_at = Some(i);
            break;
        }
    }
    assert!(
        throttled_at.is_some(),
        "forged first entries shared one bucket"
    );
    // Another client behind the same proxy has its own.
    let (status, _, body) = post(&app, PAGE, &[("x-forwarded-for", "203.0.113.10")]).await;
    assert_eq!(status, 200, "{body}");
    app.cleanup().await;

    // The proxies are elsewhere: the header is the client's own and is ignored.
    let app = TestApp::spawn_with(Db::Sqlite, &behind("10.0.0.0/8")).await;
    app.seed(20, 5, 5).await;
    let mut throttled_at = None;
    for i in 0..40 {
        let forged = format!("203.0.113.{i}");
        let (status, _, _) = post(&app, PAGE, &[("x-forwarded-for", &forged)]).await;
        if status == 429 {
            throttled_at = Some(i);
            break;
        }
    }
    assert!(
        throttled_at.is_some(),
        "an untrusted peer's header made fresh buckets"
    );
    app.cleanup().await;
}

/// A refund never takes an operation below the work it did: fifteen aliased duplicates of one
/// `recordInteraction` are deduplicated (one interaction, refunds for fourteen), but each still
/// ran its statements, and the cost charged is at least one point per statement and root field.
#[tokio::test]
async fn refunds_stop_at_the_statements_an_operation_ran() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(10, 10, 10).await;
    let user = app.token(u.user, Role::User);
    let id = app.first_listing().await;
    let aliases: String = (0..15)
        .map(|i| format!("a{i}: recordInteraction(propertyId: $id, type: LIKE) {{ id }} "))
        .collect();
    let m = format!("mutation($id: ID!) {{ {aliases}}}");
    // The token's user is looked up once and then cached: not part of what is measured.
    app.data("{ me { id } }", json!({}), Some(&user)).await;
    let before = app.statements().await;
    let (status, body) = app.gql(&m, json!({ "id": id }), Some(&user)).await;
    assert_eq!(status, 200, "{body}");
    let ran = app.statements().await - before;
    let actual = body["extensions"]["cost"]["actualQueryCost"]
        .as_u64()
        .expect("cost");
    let requested = body["extensions"]["cost"]["requestedQueryCost"]
        .as_u64()
        .expect("cost");
    assert!(ran >= 15, "every duplicate ran statements: {ran}");
    assert!(
        actual >= ran.min(requested) && actual >= 15,
        "charged {actual} for {ran} statements and 15 root fields (requested {requested})"
    );
    app.cleanup().await;
}

/// An operation costing more than the caller's whole bucket could never be paid for: it is
/// refused as too costly, not throttled with a Retry-After that never comes true.
#[tokio::test]
async fn an_operation_larger_than_the_whole_bucket_is_refused_as_too_costly() {
    let app = TestApp::spawn_with(Db::Sqlite, &SMALL_BUCKET).await;
    app.seed(5, 5, 5).await;
    let big =
        "{ properties(first: 100) { edges { node { id owner { displayName } images { url } } } } }";
    let (status, _, body) = post(&app, big, &[]).await;
    assert_eq!(code(&body), "MAX_COST_EXCEEDED", "{body}");
    assert_ne!(status, 429);
    app.cleanup().await;
}

/// Cost follows the database's work: a root listing query costs its statement even for
/// `first: 0`, and each amenity it filters by adds an intersection that is charged and kept,
/// even when the page comes back empty.
#[tokio::test]
async fn amenity_filters_and_empty_pages_pay_for_their_scans() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(10, 5, 5).await;
    let cost = |q: &'static str, vars: Value| {
        let app = &app;
        async move {
            let (_, body) = app.gql(q, vars, None).await;
            let c = &body["extensions"]["cost"];
            (
                c["requestedQueryCost"].as_u64().unwrap_or(0),
                c["actualQueryCost"].as_u64().unwrap_or(0),
            )
        }
    };
    let (zero, _) = cost(
        "{ properties(first: 0) { edges { node { id } } } }",
        json!({}),
    )
    .await;
    assert!(zero >= 5, "first: 0 still runs its statement: {zero}");
    let q =
        "query($f: PropertyFilter) { properties(first: 5, filter: $f) { edges { node { id } } } }";
    let (plain, _) = cost(q, json!({ "f": { "city": "Nowhere" } })).await;
    let all = [
        "BALCONY",
        "DISHWASHER",
        "DOORMAN",
        "ELEVATOR",
        "FURNISHED",
        "GARDEN",
    ];
    let (filtered, kept) = cost(q, json!({ "f": { "city": "Nowhere", "amenities": all } })).await;
    assert_eq!(filtered, plain + 6 * 5);
    assert!(
        kept >= 30,
        "an empty page keeps the intersections' cost: {kept}"
    );
    app.cleanup().await;
}

/// Requests refused before their cost is known are work too: each costs `limits.refusal_cost`,
/// so a flood of unparseable documents from one client drains its bucket and gets 429s.
#[tokio::test]
async fn a_flood_of_refused_requests_is_throttled() {
    let app = TestApp::spawn_with(Db::Sqlite, &SMALL_BUCKET).await;
    let mut first_code = None;
    let mut throttled = None;
    for i in 0..80 {
        let (status, _, body) = post(&app, "{ properties(first: 1) {", &[]).await;
        first_code.get_or_insert_with(|| code(&body).to_owned());
        if status == 429 {
            throttled = Some((i, code(&body).to_owned()));
            break;
        }
    }
    assert_eq!(first_code.as_deref(), Some("GRAPHQL_PARSE_FAILED"));
    let (sent, code) = throttled.expect("a flood of refusals was never throttled");
    assert_eq!(code, "THROTTLED");
    assert!(sent >= 10, "a full bucket pays for many refusals: {sent}");
    app.cleanup().await;
}
