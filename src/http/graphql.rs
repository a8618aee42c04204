use super::{RequestId, error_response};
use crate::app::AppState;
use crate::auth::{AuthError, Principal};
use crate::graphql::errors::code;
use crate::graphql::loaders;
use crate::telemetry::{ErrorCodes, OperationRecord, Outcome};
use async_graphql::Variables;
use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

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
    extensions: Option<serde_json::Value>,
    /// A trusted document's id (`sha256:<hex>`), GraphQL over HTTP's persisted documents.
    document_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
    document_id: Option<String>,
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

/// What a request asks to run, before persisted documents are resolved.
struct Incoming {
    query: Option<String>,
    document_id: Option<String>,
    extensions: Option<serde_json::Value>,
    operation_name: Option<String>,
    variables: Variables,
    via_get: bool,
}

/// Who a request is from, for throttling.
struct Caller<'a> {
    principal: Principal,
    headers: &'a HeaderMap,
    peer: Option<SocketAddr>,
}

pub async fn post(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    peer: Option<Extension<axum::extract::ConnectInfo<SocketAddr>>>,
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
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(e) => return unauthorized(e),
    };
    let incoming = Incoming {
        query: parsed.query,
        document_id: parsed.document_id,
        extensions: parsed.extensions,
        operation_name: parsed.operation_name,
        variables,
        via_get: false,
    };
    let caller = Caller {
        principal,
        headers: &headers,
        peer: peer.map(|Extension(c)| c.0),
    };
    execute(&state, incoming, caller, accept, &request_id).await
}

pub async fn get(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    peer: Option<Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html
        && params.query.is_none()
        && params.document_id.is_none()
        && params.extensions.is_none()
        && state.settings.server.graphiql
    {
        return Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response();
    }
    let Some(accept) = negotiate(&headers) else {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            code::NOT_ACCEPTABLE,
            "responses are application/graphql-response+json or application/json",
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
    let extensions = match params.extensions.as_deref() {
        None | Some("") => None,
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v @ serde_json::Value::Object(_)) => Some(v),
            _ => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    code::BAD_REQUEST,
                    "`extensions` must be a JSON object",
                );
            }
        },
    };
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(e) => return unauthorized(e),
    };
    let incoming = Incoming {
        query: params.query,
        document_id: params.document_id,
        extensions,
        operation_name: params.operation_name,
        variables,
        via_get: true,
    };
    let caller = Caller {
        principal,
        headers: &headers,
        peer: peer.map(|Extension(c)| c.0),
    };
    execute(&state, incoming, caller, accept, &request_id).await
}

impl Accept {
    fn media_type(self) -> &'static str {
        match self {
            Accept::GraphqlResponse => GRAPHQL_RESPONSE,
            Accept::Json => JSON,
        }
    }

    /// A GraphQL request error (nothing ran): GraphQL over HTTP wants 400 for
    /// `application/graphql-response+json` and 200 for `application/json`.
    fn request_error_status(self) -> StatusCode {
        match self {
            Accept::GraphqlResponse => StatusCode::BAD_REQUEST,
            Accept::Json => StatusCode::OK,
        }
    }
}

/// A GraphQL-shaped error response with extra extensions and an optional response-level
/// `extensions` block (the cost).
fn graphql_error(
    accept: Accept,
    status: StatusCode,
    code: &str,
    message: &str,
    error_extensions: serde_json::Value,
    extensions: Option<serde_json::Value>,
) -> Response {
    super::error_response_with(
        status,
        accept.media_type(),
        code,
        message,
        error_extensions,
        extensions,
    )
}

fn request_error(accept: Accept, code: &str, message: &str) -> Response {
    graphql_error(
        accept,
        accept.request_error_status(),
        code,
        message,
        serde_json::Value::Null,
        None,
    )
}

/// The document to run: the query text, or a persisted one (see `persisted`). Returns the
/// query and the trusted document it is, if any; or the response that refuses the request.
async fn resolve_document(
    state: &AppState,
    incoming: &mut Incoming,
    restricted: bool,
    accept: Accept,
) -> Result<(String, Option<crate::persisted::TrustedDocument>), Response> {
    use crate::persisted::{parse_hash, sha256_hex};
    let query = incoming.query.take().filter(|q| !q.trim().is_empty());
    let not_in_list = || {
        graphql_error(
            accept,
            StatusCode::FORBIDDEN,
            code::PERSISTED_QUERY_NOT_IN_LIST,
            "this client may run only the registered (persisted) operations",
            serde_json::Value::Null,
            None,
        )
    };
    if let Some(id) = incoming.document_id.take() {
        if query.is_some() {
            return Err(error_response(
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                "send either `documentId` or `query`, not both",
            ));
        }
        let Some(hash) = parse_hash(&id) else {
            return Err(error_response(
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                "`documentId` must be `sha256:` followed by 64 hex digits",
            ));
        };
        return match state.trusted.get(&hash) {
            Some(doc) => Ok((doc.body.to_string(), Some(doc.clone()))),
            None => Err(graphql_error(
                accept,
                StatusCode::NOT_FOUND,
                code::PERSISTED_QUERY_NOT_FOUND,
                &format!("no registered document has the id {id}"),
                serde_json::Value::Null,
                None,
            )),
        };
    }
    let apq = incoming
        .extensions
        .as_ref()
        .and_then(|e| e.get("persistedQuery"))
        .cloned();
    if let Some(pq) = apq {
        let version = pq.get("version").and_then(serde_json::Value::as_i64);
        let hash = pq
            .get("sha256Hash")
            .and_then(serde_json::Value::as_str)
            .and_then(parse_hash);
        let (Some(1), Some(hash)) = (version, hash) else {
            return Err(error_response(
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                "`extensions.persistedQuery` needs `version: 1` and a 64-hex-digit `sha256Hash`",
            ));
        };
        if let Some(doc) = state.trusted.get(&hash) {
            return Ok((doc.body.to_string(), Some(doc.clone())));
        }
        if restricted {
            return Err(not_in_list());
        }
        if !state.settings.persisted.apq {
            return Err(request_error(
                accept,
                code::PERSISTED_QUERY_NOT_SUPPORTED,
                "PersistedQueryNotSupported",
            ));
        }
        return match query {
            Some(q) => {
                if sha256_hex(&q) != hash {
                    return Err(error_response(
                        StatusCode::BAD_REQUEST,
                        code::BAD_REQUEST,
                        "provided sha256Hash does not match the query",
                    ));
                }
                // Only documents within the size limit are worth keeping.
                if q.len() <= state.settings.graphql.max_document_bytes {
                    state.apq.put(&hash, &q).await;
                }
                Ok((q, None))
            }
            None => match state.apq.get(&hash).await {
                Some(q) => Ok((q.to_string(), None)),
                None => Err(request_error(
                    accept,
                    code::PERSISTED_QUERY_NOT_FOUND,
                    "PersistedQueryNotFound",
                )),
            },
        };
    }
    let Some(q) = query else {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            code::BAD_REQUEST,
            "`query` is required (or `documentId`, or `extensions.persistedQuery`)",
        ));
    };
    if restricted {
        // The full text of a registered document is that document.
        return match state.trusted.get(&sha256_hex(&q)) {
            Some(doc) => Ok((q, Some(doc.clone()))),
            None => Err(not_in_list()),
        };
    }
    Ok((q, None))
}

/// The bucket this caller is charged to, and its budget.
fn client_bucket(
    state: &AppState,
    caller: &Caller<'_>,
    trusted: Option<&crate::persisted::TrustedDocument>,
) -> (String, crate::limits::throttle::Budget) {
    use entity::Role;
    let b = &state.settings.limits.budgets;
    match caller.principal {
        Principal::User {
            id,
            role: Role::Partner,
        } => {
            let manifest = trusted.map_or("-", |d| d.manifest.as_str());
            let budget = state
                .settings
                .persisted
                .budgets
                .get(manifest)
                .copied()
                .unwrap_or(b.partner);
            (format!("partner:{id}:{manifest}"), budget)
        }
        Principal::User { id, role } => {
            let budget = match role {
                Role::Admin => b.admin,
                Role::Owner => b.owner,
                _ => b.user,
            };
            (format!("user:{id}"), budget)
        }
        Principal::Anonymous => {
            let header = state.settings.limits.trusted_proxy_header.trim();
            let forwarded = (!header.is_empty())
                .then(|| caller.headers.get(header))
                .flatten()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
            let ip = forwarded.or(caller.peer.map(|p| p.ip()));
            let key = ip.map_or_else(|| "ip:unknown".to_owned(), |ip| format!("ip:{ip}"));
            (key, b.anonymous)
        }
    }
}

fn cost_block(requested: u64, actual: u64, state: &BucketState) -> serde_json::Value {
    serde_json::json!({
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {
            "maximumAvailable": state.capacity,
            "currentlyAvailable": state.available.floor(),
            "restoreRate": state.restore_rate,
        }
    })
}

use crate::limits::throttle::BucketState;

/// Runs a request and marks the response with what the metrics need (see `OperationRecord`).
async fn execute(
    state: &AppState,
    incoming: Incoming,
    caller: Caller<'_>,
    accept: Accept,
    request_id: &RequestId,
) -> Response {
    let mut meta = OperationRecord {
        name: "other".to_owned(),
        kind: "unknown",
        outcome: Outcome::Rejected,
    };
    let mut resp = execute_inner(state, incoming, caller, accept, request_id, &mut meta).await;
    resp.extensions_mut().insert(meta);
    resp
}

async fn execute_inner(
    state: &AppState,
    mut incoming: Incoming,
    caller: Caller<'_>,
    accept: Accept,
    request_id: &RequestId,
    meta: &mut OperationRecord,
) -> Response {
    let g = &state.settings.graphql;
    let restricted = state.settings.persisted.only
        || matches!(
            caller.principal,
            Principal::User {
                role: entity::Role::Partner,
                ..
            }
        );
    let span = tracing::Span::current();
    span.record(
        "principal",
        caller
            .principal
            .user_id()
            .map_or_else(|| "anonymous".to_owned(), |id| id.to_string()),
    );
    let (query, trusted) = match resolve_document(state, &mut incoming, restricted, accept).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    // Label values stay bounded: only trusted documents' names become labels.
    if let Some(doc) = &trusted {
        meta.name = doc.name.clone();
    }
    if !span.is_disabled() {
        span.record("document_hash", crate::persisted::sha256_hex(&query));
    }
    let limits = g.document_limits();
    // A document seen before passed the text, shape and literal checks then (limits do not
    // change while the process runs) and is not parsed again.
    let known = state.documents.get(query.as_str());
    let checked = match known {
        Some(_) => Ok(()),
        None => crate::limits::document::check_text(&query, &limits),
    }
    .and_then(|()| crate::limits::input::check_variables(&incoming.variables, &g.input_limits()));
    if let Err(e) = checked {
        return request_error(accept, e.code, &e.message);
    }
    let principal = caller.principal;
    let (loaders, batches) = loaders::loaders(
        state.store.clone(),
        principal,
        state.recommender.clone(),
        state.metrics.clone(),
        state.caches.clone(),
        g.dataloader_delay(),
        g.dataloader_max_batch_size,
    );
    let mut request = async_graphql::Request::new(query)
        .variables(incoming.variables)
        .data(principal)
        .data(state.recommender.clone())
        .data(state.caches.clone())
        .data(loaders);
    if let Some(name) = incoming.operation_name {
        request = request.operation_name(name);
    }
    // Parse once up front: limits and cost are checked on the parsed document before
    // validation, and GET must refuse mutations before anything runs. The request gets its own
    // copy to execute; the one kept here (shared with the document cache) counts the actual
    // cost from the response.
    let wanted = request.operation_name.clone();
    let parsed = match &known {
        Some(doc) => {
            request.set_parsed_query(ExecutableDocument::clone(doc));
            Ok(doc.clone())
        }
        None => request.parsed_query().map(|doc| Arc::new(doc.clone())),
    };
    let doc = match parsed {
        Ok(doc) => doc,
        Err(e) => {
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
    // The operation that will run: the named one, or the only one.
    let selected = crate::limits::cost::select_operation(&doc, wanted.as_deref());
    let operation = selected.map(|(_, op)| op.ty);
    if let Some(name) = selected.and_then(|(name, _)| name) {
        span.record("operation_name", name);
    }
    meta.kind = match operation {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    };
    span.record("operation_type", meta.kind);
    if known.is_none() {
        let checked = crate::limits::document::check_document(&doc, &limits)
            .and_then(|()| crate::limits::input::check_document(&doc, &g.input_limits()));
        if let Err(e) = checked {
            return request_error(accept, e.code, &e.message);
        }
        state
            .documents
            .insert(Arc::from(request.query.as_str()), doc.clone());
    }
    if incoming.via_get && operation == Some(OperationType::Mutation) {
        let mut resp = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }

    // Cost: refused over the per-operation ceiling, then charged to the caller's bucket.
    let requested = state
        .cost
        .requested(&doc, wanted.as_deref(), &request.variables);
    let max_cost = state.settings.limits.max_cost;
    let (client, budget) = client_bucket(state, &caller, trusted.as_ref());
    if requested > max_cost {
        let bucket = state.throttle.peek(&client, budget).await;
        return graphql_error(
            accept,
            accept.request_error_status(),
            crate::limits::cost::code::MAX_COST_EXCEEDED,
            &format!("the operation costs {requested}; at most {max_cost} is allowed"),
            serde_json::json!({ "cost": requested, "maxCost": max_cost }),
            Some(serde_json::json!({ "cost": cost_block(requested, 0, &bucket) })),
        );
    }
    let charged = if state.settings.limits.throttle {
        requested
    } else {
        0
    };
    // With throttling off nothing is ever charged, so the bucket is full by definition: no
    // Redis call (or lock) on every request to find that out.
    let bucket = if state.settings.limits.throttle {
        state.throttle.charge(&client, budget, charged as f64).await
    } else {
        crate::limits::throttle::BucketState::full(budget)
    };
    if !bucket.allowed {
        meta.outcome = Outcome::Throttled;
        let retry = bucket.retry_after_secs(requested as f64);
        let mut resp = graphql_error(
            accept,
            StatusCode::TOO_MANY_REQUESTS,
            crate::limits::cost::code::THROTTLED,
            &format!(
                "this operation costs {requested} and {} points are available; try again in {retry} s",
                bucket.available.floor()
            ),
            serde_json::json!({ "cost": requested, "retryAfter": retry }),
            Some(serde_json::json!({ "cost": cost_block(requested, 0, &bucket) })),
        );
        if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let refund = crate::limits::CostRefund::default();
    let request = request
        .data(crate::limits::RateLimitInfo {
            requested,
            state: bucket,
        })
        .data(refund.clone());

    let mut response = batches.run(state.schema.execute(request)).await;
    let actual = state
        .cost
        .actual(&doc, wanted.as_deref(), &response.data)
        .saturating_sub(refund.points())
        .min(requested);
    let bucket = if charged > 0 {
        state
            .throttle
            .settle(&client, budget, charged as f64, actual as f64)
            .await
    } else {
        bucket
    };
    response.extensions.insert(
        "cost".to_owned(),
        async_graphql::Value::from_json(cost_block(requested, actual, &bucket)).unwrap_or_default(),
    );

    // A request error (validation, limits) stops before execution: no data and no error with a
    // path. A field error on a non-null root field also leaves data null, but it has a path and
    // execution happened, so it is a 200 either way.
    let request_failed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut codes = Vec::with_capacity(response.errors.len());
    for err in &mut response.errors {
        let code = err
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("code"))
            .and_then(|c| match c {
                async_graphql::Value::String(s) => Some(s.clone()),
                _ => None,
            });
        let code = match code {
            Some(c) => c,
            None if request_failed => code::VALIDATION_FAILED.to_owned(),
            None => {
                // Not raised through ApiError, so not logged yet; its text may be internal.
                tracing::error!(error = %err.message, path = ?err.path, "field failed");
                err.message = "internal error".to_owned();
                code::INTERNAL.to_owned()
            }
        };
        let id = request_id.0.clone();
        let ext = err.extensions.get_or_insert_with(Default::default);
        ext.set("code", code.clone());
        ext.set("requestId", id);
        codes.push(code);
    }
    meta.outcome = if request_failed {
        Outcome::Rejected
    } else if response.errors.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Error
    };
    let status = if request_failed {
        accept.request_error_status()
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
    resp.extensions_mut().insert(ErrorCodes(codes));
    resp
}
