//! Logging and metrics. Each `AppState` owns its own Prometheus registry (not the process-global
//! one) so that several servers in one process, as in the integration tests, report separately.
//! Instruments are OpenTelemetry ones exported through opentelemetry-prometheus; the database
//! hook below is the single place every SQL statement is counted and timed.
use crate::config::{LogFormat, TelemetrySettings};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber; a second call (tests) keeps the first.
pub fn init_tracing(settings: &TelemetrySettings) {
    let filter =
        EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
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
}

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
                .with_description("GraphQL operations executed, by type and outcome")
                .build(),
            registry,
            provider,
        })
    }

    pub fn record_db_statement(&self, elapsed: Duration, failed: bool) {
        let outcome = [KeyValue::new(
            "outcome",
            if failed { "error" } else { "ok" },
        )];
        self.db_statements.add(1, &outcome);
        self.db_duration.record(elapsed.as_secs_f64(), &outcome);
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

    pub fn record_graphql(&self, operation: &'static str, ok: bool) {
        self.graphql_operations.add(
            1,
            &[
                KeyValue::new("operation", operation),
                KeyValue::new("outcome", if ok { "ok" } else { "error" }),
            ],
        );
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

impl Drop for Metrics {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}
