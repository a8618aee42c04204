use crate::limits::RateLimitInfo;
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Default)]
pub(super) struct RateLimitQuery;

/// The caller's query-cost budget (a leaky bucket), as charged for this operation.
#[derive(SimpleObject)]
pub(super) struct RateLimit {
    /// What this operation was charged before it ran (its requested cost).
    pub cost: i64,
    /// The bucket's capacity in cost points.
    pub limit: i64,
    /// Points left after this operation's charge.
    pub remaining: i64,
    /// Points restored per second.
    pub restore_rate: f64,
    /// When the bucket will be full again if nothing more is spent.
    pub reset_at: DateTime<Utc>,
}

#[Object]
impl RateLimitQuery {
    /// Your query-cost budget. Costs 0, so it can always be asked; every response also carries
    /// the same numbers in `extensions.cost`.
    #[graphql(cache_control(no_cache))]
    async fn rate_limit(&self, ctx: &Context<'_>) -> Option<RateLimit> {
        let info = ctx.data::<RateLimitInfo>().ok()?;
        let s = &info.state;
        Some(RateLimit {
            cost: info.requested as i64,
            limit: s.capacity as i64,
            remaining: s.available.floor() as i64,
            restore_rate: s.restore_rate,
            reset_at: Utc::now()
                + chrono::Duration::milliseconds((s.seconds_to_full() * 1000.0) as i64),
        })
    }
}
