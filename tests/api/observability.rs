//! What an operator sees: counters that move by exactly what a known sequence of requests did,
//! bounded label values, request ids on responses and on the log lines of their request, one
//! log line per failed batch, slow operations logged, and /metrics on its own address.
use crate::helpers::{Db, TestApp, code, metric};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The values a label takes on a metric.
fn label_values(text: &str, name: &str, label: &str) -> std::collections::BTreeSet<String> {
    let needle = format!("{label}=\"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| {
            let start = l.find(&needle)? + needle.len();
            let end = l[start..].find('"')? + start;
            Some(l[start..end].to_owned())
        })
        .collect()
}

async fn metrics_text(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.expect("metrics")
}

#[tokio::test]
async fn a_known_sequence_moves_the_counters_it_should() {
    let app = TestApp::spawn(Db::Postgres).await;
    app.seed(20, 10, 50).await;
    let before = metrics_text(&app).await;
    // One success, one field error, one rejected, one trusted document, five unnamed-ish
    // operations with fresh names.
    app.data("query Fine { properties(first: 2) { totalCount edges { node { owner { displayName } } } } }", json!({}), None).await;
    let (_, b) = app
        .gql("{ properties(first: -1) { totalCount } }", json!({}), None)
        .await;
    assert_eq!(code(&b), "BAD_USER_INPUT");
    let deep = "{ properties(first: 1) { edges { node { owner { interactions(first: 1) { edges { node { property { owner { interactions(first: 1) { edges { node { property { title } } } } } } } } } } } } } }";
    let (_, b) = app.gql(deep, json!({}), None).await;
    assert_eq!(code(&b), "MAX_DEPTH_EXCEEDED");
    let doc = rentgraph::gateway::persisted::sha256_hex(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/persisted/partner-listings.json"
        ))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|m| m["operations"][0]["body"].as_str().map(str::to_owned))
        .expect("manifest"),
    );
    let resp = app
        .post_raw(
            json!({ "documentId": format!("sha256:{doc}"), "variables": { "city": "Berlin" } })
                .to_string(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(resp.status(), 200);
    for _ in 0..5 {
        let name = format!("Random{}", uuid::Uuid::new_v4().simple());
        app.data(&format!("query {name} {{ __typename }}"), json!({}), None)
            .await;
    }
    let after = metrics_text(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        metric(&after, name, labels) - metric(&before, name, labels)
    };
    let ops = "rentgraph_graphql_operations_total";
    assert_eq!(
        delta(
            ops,
            &[("operation", "other"), ("type", "query"), ("outcome", "ok")]
        ),
        6.0,
        "{after}"
    );
    assert_eq!(
        delta(ops, &[("operation", "other"), ("outcome", "error")]),
        1.0
    );
    assert_eq!(
        delta(
            ops,
            &[
                ("operation", "other"),
                ("type", "query"),
                ("outcome", "rejected")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(ops, &[("operation", "PartnerListings"), ("outcome", "ok")]),
        1.0
    );
    // Operation names from clients never become label values.
    assert_eq!(
        label_values(&after, ops, "operation"),
        ["PartnerListings".to_owned(), "other".to_owned()]
            .into_iter()
            .collect()
    );
    let errors = "rentgraph_graphql_errors_total";
    assert_eq!(delta(errors, &[("code", "BAD_USER_INPUT")]), 1.0);
    assert_eq!(delta(errors, &[("code", "MAX_DEPTH_EXCEEDED")]), 1.0);
    // Durations are recorded per operation too.
    assert!(
        delta(
            "rentgraph_graphql_operation_duration_seconds_count",
            &[("operation", "other")]
        ) >= 8.0
    );
    // The first query batched its owners: one batch for two listings.
    assert!(delta("rentgraph_dataloader_batches_total", &[("loader", "user")]) >= 1.0);
    assert!(
        metric(
            &after,
            "rentgraph_dataloader_batch_keys_count",
            &[("loader", "user")]
        ) >= 1.0
    );
    assert!(metric(&after, "process_resident_memory_bytes", &[]) > 1_000_000.0);
    assert!(metric(&after, "process_cpu_seconds_total", &[]) > 0.0);
    assert_eq!(
        metric(
            &after,
            "rentgraph_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    app.cleanup().await;
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Logs of this test's server, as JSON lines (the server runs on this test's thread).
fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn request_ids_are_echoed_and_on_the_log_lines_of_their_request() {
    use sea_orm::ConnectionTrait;
    let (logs, _guard) = capture_logs();
    // Only the operation made to wait below is slow: slow-operation lines come at most one per
    // 10 s, so a busy machine making an earlier request slow must not use up the line.
    let app = TestApp::spawn_with(Db::Postgres, &[("telemetry.slow_operation_ms", "1000")]).await;
    // Enough active listings for a page of 50 (listings leave the market in the data).
    app.seed(180, 10, 20).await;
    app.db_connection()
        .await
        .execute_unprepared("DROP TABLE property_images CASCADE")
        .await
        .expect("drop");
    let resp = app
        .post_raw(
            json!({ "query": "{ properties(first: 50) { edges { node { title images { url } } } } }" }).to_string(),
            &[("content-type", "application/json"), ("x-request-id", "obs-trace-1")],
        )
        .await;
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("obs-trace-1")
    );
    let body: Value = resp.json().await.expect("json");
    let errors = body["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 50, "every row's images failed");
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["requestId"] == "obs-trace-1")
    );
    // Fifty fields failed, from one failed batch: one error line, with the request id.
    let lines = logs.lines();
    let failures: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"level\":\"ERROR\"") && l.contains("obs-trace-1"))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(failures[0].contains("dataloader batch failed") && failures[0].contains("images"));
    // No variables or tokens in the request's span, but the document hash is.
    assert!(failures[0].contains("document_hash"), "{}", failures[0]);

    // Errors of every kind carry the id, even those raised before GraphQL runs.
    let resp = app
        .post_raw(
            "{".into(),
            &[
                ("content-type", "application/json"),
                ("x-request-id", "obs-trace-2"),
            ],
        )
        .await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["requestId"], "obs-trace-2");

    // A slow operation (it waits for a lock another client holds) is logged with its name.
    let other = app.db_connection().await;
    use sea_orm::TransactionTrait;
    let txn = other.begin().await.expect("begin");
    txn.execute_unprepared("LOCK TABLE properties IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
        txn.rollback().await.expect("unlock");
    });
    let resp = app
        .post_raw(
            json!({ "query": "query Waiting { properties(first: 1) { totalCount } }" }).to_string(),
            &[
                ("content-type", "application/json"),
                ("x-request-id", "obs-trace-3"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    release.await.expect("released");
    let slow: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|l| l.contains("slow operation") && l.contains("obs-trace-3"))
        .collect();
    assert_eq!(slow.len(), 1, "{slow:#?}");
    assert!(slow[0].contains("Waiting") && slow[0].contains("duration_ms"));
    app.cleanup().await;
}

#[tokio::test]
async fn metrics_can_have_an_address_of_their_own() {
    let app =
        TestApp::spawn_with(Db::Sqlite, &[("telemetry.metrics_address", "127.0.0.1:0")]).await;
    assert_eq!(
        app.get("/metrics").await.status(),
        404,
        "not on the public port"
    );
    let at = app.server().metrics_addr.expect("bound");
    let text = reqwest::get(format!("http://{at}/metrics"))
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    assert!(text.contains("rentgraph_build_info"), "{text}");
    app.cleanup().await;
}

/// A stand-in OTLP/HTTP collector on a random port that keeps what it is sent.
async fn collector() -> (Arc<Mutex<Vec<u8>>>, std::net::SocketAddr) {
    let received: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(&body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let at = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, collector).await });
    (received, at)
}

/// The OTLP layer and provider of the test settings, exporting to the collector at `at`.
fn exporter<S>(at: std::net::SocketAddr) -> rentgraph::infra::telemetry::OtlpParts<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let mut settings = rentgraph::config::Settings::load(rentgraph::config::Sources {
        env: Some("test".into()),
        ..Default::default()
    })
    .expect("settings")
    .telemetry;
    settings.otlp_endpoint = format!("http://{at}");
    rentgraph::infra::telemetry::otlp_layer(&settings)
        .expect("exporter")
        .expect("configured")
}

/// Everything the collector received once the provider has flushed its batch (shutting it down
/// flushes; it blocks, so not on a runtime thread).
async fn flushed<E: std::fmt::Debug + Send + 'static>(
    shutdown: impl FnOnce() -> Result<(), E> + Send + 'static,
    received: &Mutex<Vec<u8>>,
) -> Vec<u8> {
    tokio::task::spawn_blocking(shutdown)
        .await
        .expect("join")
        .expect("flushed");
    received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// With `telemetry.otlp_endpoint`, request spans reach an OTLP/HTTP collector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp() {
    use tracing_subscriber::layer::SubscriberExt;
    let (received, at) = collector().await;
    let (layer, provider) = exporter(at);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request", request_id = "otlp-trace-1");
        let _entered = span.enter();
        tracing::info_span!("dataloader", loader = "user").in_scope(|| {});
    });
    let bytes = flushed(move || provider.shutdown(), &received).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("otlp-trace-1") && text.contains("dataloader"),
        "{} bytes received",
        bytes.len()
    );
}

/// A caller's W3C `traceparent` makes the server's request span a child of the caller's span,
/// in the trace the caller started: the exported span carries the caller's trace id and has the
/// caller's span as its parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_traceparent_joins_the_request_span_to_its_trace() {
    use tracing_subscriber::layer::SubscriberExt;
    let (received, at) = collector().await;
    let (layer, provider) = exporter(at);
    // The server's spans run on the runtime's threads: the subscriber must be the process's
    // (each test is its own process under nextest, which scripts/test uses).
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("the only global subscriber of this process");
    let app = TestApp::spawn(Db::Sqlite).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let resp = app
        .post_raw(
            json!({ "query": "{ properties(first: 1) { totalCount } }" }).to_string(),
            &[
                ("content-type", "application/json"),
                ("traceparent", &format!("00-{trace_id}-{parent_id}-01")),
                ("tracestate", "vendor=opaque"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    // And one without: a trace of its own.
    let unrelated = app
        .post_raw(
            json!({ "query": "{ properties(first: 1) { totalCount } }" }).to_string(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(unrelated.status(), 200);
    app.cleanup().await;
    let bytes = flushed(move || provider.shutdown(), &received).await;
    // OTLP's protobuf holds ids as raw bytes: the caller's trace id, as the trace of a span,
    // and its span id, as that span's parent.
    let raw = |hex: &str| -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect()
    };
    let holds = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        bytes.windows(7).any(|w| w == b"request"),
        "{} bytes",
        bytes.len()
    );
    assert!(holds(&raw(trace_id)), "the caller's trace id was exported");
    assert!(holds(&raw(parent_id)), "the caller's span is the parent");
    assert!(holds(b"vendor=opaque"), "tracestate travels with the trace");
}
