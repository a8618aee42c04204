use super::{RequestId, error_response};
use crate::app::AppState;
use crate::auth::{AuthError, Principal};
use crate::graphql::errors::code;
use crate::graphql::loaders;
use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql::{ErrorExtensions, Variables};
use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// Which media type the client asked for; the spec's newer type changes status codes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Accept {
    GraphqlResponse,
    Json,
}

fn negotiate(headers: &HeaderMap) -> Option<Accept> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Accept::Json);
    };
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    if types.contains(&GRAPHQL_RESPONSE) {
        Some(Accept::GraphqlResponse)
    } else if types
        .iter()
        .any(|t| *t == JSON || *t == "*/*" || *t == "application/*")
    {
        Some(Accept::Json)
    } else {
        None
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body_ {
    query: Option<String>,
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default)]
    extensions: Option<HashMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
}

/// The caller: the bearer token verified, then its user checked against the database.
async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, AuthError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let claimed = state.auth.authenticate(header)?;
    state.principals.check(claimed).await
}

fn unauthorized(e: AuthError) -> Response {
    if let AuthError::Lookup(cause) = &e {
        tracing::error!(error = %cause, "cannot check a token's user");
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            code::INTERNAL,
            "cannot check the bearer token now; try again",
        );
    }
    let msg = match &e {
        AuthError::InvalidToken(_) => "the bearer token is invalid or expired".to_owned(),
        other => other.to_string(),
    };
    tracing::debug!(error = %e, "authentication failed");
    let mut resp = error_response(StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED, &msg);
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

pub async fn post(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(accept) = negotiate(&headers) else {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            code::NOT_ACCEPTABLE,
            "responses are application/graphql-response+json or application/json",
        );
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(JSON) && !media.eq_ignore_ascii_case(GRAPHQL_RESPONSE) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::UNSUPPORTED_MEDIA_TYPE,
            "send the request as Content-Type: application/json",
        );
    }
    let limit = state.settings.server.body_limit_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::PAYLOAD_TOO_LARGE,
                &format!("the request body is larger than {limit} bytes"),
            );
        }
    };
    let parsed: Body_ = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                &format!("the body is not a GraphQL request in JSON: {e}"),
            );
        }
    };
    let Some(query) = parsed.query.filter(|q| !q.trim().is_empty()) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            code::BAD_REQUEST,
            "`query` is required",
        );
    };
    let variables = match parsed.variables {
        None | Some(serde_json::Value::Null) => Variables::default(),
        Some(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
        Some(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                "`variables` must be an object",
            );
        }
    };
    let _ = parsed.extensions;
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(e) => return unauthorized(e),
    };
    execute(
        &state,
        query,
        parsed.operation_name,
        variables,
        principal,
        accept,
        false,
        &request_id,
    )
    .await
}

pub async fn get(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && params.query.is_none() && state.settings.server.graphiql {
        return Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response();
    }
    let Some(accept) = negotiate(&headers) else {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            code::NOT_ACCEPTABLE,
            "responses are application/graphql-response+json or application/json",
        );
    };
    let Some(query) = params.query.filter(|q| !q.trim().is_empty()) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            code::BAD_REQUEST,
            "the `query` parameter is required",
        );
    };
    let variables = match params.variables.as_deref() {
        None | Some("") => Variables::default(),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
            _ => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    code::BAD_REQUEST,
                    "`variables` must be a JSON object",
                );
            }
        },
    };
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(e) => return unauthorized(e),
    };
    execute(
        &state,
        query,
        params.operation_name,
        variables,
        principal,
        accept,
        true,
        &request_id,
    )
    .await
}

/// A GraphQL request error (nothing ran): GraphQL over HTTP wants 400 for
/// `application/graphql-response+json` and 200 for `application/json`.
fn request_error(accept: Accept, code: &str, message: &str) -> Response {
    let status = match accept {
        Accept::GraphqlResponse => StatusCode::BAD_REQUEST,
        Accept::Json => StatusCode::OK,
    };
    let mut resp = error_response(status, code, message);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(accept.media_type()),
    );
    resp
}

impl Accept {
    fn media_type(self) -> &'static str {
        match self {
            Accept::GraphqlResponse => GRAPHQL_RESPONSE,
            Accept::Json => JSON,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    state: &AppState,
    query: String,
    operation_name: Option<String>,
    variables: Variables,
    principal: Principal,
    accept: Accept,
    via_get: bool,
    request_id: &RequestId,
) -> Response {
    let g = &state.settings.graphql;
    let limits = g.document_limits();
    let checked = crate::limits::document::check_text(&query, &limits)
        .and_then(|()| crate::limits::input::check_variables(&variables, &g.input_limits()));
    if let Err(e) = checked {
        state.metrics.record_graphql("unknown", false);
        return request_error(accept, e.code, &e.message);
    }
    let (loaders, batches) = loaders::loaders(
        state.store.clone(),
        principal,
        state.recommender.clone(),
        g.dataloader_delay(),
        g.dataloader_max_batch_size,
    );
    let mut request = async_graphql::Request::new(query)
        .variables(variables)
        .data(principal)
        .data(state.recommender.clone())
        .data(loaders);
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    // Parse once up front: limits are checked on the parsed document before validation, and GET
    // must refuse mutations before anything runs. The parsed document is kept for execution.
    let wanted = request.operation_name.clone();
    let operation = match request.parsed_query() {
        Ok(doc) => {
            let checked = crate::limits::document::check_document(doc, &limits)
                .and_then(|()| crate::limits::input::check_document(doc, &g.input_limits()));
            if let Err(e) = checked {
                state.metrics.record_graphql("unknown", false);
                return request_error(accept, e.code, &e.message);
            }
            let name = wanted.as_deref();
            match (&doc.operations, name) {
                (async_graphql::parser::types::DocumentOperations::Single(op), _) => {
                    Some(op.node.ty)
                }
                (async_graphql::parser::types::DocumentOperations::Multiple(ops), Some(n)) => {
                    ops.get(n).map(|op| op.node.ty)
                }
                (async_graphql::parser::types::DocumentOperations::Multiple(_), None) => None,
            }
        }
        Err(e) => {
            state.metrics.record_graphql("unknown", false);
            // The parser stops at its own nesting limit before our depth check can count: to
            // the client it is the same limit.
            if e.message.contains("recursion limit") {
                return request_error(
                    accept,
                    crate::limits::document::code::MAX_DEPTH_EXCEEDED,
                    &format!(
                        "the operation is nested too deep; at most {} levels are allowed",
                        g.max_depth
                    ),
                );
            }
            return request_error(accept, code::PARSE_FAILED, &e.message);
        }
    };
    if via_get && operation == Some(OperationType::Mutation) {
        let mut resp = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let mut response = batches.run(state.schema.execute(request)).await;
    let kind = match operation {
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        _ => "query",
    };
    state
        .metrics
        .record_graphql(kind, response.errors.is_empty());
    // A request error (validation, limits) stops before execution: no data and no error with a
    // path. A field error on a non-null root field also leaves data null, but it has a path and
    // execution happened, so it is a 200 either way.
    let request_failed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    for err in &mut response.errors {
        let code = err
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("code"))
            .and_then(|c| match c {
                async_graphql::Value::String(s) => Some(s.clone()),
                _ => None,
            });
        match code.as_deref() {
            Some(code::INTERNAL) => {}
            Some(_) => continue,
            None if request_failed => {
                let e = async_graphql::Error::new(err.message.clone())
                    .extend_with(|_, ext| ext.set("code", code::VALIDATION_FAILED));
                err.extensions = e.extensions;
                continue;
            }
            None => {
                // Not raised through ApiError, so not logged yet; its text may be internal.
                tracing::error!(error = %err.message, path = ?err.path, "field failed");
                err.message = "internal error".to_owned();
            }
        }
        let id = request_id.0.clone();
        let e = async_graphql::Error::new(err.message.clone()).extend_with(|_, ext| {
            ext.set("code", code::INTERNAL);
            ext.set("requestId", id);
        });
        err.extensions = e.extensions;
    }
    let status = if accept == Accept::GraphqlResponse && request_failed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = match serde_json::to_vec(&response) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "serialising a response failed");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL,
                "internal error",
            );
        }
    };
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(accept.media_type()),
    );
    resp
}
