//! A refused request as a value. Every stage returns `Result<_, Rejection>` and ends in `?`;
//! the pipeline turns a rejection into a response once, with the media type the client
//! negotiated (`Accept`). Every error body is GraphQL shaped
//! (`{"errors":[{"message", "extensions":{"code", "requestId"}}]}`) so clients parse one format.
use crate::error_code::ErrorCode;
use crate::infra::telemetry::ErrorCodes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(crate) const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
pub(crate) const JSON: &str = "application/json";

/// Which media type the client asked for; the spec's newer type changes status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    GraphqlResponse,
    Json,
}

impl Accept {
    /// The client's `Accept` header read once; `None` when it allows neither type.
    pub(crate) fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Some(Self::Json);
        };
        let types: Vec<&str> = accept
            .split(',')
            .map(|t| t.split(';').next().unwrap_or("").trim())
            .collect();
        if types.contains(&GRAPHQL_RESPONSE) {
            Some(Self::GraphqlResponse)
        } else if types
            .iter()
            .any(|t| *t == JSON || *t == "*/*" || *t == "application/*")
        {
            Some(Self::Json)
        } else {
            None
        }
    }

    pub(crate) fn media_type(self) -> &'static str {
        match self {
            Self::GraphqlResponse => GRAPHQL_RESPONSE,
            Self::Json => JSON,
        }
    }

    /// A GraphQL request error (nothing ran): GraphQL over HTTP wants 400 for
    /// `application/graphql-response+json` and 200 for `application/json`.
    pub(crate) fn request_error_status(self) -> StatusCode {
        match self {
            Self::GraphqlResponse => StatusCode::BAD_REQUEST,
            Self::Json => StatusCode::OK,
        }
    }
}

/// How a rejection's status and media type are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The HTTP request is not (yet) a GraphQL request: its own status, always
    /// `application/json` (the client may not have negotiated anything).
    Http(StatusCode),
    /// A GraphQL request error, nothing ran: the status follows the negotiated media type.
    Request,
    /// A refusal with its own status (403, 404, 429), in the negotiated media type.
    Refused(StatusCode),
}

/// A request refused before or instead of execution.
#[derive(Debug)]
pub(crate) struct Rejection {
    kind: Kind,
    code: ErrorCode,
    message: String,
    /// Merged into the error's `extensions` beside `code`.
    details: serde_json::Value,
    /// The response-level `extensions` (the cost block).
    extensions: Option<serde_json::Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Rejection {
    pub(crate) fn http(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(Kind::Http(status), code, message.into())
    }

    pub(crate) fn request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(Kind::Request, code, message.into())
    }

    pub(crate) fn refused(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(Kind::Refused(status), code, message.into())
    }

    fn new(kind: Kind, code: ErrorCode, message: String) -> Self {
        Self {
            kind,
            code,
            message,
            details: serde_json::Value::Null,
            extensions: None,
            headers: Vec::new(),
        }
    }

    /// Extensions on the error, beside `code` (`cost`, `maxCost`, `retryAfter`).
    pub(crate) fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// Response-level `extensions` (the cost block a throttled client reads).
    pub(crate) fn with_extensions(mut self, extensions: serde_json::Value) -> Self {
        self.extensions = Some(extensions);
        self
    }

    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    #[cfg(test)]
    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    #[cfg(test)]
    pub(crate) fn code(&self) -> ErrorCode {
        self.code
    }

    /// The response, with the negotiated media type where the kind takes it.
    pub(crate) fn into_response_for(self, accept: Accept) -> Response {
        let (status, media) = match self.kind {
            Kind::Http(status) => (status, JSON),
            Kind::Request => (accept.request_error_status(), accept.media_type()),
            Kind::Refused(status) => (status, accept.media_type()),
        };
        let mut resp = (status, body(&self)).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        resp.extensions_mut()
            .insert(ErrorCodes(vec![self.code.as_str().to_owned()]));
        resp
    }
}

/// Outside the pipeline (transport errors, the router's fallback) nothing was negotiated.
impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.into_response_for(Accept::Json)
    }
}

fn body(r: &Rejection) -> String {
    let mut ext = serde_json::json!({ "code": r.code.as_str() });
    if let Some(ext) = ext.as_object_mut() {
        if let serde_json::Value::Object(extra) = &r.details {
            ext.extend(extra.clone());
        }
        if let Some(id) = current_request_id() {
            ext.insert("requestId".into(), id.into());
        }
    }
    let mut body = serde_json::json!({ "errors": [{ "message": r.message, "extensions": ext }] });
    if let (Some(obj), Some(extensions)) = (body.as_object_mut(), &r.extensions) {
        obj.insert("extensions".into(), extensions.clone());
    }
    body.to_string()
}

tokio::task_local! {
    /// The id of the request this task is serving (set by the server's middleware), so that
    /// every error built anywhere below carries it.
    pub static REQUEST_ID: RequestId;
}

/// The id that ties a response, its errors and its log lines together.
#[derive(Clone, Debug)]
pub(crate) struct RequestId(pub String);

/// The current request's id, if this runs inside a request.
pub(super) fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.0.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(resp: Response) -> (StatusCode, String, serde_json::Value) {
        let status = resp.status();
        let media = resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .to_owned();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or_default();
        (status, media, body)
    }

    #[tokio::test]
    async fn a_request_error_takes_the_status_and_media_type_the_client_negotiated() {
        let r = || Rejection::request(ErrorCode::MaxDepthExceeded, "too deep");
        let (status, media, body) = read(r().into_response_for(Accept::GraphqlResponse)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(media, GRAPHQL_RESPONSE);
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "MAX_DEPTH_EXCEEDED"
        );
        let (status, media, _) = read(r().into_response_for(Accept::Json)).await;
        assert_eq!((status, media.as_str()), (StatusCode::OK, JSON));
    }

    #[tokio::test]
    async fn an_http_rejection_is_always_json_with_its_own_status_and_headers() {
        let r = Rejection::http(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "mutations must be sent with POST",
        )
        .with_header(header::ALLOW, HeaderValue::from_static("POST"));
        let resp = r.into_response_for(Accept::GraphqlResponse);
        assert_eq!(resp.headers()[header::ALLOW], "POST");
        let (status, media, body) = read(resp).await;
        assert_eq!(
            (status, media.as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, JSON)
        );
        assert_eq!(
            body["errors"][0]["message"],
            "mutations must be sent with POST"
        );
    }

    #[tokio::test]
    async fn details_join_the_code_and_extensions_sit_beside_the_errors() {
        let r = Rejection::refused(StatusCode::TOO_MANY_REQUESTS, ErrorCode::Throttled, "later")
            .with_details(serde_json::json!({ "retryAfter": 3 }))
            .with_extensions(serde_json::json!({ "cost": { "requestedQueryCost": 5 } }));
        let resp = REQUEST_ID
            .scope(RequestId("r-1".into()), async {
                r.into_response_for(Accept::GraphqlResponse)
            })
            .await;
        let (status, media, body) = read(resp).await;
        assert_eq!(
            (status, media.as_str()),
            (StatusCode::TOO_MANY_REQUESTS, GRAPHQL_RESPONSE)
        );
        let ext = &body["errors"][0]["extensions"];
        assert_eq!(
            (ext["code"].as_str(), ext["retryAfter"].as_u64()),
            (Some("THROTTLED"), Some(3))
        );
        assert_eq!(ext["requestId"], "r-1");
        assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 5);
    }

    #[test]
    fn accept_prefers_the_graphql_response_type_and_refuses_what_it_cannot_send() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            Accept::negotiate(&h)
        };
        assert_eq!(Accept::negotiate(&HeaderMap::new()), Some(Accept::Json));
        assert_eq!(
            with("application/json, application/graphql-response+json;q=0.9"),
            Some(Accept::GraphqlResponse)
        );
        assert_eq!(with("*/*"), Some(Accept::Json));
        assert_eq!(with("text/html"), None);
    }
}
