//! Stage 3, charging: an operation's static cost is refused over `limits.max_cost`, then
//! charged to the caller's leaky bucket (per user, per partner and manifest, or per client
//! address for anonymous callers); after execution the charge is settled to the actual cost,
//! so a page that came back short costs what it returned.
use super::Caller;
use super::admission::Admitted;
use super::rejection::Rejection;
use crate::auth::Principal;
use crate::error_code::ErrorCode;
use crate::infra::telemetry::{OperationRecord, Outcome};
use crate::limits::cost::CostModel;
use crate::limits::throttle::{BucketState, Budget, Throttle};
use crate::limits::{CostRefund, LimitsSettings, RateLimitInfo};
use axum::http::{HeaderValue, StatusCode, header};
use std::collections::HashMap;
use std::sync::Arc;

/// The cost model, the buckets and the budgets.
pub(crate) struct Charging {
    cost: Arc<CostModel>,
    throttle: Arc<Throttle>,
    limits: LimitsSettings,
    /// Whose address an anonymous caller has (`limits.trusted_proxies`).
    client: crate::limits::client::ClientAddress,
    /// `persisted.budgets`: a budget per manifest for partners running its documents.
    manifest_budgets: HashMap<String, Budget>,
    /// `persisted.partners`: whose manifest (and so budget) a partner has.
    partners: crate::gateway::persisted::PartnerManifests,
}

/// What was charged, to settle after execution.
pub(crate) struct Charge {
    /// Work the actual cost cannot see in the response (amenity intersections): kept.
    scans: u64,
    client: String,
    budget: Budget,
    requested: u64,
    charged: u64,
    bucket: BucketState,
    refund: CostRefund,
}

/// The response's `extensions.cost`.
pub(crate) fn cost_block(requested: u64, actual: u64, state: &BucketState) -> serde_json::Value {
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

impl Charging {
    pub(crate) fn new(
        cost: Arc<CostModel>,
        throttle: Arc<Throttle>,
        limits: LimitsSettings,
        manifest_budgets: HashMap<String, Budget>,
        partners: crate::gateway::persisted::PartnerManifests,
    ) -> Self {
        Self {
            partners,
            cost,
            throttle,
            client: crate::limits::client::ClientAddress::new(&limits),
            limits,
            manifest_budgets,
        }
    }

    /// Refuses an operation over the ceiling or one the caller's bucket cannot pay for now;
    /// otherwise takes its static cost (nothing with `limits.throttle = false`).
    pub(crate) async fn charge(
        &self,
        admitted: &Admitted,
        caller: &Caller<'_>,
        surcharge: u64,
        record: &mut OperationRecord,
    ) -> Result<Charge, Rejection> {
        let scans = self.cost.scan_surcharge(
            &admitted.doc,
            admitted.wanted.as_deref(),
            &admitted.request.variables,
        );
        let requested = self
            .cost
            .requested(
                &admitted.doc,
                admitted.wanted.as_deref(),
                &admitted.request.variables,
            )
            .saturating_add(surcharge)
            .saturating_add(scans);
        let (client, budget) = self.bucket(caller);
        // An operation costing more than the caller's whole bucket could never be paid for:
        // refused as too costly now rather than with a Retry-After that never comes true.
        let max_cost = if self.limits.throttle {
            self.limits.max_cost.min(budget.capacity.max(0.0) as u64)
        } else {
            self.limits.max_cost
        };
        if requested > max_cost {
            let bucket = self.throttle.peek(&client, budget).await;
            return Err(Rejection::request(
                ErrorCode::MaxCostExceeded,
                format!("the operation costs {requested}; at most {max_cost} is allowed"),
            )
            .with_details(serde_json::json!({ "cost": requested, "maxCost": max_cost }))
            .with_extensions(serde_json::json!({ "cost": cost_block(requested, 0, &bucket) })));
        }
        let throttle = self.limits.throttle;
        let charged = if throttle { requested } else { 0 };
        // With throttling off nothing is ever charged, so the bucket is full by definition: no
        // Redis call (or lock) on every request to find that out.
        let bucket = if throttle {
            self.throttle.charge(&client, budget, charged as f64).await
        } else {
            BucketState::full(budget)
        };
        if !bucket.allowed {
            record.outcome = Outcome::Throttled;
            return Err(throttled(requested, &bucket));
        }
        Ok(Charge {
            scans,
            client,
            budget,
            requested,
            charged,
            bucket,
            refund: CostRefund::default(),
        })
    }

    /// Charges a request refused before its cost was known `limits.refusal_cost`; the 429 to
    /// answer instead when the caller's bucket cannot pay even that.
    pub(crate) async fn charge_refusal(&self, caller: &Caller<'_>) -> Option<Rejection> {
        let cost = self.limits.refusal_cost;
        if !self.limits.throttle || cost == 0 {
            return None;
        }
        let (client, budget) = self.bucket(caller);
        let bucket = self.throttle.charge(&client, budget, cost as f64).await;
        (!bucket.allowed).then(|| throttled(cost, &bucket))
    }

    /// Gives back what the operation did not use; returns the response's cost block.
    pub(crate) async fn settle(
        &self,
        charge: Charge,
        admitted_doc: &async_graphql::parser::types::ExecutableDocument,
        wanted: Option<&str>,
        data: &async_graphql::Value,
        statements: u64,
    ) -> serde_json::Value {
        // What the operation did is paid for whatever it gives back: each statement it ran
        // and each root field it selected.
        let floor = statements
            .saturating_add(root_fields(admitted_doc, wanted))
            .saturating_mul(self.limits.statement_cost_floor);
        let actual = self
            .cost
            .actual(admitted_doc, wanted, data)
            .saturating_sub(charge.refund.points())
            .saturating_add(charge.scans)
            .max(floor)
            .min(charge.requested);
        let bucket = if charge.charged > 0 {
            self.throttle
                .settle(
                    &charge.client,
                    charge.budget,
                    charge.charged as f64,
                    actual as f64,
                )
                .await
        } else {
            charge.bucket
        };
        cost_block(charge.requested, actual, &bucket)
    }

    /// The bucket this caller is charged to, and its budget.
    fn bucket(&self, caller: &Caller<'_>) -> (String, Budget) {
        use entity::Role;
        let b = &self.limits.budgets;
        match caller.principal {
            Principal::User {
                id,
                role: Role::Partner,
            } => {
                // The partner's own manifest decides the budget, not the document sent (which
                // `Documents::bind_partner` has checked is from it): one bucket per partner.
                let budget = self
                    .partners
                    .of(id)
                    .and_then(|m| self.manifest_budgets.get(m))
                    .copied()
                    .unwrap_or(b.partner);
                (format!("partner:{id}"), budget)
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
                let ip = self.client.of(caller.headers, caller.peer);
                (crate::limits::client::bucket_key(ip), b.anonymous)
            }
        }
    }
}

impl Charge {
    /// What resolvers read: `Query.rateLimit` and the refund a deduplicated mutation gives.
    pub(crate) fn attach(&self, request: async_graphql::Request) -> async_graphql::Request {
        request
            .data(RateLimitInfo {
                requested: self.requested,
                state: self.bucket,
            })
            .data(self.refund.clone())
    }
}

/// The root fields an operation selects (aliases each count), through fragments.
fn root_fields(
    doc: &async_graphql::parser::types::ExecutableDocument,
    wanted: Option<&str>,
) -> u64 {
    use async_graphql::parser::types::Selection;
    fn count(
        set: &async_graphql::parser::types::SelectionSet,
        doc: &async_graphql::parser::types::ExecutableDocument,
        depth: usize,
    ) -> u64 {
        if depth > 16 {
            return 0;
        }
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(f) => count(&f.node.selection_set.node, doc, depth + 1),
                Selection::FragmentSpread(f) => doc
                    .fragments
                    .get(&f.node.fragment_name.node)
                    .map_or(0, |d| count(&d.node.selection_set.node, doc, depth + 1)),
            })
            .sum()
    }
    crate::limits::cost::select_operation(doc, wanted)
        .map_or(0, |(_, op)| count(&op.selection_set.node, doc, 0))
}

/// 429 with `Retry-After`: when the bucket will hold the operation's cost again.
fn throttled(requested: u64, bucket: &BucketState) -> Rejection {
    let retry = bucket.retry_after_secs(requested as f64);
    let mut r = Rejection::refused(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Throttled,
        format!(
            "this operation costs {requested} and {} points are available; try again in {retry} s",
            bucket.available.floor()
        ),
    )
    .with_details(serde_json::json!({ "cost": requested, "retryAfter": retry }))
    .with_extensions(serde_json::json!({ "cost": cost_block(requested, 0, bucket) }));
    if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
        r = r.with_header(header::RETRY_AFTER, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn charging(max_cost: u64, throttle: bool, trusted_proxy_header: &str) -> Charging {
        let settings = crate::config::Settings::load(Default::default()).expect("settings");
        let schema = crate::graphql::build_schema(&settings.graphql, None);
        let cost =
            CostModel::new(&schema.sdl(), crate::graphql::weights::WEIGHTS, 20).expect("cost");
        let metrics = crate::infra::telemetry::Metrics::new().expect("metrics");
        let mut limits = settings.limits;
        limits.max_cost = max_cost;
        limits.throttle = throttle;
        limits.trusted_proxy_header = trusted_proxy_header.into();
        limits.trusted_proxies = vec!["10.0.0.0/8".into()];
        limits.budgets.anonymous = Budget {
            capacity: 100.0,
            restore_rate: 1.0,
        };
        Charging::new(
            Arc::new(cost),
            Arc::new(Throttle::new(None, &metrics.meter())),
            limits,
            HashMap::new(),
            Default::default(),
        )
    }

    fn admitted(text: &str) -> Admitted {
        let mut request = async_graphql::Request::new(text);
        let doc = Arc::new(request.parsed_query().expect("parses").clone());
        Admitted {
            request,
            doc,
            wanted: None,
            new_document: true,
        }
    }

    fn record() -> OperationRecord {
        OperationRecord {
            name: "other".into(),
            kind: "query",
            outcome: Outcome::Rejected,
        }
    }

    const PAGE: &str = "{ properties(first: 20) { edges { node { id } } } }";

    #[tokio::test]
    async fn an_operation_over_the_ceiling_is_refused_with_its_cost() {
        let c = charging(5, true, "");
        let headers = HeaderMap::new();
        let caller = Caller {
            principal: Principal::Anonymous,
            headers: &headers,
            peer: None,
        };
        let e = c
            .charge(&admitted(PAGE), &caller, 0, &mut record())
            .await
            .err()
            .expect("over the ceiling");
        assert_eq!(e.code(), ErrorCode::MaxCostExceeded);
    }

    #[tokio::test]
    async fn a_caller_is_throttled_once_the_bucket_is_empty_and_charged_per_address() {
        let c = charging(1000, true, "x-forwarded-for");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9"),
        );
        let caller = Caller {
            principal: Principal::Anonymous,
            headers: &headers,
            peer: Some("10.0.0.1:5000".parse().expect("addr")),
        };
        assert_eq!(c.bucket(&caller).0, "ip:203.0.113.9");
        let doc = admitted(PAGE);
        let mut outcome = None;
        for _ in 0..50 {
            let mut r = record();
            if let Err(e) = c.charge(&doc, &caller, 0, &mut r).await {
                outcome = Some((e.code(), r.outcome));
                break;
            }
        }
        assert_eq!(outcome, Some((ErrorCode::Throttled, Outcome::Throttled)));
    }

    #[tokio::test]
    async fn with_throttling_off_nothing_is_charged_and_the_bucket_stays_full() {
        let c = charging(1000, false, "");
        let headers = HeaderMap::new();
        let caller = Caller {
            principal: Principal::Anonymous,
            headers: &headers,
            peer: None,
        };
        let doc = admitted(PAGE);
        for _ in 0..50 {
            let charge = c.charge(&doc, &caller, 0, &mut record()).await;
            let charge = charge.expect("never throttled");
            assert_eq!(charge.charged, 0);
            assert!((charge.bucket.available - 100.0).abs() < 1e-9);
        }
    }
}
