//! HTTP edge: GraphQL over HTTP (POST JSON and GET for queries, per the GraphQL-over-HTTP
//! spec), GraphiQL for browsers, health, readiness and metrics, and the middleware every
//! request passes through (timeout, metrics, compression). Errors produced here are GraphQL
//! shaped too (`{"errors":[{"message", "extensions":{"code"}}]}`) so clients parse one format.
mod graphql;
mod probes;

use crate::app::AppState;
use crate::graphql::errors::code;
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
    Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/health", get(probes::health))
        .route("/ready", get(probes::ready))
        .route("/metrics", get(probes::metrics))
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            timeout_and_metrics,
        ))
        .layer(CompressionLayer::new())
        .with_state(state)
}

/// A GraphQL-shaped error response.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
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
    let span = tracing::info_span!("request", request_id = %id.0, route = %route);
    let started = Instant::now();
    let limit = state.settings.server.request_timeout();
    let mut resp = match tokio::time::timeout(limit, next.run(req).instrument(span.clone())).await {
        Ok(resp) => resp,
        Err(_) => {
            span.in_scope(|| {
                tracing::warn!(timeout_ms = limit.as_millis() as u64, "request timed out")
            });
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                code::REQUEST_TIMEOUT,
                "the request took too long and was cancelled",
            )
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    state
        .metrics
        .record_http(&route, resp.status().as_u16(), started.elapsed());
    resp
}
