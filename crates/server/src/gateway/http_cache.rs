//! HTTP caching of GraphQL answers (`[server.http_cache]`), so a browser or a CDN in front of
//! `GET /graphql?documentId=…` can keep public listing pages.
//!
//! The policy starts from async-graphql's `cacheControl` hints, merged over every field the
//! document selects (the smallest `maxAge`, private if any field is): types and fields carry
//! them in `graphql::`. A hint of 0 (none) does not constrain async-graphql's merge, so a query
//! whose hints sum to no `maxAge` is `no-store`, and every root field is hinted (a test holds
//! each to its declared policy). On top of the hints:
//! - only a query answered without errors is cacheable; a mutation or an error is `no-store`;
//! - an anonymous caller gets `public` (every anonymous caller sees the same answer); a signed-in
//!   one `private` (the answer may depend on who asks: owners see their inactive listings);
//! - `maxAge` is capped by `server.http_cache.max_age_cap_secs`.
//!
//! A cacheable GET answer carries a strong `ETag` (a hash of its body); `If-None-Match` with it
//! is answered 304 with no body. Its per-client `extensions.cost` moves to headers
//! (`X-Query-Cost`, `RateLimit-Policy` and `RateLimit`), so the body, and the ETag, are the same
//! for every caller. `Vary: Accept, Authorization` keeps media types and callers apart.
use crate::auth::Principal;
use crate::config::HttpCacheSettings;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// `X-Query-Cost: requested=N, actual=M`.
pub(crate) const QUERY_COST: &str = "x-query-cost";
/// IETF `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
pub(crate) const RATELIMIT_POLICY: &str = "ratelimit-policy";
pub(crate) const RATELIMIT: &str = "ratelimit";

/// What an answer may be cached as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    NoStore,
    Public { max_age: u32 },
    Private { max_age: u32 },
}

impl Policy {
    pub(crate) fn header(self) -> HeaderValue {
        match self {
            Self::NoStore => HeaderValue::from_static("no-store"),
            Self::Public { max_age } => header_value(&format!("public, max-age={max_age}")),
            Self::Private { max_age } => header_value(&format!("private, max-age={max_age}")),
        }
    }

    pub(crate) fn cacheable(self) -> bool {
        !matches!(self, Self::NoStore)
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("no-store"))
}

/// What the policy is decided from.
pub(crate) struct Answer<'a> {
    pub(crate) hints: async_graphql::CacheControl,
    pub(crate) kind: &'static str,
    pub(crate) failed: bool,
    pub(crate) principal: &'a Principal,
}

pub(crate) struct HttpCache {
    enabled: bool,
    cap: u32,
}

impl HttpCache {
    pub(crate) fn new(settings: &HttpCacheSettings) -> Self {
        Self {
            enabled: settings.enabled,
            cap: settings.max_age_cap_secs,
        }
    }

    pub(crate) fn policy(&self, answer: &Answer<'_>) -> Policy {
        let max_age = u32::try_from(answer.hints.max_age)
            .unwrap_or(0)
            .min(self.cap);
        if !self.enabled || answer.kind != "query" || answer.failed || max_age == 0 {
            return Policy::NoStore;
        }
        if answer.hints.public && matches!(answer.principal, Principal::Anonymous) {
            Policy::Public { max_age }
        } else {
            Policy::Private { max_age }
        }
    }
}

/// The cost block as headers, for a cacheable GET answer.
pub(crate) fn cost_headers(cost: &serde_json::Value) -> Vec<(HeaderName, HeaderValue)> {
    let n = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let t = &cost["throttleStatus"];
    let (capacity, available, rate) = (
        n(&t["maximumAvailable"]),
        n(&t["currentlyAvailable"]),
        n(&t["restoreRate"]),
    );
    // Seconds until the bucket is full again, and for the whole of it to refill.
    let refill = |points: f64| {
        if rate > 0.0 {
            (points / rate).ceil() as u64
        } else {
            0
        }
    };
    vec![
        (
            HeaderName::from_static(QUERY_COST),
            header_value(&format!(
                "requested={}, actual={}",
                n(&cost["requestedQueryCost"]),
                n(&cost["actualQueryCost"])
            )),
        ),
        (
            HeaderName::from_static(RATELIMIT_POLICY),
            header_value(&format!(
                "\"cost\";q={};w={}",
                capacity as u64,
                refill(capacity)
            )),
        ),
        (
            HeaderName::from_static(RATELIMIT),
            header_value(&format!(
                "\"cost\";r={};t={}",
                available.max(0.0) as u64,
                refill((capacity - available).max(0.0))
            )),
        ),
    ]
}

/// A strong entity tag for a body: quoted hex of its SHA-256, shortened (128 bits).
pub(crate) fn etag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    header_value(&format!("\"{hex}\""))
}

/// Whether `If-None-Match` names this tag (RFC 9110: weak comparison, `*` matches any).
pub(crate) fn matches(request: &HeaderMap, tag: &HeaderValue) -> bool {
    let Ok(tag) = tag.to_str() else {
        return false;
    };
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

/// Stamps the policy on a GraphQL answer; a GET answer whose ETag (set by `response` when
/// the policy allows caching) the request names becomes a 304.
pub(crate) fn finish(
    mut resp: Response,
    policy: Policy,
    via_get: bool,
    request: &HeaderMap,
) -> Response {
    let vary = HeaderValue::from_static("accept, authorization");
    let tag = resp.headers().get(header::ETAG).cloned();
    if let Some(tag) = tag.filter(|t| via_get && policy.cacheable() && matches(request, t)) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        let headers = not_modified.headers_mut();
        for (name, value) in resp.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                headers.append(name, value.clone());
            }
        }
        headers.insert(header::ETAG, tag);
        headers.insert(header::CACHE_CONTROL, policy.header());
        headers.append(header::VARY, vary);
        *not_modified.extensions_mut() = std::mem::take(resp.extensions_mut());
        return not_modified;
    }
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, policy.header());
    if via_get {
        headers.append(header::VARY, vary);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::CacheControl;

    fn cache(cap: u32) -> HttpCache {
        HttpCache { enabled: true, cap }
    }

    fn answer<'a>(public: bool, max_age: i32, principal: &'a Principal) -> Answer<'a> {
        Answer {
            hints: CacheControl { public, max_age },
            kind: "query",
            failed: false,
            principal,
        }
    }

    #[test]
    fn anonymous_public_hints_are_public_signed_in_ones_private() {
        let anon = Principal::Anonymous;
        let user = Principal::User {
            id: uuid::Uuid::nil(),
            role: entity::Role::User,
        };
        let c = cache(300);
        assert_eq!(
            c.policy(&answer(true, 60, &anon)),
            Policy::Public { max_age: 60 }
        );
        assert_eq!(
            c.policy(&answer(true, 60, &user)),
            Policy::Private { max_age: 60 }
        );
        assert_eq!(
            c.policy(&answer(false, 60, &anon)),
            Policy::Private { max_age: 60 }
        );
    }

    #[test]
    fn no_hint_no_cache_errors_mutations_and_a_zero_cap_are_no_store() {
        let anon = Principal::Anonymous;
        let c = cache(300);
        assert_eq!(c.policy(&answer(true, 0, &anon)), Policy::NoStore);
        assert_eq!(c.policy(&answer(true, -1, &anon)), Policy::NoStore);
        let mut failed = answer(true, 60, &anon);
        failed.failed = true;
        assert_eq!(c.policy(&failed), Policy::NoStore);
        let mut mutation = answer(true, 60, &anon);
        mutation.kind = "mutation";
        assert_eq!(c.policy(&mutation), Policy::NoStore);
        assert_eq!(cache(0).policy(&answer(true, 60, &anon)), Policy::NoStore);
        assert_eq!(
            cache(30).policy(&answer(true, 60, &anon)),
            Policy::Public { max_age: 30 }
        );
    }

    #[test]
    fn if_none_match_compares_weakly_and_lists() {
        let tag = etag(b"{\"data\":{}}");
        let mut h = HeaderMap::new();
        assert!(!matches(&h, &tag));
        let listed = format!("\"other\", W/{}", tag.to_str().unwrap_or_default());
        h.insert(header::IF_NONE_MATCH, header_value(&listed));
        assert!(matches(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches(&h, &tag));
        assert_ne!(etag(b"a"), etag(b"b"));
    }

    #[test]
    fn the_cost_block_becomes_ratelimit_headers() {
        let cost = serde_json::json!({
            "requestedQueryCost": 12, "actualQueryCost": 7,
            "throttleStatus": { "maximumAvailable": 1000.0, "currentlyAvailable": 900.0,
                                "restoreRate": 50.0 }
        });
        let headers = cost_headers(&cost);
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .and_then(|(_, v)| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(get(QUERY_COST).as_deref(), Some("requested=12, actual=7"));
        assert_eq!(
            get(RATELIMIT_POLICY).as_deref(),
            Some("\"cost\";q=1000;w=20")
        );
        assert_eq!(get(RATELIMIT).as_deref(), Some("\"cost\";r=900;t=2"));
    }
}
