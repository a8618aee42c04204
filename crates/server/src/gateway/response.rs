//! Stage 5, the response: every error gets a code (its own, `GRAPHQL_VALIDATION_FAILED` for a
//! request error without one, `INTERNAL_SERVER_ERROR` with its text hidden for anything else)
//! and the request id; the status follows GraphQL over HTTP; the body goes out in the
//! negotiated media type with the codes recorded for metrics.
use super::rejection::{Accept, Rejection, RequestId};
use crate::error_code::ErrorCode;
use crate::infra::telemetry::{ErrorCodes, OperationRecord, Outcome};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(crate) fn respond(
    mut response: async_graphql::Response,
    accept: Accept,
    request_id: &RequestId,
    record: &mut OperationRecord,
    tag: bool,
) -> Result<Response, Rejection> {
    // A request error (validation, limits) stops before execution: no data and no error with a
    // path. A field error on a non-null root field also leaves data null, but it has a path and
    // execution happened, so it is a 200 either way.
    let request_failed = request_failed(&response);
    let codes = stamp_errors(&mut response.errors, request_failed, request_id);
    record.outcome = if request_failed {
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
    let body = serde_json::to_vec(&response).map_err(|e| {
        tracing::error!(error = %e, "serialising a response failed");
        Rejection::http(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        )
    })?;
    let etag = tag.then(|| super::http_cache::etag(&body));
    let mut resp = (status, body).into_response();
    if let Some(etag) = etag {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(accept.media_type()),
    );
    resp.extensions_mut().insert(ErrorCodes(codes));
    Ok(resp)
}

/// Whether the request failed as a whole (parsing, validation, limits): no data, and errors
/// without a path.
pub(crate) fn request_failed(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Gives every error its code and the request id; returns the codes.
fn stamp_errors(
    errors: &mut [async_graphql::ServerError],
    request_failed: bool,
    request_id: &RequestId,
) -> Vec<String> {
    let mut codes = Vec::with_capacity(errors.len());
    for err in errors {
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
            None if request_failed => ErrorCode::ValidationFailed.as_str().to_owned(),
            None => {
                // Not raised through ApiError, so not logged yet; its text may be internal.
                tracing::error!(error = %err.message, path = ?err.path, "field failed");
                err.message = "internal error".to_owned();
                ErrorCode::Internal.as_str().to_owned()
            }
        };
        let ext = err.extensions.get_or_insert_with(Default::default);
        ext.set("code", code.clone());
        ext.set("requestId", request_id.0.clone());
        codes.push(code);
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{ServerError, Value};

    fn record() -> OperationRecord {
        OperationRecord {
            name: "other".into(),
            kind: "query",
            outcome: Outcome::Rejected,
        }
    }

    fn id() -> RequestId {
        RequestId("req-7".into())
    }

    #[test]
    fn a_validation_error_without_a_code_is_a_request_error() {
        let response =
            async_graphql::Response::from_errors(vec![ServerError::new("no field", None)]);
        let mut r = record();
        let resp =
            respond(response, Accept::GraphqlResponse, &id(), &mut r, false).expect("response");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.outcome, Outcome::Rejected);
        let codes = resp.extensions().get::<ErrorCodes>().map(|c| c.0.clone());
        assert_eq!(codes, Some(vec!["GRAPHQL_VALIDATION_FAILED".to_owned()]));
    }

    #[test]
    fn a_field_error_without_a_code_is_internal_and_its_text_is_hidden() {
        let mut err = ServerError::new("connection refused at db.internal:5432", None);
        err.path = vec![async_graphql::PathSegment::Field("me".into())];
        let mut response = async_graphql::Response::new(
            Value::from_json(serde_json::json!({ "me": null })).unwrap_or_default(),
        );
        response.errors.push(err);
        let mut errors = response.errors.clone();
        let codes = stamp_errors(&mut errors, false, &id());
        assert_eq!(codes, vec!["INTERNAL_SERVER_ERROR".to_owned()]);
        assert_eq!(errors[0].message, "internal error");
        let mut r = record();
        let resp = respond(response, Accept::Json, &id(), &mut r, false).expect("response");
        assert_eq!((resp.status(), r.outcome), (StatusCode::OK, Outcome::Error));
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn a_clean_response_is_ok_in_the_negotiated_type() {
        let data = Value::from_json(serde_json::json!({ "a": 1 })).unwrap_or_default();
        let mut r = record();
        let resp = respond(
            async_graphql::Response::new(data),
            Accept::GraphqlResponse,
            &id(),
            &mut r,
            false,
        )
        .expect("response");
        assert_eq!((resp.status(), r.outcome), (StatusCode::OK, Outcome::Ok));
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/graphql-response+json"
        );
    }
}
