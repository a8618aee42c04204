//! The routes (GraphQL over HTTP, GraphiQL, health, readiness, metrics) and the middleware
//! every request passes through (request id, span, timeout, metrics, compression, panics).
//! Errors produced here are `gateway::Rejection`s too, so clients parse one format.
use super::AppState;
use super::{graphiql, graphql, probes};
use crate::error_code::ErrorCode;
use crate::gateway::{REQUEST_ID, Rejection, RequestId};
use crate::infra::telemetry::{ErrorCodes, OperationRecord, OperationRecords};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;

pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/health", get(probes::health))
        .route("/ready", get(probes::ready));
    if state.settings.server.graphiql {
        router = router.route("/graphql/assets/{name}", get(graphiql::asset));
    }
    // With a separate metrics address, the public port does not serve them.
    if state.settings.telemetry.metrics_address.trim().is_empty() {
        router = router.route("/metrics", get(probes::metrics));
    }
    router
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            timeout_and_metrics,
        ))
        .layer(CompressionLayer::new())
        .layer(tower::util::option_layer(super::cors::layer(
            &state.settings.server.cors,
        )))
        .with_state(state)
}

/// The router for `telemetry.metrics_address`: /metrics only.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(probes::metrics))
        .fallback(not_found)
        .with_state(state)
}

/// A bug that panicked in a handler still gets a GraphQL-shaped answer, and the connection and
/// the process live on.
fn panic_response(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("unknown");
    tracing::error!(panic = detail, "a request handler panicked");
    Rejection::http(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "internal error",
    )
    .into_response()
}

async fn not_found() -> Rejection {
    Rejection::http(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint",
    )
}

pub(super) const REQUEST_ID_HEADER: &str = "x-request-id";

/// A caller's `x-request-id` is kept when it is short and plain (so it cannot forge log lines or
/// blow up a log index); otherwise the server makes one.
fn request_id(req: &Request) -> RequestId {
    let given = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    RequestId(match given {
        Some(v) => v.to_owned(),
        None => uuid::Uuid::new_v4().simple().to_string(),
    })
}

/// Bounds every request by `server.request_timeout_ms`, gives it a request id and a span, and
/// records it. Dropping the handler's future on timeout cancels its database work too.
async fn timeout_and_metrics(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    use tracing::Instrument;
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let id = request_id(&req);
    req.extensions_mut().insert(id.clone());
    // Filled in by the GraphQL handler once it knows them; never variables or tokens.
    let span = tracing::info_span!(
        "request",
        request_id = %id.0,
        route = %route,
        operation_name = tracing::field::Empty,
        operation_type = tracing::field::Empty,
        principal = tracing::field::Empty,
        document_hash = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::infra::telemetry::join_callers_trace(&span, req.headers());
    let started = Instant::now();
    let http1 = req.version() <= axum::http::Version::HTTP_11;
    let limit = state.settings.server.request_timeout();
    let work = REQUEST_ID.scope(id.clone(), next.run(req).instrument(span.clone()));
    let mut resp = match tokio::time::timeout(limit, work).await {
        Ok(resp) => resp,
        Err(_) => {
            static TIMEOUTS: crate::infra::telemetry::LogGate =
                crate::infra::telemetry::LogGate::new(10);
            if let Some(held) = TIMEOUTS.admit() {
                span.in_scope(|| {
                    tracing::warn!(
                        timeout_ms = limit.as_millis() as u64,
                        more_since_last_line = held,
                        "request timed out"
                    )
                });
            }
            REQUEST_ID.sync_scope(id.clone(), || {
                Rejection::http(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::RequestTimeout,
                    "the request took too long and was cancelled",
                )
                .into_response()
            })
        }
    };
    let elapsed = started.elapsed();
    let one = resp.extensions().get::<OperationRecord>().cloned();
    let batch = resp.extensions().get::<OperationRecords>().cloned();
    for op in one.into_iter().chain(batch.into_iter().flat_map(|b| b.0)) {
        record_operation(&state, &span, &op, elapsed);
    }
    if let Some(codes) = resp.extensions().get::<ErrorCodes>() {
        for c in &codes.0 {
            state.metrics.record_error_code(c);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    // Draining: a kept-alive HTTP/1.1 client (or balancer) reconnects, to another instance.
    // (HTTP/2 has no such header; its connections get GOAWAY when the listener closes.)
    if http1 && state.is_draining() {
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    state
        .metrics
        .record_http(&route, resp.status().as_u16(), elapsed);
    resp
}

/// One operation in the metrics, and in the log when it was slow.
fn record_operation(
    state: &AppState,
    span: &tracing::Span,
    op: &OperationRecord,
    elapsed: std::time::Duration,
) {
    state.metrics.record_operation(op, elapsed);
    let slow = state.settings.telemetry.slow_operation_ms;
    static SLOW: crate::infra::telemetry::LogGate = crate::infra::telemetry::LogGate::new(10);
    if slow > 0
        && elapsed.as_millis() >= u128::from(slow)
        && let Some(held) = SLOW.admit()
    {
        span.in_scope(|| {
            tracing::warn!(
                operation = %op.name,
                operation_type = op.kind,
                duration_ms = elapsed.as_millis() as u64,
                more_since_last_line = held,
                "slow operation"
            )
        });
    }
}
