//! Cross-origin requests from browsers (`[server.cors]`), through tower-http's `CorsLayer`:
//! a page on an allowed origin may call the API with `Authorization` and JSON bodies; any
//! other origin gets no CORS headers, so the browser keeps the answer from it. The layer is
//! the outermost one, so a preflight is answered before limits, auth or the request timeout.
//! Only the origin matching is ours: exact origins and `scheme://*.domain[:port]` patterns.
use crate::config::{CorsSettings, OriginRule};
use axum::http::{HeaderName, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The layer for these settings, or `None` when no origin is allowed (no CORS headers at all).
pub(super) fn layer(settings: &CorsSettings) -> Option<CorsLayer> {
    if settings.allowed_origins.is_empty() {
        return None;
    }
    // `Settings::load` has checked every rule and header name already.
    let rules: Vec<OriginRule> = settings
        .allowed_origins
        .iter()
        .filter_map(|o| OriginRule::parse(o).ok())
        .collect();
    let headers: Vec<HeaderName> = settings
        .allowed_headers
        .iter()
        .filter_map(|h| HeaderName::try_from(h.as_str()).ok())
        .collect();
    let allow = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        origin
            .to_str()
            .is_ok_and(|o| rules.iter().any(|r| r.allows(o)))
    });
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers(headers)
            .expose_headers([
                HeaderName::from_static(super::router::REQUEST_ID_HEADER),
                axum::http::header::RETRY_AFTER,
                axum::http::header::ETAG,
                HeaderName::from_static(crate::gateway::QUERY_COST),
                HeaderName::from_static(crate::gateway::RATELIMIT_POLICY),
                HeaderName::from_static(crate::gateway::RATELIMIT),
            ])
            .allow_credentials(settings.allow_credentials)
            .max_age(Duration::from_secs(settings.max_age_secs)),
    )
}
