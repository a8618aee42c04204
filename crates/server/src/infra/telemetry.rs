//! Logging and metrics. Each `AppState` owns its own Prometheus registry (not the process-global
//! one) so that several servers in one process, as in the integration tests, report separately.
//! Instruments are OpenTelemetry ones exported through opentelemetry-prometheus; the database
//! hook below is the single place every SQL statement is counted and timed.
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};
use serde::Deserialize;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// At most one log line per interval for an event that can happen on every request under
/// overload (timeouts, slow operations, refused connections, Redis failures): a line per
/// request would then add disk and CPU load exactly when there is none to spare. The lines held
/// back are counted, and the next line says how many.
pub(crate) struct LogGate {
    every_secs: u64,
    last: std::sync::atomic::AtomicU64,
    held: std::sync::atomic::AtomicU64,
}

impl LogGate {
    pub(crate) const fn new(every_secs: u64) -> Self {
        Self {
            every_secs,
            last: std::sync::atomic::AtomicU64::new(0),
            held: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` when this event may be logged.
    pub(crate) fn admit(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last.load(Relaxed);
        if (last == 0 || now >= last + self.every_secs)
            && self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.held.swap(0, Relaxed));
        }
        self.held.fetch_add(1, Relaxed);
        None
    }
}

/// Keeps trace export running; dropping it flushes the spans not yet sent.
#[derive(Default)]
pub struct TracingGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global tracing subscriber (logs, and with `telemetry.otlp_endpoint` OTLP trace
/// export); a second call (tests) keeps the first.
pub fn init_tracing(settings: &TelemetrySettings) -> TracingGuard {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match settings.log_format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Pretty => fmt.boxed(),
    };
    let mut guard = TracingGuard::default();
    let otel = match otlp_layer(settings) {
        Ok(Some((layer, provider))) => {
            guard.provider = Some(provider);
            Some(layer)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("OTLP trace export is off: {e}");
            None
        }
    };
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
    guard
}

/// Makes a request's span a child of the caller's span when the request carries a W3C
/// `traceparent` (and `tracestate`), so exported traces join the caller's; the trace id is
/// recorded on the span too, for logs. A missing or malformed header starts a new trace.
pub fn join_callers_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&opentelemetry_http::HeaderExtractor(headers));
    let remote = parent.span().span_context().clone();
    if !remote.is_valid() {
        return;
    }
    span.record("trace_id", remote.trace_id().to_string());
    // Without trace export there is no OpenTelemetry layer to take the parent: nothing to do.
    let _ = span.set_parent(parent);
}

/// The tracing layer that exports spans, and the provider whose shutdown flushes them.
pub type OtlpParts<S> = (
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>,
    opentelemetry_sdk::trace::SdkTracerProvider,
);

/// Spans to an OTLP/HTTP collector, batched on the SDK's own thread.
pub fn otlp_layer<S>(settings: &TelemetrySettings) -> Result<Option<OtlpParts<S>>, String>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    let endpoint = settings.otlp_endpoint.trim().trim_end_matches('/');
    if endpoint.is_empty() {
        return Ok(None);
    }
    super::install_crypto_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()
        .map_err(|e| e.to_string())?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("rentgraph");
    Ok(Some((
        tracing_opentelemetry::layer().with_tracer(tracer),
        provider,
    )))
}

#[derive(Debug, thiserror::Error)]
#[error("metrics setup failed: {0}")]
pub struct MetricsError(String);

pub struct Metrics {
    registry: prometheus::Registry,
    provider: SdkMeterProvider,
    db_statements: Counter<u64>,
    db_duration: Histogram<f64>,
    http_requests: Counter<u64>,
    http_duration: Histogram<f64>,
    graphql_operations: Counter<u64>,
    graphql_duration: Histogram<f64>,
    graphql_errors: Counter<u64>,
    dataloader_loads: Counter<u64>,
    dataloader_keys: Histogram<u64>,
    cache_requests: Counter<u64>,
    invalidations: Counter<u64>,
    fallbacks: Counter<u64>,
}

/// How an operation ended, for `rentgraph_graphql_operations_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ran without errors.
    Ok,
    /// Ran, with errors in the response.
    Error,
    /// Refused before it ran (parse, validation, a limit, cost, persisted rules).
    Rejected,
    /// Refused because the client's bucket was empty.
    Throttled,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Rejected => "rejected",
            Outcome::Throttled => "throttled",
        }
    }
}

/// Set on a response by the GraphQL handler; the HTTP middleware records it with the
/// request's duration.
#[derive(Debug, Clone)]
pub struct OperationRecord {
    /// A bounded label: a trusted document's name, else `other`.
    pub name: String,
    /// query, mutation, subscription or unknown (refused before the type was known).
    pub kind: &'static str,
    pub outcome: Outcome,
}

/// The records of a batch's operations (a batch is one HTTP request, many operations).
#[derive(Debug, Clone)]
pub struct OperationRecords(pub Vec<OperationRecord>);

/// The `extensions.code`s of a response's errors, set on the response for the middleware.
#[derive(Debug, Clone, Default)]
pub struct ErrorCodes(pub Vec<String>);

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()
            .map_err(|e| MetricsError(e.to_string()))?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter("rentgraph");
        Ok(Self {
            db_statements: meter
                .u64_counter("rentgraph_db_queries")
                .with_description("SQL statements executed, by outcome")
                .build(),
            db_duration: meter
                .f64_histogram("rentgraph_db_query_duration")
                .with_unit("s")
                .with_description("SQL statement duration")
                .with_boundaries(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .build(),
            http_requests: meter
                .u64_counter("rentgraph_http_requests")
                .with_description("HTTP requests, by route and status")
                .build(),
            http_duration: meter
                .f64_histogram("rentgraph_http_request_duration")
                .with_unit("s")
                .with_description("HTTP request duration, by route")
                .with_boundaries(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .build(),
            graphql_operations: meter
                .u64_counter("rentgraph_graphql_operations")
                .with_description(
                    "GraphQL operations by name (trusted documents; others share `other`), type \
                     and outcome (ok, error, rejected, throttled)",
                )
                .build(),
            graphql_duration: meter
                .f64_histogram("rentgraph_graphql_operation_duration")
                .with_unit("s")
                .with_description("GraphQL operation duration, by name and type")
                .with_boundaries(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .build(),
            graphql_errors: meter
                .u64_counter("rentgraph_graphql_errors")
                .with_description("Errors in responses, by extensions.code")
                .build(),
            dataloader_loads: meter
                .u64_counter("rentgraph_dataloader_batches")
                .with_description("Dataloader batches (one statement or model submission each), by loader")
                .build(),
            dataloader_keys: meter
                .u64_histogram("rentgraph_dataloader_batch_keys")
                .with_description("Keys per dataloader batch, by loader")
                .with_boundaries(vec![
                    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
                ])
                .build(),
            cache_requests: meter
                .u64_counter("rentgraph_cache_requests")
                .with_description("Cache lookups by level (l1, l2), kind and result (hit, miss, error)")
                .build(),
            invalidations: meter
                .u64_counter("rentgraph_cache_invalidations")
                .with_description("Cache invalidations published (sent) and applied from other instances (received)")
                .build(),
            fallbacks: meter
                .u64_counter("rentgraph_recommendation_fallbacks")
                .with_description("Recommendations ranked by popularity because the model could not answer, by reason")
                .build(),
            registry,
            provider,
        })
    }

    /// One SQL statement on `pool` (`primary`, `anonymous`, `replica-N`).
    pub fn record_db_statement(&self, pool: &'static str, elapsed: Duration, failed: bool) {
        let outcome = KeyValue::new("outcome", if failed { "error" } else { "ok" });
        self.db_statements
            .add(1, &[outcome.clone(), KeyValue::new("pool", pool)]);
        self.db_duration.record(elapsed.as_secs_f64(), &[outcome]);
    }

    pub fn record_http(&self, route: &str, status: u16, elapsed: Duration) {
        self.http_requests.add(
            1,
            &[
                KeyValue::new("route", route.to_owned()),
                KeyValue::new("status", i64::from(status)),
            ],
        );
        self.http_duration.record(
            elapsed.as_secs_f64(),
            &[KeyValue::new("route", route.to_owned())],
        );
    }

    pub fn record_operation(&self, op: &OperationRecord, elapsed: Duration) {
        let labels = [
            KeyValue::new("operation", op.name.clone()),
            KeyValue::new("type", op.kind),
        ];
        self.graphql_operations.add(
            1,
            &[
                labels[0].clone(),
                labels[1].clone(),
                KeyValue::new("outcome", op.outcome.as_str()),
            ],
        );
        self.graphql_duration.record(elapsed.as_secs_f64(), &labels);
    }

    pub fn record_error_code(&self, code: &str) {
        self.graphql_errors
            .add(1, &[KeyValue::new("code", code.to_owned())]);
    }

    pub fn record_load(&self, loader: &'static str, keys: usize) {
        let label = [KeyValue::new("loader", loader)];
        self.dataloader_loads.add(1, &label);
        self.dataloader_keys.record(keys as u64, &label);
    }

    pub fn record_cache(
        &self,
        level: &'static str,
        kind: &'static str,
        result: &'static str,
        n: u64,
    ) {
        if n > 0 {
            self.cache_requests.add(
                n,
                &[
                    KeyValue::new("level", level),
                    KeyValue::new("kind", kind),
                    KeyValue::new("result", result),
                ],
            );
        }
    }

    pub fn record_invalidation(&self, direction: &'static str) {
        self.invalidations
            .add(1, &[KeyValue::new("direction", direction)]);
    }

    pub fn record_fallback(&self, reason: &'static str) {
        self.fallbacks.add(1, &[KeyValue::new("reason", reason)]);
    }

    /// `rentgraph_build_info{version, model_version} 1`, and the process's resident memory and
    /// CPU time, read from /proc when scraped.
    pub fn register_process_and_build_info(&self, model_version: Option<&str>) {
        let meter = self.meter();
        let build = [
            KeyValue::new("version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("model_version", model_version.unwrap_or("none").to_owned()),
        ];
        meter
            .u64_observable_gauge("rentgraph_build_info")
            .with_description("Always 1; the labels say which build and model are serving")
            .with_callback(move |o| o.observe(1, &build))
            .build();
        meter
            .u64_observable_gauge("process_resident_memory")
            .with_unit("By")
            .with_description("Resident memory of the process")
            .with_callback(|o| {
                if let Some(bytes) = resident_bytes() {
                    o.observe(bytes, &[]);
                }
            })
            .build();
        meter
            .f64_observable_counter("process_cpu")
            .with_unit("s")
            .with_description("CPU time (user and system) the process has used")
            .with_callback(|o| {
                if let Some(secs) = cpu_seconds() {
                    o.observe(secs, &[]);
                }
            })
            .build();
    }

    /// A meter whose instruments this registry exports (the batcher's, for one).
    pub fn meter(&self) -> opentelemetry::metrics::Meter {
        self.provider.meter("rentgraph")
    }

    /// The Prometheus text exposition of everything recorded so far.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// VmRSS from /proc/self/status (Linux), in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// utime + stime from /proc/self/stat, in seconds (Linux reports them in USER_HZ = 100 ticks).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, which may itself contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

impl Drop for Metrics {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Operations slower than this are logged with name, type and duration (0: never).
    pub slow_operation_ms: u64,
    /// Serve /metrics on this address instead of the public port (empty: the public port).
    pub metrics_address: String,
    /// An OTLP/HTTP collector's base URL for trace export (empty: off).
    pub otlp_endpoint: String,
    /// `service.name` of exported traces.
    pub service_name: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_gate_lets_one_line_through_per_interval_and_counts_the_rest() {
        let gate = LogGate::new(3600);
        assert_eq!(gate.admit(), Some(0));
        assert_eq!(gate.admit(), None);
        assert_eq!(gate.admit(), None);
        assert_eq!(gate.held.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
