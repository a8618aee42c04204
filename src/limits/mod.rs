//! Limits on what one operation may ask for, checked before anything runs. `document` bounds
//! the text and the shape of a GraphQL document (size, tokens, depth, aliases, root fields,
//! directives, duplicated fields), and `input`
//! bounds every string and list argument so that parsing and validation themselves cannot be made
//! expensive; each limit has its own error code so a client knows which one it hit.
pub mod cost;
pub mod document;
pub mod input;
pub mod throttle;

pub use document::{DocumentLimits, LimitExceeded};
pub use input::InputLimits;

/// What the caller's bucket said when this operation was charged; `Query.rateLimit` reads it.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitInfo {
    pub requested: u64,
    pub state: throttle::BucketState,
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
