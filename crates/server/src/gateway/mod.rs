//! The GraphQL request pipeline. The server's handlers decode HTTP into an `Incoming` and a
//! `Caller`; `Gateway::run` passes them through named stages, one file each, every stage
//! returning `Result<_, Rejection>`:
//!
//! 1. `document`: the text to run (query text, trusted document, APQ);
//! 2. `admission`: text and variable limits, parsing (cached), shape and literal limits, the
//!    GET-mutation rule;
//! 3. `charge`: the client's bucket, the static cost, the ceiling; settled after execution;
//! 4. `execute`: loaders and request data, then the schema;
//! 5. `response`: codes, status and media type.
//!
//! `identity` (the bearer token and its user) runs before them, in the handler. A rejection
//! becomes a response in one place (`run`), in the media type the client negotiated.
mod admission;
mod charge;
mod document;
mod execute;
mod http_cache;
mod identity;
mod order;
pub mod persisted;
mod rejection;
mod response;

pub(crate) use http_cache::{QUERY_COST, RATELIMIT, RATELIMIT_POLICY};
pub(crate) use rejection::{Accept, REQUEST_ID, Rejection, RequestId};
pub(crate) use rejection::{GRAPHQL_RESPONSE, JSON};

use crate::auth::{Authenticator, Principal, Principals};
use crate::infra::telemetry::{OperationRecord, Outcome};
use async_graphql::Variables;
use axum::http::HeaderMap;
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::Arc;

/// What a request asks to run, as the transport decoded it.
pub(crate) struct Incoming {
    pub(crate) query: Option<String>,
    pub(crate) document_id: Option<String>,
    pub(crate) extensions: Option<serde_json::Value>,
    pub(crate) operation_name: Option<String>,
    pub(crate) variables: Variables,
    /// Sent with GET (which may not run mutations).
    pub(crate) via_get: bool,
}

/// Who a request is from, for throttling.
pub(crate) struct Caller<'a> {
    pub(crate) principal: Principal,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) peer: Option<SocketAddr>,
}

/// The pipeline's state, grouped by stage.
pub(crate) struct Gateway {
    identity: identity::Identity,
    documents: document::Documents,
    admission: admission::Admission,
    charging: charge::Charging,
    executor: execute::Executor,
    http_cache: http_cache::HttpCache,
    /// `persisted.apq_registration_cost`
    apq_registration_cost: u64,
    /// Where each operation's reads go (`store::Reads`), and who wrote lately.
    store: crate::store::Store,
}

/// Everything a `Gateway` is built from (`server::AppState::new` assembles it).
pub(crate) struct GatewayParts {
    pub(crate) graphql: crate::graphql::GraphqlSettings,
    pub(crate) http_cache: crate::config::HttpCacheSettings,
    pub(crate) limits: crate::limits::LimitsSettings,
    pub(crate) persisted: persisted::PersistedSettings,
    pub(crate) schema: crate::graphql::AppSchema,
    pub(crate) store: crate::store::Store,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) principals: Principals,
    pub(crate) recommender: Arc<crate::recommend::Recommender>,
    pub(crate) metrics: Arc<crate::infra::telemetry::Metrics>,
    pub(crate) caches: Arc<crate::infra::cache::Caches>,
    pub(crate) cost: crate::limits::cost::CostModel,
    pub(crate) throttle: crate::limits::throttle::Throttle,
    pub(crate) trusted: persisted::Registry,
    pub(crate) apq: persisted::ApqStore,
}

impl Gateway {
    pub(crate) fn new(p: GatewayParts) -> Self {
        let g = &p.graphql;
        let partners = persisted::PartnerManifests::new(&p.persisted, &p.trusted);
        Self {
            identity: identity::Identity::new(p.auth, p.principals),
            documents: document::Documents::new(
                Arc::new(p.trusted),
                Arc::new(p.apq),
                &p.persisted,
                g.max_document_bytes,
            ),
            admission: admission::Admission::new(g),
            charging: charge::Charging::new(
                Arc::new(p.cost),
                Arc::new(p.throttle),
                p.limits,
                p.persisted.budgets.clone(),
                partners,
            ),
            store: p.store.clone(),
            executor: execute::Executor::new(execute::ExecutorParts {
                schema: p.schema,
                store: p.store,
                recommender: p.recommender,
                metrics: p.metrics,
                caches: p.caches,
                delay: g.dataloader_delay(),
                max_batch_size: g.dataloader_max_batch_size,
            }),
            http_cache: http_cache::HttpCache::new(&p.http_cache),
            apq_registration_cost: p.persisted.apq_registration_cost,
        }
    }

    /// The caller of a request, from its `Authorization` header.
    pub(crate) async fn identify(&self, headers: &HeaderMap) -> Result<Principal, Rejection> {
        self.identity.identify(headers).await
    }

    /// Runs a request through the stages and marks the response with what the metrics need
    /// (see `OperationRecord`).
    pub(crate) async fn run(
        &self,
        incoming: Incoming,
        caller: Caller<'_>,
        accept: Accept,
        request_id: &RequestId,
    ) -> Response {
        let mut record = OperationRecord {
            name: "other".to_owned(),
            kind: "unknown",
            outcome: Outcome::Rejected,
        };
        let mut charged = false;
        let mut resp = match self
            .stages(
                incoming,
                &caller,
                accept,
                request_id,
                &mut record,
                &mut charged,
            )
            .await
        {
            Ok(resp) => resp,
            // Refused before its cost was charged (unparseable, over a shape limit, unknown
            // document): still work for the server, so the caller pays `limits.refusal_cost`,
            // and a caller whose bucket cannot pay gets 429 instead.
            Err(rejection) if !charged => match self.charging.charge_refusal(&caller).await {
                Some(throttled) => {
                    record.outcome = Outcome::Throttled;
                    throttled.into_response_for(accept)
                }
                None => rejection.into_response_for(accept),
            },
            Err(rejection) => rejection.into_response_for(accept),
        };
        resp.extensions_mut().insert(record);
        resp
    }

    async fn stages(
        &self,
        mut incoming: Incoming,
        caller: &Caller<'_>,
        accept: Accept,
        request_id: &RequestId,
        record: &mut OperationRecord,
        charged: &mut bool,
    ) -> Result<Response, Rejection> {
        let span = tracing::Span::current();
        span.record(
            "principal",
            caller
                .principal
                .user_id()
                .map_or_else(|| "anonymous".to_owned(), |id| id.to_string()),
        );
        let restricted = self.documents.restricted(&caller.principal);
        let resolved = self.documents.resolve(&mut incoming, restricted).await?;
        self.documents.bind_partner(&caller.principal, &resolved)?;
        // Label values stay bounded: only trusted documents' names become labels.
        if let Some(doc) = &resolved.trusted {
            record.name = doc.name.clone();
        }
        if !span.is_disabled() {
            span.record("document_hash", persisted::sha256_hex(&resolved.query));
        }
        let via_get = incoming.via_get;
        let known = self.admission.known(&resolved.query);
        self.admission
            .check_text(&resolved.query, &incoming.variables, known.is_some())?;
        let (request, batches) = self.executor.request(
            resolved.query,
            incoming.variables,
            incoming.operation_name,
            caller.principal,
        );
        let admitted = self
            .admission
            .admit(request, known, incoming.via_get, record)?;
        // A registration pays for the Redis memory it takes.
        let surcharge = resolved
            .registers
            .as_ref()
            .map_or(0, |_| self.apq_registration_cost);
        *charged = true;
        let charge = self
            .charging
            .charge(&admitted, caller, surcharge, record)
            .await?;
        let keep = (admitted.new_document || resolved.registers.is_some())
            .then(|| admitted.request.query.clone());
        let request = charge.attach(admitted.request);
        let statements = crate::limits::Statements::default();
        let user = caller.principal.user_id();
        let mutation = record.kind == "mutation";
        let route = self.store.route_for(user, mutation);
        let run = statements.count(self.executor.execute(&batches, request));
        let mut response = crate::store::reads(route, run).await;
        if let Some(user) = user.filter(|_| mutation) {
            // Their next reads see what they wrote, even with replicas lagging.
            self.store.wrote(user);
        }
        if let Some(text) = keep.filter(|_| !response::request_failed(&response)) {
            if admitted.new_document {
                self.admission.keep(&text, &admitted.doc);
            }
            if let Some(hash) = &resolved.registers {
                self.documents.register(hash, &text).await;
            }
        }
        let cost = self
            .charging
            .settle(
                charge,
                &admitted.doc,
                admitted.wanted.as_deref(),
                &response.data,
                statements.get(),
            )
            .await;
        order::in_selection_order(
            &mut response.data,
            &admitted.doc,
            admitted.wanted.as_deref(),
        );
        let policy = self.http_cache.policy(&http_cache::Answer {
            hints: response.cache_control,
            kind: record.kind,
            failed: response.is_err(),
            principal: &caller.principal,
        });
        // A cacheable GET answer is the same for every caller it may be served to: the
        // caller's own cost goes to headers (see `http_cache`).
        let cost_in_headers = via_get && policy.cacheable();
        let cost_headers = if cost_in_headers {
            http_cache::cost_headers(&cost)
        } else {
            response.extensions.insert(
                "cost".to_owned(),
                async_graphql::Value::from_json(cost).unwrap_or_default(),
            );
            Vec::new()
        };
        let mut resp = response::respond(response, accept, request_id, record, cost_in_headers)?;
        resp.headers_mut().extend(cost_headers);
        Ok(http_cache::finish(resp, policy, via_get, caller.headers))
    }
}
