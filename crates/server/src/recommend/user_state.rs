//! What recommendations keep of each user: the latest interactions (the profile's input), and
//! every listing they dismissed or asked about (never recommended again). In process first
//! (moka, bounded by the number of interactions held), then Redis (shared by instances), then
//! one statement.
//!
//! `recordInteraction` updates the in-process state in place, in O(1), and deletes the shared
//! copy; other instances drop theirs when the invalidation reaches them. `updatePreferences`
//! changes the user row, not this state (preferences are read from the user). An interaction
//! recorded while the same user's state is being loaded for the first time can be missing from
//! it until it idles out (`ml.user_state_ttl_secs`): the load read the database just before.
use crate::infra::redis::RedisStore;
use crate::infra::telemetry::Metrics;
use crate::store::{Store, StoreError};
use entity::InteractionKind;
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use uuid::Uuid;

/// Bumped when the stored form changes.
const FORMAT: &str = "s1";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UserState {
    /// The latest interactions, newest first, at most `ml.history_limit`.
    pub events: VecDeque<(InteractionKind, Uuid)>,
    pub dismissed: HashSet<Uuid>,
    pub contacted: HashSet<Uuid>,
}

impl UserState {
    /// From `Store::user_state_rows` (newest first).
    pub fn from_rows(rows: &[entity::interaction::Model], limit: usize) -> Self {
        let mut s = Self::default();
        for r in rows {
            s.remember(r.kind, r.property_id);
            if s.events.len() < limit {
                s.events.push_back((r.kind, r.property_id));
            }
        }
        s
    }

    fn remember(&mut self, kind: InteractionKind, listing: Uuid) {
        match kind {
            InteractionKind::Dismiss => {
                self.dismissed.insert(listing);
            }
            InteractionKind::Inquiry => {
                self.contacted.insert(listing);
            }
            _ => {}
        }
    }

    /// A new interaction, newest.
    pub fn record(&mut self, kind: InteractionKind, listing: Uuid, limit: usize) {
        self.remember(kind, listing);
        self.events.push_front((kind, listing));
        self.events.truncate(limit);
    }

    /// Listings never to recommend to this user again.
    pub fn excludes(&self, listing: &Uuid) -> bool {
        self.dismissed.contains(listing) || self.contacted.contains(listing)
    }

    fn weight(&self) -> u32 {
        let n = self.events.len() + self.dismissed.len() + self.contacted.len();
        u32::try_from(n).unwrap_or(u32::MAX).max(1)
    }
}

pub type SharedState = Arc<Mutex<UserState>>;

pub struct UserStates {
    store: Store,
    l1: moka::future::Cache<Uuid, SharedState>,
    redis: Option<RedisStore>,
    l2_ttl: Duration,
    limit: usize,
    metrics: Option<Arc<Metrics>>,
}

impl UserStates {
    /// `capacity`: interactions held in process over all users; `redis`: the shared level, if
    /// any.
    pub fn new(
        store: Store,
        limit: usize,
        capacity: u64,
        ttl: Duration,
        redis: Option<RedisStore>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            store,
            l1: moka::future::Cache::builder()
                .max_capacity(capacity)
                .weigher(|_, v: &SharedState| {
                    v.lock().unwrap_or_else(PoisonError::into_inner).weight()
                })
                .time_to_live(ttl)
                .build(),
            redis,
            l2_ttl: ttl,
            limit,
            metrics,
        }
    }

    fn key(redis: &RedisStore, user: Uuid) -> String {
        redis.key(&format!(
            "{FORMAT}-{}:user_state:{user}",
            env!("CARGO_PKG_VERSION")
        ))
    }

    /// The user's state. Concurrent misses for one user load it once.
    pub async fn get(&self, user: Uuid) -> Result<SharedState, StoreError> {
        if let Some(hit) = self.l1.get(&user).await {
            self.count("l1", "hit");
            return Ok(hit);
        }
        self.count("l1", "miss");
        self.l1
            .try_get_with(user, async {
                let state = match self.read_shared(user).await {
                    Some(s) => s,
                    None => {
                        let rows = self.store.user_state_rows(user, self.limit as u64).await?;
                        let s = UserState::from_rows(&rows, self.limit);
                        self.write_shared(user, &s).await;
                        s
                    }
                };
                Ok::<_, StoreError>(Arc::new(Mutex::new(state)))
            })
            .await
            .map_err(StoreError::unshare)
    }

    async fn read_shared(&self, user: Uuid) -> Option<UserState> {
        let redis = self.redis.as_ref()?;
        let found: Option<UserState> = redis
            .get_json("user_state_get", &Self::key(redis, user))
            .await;
        self.count("l2", if found.is_some() { "hit" } else { "miss" });
        found
    }

    async fn write_shared(&self, user: Uuid, state: &UserState) {
        let Some(redis) = &self.redis else { return };
        redis
            .set_json("user_state_put", Self::key(redis, user), state, self.l2_ttl)
            .await;
    }

    /// An interaction recorded through this instance: the state held here moves in place; the
    /// shared copy is deleted (the next instance to need it loads it afresh).
    pub async fn record(&self, user: Uuid, kind: InteractionKind, listing: Uuid) {
        if let Some(state) = self.l1.get(&user).await {
            state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(kind, listing, self.limit);
        }
        if let Some(redis) = &self.redis {
            let mut conn = redis.connection();
            let _: Option<()> = redis
                .run(
                    "user_state_forget",
                    redis::cmd("DEL")
                        .arg(Self::key(redis, user))
                        .query_async(&mut conn),
                )
                .await;
        }
    }

    /// Another instance recorded something for this user.
    pub fn forget(&self, user: Uuid) {
        let l1 = self.l1.clone();
        // moka's async invalidate; the hook that calls this is synchronous.
        tokio::spawn(async move { l1.invalidate(&user).await });
    }

    pub fn forget_all(&self) {
        self.l1.invalidate_all();
    }

    fn count(&self, level: &'static str, result: &'static str) {
        if let Some(m) = &self.metrics {
            m.record_cache(level, "user_state", result, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: InteractionKind, listing: Uuid) -> entity::interaction::Model {
        entity::interaction::Model {
            id: Uuid::new_v4(),
            user_id: Uuid::nil(),
            property_id: listing,
            kind,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn old_dismissals_and_inquiries_exclude_beyond_the_history_window() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let rows = vec![
            row(InteractionKind::View, a),
            row(InteractionKind::Like, a),
            row(InteractionKind::Dismiss, b),
            row(InteractionKind::Inquiry, c),
        ];
        let s = UserState::from_rows(&rows, 2);
        assert_eq!(s.events.len(), 2);
        assert!(s.excludes(&b) && s.excludes(&c) && !s.excludes(&a));
    }

    #[test]
    fn recording_keeps_the_newest_first_within_the_limit() {
        let mut s = UserState::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        s.record(InteractionKind::View, a, 2);
        s.record(InteractionKind::Save, b, 2);
        s.record(InteractionKind::Inquiry, a, 2);
        assert_eq!(
            s.events,
            VecDeque::from([(InteractionKind::Inquiry, a), (InteractionKind::Save, b)])
        );
        assert!(s.excludes(&a));
    }
}
