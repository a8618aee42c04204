//! Stage 2, admission: what may be parsed and run. The text (size, tokens) and the variables
//! (string lengths, list sizes) are bounded before parsing; the parsed document's shape
//! (depth, aliases, root fields, directives, duplicates, fields) and its literals after; a GET
//! may not run a mutation. A document that passed once is kept parsed by its text
//! (`graphql.document_cache_entries`) and skips the text and shape checks next time: limits do
//! not change while the process runs.
use super::rejection::Rejection;
use crate::error_code::ErrorCode;
use crate::graphql::GraphqlSettings;
use crate::infra::telemetry::OperationRecord;
use crate::limits::{DocumentLimits, InputLimits, LimitExceeded};
use async_graphql::Variables;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use axum::http::{HeaderValue, StatusCode, header};
use std::sync::Arc;

type Parsed = Arc<ExecutableDocument>;

/// The limits and the parsed-document cache.
pub(crate) struct Admission {
    documents: moka::sync::Cache<Arc<str>, Parsed>,
    document: DocumentLimits,
    input: InputLimits,
}

/// A request that may run: its parsed document and the operation selected in it.
pub(crate) struct Admitted {
    pub(crate) request: async_graphql::Request,
    pub(crate) doc: Parsed,
    /// The operation name the client asked for, if any.
    pub(crate) wanted: Option<String>,
    /// Parsed now, not taken from the cache: `keep` it once it has run.
    pub(crate) new_document: bool,
}

fn rejected(e: LimitExceeded) -> Rejection {
    Rejection::request(e.code, e.message)
}

impl Admission {
    pub(crate) fn new(g: &GraphqlSettings) -> Self {
        Self {
            documents: moka::sync::Cache::builder()
                .max_capacity(g.document_cache_entries)
                .build(),
            document: g.document_limits(),
            input: g.input_limits(),
        }
    }

    /// The parsed document of a text admitted before.
    pub(crate) fn known(&self, query: &str) -> Option<Parsed> {
        self.documents.get(query)
    }

    /// Before parsing: the text (unless admitted before) and the variables.
    pub(crate) fn check_text(
        &self,
        query: &str,
        variables: &Variables,
        known: bool,
    ) -> Result<(), Rejection> {
        if !known {
            crate::limits::document::check_text(query, &self.document).map_err(rejected)?;
        }
        crate::limits::input::check_variables(variables, &self.input).map_err(rejected)
    }

    /// Parses (or takes the cached parse), selects the operation, checks the shape and the
    /// literals of a new document and keeps it, and applies the GET rule. Records the
    /// operation's kind on `record` and the span.
    pub(crate) fn admit(
        &self,
        mut request: async_graphql::Request,
        known: Option<Parsed>,
        via_get: bool,
        record: &mut OperationRecord,
    ) -> Result<Admitted, Rejection> {
        // The request gets its own copy to execute; the one kept here (shared with the cache)
        // counts the actual cost from the response.
        let wanted = request.operation_name.clone();
        let doc = match &known {
            Some(doc) => {
                request.set_parsed_query(ExecutableDocument::clone(doc));
                doc.clone()
            }
            None => match request.parsed_query() {
                Ok(doc) => Arc::new(doc.clone()),
                Err(e) => return Err(self.parse_failed(&e.message)),
            },
        };
        let operation = self.record_operation(&doc, wanted.as_deref(), record);
        if known.is_none() {
            crate::limits::document::check_document(&doc, &self.document)
                .and_then(|()| crate::limits::input::check_document(&doc, &self.input))
                .map_err(rejected)?;
        }
        if via_get && operation == Some(OperationType::Mutation) {
            return Err(Rejection::http(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "mutations must be sent with POST",
            )
            .with_header(header::ALLOW, HeaderValue::from_static("POST")));
        }
        Ok(Admitted {
            request,
            doc,
            wanted,
            new_document: known.is_none(),
        })
    }

    /// Keeps a new document's parse, once it has been charged and passed validation: refused
    /// documents never fill the cache.
    pub(crate) fn keep(&self, query: &str, doc: &Parsed) {
        self.documents.insert(Arc::from(query), doc.clone());
    }

    /// The parser stops at its own nesting limit before the depth check can count: to the
    /// client it is the same limit.
    fn parse_failed(&self, message: &str) -> Rejection {
        if message.contains("recursion limit") {
            return Rejection::request(
                ErrorCode::MaxDepthExceeded,
                format!(
                    "the operation is nested too deep; at most {} levels are allowed",
                    self.document.max_depth
                ),
            );
        }
        Rejection::request(ErrorCode::ParseFailed, message)
    }

    /// The operation that will run (the named one, or the only one), on the record and the
    /// request's span.
    fn record_operation(
        &self,
        doc: &ExecutableDocument,
        wanted: Option<&str>,
        record: &mut OperationRecord,
    ) -> Option<OperationType> {
        let span = tracing::Span::current();
        let selected = crate::limits::cost::select_operation(doc, wanted);
        if let Some(name) = selected.and_then(|(name, _)| name) {
            span.record("operation_name", name);
        }
        let operation = selected.map(|(_, op)| op.ty);
        record.kind = match operation {
            Some(OperationType::Query) => "query",
            Some(OperationType::Mutation) => "mutation",
            Some(OperationType::Subscription) => "subscription",
            None => "unknown",
        };
        span.record("operation_type", record.kind);
        operation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::rejection::Kind;
    use crate::infra::telemetry::Outcome;

    fn admission(cache: u64) -> Admission {
        let settings: crate::config::Settings =
            crate::config::Settings::load(Default::default()).expect("settings");
        let mut g = settings.graphql;
        g.document_cache_entries = cache;
        g.max_depth = 3;
        Admission::new(&g)
    }

    fn record() -> OperationRecord {
        OperationRecord {
            name: "other".into(),
            kind: "unknown",
            outcome: Outcome::Rejected,
        }
    }

    #[test]
    fn a_new_document_is_parsed_checked_and_kept_once_it_ran_and_its_kind_recorded() {
        let a = admission(10);
        let text = "query Q { a { b } }";
        assert!(a.known(text).is_none());
        a.check_text(text, &Variables::default(), false)
            .expect("short");
        let mut r = record();
        let admitted = a
            .admit(async_graphql::Request::new(text), None, false, &mut r)
            .expect("admitted");
        assert_eq!(r.kind, "query");
        assert!(admitted.wanted.is_none());
        assert!(admitted.new_document);
        a.documents.run_pending_tasks();
        assert!(a.known(text).is_none(), "kept only once it has run");
        a.keep(text, &admitted.doc);
        a.documents.run_pending_tasks();
        assert!(a.known(text).is_some());
    }

    #[test]
    fn too_deep_and_unparsable_documents_are_request_errors_with_their_codes() {
        let a = admission(10);
        let deep = async_graphql::Request::new("{ a { b { c { d { e } } } } }");
        let e = a
            .admit(deep, None, false, &mut record())
            .err()
            .expect("too deep");
        assert_eq!(
            (e.kind(), e.code()),
            (Kind::Request, ErrorCode::MaxDepthExceeded)
        );
        let broken = async_graphql::Request::new("{ a ");
        let e = a
            .admit(broken, None, false, &mut record())
            .err()
            .expect("broken");
        assert_eq!(e.code(), ErrorCode::ParseFailed);
        // Nothing refused is kept.
        a.documents.run_pending_tasks();
        assert_eq!(a.documents.entry_count(), 0);
    }

    #[test]
    fn a_get_may_not_run_a_mutation() {
        let a = admission(0);
        let m = async_graphql::Request::new("mutation { a }");
        let mut r = record();
        let e = a.admit(m, None, true, &mut r).err().expect("refused");
        assert_eq!(
            (e.kind(), e.code()),
            (
                Kind::Http(StatusCode::METHOD_NOT_ALLOWED),
                ErrorCode::MethodNotAllowed
            )
        );
        assert_eq!(r.kind, "mutation");
        let q = async_graphql::Request::new("{ a }");
        assert!(a.admit(q, None, true, &mut record()).is_ok());
    }
}
