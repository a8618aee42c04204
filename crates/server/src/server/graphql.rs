//! GraphQL over HTTP, the transport half: POST with a JSON body and GET with query parameters
//! are decoded into a `gateway::Incoming`, the caller is identified, and the gateway runs the
//! request. GraphiQL is served to browsers that ask for HTML.
use super::AppState;
use crate::error_code::ErrorCode;
use crate::gateway::{Accept, Caller, Incoming, Rejection, RequestId};
use crate::infra::telemetry::{ErrorCodes, OperationRecord, OperationRecords};
use async_graphql::Variables;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::HeaderValue;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;

type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// A POST body (GraphQL over HTTP, with Apollo's `extensions` and persisted `documentId`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostBody {
    query: Option<String>,
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
    #[serde(default)]
    extensions: Option<serde_json::Value>,
    /// A trusted document's id (`sha256:<hex>`), GraphQL over HTTP's persisted documents.
    document_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
    document_id: Option<String>,
}

fn not_acceptable() -> Rejection {
    Rejection::http(
        StatusCode::NOT_ACCEPTABLE,
        ErrorCode::NotAcceptable,
        "responses are application/graphql-response+json or application/json",
    )
}

fn bad_request(message: impl Into<String>) -> Rejection {
    Rejection::http(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
}

pub(super) async fn post(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Rejection> {
    let accept = Accept::negotiate(&headers).ok_or_else(not_acceptable)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(crate::gateway::JSON)
        && !media.eq_ignore_ascii_case(crate::gateway::GRAPHQL_RESPONSE)
    {
        return Err(Rejection::http(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send the request as Content-Type: application/json",
        ));
    }
    let limit = state.settings().server.body_limit_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        Rejection::http(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        )
    })?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return batch(&state, &request_id, peer, &headers, accept, &bytes).await;
    }
    let parsed: PostBody = serde_json::from_slice(&bytes)
        .map_err(|e| bad_request(format!("the body is not a GraphQL request in JSON: {e}")))?;
    let incoming = incoming(parsed)?;
    dispatch(&state, &request_id, peer, &headers, accept, incoming).await
}

/// A POST body's operation, as the gateway takes it.
fn incoming(parsed: PostBody) -> Result<Incoming, Rejection> {
    let variables = match parsed.variables {
        None | Some(serde_json::Value::Null) => Variables::default(),
        Some(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
        Some(_) => return Err(bad_request("`variables` must be an object")),
    };
    let extensions = match parsed.extensions {
        None | Some(serde_json::Value::Null) => None,
        Some(v @ serde_json::Value::Object(_)) => Some(v),
        Some(_) => return Err(bad_request("`extensions` must be an object")),
    };
    Ok(Incoming {
        query: parsed.query,
        document_id: parsed.document_id,
        extensions,
        operation_name: parsed.operation_name,
        variables,
        via_get: false,
    })
}

/// A batch (a JSON array of operations, as Apollo's `BatchHttpLink` sends): each runs through
/// the gateway on its own (its own limits, cost charged to the caller, errors), and the answer
/// is the array of their answers in order, 200 as a whole. At most
/// `server.max_batch_operations`.
async fn batch(
    state: &AppState,
    request_id: &RequestId,
    peer: Peer,
    headers: &HeaderMap,
    accept: Accept,
    bytes: &[u8],
) -> Result<Response, Rejection> {
    let items: Vec<serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| bad_request(format!("the body is not a batch of GraphQL requests: {e}")))?;
    let max = state.settings().server.max_batch_operations;
    if items.is_empty() || items.len() > max {
        return Err(Rejection::http(
            StatusCode::BAD_REQUEST,
            ErrorCode::MaxBatchOperationsExceeded,
            format!(
                "a batch holds 1 to {max} operations; this one has {}",
                items.len()
            ),
        ));
    }
    if !items.iter().all(serde_json::Value::is_object) {
        return Err(bad_request(
            "a batch is an array of GraphQL request objects",
        ));
    }
    // One caller for the whole batch: an invalid token refuses it all, as for one operation.
    let principal = state.gateway().identify(headers).await?;
    let peer = peer.map(|Extension(c)| c.0);
    let runs = items.into_iter().map(|item| async move {
        let parsed = serde_json::from_value::<PostBody>(item)
            .map_err(|e| bad_request(format!("a batch item is not a GraphQL request: {e}")));
        match parsed.and_then(incoming) {
            Ok(incoming) => {
                let caller = Caller {
                    principal,
                    headers,
                    peer,
                };
                state
                    .gateway()
                    .run(incoming, caller, accept, request_id)
                    .await
            }
            Err(rejection) => rejection.into_response_for(accept),
        }
    });
    let answers = futures_util::future::join_all(runs).await;
    Ok(join_answers(answers, accept).await)
}

/// The batch's answers as one JSON array, with every operation's record and codes kept for
/// metrics.
async fn join_answers(answers: Vec<Response>, accept: Accept) -> Response {
    let mut body = Vec::from(&b"["[..]);
    let mut records = Vec::with_capacity(answers.len());
    let mut codes = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let (mut parts, inner) = answer.into_parts();
        if let Some(r) = parts.extensions.remove::<OperationRecord>() {
            records.push(r);
        }
        if let Some(ErrorCodes(c)) = parts.extensions.remove::<ErrorCodes>() {
            codes.extend(c);
        }
        // Bodies the server made itself: nothing to bound.
        let bytes = axum::body::to_bytes(inner, usize::MAX)
            .await
            .unwrap_or_default();
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&bytes);
    }
    body.push(b']');
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(accept.media_type()),
    );
    resp.extensions_mut().insert(OperationRecords(records));
    resp.extensions_mut().insert(ErrorCodes(codes));
    resp
}

/// A GET: GraphiQL for a browser, else a query or persisted document. An answer without a
/// caching policy of its own (a refusal) is `no-store`, so no cache in front keeps an error.
pub(super) async fn get(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    peer: Peer,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let mut resp = answer_get(&state, &request_id, peer, &headers, params)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    resp.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

async fn answer_get(
    state: &AppState,
    request_id: &RequestId,
    peer: Peer,
    headers: &HeaderMap,
    params: GetParams,
) -> Result<Response, Rejection> {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html
        && params.query.is_none()
        && params.document_id.is_none()
        && params.extensions.is_none()
        && state.settings().server.graphiql
    {
        return Ok(super::graphiql::html());
    }
    let accept = Accept::negotiate(headers).ok_or_else(not_acceptable)?;
    let variables = match json_object(params.variables.as_deref()) {
        Ok(v) => v.map(Variables::from_json).unwrap_or_default(),
        Err(()) => return Err(bad_request("`variables` must be a JSON object")),
    };
    let extensions = json_object(params.extensions.as_deref())
        .map_err(|()| bad_request("`extensions` must be a JSON object"))?;
    let incoming = Incoming {
        query: params.query,
        document_id: params.document_id,
        extensions,
        operation_name: params.operation_name,
        variables,
        via_get: true,
    };
    dispatch(state, request_id, peer, headers, accept, incoming).await
}

/// Identifies the caller and runs the request through the gateway.
async fn dispatch(
    state: &AppState,
    request_id: &RequestId,
    peer: Peer,
    headers: &HeaderMap,
    accept: Accept,
    incoming: Incoming,
) -> Result<Response, Rejection> {
    let principal = state.gateway().identify(headers).await?;
    let caller = Caller {
        principal,
        headers,
        peer: peer.map(|Extension(c)| c.0),
    };
    Ok(state
        .gateway()
        .run(incoming, caller, accept, request_id)
        .await)
}

/// A query parameter holding a JSON object: absent or empty is `None`, anything else an error.
fn json_object(text: Option<&str>) -> Result<Option<serde_json::Value>, ()> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(Some(v)),
            _ => Err(()),
        },
    }
}
