//! What recommendations keep of each user: the latest interactions (the profile's input), and
//! the newest `ml.max_exclusions` listings they dismissed or asked about (never recommended
//! again). In process first (moka, bounded by the number of interactions held), then Redis
//! (shared by instances), then one statement.
//!
//! `recordInteraction` (and `unlikeProperty`, `unsaveProperty`) update the in-process state in
//! place, in O(1), and delete the shared copy; the interaction itself goes out on the bus, and
//! other instances move the state they hold in place too, rather than reloading it. `updatePreferences`
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
const FORMAT: &str = "s2";

/// How much of a user's state is kept (`ml.history_limit`, `ml.max_exclusions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    pub history: usize,
    pub exclusions: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UserState {
    /// The latest interactions, newest first, at most `StateLimits::history`.
    pub events: VecDeque<(InteractionKind, Uuid)>,
    pub dismissed: HashSet<Uuid>,
    pub contacted: HashSet<Uuid>,
    /// The dismissals and inquiries behind the two sets, newest first, at most
    /// `StateLimits::exclusions`: the oldest goes when a new one comes.
    exclusions: VecDeque<(InteractionKind, Uuid)>,
}

impl UserState {
    /// From `Store::user_state_rows` (newest first).
    pub fn from_rows(rows: &[entity::interaction::Model], limits: StateLimits) -> Self {
        let mut s = Self::default();
        for r in rows {
            if matches!(r.kind, InteractionKind::Dismiss | InteractionKind::Inquiry)
                && s.exclusions.len() < limits.exclusions
            {
                s.exclusions.push_back((r.kind, r.property_id));
                s.set(r.kind).insert(r.property_id);
            }
            if s.events.len() < limits.history {
                s.events.push_back((r.kind, r.property_id));
            }
        }
        s
    }

    fn set(&mut self, kind: InteractionKind) -> &mut HashSet<Uuid> {
        if kind == InteractionKind::Dismiss {
            &mut self.dismissed
        } else {
            &mut self.contacted
        }
    }

    /// A new interaction, newest.
    pub fn record(&mut self, kind: InteractionKind, listing: Uuid, limits: StateLimits) {
        if matches!(kind, InteractionKind::Dismiss | InteractionKind::Inquiry)
            && limits.exclusions > 0
            && self.set(kind).insert(listing)
        {
            self.exclusions.push_front((kind, listing));
            while self.exclusions.len() > limits.exclusions {
                if let Some((k, old)) = self.exclusions.pop_back() {
                    self.set(k).remove(&old);
                }
            }
        }
        self.events.push_front((kind, listing));
        self.events.truncate(limits.history);
    }

    /// A like or save taken back: it leaves the history the profile is built from.
    pub fn remove(&mut self, kind: InteractionKind, listing: Uuid) {
        self.events.retain(|e| *e != (kind, listing));
    }

    /// Listings never to recommend to this user again.
    pub fn excludes(&self, listing: &Uuid) -> bool {
        self.dismissed.contains(listing) || self.contacted.contains(listing)
    }

    fn weight(&self) -> u32 {
        let n = self.events.len() + self.exclusions.len();
        u32::try_from(n).unwrap_or(u32::MAX).max(1)
    }
}

pub type SharedState = Arc<Mutex<UserState>>;

pub struct UserStates {
    store: Store,
    l1: moka::future::Cache<Uuid, SharedState>,
    redis: Option<RedisStore>,
    l2_ttl: Duration,
    limits: StateLimits,
    metrics: Option<Arc<Metrics>>,
}

impl UserStates {
    /// `capacity`: interactions held in process over all users; `redis`: the shared level, if
    /// any.
    pub fn new(
        store: Store,
        limits: StateLimits,
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
            limits,
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
                        let rows = self
                            .store
                            .user_state_rows(
                                user,
                                self.limits.history as u64,
                                self.limits.exclusions as u64,
                            )
                            .await?;
                        let s = UserState::from_rows(&rows, self.limits);
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

    /// An interaction recorded (or a like or save taken back, `removed`) through this
    /// instance: the state held here moves in place; the shared copy is deleted (the next
    /// instance to need it loads it afresh).
    pub async fn record(&self, user: Uuid, kind: InteractionKind, listing: Uuid, removed: bool) {
        self.apply(user, kind, listing, removed).await;
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

    /// Moves the state held here, if any, in place. Put back afterwards so the cache weighs it
    /// again: moka weighs an entry only when it is inserted, and a state that grew in place
    /// would otherwise count at the size it had when loaded.
    pub async fn apply(&self, user: Uuid, kind: InteractionKind, listing: Uuid, removed: bool) {
        apply_in(&self.l1, self.limits, user, (kind, listing, removed)).await;
    }

    /// Another instance changed this user in a way the state cannot follow in place.
    pub fn forget(&self, user: Uuid) {
        let l1 = self.l1.clone();
        // moka's async invalidate; the hook that calls this is synchronous.
        tokio::spawn(async move { l1.invalidate(&user).await });
    }

    /// Another instance recorded an interaction of this user: the state held here, if any,
    /// follows it in place rather than being reloaded whole.
    pub fn follow(&self, user: Uuid, kind: InteractionKind, listing: Uuid, removed: bool) {
        let (l1, limits) = (self.l1.clone(), self.limits);
        tokio::spawn(async move { apply_in(&l1, limits, user, (kind, listing, removed)).await });
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

/// `UserStates::apply` on a cache handle, so a spawned task can run it.
async fn apply_in(
    l1: &moka::future::Cache<Uuid, SharedState>,
    limits: StateLimits,
    user: Uuid,
    (kind, listing, removed): (InteractionKind, Uuid, bool),
) {
    let Some(state) = l1.get(&user).await else {
        return;
    };
    {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        if removed {
            s.remove(kind, listing);
        } else {
            s.record(kind, listing, limits);
        }
    }
    l1.insert(user, state).await;
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
        let s = UserState::from_rows(&rows, limits(2, 10));
        assert_eq!(s.events.len(), 2);
        assert!(s.excludes(&b) && s.excludes(&c) && !s.excludes(&a));
    }

    fn limits(history: usize, exclusions: usize) -> StateLimits {
        StateLimits {
            history,
            exclusions,
        }
    }

    #[test]
    fn exclusions_keep_the_newest_within_their_bound() {
        let mut s = UserState::default();
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            s.record(InteractionKind::Dismiss, *id, limits(2, 3));
        }
        s.record(InteractionKind::Inquiry, ids[4], limits(2, 3));
        assert!(!s.excludes(&ids[0]) && !s.excludes(&ids[1]) && !s.excludes(&ids[2]));
        assert!(s.excludes(&ids[3]) && s.excludes(&ids[4]));
        assert_eq!(s.weight(), 2 + 3);
        let newest_first: Vec<_> = ids
            .iter()
            .rev()
            .map(|id| row(InteractionKind::Dismiss, *id))
            .collect();
        let loaded = UserState::from_rows(&newest_first, limits(2, 3));
        assert!(loaded.excludes(&ids[2]) && !loaded.excludes(&ids[1]));
    }

    #[test]
    fn a_like_taken_back_leaves_the_history() {
        let mut s = UserState::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        s.record(InteractionKind::Like, a, limits(5, 5));
        s.record(InteractionKind::Save, a, limits(5, 5));
        s.record(InteractionKind::Like, b, limits(5, 5));
        s.remove(InteractionKind::Like, a);
        assert_eq!(
            s.events,
            VecDeque::from([(InteractionKind::Like, b), (InteractionKind::Save, a)])
        );
    }

    #[test]
    fn recording_keeps_the_newest_first_within_the_limit() {
        let mut s = UserState::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        s.record(InteractionKind::View, a, limits(2, 10));
        s.record(InteractionKind::Save, b, limits(2, 10));
        s.record(InteractionKind::Inquiry, a, limits(2, 10));
        assert_eq!(
            s.events,
            VecDeque::from([(InteractionKind::Inquiry, a), (InteractionKind::Save, b)])
        );
        assert!(s.excludes(&a));
    }
}
