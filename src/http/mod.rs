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

/// Bounds every request by `server.request_timeout_ms` and records it. Dropping the handler's
/// future on timeout cancels its database work too.
async fn timeout_and_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let limit = state.settings.server.request_timeout();
    let resp = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(
                route,
                timeout_ms = limit.as_millis() as u64,
                "request timed out"
            );
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                code::REQUEST_TIMEOUT,
                "the request took too long and was cancelled",
            )
        }
    };
    state
        .metrics
        .record_http(&route, resp.status().as_u16(), started.elapsed());
    resp
}
