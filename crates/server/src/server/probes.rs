use crate::server::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Alive: the process answers. Says nothing about its dependencies.
pub(super) async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// How long one round of readiness checks answers every probe: a balancer probing each
/// instance every second, or anyone hitting `/ready` in a loop, costs the database one ping a
/// second at most, and concurrent probes wait for the one check.
const READY_CHECKS_KEPT: Duration = Duration::from_secs(1);

/// Ready to serve: the database answers and, when configured, Redis does too. The body says
/// which check failed but never why: error text can carry hosts and user names. The cause goes
/// to the log.
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "draining" })),
        )
            .into_response();
    }
    let (database, redis) = {
        let mut last = state.ready.lock().await;
        match *last {
            Some((at, database, redis)) if at.elapsed() < READY_CHECKS_KEPT => (database, redis),
            _ => {
                let checked = check(&state).await;
                *last = Some((std::time::Instant::now(), checked.0, checked.1));
                checked
            }
        }
    };
    let ok = database == "ok" && (redis == "ok" || state.redis.is_none());
    answer(&state, ok, database, redis)
}

fn answer(state: &AppState, ok: bool, database: &str, redis: &str) -> Response {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "status": if ok { "ready" } else { "unavailable" },
            "checks": { "database": database, "redis": redis },
            // Read replicas are not a readiness condition: without them reads go to the primary.
            "replicas": state.store.replicas().into_iter().map(|(name, in_use, lag_ms)| {
                serde_json::json!({ "name": name, "in_use": in_use, "lag_ms": lag_ms })
            }).collect::<Vec<_>>(),
            // What answers `recommendations`: the model, or the baseline the gate chose.
            "recommender": match state.recommender.gate() {
                Some(g) => g.describe(state.recommender.model_version()),
                None => serde_json::json!({ "model": null, "serving": "popularity (ml.enabled = false)" }),
            },
        })),
    )
        .into_response()
}

/// Pings the database and Redis: each check's outcome.
async fn check(state: &AppState) -> (&'static str, &'static str) {
    let timeout = Duration::from_millis(state.settings.redis.connect_timeout_ms.max(100));
    let database = match tokio::time::timeout(timeout, state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            "error"
        }
        Err(_) => {
            tracing::warn!("readiness: database check timed out");
            "timeout"
        }
    };
    let redis = match &state.redis {
        None => "not configured",
        Some(store) => match tokio::time::timeout(timeout, ping_redis(store)).await {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: Redis check failed");
                "error"
            }
            Err(_) => {
                tracing::warn!("readiness: Redis check timed out");
                "timeout"
            }
        },
    };
    (database, redis)
}

async fn ping_redis(store: &crate::infra::redis::RedisStore) -> redis::RedisResult<()> {
    let mut conn = store.connection();
    let _: String = redis::cmd("PING").query_async(&mut conn).await?;
    Ok(())
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let mut resp = state.metrics.render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
