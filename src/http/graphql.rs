use super::error_response;
use crate::app::AppState;
use crate::auth::{AuthError, Principal};
use crate::graphql::errors::code;
use crate::graphql::loaders;
use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql::{ErrorExtensions, Variables};
use axum::body::Body;
use axum::extract::{Query, State};
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

fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, AuthError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    state.auth.authenticate(header)
}

fn unauthorized(e: AuthError) -> Response {
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

pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
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
    let principal = match principal(&state, &headers) {
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
    )
    .await
}

pub async fn get(
    State(state): State<AppState>,
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
    let principal = match principal(&state, &headers) {
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
    )
    .await
}

async fn execute(
    state: &AppState,
    query: String,
    operation_name: Option<String>,
    variables: Variables,
    principal: Principal,
    accept: Accept,
    via_get: bool,
) -> Response {
    let g = &state.settings.graphql;
    let (loaders, batches) = loaders::loaders(
        state.store.clone(),
        principal.user_id(),
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
    // Parse once up front: a syntax error is a 400, and GET must refuse mutations before
    // anything runs. The parsed document is kept for execution.
    let wanted = request.operation_name.clone();
    let operation = match request.parsed_query() {
        Ok(doc) => {
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
            return error_response(StatusCode::BAD_REQUEST, code::PARSE_FAILED, &e.message);
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
    let response = batches.run(state.schema.execute(request)).await;
    let kind = match operation {
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        _ => "query",
    };
    state
        .metrics
        .record_graphql(kind, response.errors.is_empty());
    // Errors raised before execution (validation, limits) have no path and leave no data.
    let request_error = response.data == async_graphql::Value::Null && !response.errors.is_empty();
    let mut response = response;
    for err in &mut response.errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            let code = if request_error && err.path.is_empty() {
                code::VALIDATION_FAILED
            } else {
                code::INTERNAL
            };
            let e = async_graphql::Error::new(err.message.clone())
                .extend_with(|_, ext| ext.set("code", code));
            err.extensions = e.extensions;
        }
    }
    let status = if accept == Accept::GraphqlResponse && request_error {
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
    let content_type = match accept {
        Accept::GraphqlResponse => GRAPHQL_RESPONSE,
        Accept::Json => JSON,
    };
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
