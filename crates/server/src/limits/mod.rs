//! Limits on what one operation may ask for, checked before anything runs. `document` bounds
//! the text and the shape of a GraphQL document (size, tokens, depth, aliases, root fields,
//! directives, duplicated fields), and `input`
//! bounds every string and list argument so that parsing and validation themselves cannot be made
//! expensive; each limit has its own error code so a client knows which one it hit.
pub(crate) mod client;
pub(crate) mod cost;
pub(crate) mod document;
pub(crate) mod input;
pub(crate) mod throttle;
use serde::Deserialize;

pub use document::{DocumentLimits, LimitExceeded};
pub use input::InputLimits;
pub use throttle::Budget;

/// What the caller's bucket said when this operation was charged; `Query.rateLimit` reads it.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitInfo {
    pub requested: u64,
    pub state: throttle::BucketState,
}

tokio::task_local! {
    /// The statements the current operation has run (`Statements`), counted by the store's
    /// metric hook, which sees every statement.
    static STATEMENTS: Statements;
}

/// A count of the SQL statements one operation ran, so a refund never takes its cost below
/// the work it did (`limits.statement_cost_floor`).
#[derive(Debug, Clone, Default)]
pub struct Statements(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Statements {
    /// Runs `work` with its statements counted here.
    pub(crate) async fn count<F: std::future::Future>(&self, work: F) -> F::Output {
        STATEMENTS.scope(self.clone(), work).await
    }

    /// One statement ran (the store's hook); outside an operation, nothing to count.
    pub(crate) fn ran() {
        let _ = STATEMENTS.try_with(|s| s.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Points a resolver gives back because its work was not done (a deduplicated mutation);
/// subtracted from the actual cost.
#[derive(Debug, Clone, Default)]
pub struct CostRefund(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl CostRefund {
    pub fn add(&self, points: u64) {
        self.0
            .fetch_add(points, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn points(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `[limits]`: query cost and the per-client budgets it is charged to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSettings {
    /// The highest static cost of one operation.
    pub max_cost: u64,
    /// Charge clients' buckets (off: only max_cost applies).
    pub throttle: bool,
    /// Points each SQL statement an operation ran costs at least, and each root field it
    /// selected: refunds (a deduplicated mutation, an empty page) never go below this.
    pub statement_cost_floor: u64,
    /// Points a request refused before its cost is known (unparseable, over a shape limit, an
    /// unknown document) costs: refusals are work too, and a flood of them gets 429s.
    pub refusal_cost: u64,
    /// A header carrying the client address, set by a proxy you trust (`x-forwarded-for`,
    /// `forwarded` or `x-real-ip`); read only from `trusted_proxies`. Empty: the TCP peer.
    pub trusted_proxy_header: String,
    /// The proxies (CIDRs or addresses) whose `trusted_proxy_header` is believed.
    #[serde(deserialize_with = "crate::config::list_or_csv")]
    pub trusted_proxies: Vec<String>,
    /// Which entry of the header is the client: this many from the right (1: the one the
    /// proxy in front of us wrote; 2 behind a CDN and a balancer that both append).
    pub trusted_proxy_hops: usize,
    pub budgets: Budgets,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    pub anonymous: crate::limits::throttle::Budget,
    pub user: crate::limits::throttle::Budget,
    pub owner: crate::limits::throttle::Budget,
    pub partner: crate::limits::throttle::Budget,
    pub admin: crate::limits::throttle::Budget,
}
