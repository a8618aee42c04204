use crate::helpers::{Db, TestApp, code, redis_url};
use serde_json::{Value, json};

#[tokio::test]
async fn get_runs_queries_but_not_mutations() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(15, 10, 10).await;
    let resp = app
        .client
        .get(format!("{}/graphql", app.base))
        .query(&[
            (
                "query",
                "query($n: Int) { properties(first: $n) { edges { node { id } } } }",
            ),
            ("variables", "{\"n\": 2}"),
        ])
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.expect("json");
    assert_eq!(
        b["data"]["properties"]["edges"].as_array().map(Vec::len),
        Some(2)
    );

    let resp = app
        .client
        .get(format!("{}/graphql", app.base))
        .query(&[("query", "mutation { deactivateProperty(id: \"x\") { id } }")])
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let b: Value = resp.json().await.expect("json");
    assert_eq!(code(&b), "METHOD_NOT_ALLOWED");

    let html = app
        .client
        .get(format!("{}/graphql", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(html.status(), 200);
    assert!(
        html.text()
            .await
            .unwrap_or_default()
            .to_lowercase()
            .contains("graphiql")
    );
    app.cleanup().await;
}

#[tokio::test]
async fn probes_and_metrics() {
    let app = TestApp::spawn(Db::Postgres).await;
    assert_eq!(app.get("/health").await.status(), 200);
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let b: Value = ready.json().await.expect("json");
    assert_eq!(b["checks"]["database"], "ok");
    assert_eq!(b["checks"]["redis"], "not configured");
    app.data("{ properties(first: 1) { totalCount } }", json!({}), None)
        .await;
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    assert!(metrics.contains("rentgraph_db_queries_total"), "{metrics}");
    assert!(
        metrics.contains("rentgraph_http_requests_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rentgraph_db_query_duration_seconds_bucket"),
        "{metrics}"
    );
    let missing = app.get("/nope").await;
    assert_eq!(missing.status(), 404);
    app.cleanup().await;
}

#[tokio::test]
async fn readiness_checks_redis_when_configured() {
    let url = redis_url();
    let app = TestApp::spawn_with(Db::Sqlite, &[("redis.url", url.as_str())]).await;
    let b: Value = app.get("/ready").await.json().await.expect("json");
    assert_eq!(
        b["checks"]["redis"], "ok",
        "Redis must be running for the tests (see README)"
    );
    app.cleanup().await;

    // Nothing listens on port 1: not ready, but still alive.
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("redis.url", "redis://127.0.0.1:1"),
            ("redis.connect_timeout_ms", "500"),
        ],
    )
    .await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let b: Value = ready.json().await.expect("json");
    assert_eq!(b["status"], "unavailable");
    assert_eq!(app.get("/health").await.status(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn large_responses_are_compressed() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(60, 10, 10).await;
    let resp = app
        .client
        .post(format!("{}/graphql", app.base))
        .header("content-type", "application/json")
        .header("accept-encoding", "gzip")
        .body(json!({ "query": "{ properties(first: 50) { edges { node { id title description } } } }" }).to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    app.cleanup().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let app = TestApp::spawn(Db::Postgres).await;
    app.seed(200, 20, 2000).await;
    let client = app.client.clone();
    let url = format!("{}/graphql", app.base);
    let in_flight = tokio::spawn(async move {
        client
            .post(url)
            .header("content-type", "application/json")
            .body(json!({ "query": "{ properties(first: 100) { totalCount edges { node { owner { interactions(first: 20) { edges { node { property { images { url } } } } } } stats { views } } } } }" }).to_string())
            .send()
            .await
    });
    // Give the request time to be accepted, then stop the server under it.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let base = app.base.clone();
    app.cleanup().await;
    let resp = in_flight
        .await
        .expect("task")
        .expect("the in-flight request is answered");
    assert_eq!(resp.status(), 200);
    // And new connections are refused.
    assert!(reqwest::get(format!("{base}/health")).await.is_err());
}

/// HTTP/2 over cleartext (prior knowledge, as a proxy speaking h2c to the server would) on the
/// same port as HTTP/1.1, for queries and mutations alike.
#[tokio::test]
async fn the_same_port_speaks_http2_with_prior_knowledge() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let r = h2
        .post(format!("{}/graphql", app.base))
        .header("content-type", "application/json")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .expect("an HTTP/2 answer");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(body["data"]["__typename"], "Query");
    let one = reqwest::get(format!("{}/health", app.base))
        .await
        .expect("HTTP/1.1");
    assert_eq!(one.version(), reqwest::Version::HTTP_11);
}

/// Responses are compressed as the client asks: brotli, zstd or gzip.
#[tokio::test]
async fn responses_are_compressed_with_brotli_zstd_or_gzip() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(40, 5, 5).await;
    let body =
        r#"{"query":"{ properties(first: 40) { edges { node { id title description } } } }"}"#;
    let send = |encoding: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/graphql", app.base))
            .header("content-type", "application/json")
            .header("accept-encoding", encoding)
            .body(body)
            .send()
    };
    let plain = send("identity")
        .await
        .expect("plain")
        .bytes()
        .await
        .unwrap_or_default();
    for encoding in ["br", "zstd", "gzip"] {
        let r = send(encoding).await.expect("compressed");
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok()),
            Some(encoding)
        );
        let squeezed = r.bytes().await.unwrap_or_default();
        assert!(
            squeezed.len() * 2 < plain.len(),
            "{encoding}: {} of {}",
            squeezed.len(),
            plain.len()
        );
    }
}

/// graphql-http's server audits (the GraphQL over HTTP spec's compliance suite, run by its own
/// npm package against the real server): every one passes, none warns.
#[tokio::test]
async fn the_graphql_over_http_audit_passes_without_warnings() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let results = crate::helpers::apollo_script("audit.mjs", format!("{}/graphql", app.base)).await;
    let results = results.as_array().cloned().unwrap_or_default();
    assert!(results.len() > 30, "the audits ran: {results:?}");
    let failed: Vec<&Value> = results.iter().filter(|r| r["status"] != "ok").collect();
    assert!(failed.is_empty(), "{failed:#?}");
    app.cleanup().await;
}

/// A kept-alive connection that goes quiet is closed after `server.idle_timeout_ms`, and beyond
/// `server.max_connections` a new connection is closed as it arrives while the open ones keep
/// working.
#[tokio::test]
async fn idle_connections_are_closed_and_connections_are_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("server.max_connections", "2"),
            ("server.request_timeout_ms", "500"),
            ("server.idle_timeout_ms", "1500"),
        ],
    )
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    // Sends one request and reads its answer; the connection stays open (keep-alive).
    let open = || async {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).await.expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        s
    };
    let mut a = open().await;
    let _b = open().await;
    // The third is closed before anything is read.
    let mut c = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let _ = c.write_all(request.as_bytes()).await;
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(2), c.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "over max_connections: {closed:?}"
    );
    // The open ones still answer.
    a.write_all(request.as_bytes()).await.expect("write");
    let n = a.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Quiet for longer than idle_timeout_ms: the server closes it.
    let eof = tokio::time::timeout(std::time::Duration::from_secs(5), a.read(&mut buf)).await;
    assert!(matches!(eof, Ok(Ok(0)) | Ok(Err(_))), "{eof:?}");
    app.cleanup().await;
}

/// A kept-alive connection older than `server.max_connection_age_secs` (±10%) is closed once
/// it has answered, even while the client keeps using it: clients reconnect, and a balancer can
/// move them to new instances. A request in flight at that moment is answered first.
#[tokio::test]
async fn connections_older_than_their_age_are_closed_after_answering() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(Db::Sqlite, &[("server.max_connection_age_secs", "1")]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let started = std::time::Instant::now();
    let mut answered = 0;
    let mut buf = [0u8; 4096];
    // One request every 100 ms (never idle): answered until the connection is closed.
    let closed = loop {
        if s.write_all(request.as_bytes()).await.is_err() {
            break started.elapsed();
        }
        match tokio::time::timeout(std::time::Duration::from_secs(3), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
                answered += 1;
            }
            _ => break started.elapsed(),
        }
        assert!(
            started.elapsed().as_secs() < 5,
            "the connection was never closed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(answered >= 5, "answered until its age: {answered}");
    assert!(
        closed >= std::time::Duration::from_millis(900),
        "closed at {closed:?}"
    );
    // A new connection is served as usual.
    let mut t = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    t.write_all(request.as_bytes()).await.expect("write");
    let n = t.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    app.cleanup().await;
}

/// A rolling restart's stop: the instance fails `/ready` at once (so balancers stop sending),
/// keeps answering for `server.drain_secs` with `Connection: close` (kept-alive clients
/// reconnect elsewhere), then closes its listener.
#[tokio::test]
async fn a_stopping_instance_drains_before_it_closes() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(5, 5, 0).await;
    let b = app.peer(&[("server.drain_secs", "2")]).await;
    let base = b.base.clone();
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{base}/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200);
    let stopping = tokio::spawn(b.shutdown());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ready = client
        .get(format!("{base}/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "draining");
    let answer = client
        .post(format!("{base}/graphql"))
        .json(&serde_json::json!({ "query": "{ properties(first: 1) { totalCount } }" }))
        .send()
        .await
        .expect("still served");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close")
    );
    let health = client
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    stopping.await.expect("stopped");
    assert!(
        client.get(format!("{base}/health")).send().await.is_err(),
        "the listener is closed"
    );
    app.cleanup().await;
}

/// GraphiQL's own introspection query (graphql-js's, with GraphiQL's options) passes every
/// limit, introspection's list-nesting cap included, and builds a client schema.
#[tokio::test]
async fn graphiqls_introspection_query_fits_the_limits() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let r =
        crate::helpers::apollo_script("introspection.mjs", format!("{}/graphql", app.base)).await;
    assert_eq!(r["status"], 200, "{r}");
    assert!(r["errors"].is_null(), "{r}");
    assert!(r["types"].as_u64().is_some_and(|n| n > 20), "{r}");
    // Priced by walking the introspection types: more than a flat price, within an anonymous
    // caller's budget, and close to what came back (the refund settles the rest).
    let (requested, actual) = (
        r["cost"]["requestedQueryCost"].as_u64().unwrap_or(0),
        r["cost"]["actualQueryCost"].as_u64().unwrap_or(0),
    );
    assert!(requested > 20 && requested <= 2000, "{r}");
    assert!(actual > 10 && actual <= requested * 2, "{r}");
    // Lists nested to multiply each other cost what they multiply.
    let nested =
        "{ __type(name: \"Node\") { possibleTypes { interfaces { possibleTypes { name } } } } }";
    let flat = "{ __type(name: \"Node\") { possibleTypes { name } } }";
    let cost = |q: &'static str| {
        let app = &app;
        async move {
            let (_, body) = app.gql(q, serde_json::json!({}), None).await;
            body["extensions"]["cost"]["requestedQueryCost"]
                .as_u64()
                .unwrap_or(0)
        }
    };
    let (nested, flat) = (cost(nested).await, cost(flat).await);
    assert!(nested > flat, "{nested} > {flat}");
    app.cleanup().await;
}
