//! Per-client leaky buckets of query cost, as Shopify's and GitHub's GraphQL APIs do: a bucket
//! holds up to `capacity` points and refills at `restore_rate` points a second; an operation is
//! charged its requested cost before it runs and refunded what it did not use afterwards.
//!
//! The buckets live in Redis, so every instance charges the same budget, and one Lua script
//! reads, refills and charges a bucket atomically, on Redis's clock (instances' clocks may
//! differ). When Redis is absent or failing, each instance keeps in-process buckets instead:
//! a client then gets up to one budget per instance, which is the safe side of an outage.
use crate::infra::redis::RedisStore;
use opentelemetry::metrics::Counter;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// One budget: capacity in cost points, refill in points per second.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub capacity: f64,
    pub restore_rate: f64,
}

/// A bucket after a charge, a refund or a look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketState {
    /// Whether the charge was made (false: not enough points, nothing taken).
    pub allowed: bool,
    pub available: f64,
    pub capacity: f64,
    pub restore_rate: f64,
}

impl BucketState {
    /// A bucket nothing was taken from.
    pub fn full(budget: Budget) -> Self {
        Self {
            allowed: true,
            available: budget.capacity,
            capacity: budget.capacity,
            restore_rate: budget.restore_rate,
        }
    }

    /// Whole seconds until `cost` points are available (at least 1).
    pub fn retry_after_secs(&self, cost: f64) -> u64 {
        if self.restore_rate <= 0.0 {
            return u64::MAX;
        }
        let missing = (cost - self.available).max(0.0);
        ((missing / self.restore_rate).ceil() as u64).max(1)
    }

    /// Seconds until the bucket is full again.
    pub fn seconds_to_full(&self) -> f64 {
        if self.restore_rate <= 0.0 {
            return 0.0;
        }
        ((self.capacity - self.available) / self.restore_rate).max(0.0)
    }
}

/// KEYS[1] bucket; ARGV capacity, restore rate, cost, force (1: a refund, always applied).
/// Numbers go back as strings: Redis would truncate a Lua float to an integer.
const SCRIPT: &str = r"
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local force = ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local s = redis.call('HMGET', KEYS[1], 'a', 't')
local avail = tonumber(s[1])
local last = tonumber(s[2])
if avail == nil or last == nil then
  avail = capacity
  last = now
end
avail = math.min(capacity, avail + math.max(0, now - last) * rate)
local ok = 1
if cost > avail and not force then
  ok = 0
else
  avail = math.min(capacity, avail - cost)
end
redis.call('HSET', KEYS[1], 'a', tostring(avail), 't', tostring(now))
local ttl = 60
if rate > 0 then ttl = math.ceil(capacity / rate) + 60 end
redis.call('EXPIRE', KEYS[1], ttl)
return {ok, tostring(avail)}
";

struct Local {
    available: f64,
    at: Instant,
}

pub(crate) struct Throttle {
    redis: Option<RedisStore>,
    script: redis::Script,
    local: moka::sync::Cache<String, std::sync::Arc<std::sync::Mutex<Local>>>,
    charged: Counter<u64>,
    refused: Counter<u64>,
}

impl Throttle {
    pub(crate) fn new(redis: Option<RedisStore>, meter: &opentelemetry::metrics::Meter) -> Self {
        Self {
            redis,
            script: redis::Script::new(SCRIPT),
            // Idle buckets are full buckets: forgetting them after a while changes nothing.
            local: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            charged: meter
                .u64_counter("rentgraph_throttle_charged_cost")
                .with_description("Cost points charged to client buckets, after refunds")
                .build(),
            refused: meter
                .u64_counter("rentgraph_throttle_refusals")
                .with_description("Operations refused because the client's bucket was empty")
                .build(),
        }
    }

    /// Takes `cost` points from the bucket if it has them.
    pub(crate) async fn charge(&self, client: &str, budget: Budget, cost: f64) -> BucketState {
        let state = self.apply(client, budget, cost, false).await;
        if !state.allowed {
            self.refused.add(1, &[]);
        }
        state
    }

    /// After the operation: gives back what it was charged but did not use.
    pub(crate) async fn settle(
        &self,
        client: &str,
        budget: Budget,
        charged: f64,
        used: f64,
    ) -> BucketState {
        let used = used.clamp(0.0, charged);
        self.charged.add(used as u64, &[]);
        self.apply(client, budget, used - charged, true).await
    }

    /// The bucket as it is now, charging nothing.
    pub(crate) async fn peek(&self, client: &str, budget: Budget) -> BucketState {
        self.apply(client, budget, 0.0, true).await
    }

    async fn apply(&self, client: &str, budget: Budget, cost: f64, force: bool) -> BucketState {
        if let Some(redis) = &self.redis {
            let key = redis.key(&format!("bucket:{client}"));
            let mut conn = redis.connection();
            let mut call = self.script.key(key);
            call.arg(budget.capacity)
                .arg(budget.restore_rate)
                .arg(cost)
                .arg(if force { "1" } else { "0" });
            let answer: Option<(i64, String)> =
                redis.run("throttle", call.invoke_async(&mut conn)).await;
            if let Some((ok, available)) = answer {
                return BucketState {
                    allowed: ok == 1,
                    available: available.parse().unwrap_or(0.0),
                    capacity: budget.capacity,
                    restore_rate: budget.restore_rate,
                };
            }
        }
        self.apply_locally(client, budget, cost, force)
    }

    fn apply_locally(&self, client: &str, budget: Budget, cost: f64, force: bool) -> BucketState {
        let now = Instant::now();
        let bucket = self.local.get_with(client.to_owned(), || {
            std::sync::Arc::new(std::sync::Mutex::new(Local {
                available: budget.capacity,
                at: now,
            }))
        });
        let mut b = bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.available = (b.available + elapsed * budget.restore_rate).min(budget.capacity);
        b.at = now;
        let allowed = force || cost <= b.available;
        if allowed {
            b.available = (b.available - cost).min(budget.capacity);
        }
        BucketState {
            allowed,
            available: b.available,
            capacity: budget.capacity,
            restore_rate: budget.restore_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
        Throttle::new(
            None,
            &opentelemetry::metrics::MeterProvider::meter(&provider, "t"),
        )
    }

    #[tokio::test]
    async fn a_bucket_empties_refuses_and_refills() {
        let t = throttle();
        let budget = Budget {
            capacity: 100.0,
            restore_rate: 1_000_000.0,
        };
        let slow = Budget {
            capacity: 100.0,
            restore_rate: 0.001,
        };
        assert!(t.charge("a", slow, 60.0).await.allowed);
        let refused = t.charge("a", slow, 60.0).await;
        assert!(!refused.allowed);
        assert!((refused.available - 40.0).abs() < 0.1, "{refused:?}");
        assert!(refused.retry_after_secs(60.0) >= 1);
        // Settling gives back what was charged but not used, never beyond capacity.
        let after = t.settle("a", slow, 60.0, 10.0).await;
        assert!((after.available - 90.0).abs() < 0.1, "{after:?}");
        assert!(t.settle("a", slow, 500.0, 0.0).await.available <= 100.0);
        assert!((t.peek("a", slow).await.available - 100.0).abs() < 0.1);
        // Another client has its own bucket; a fast restore rate refills at once.
        assert!(t.charge("b", budget, 100.0).await.allowed);
        std::thread::sleep(Duration::from_millis(2));
        assert!(t.charge("b", budget, 100.0).await.allowed);
    }
}
