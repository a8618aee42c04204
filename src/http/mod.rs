//! HTTP edge: GraphQL over HTTP (POST JSON and GET for queries, per the GraphQL-over-HTTP
//! spec), GraphiQL for browsers, health, readiness and metrics, and the middleware every
//! request passes through (timeout, metrics, compression). Errors produced here are GraphQL
//! shaped too (`{"errors":[{"message", "extensions":{"code"}}]}`) so clients parse one format.
mod graphql;
mod probes;

use crate::app::AppState;
use crate::graphql::errors::code;
use crate::telemetry::{ErrorCodes, OperationRecord};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
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
        .with_state(state)
}

/// The router for `telemetry.metrics_address`: /metrics only.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(probes::metrics))
        .fallback(not_found)
        .with_state(state)
}

tokio::task_local! {
    /// The id of the request this task is serving (set by the middleware), so that every
    /// error built anywhere below carries it.
    pub static REQUEST_ID: RequestId;
}

/// The current request's id, if this runs inside a request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.0.clone()).ok()
}

/// A GraphQL-shaped error response, with the request id and the code recorded for metrics.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    error_response_with(
        status,
        "application/json",
        code,
        message,
        serde_json::Value::Null,
        None,
    )
}

/// `error_response` with more: extensions on the error (merged beside `code`), response-level
/// `extensions` (the cost block) and the negotiated media type.
pub fn error_response_with(
    status: StatusCode,
    content_type: &'static str,
    code: &str,
    message: &str,
    error_extensions: serde_json::Value,
    extensions: Option<serde_json::Value>,
) -> Response {
    let mut ext = serde_json::json!({ "code": code });
    if let Some(ext) = ext.as_object_mut() {
        if let serde_json::Value::Object(extra) = error_extensions {
            ext.extend(extra);
        }
        if let Some(id) = current_request_id() {
            ext.insert("requestId".into(), id.into());
        }
    }
    let mut body = serde_json::json!({ "errors": [{ "message": message, "extensions": ext }] });
    if let (Some(obj), Some(extensions)) = (body.as_object_mut(), extensions) {
        obj.insert("extensions".into(), extensions);
    }
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.extensions_mut()
        .insert(ErrorCodes(vec![code.to_owned()]));
    resp
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
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        code::INTERNAL,
        "internal error",
    )
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, code::NOT_FOUND, "no such endpoint")
}

/// The id that ties a response, its errors and its log lines together.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub const REQUEST_ID_HEADER: &str = "x-request-id";

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
    );
    let started = Instant::now();
    let limit = state.settings.server.request_timeout();
    let work = REQUEST_ID.scope(id.clone(), next.run(req).instrument(span.clone()));
    let mut resp = match tokio::time::timeout(limit, work).await {
        Ok(resp) => resp,
        Err(_) => {
            span.in_scope(|| {
                tracing::warn!(timeout_ms = limit.as_millis() as u64, "request timed out")
            });
            REQUEST_ID.sync_scope(id.clone(), || {
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::REQUEST_TIMEOUT,
                    "the request took too long and was cancelled",
                )
            })
        }
    };
    let elapsed = started.elapsed();
    if let Some(op) = resp.extensions().get::<OperationRecord>() {
        state.metrics.record_operation(op, elapsed);
        let slow = state.settings.telemetry.slow_operation_ms;
        if slow > 0 && elapsed.as_millis() >= u128::from(slow) {
            span.in_scope(|| {
                tracing::warn!(
                    operation = %op.name,
                    operation_type = op.kind,
                    duration_ms = elapsed.as_millis() as u64,
                    "slow operation"
                )
            });
        }
    }
    if let Some(codes) = resp.extensions().get::<ErrorCodes>() {
        for c in &codes.0 {
            state.metrics.record_error_code(c);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    state
        .metrics
        .record_http(&route, resp.status().as_u16(), elapsed);
    resp
}
