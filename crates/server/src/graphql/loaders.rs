//! Per-request batching. One `DataLoader<LoaderContext>` per request answers every per-row lookup; each key
//! type below is one batched statement, so a query's statement count follows its shape, never
//! the number of rows it returns. Loaders live per request because results depend on who asks
//! (later: match scores) and must never leak between callers.
//!
//! async-graphql's DataLoader normally `tokio::spawn`s each batch, which then races the
//! resolvers on another worker thread: the batch goes out after `delay` with whatever keys have
//! arrived by then, so a busy machine splits batches and the statement count drifts. Here the
//! batches run on the request's own task instead (`Batches`): a batch can only start once the
//! resolvers have returned `Pending`, i.e. after every sibling in the list has registered its
//! key. Batching is complete by construction, and the delay can be zero (see
//! docs/PERFORMANCE.md for the measurement).
use crate::auth::Principal;
use crate::infra::cache::{Caches, Tier};
use crate::infra::telemetry::Metrics;
use crate::recommend::{RecommendError, Recommender};
use crate::store::{HistoryCursor, PropertyStats, SavedRow, Store, StoreError};
use async_graphql::dataloader::{DataLoader, Loader};
use entity::{Amenity, interaction, property, property_image, user};
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::task::AtomicWaker;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use uuid::Uuid;

/// What every loader of one request reads: the store, the caller, the recommender, metrics and
/// the entity cache.
#[derive(Clone)]
pub(crate) struct LoaderContext {
    store: Store,
    /// The caller: match scores are theirs, and inactive listings are visible to their owner
    /// and admins only, however they are reached.
    viewer: Principal,
    recommender: Arc<Recommender>,
    metrics: Arc<Metrics>,
    caches: Arc<Caches>,
}

impl LoaderContext {
    /// Whose inactive listings the caller may see: their own (`Some`), or all (`None`, admins).
    fn listing_viewer(&self) -> Option<Uuid> {
        if self.viewer.is_admin() {
            None
        } else {
            Some(self.viewer.user_id().unwrap_or(Uuid::nil()))
        }
    }

    /// Rows by id through the entity cache: hits from L1 and L2, the rest from `load` (one
    /// statement), which then fills both levels. Single flight: ids another request of this
    /// instance is loading right now are not loaded again; this one waits for that load and
    /// reads its result from L1 (and loads itself only what that did not bring).
    async fn through<V, F, Fut>(
        &self,
        tier: &Tier<V>,
        ids: Vec<Uuid>,
        load: F,
    ) -> Result<HashMap<Uuid, V>, LoadError>
    where
        V: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
        F: Fn(Store, Vec<Uuid>) -> Fut,
        Fut: Future<Output = Result<HashMap<Uuid, V>, StoreError>>,
    {
        if !self.caches.enabled {
            return Ok(load(self.store.clone(), ids).await?);
        }
        let (mut found, missing, base) = tier.get_many(&ids).await;
        if missing.is_empty() {
            return Ok(found);
        }
        // Ours are loaded and released before waiting for theirs: two requests each waiting
        // for the other's ids cannot happen.
        let (claim, theirs) = tier.claim(&missing);
        if !claim.ids().is_empty() {
            let loaded: Vec<(Uuid, V)> = load(self.store.clone(), claim.ids().to_vec())
                .await?
                .into_iter()
                .collect();
            tier.put_many(&loaded, &base).await;
            found.extend(loaded);
        }
        drop(claim);
        if !theirs.is_empty() {
            let waited = tier.wait(theirs).await;
            let (hits, still) = tier.get_local(&waited);
            found.extend(hits);
            if !still.is_empty() {
                // Rows that do not exist, or a load that failed: ask the database ourselves.
                found.extend(load(self.store.clone(), still).await?);
            }
        }
        Ok(found)
    }

    /// Users by id, through the entity cache.
    async fn users(&self, ids: Vec<Uuid>) -> Result<HashMap<Uuid, user::Model>, LoadError> {
        self.through(&self.caches.users, ids, |store, ids| async move {
            let rows = store.users_by_ids(&ids).await?;
            Ok(rows.into_iter().map(|u| (u.id, u)).collect())
        })
        .await
    }

    /// Runs one batch: counted per loader, in a span of its own, and a failure logged here once
    /// (the fields waiting on it then fail without logging it again).
    async fn batch<T, E: std::fmt::Display>(
        &self,
        loader: &'static str,
        keys: usize,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        use tracing::Instrument;
        self.metrics.record_load(loader, keys);
        let result = work
            .instrument(tracing::debug_span!("dataloader", loader, keys))
            .await;
        match &result {
            // The model being busy or slow is a degraded answer (MODEL_*), not a fault.
            Err(e) if loader == "match_score" => {
                tracing::warn!(loader, keys, error = %e, "match scores unavailable")
            }
            Err(e) => tracing::error!(loader, keys, error = %e, "a dataloader batch failed"),
            Ok(_) => {}
        }
        result
    }
}

pub(crate) type Loaders = DataLoader<LoaderContext>;

/// Creates the request's loaders and the queue their batches run from.
pub(crate) fn loaders(
    store: Store,
    viewer: Principal,
    recommender: Arc<Recommender>,
    metrics: Arc<Metrics>,
    caches: Arc<Caches>,
    delay: Duration,
    max_batch_size: usize,
) -> (Loaders, Batches) {
    let batches = Batches::default();
    let queue = batches.clone();
    let db = LoaderContext {
        store,
        viewer,
        recommender,
        metrics,
        caches,
    };
    let loaders = DataLoader::new(db, move |fut| queue.push(fut))
        .delay(delay)
        .max_batch_size(max_batch_size);
    (loaders, batches)
}

/// Batches waiting to run on the request's task.
#[derive(Clone, Default)]
pub(crate) struct Batches {
    inner: Arc<BatchesInner>,
}

#[derive(Default)]
struct BatchesInner {
    queue: Mutex<Vec<BoxFuture<'static, ()>>>,
    waker: AtomicWaker,
}

impl Batches {
    fn push(&self, fut: BoxFuture<'static, ()>) {
        self.inner
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(fut);
        self.inner.waker.wake();
    }

    /// Drives `work` (the GraphQL execution) and the batches it queues on this one task.
    /// Queued batches start only when `work` is stalled: it returned `Pending` without waking
    /// itself. A self-wake means it merely yielded (FuturesUnordered does so every 32 futures
    /// to be fair to other tasks) and more siblings are about to register keys.
    pub(crate) async fn run<F: Future>(&self, work: F) -> F::Output {
        let mut work = pin!(work);
        let mut running = FuturesUnordered::new();
        let detector = Arc::new(YieldDetector::default());
        std::future::poll_fn(|cx| {
            detector.arm(cx.waker());
            let waker = Waker::from(detector.clone());
            if let Poll::Ready(out) = work.as_mut().poll(&mut Context::from_waker(&waker)) {
                return Poll::Ready(out);
            }
            self.inner.waker.register(cx.waker());
            if !detector.woken.load(Ordering::Acquire) {
                let queued = std::mem::take(
                    &mut *self
                        .inner
                        .queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner),
                );
                running.extend(queued);
            }
            // Finished batches wake their resolvers, which wakes this task again.
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
            Poll::Pending
        })
        .await
    }
}

/// A waker around the task's waker that records whether it was woken.
#[derive(Default)]
struct YieldDetector {
    woken: AtomicBool,
    parent: Mutex<Option<Waker>>,
}

impl YieldDetector {
    fn arm(&self, parent: &Waker) {
        self.woken.store(false, Ordering::Release);
        let mut slot = self.parent.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|w| w.will_wake(parent)) {
            *slot = Some(parent.clone());
        }
    }
}

impl Wake for YieldDetector {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(w) = self
            .parent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            w.wake_by_ref();
        }
    }
}

type LoadError = Arc<StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct UserKey(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PropertyKey(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct InteractionKey(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ImagesKey(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AmenitiesKey(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct StatsKey(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct HistoryCountKey(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SavedCountKey(pub Uuid);

/// One page of a user's history; the limit already includes the row that tells whether more
/// follow. Keys with equal (limit, after) share a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct HistoryKey {
    pub user: Uuid,
    pub limit: u64,
    pub after: Option<HistoryCursor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SavedKey {
    pub user: Uuid,
    pub limit: u64,
    pub after: Option<HistoryCursor>,
}

fn ids<K: Copy>(keys: &[K], f: impl Fn(K) -> Uuid) -> Vec<Uuid> {
    keys.iter().map(|k| f(*k)).collect()
}

impl Loader<UserKey> for LoaderContext {
    type Value = user::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[UserKey]) -> Result<HashMap<UserKey, user::Model>, LoadError> {
        self.batch("user", keys.len(), async move {
            let found = self.users(ids(keys, |k| k.0)).await?;
            Ok(found.into_iter().map(|(id, u)| (UserKey(id), u)).collect())
        })
        .await
    }
}

impl Loader<PropertyKey> for LoaderContext {
    type Value = property::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PropertyKey],
    ) -> Result<HashMap<PropertyKey, property::Model>, LoadError> {
        self.batch("property", keys.len(), async move {
            let found = self
                .through(
                    &self.caches.properties,
                    ids(keys, |k| k.0),
                    |store, ids| async move {
                        let rows = store.properties_by_ids(&ids).await?;
                        Ok(rows.into_iter().map(|p| (p.id, p)).collect())
                    },
                )
                .await?;
            // Visibility is decided here, per request, on cached rows as on fresh ones.
            Ok(found
                .into_values()
                .filter(|p| self.viewer.may_see_listing(p))
                .map(|p| (PropertyKey(p.id), p))
                .collect())
        })
        .await
    }
}

impl Loader<InteractionKey> for LoaderContext {
    type Value = interaction::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[InteractionKey],
    ) -> Result<HashMap<InteractionKey, interaction::Model>, LoadError> {
        self.batch("interaction", keys.len(), async move {
            let rows = self.store.interactions_by_ids(&ids(keys, |k| k.0)).await?;
            Ok(rows
                .into_iter()
                .map(|i| (InteractionKey(i.id), i))
                .collect())
        })
        .await
    }
}

impl Loader<ImagesKey> for LoaderContext {
    type Value = Vec<property_image::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[ImagesKey]) -> Result<HashMap<ImagesKey, Self::Value>, LoadError> {
        self.batch("images", keys.len(), async move {
            let found = self
                .through(
                    &self.caches.images,
                    ids(keys, |k| k.0),
                    |store, ids| async move { store.images_for(&ids).await },
                )
                .await?;
            Ok(found
                .into_iter()
                .map(|(id, v)| (ImagesKey(id), v))
                .collect())
        })
        .await
    }
}

impl Loader<AmenitiesKey> for LoaderContext {
    type Value = Vec<Amenity>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[AmenitiesKey],
    ) -> Result<HashMap<AmenitiesKey, Self::Value>, LoadError> {
        self.batch("amenities", keys.len(), async move {
            let found = self
                .through(
                    &self.caches.amenities,
                    ids(keys, |k| k.0),
                    |store, ids| async move { store.amenities_for(&ids).await },
                )
                .await?;
            Ok(found
                .into_iter()
                .map(|(id, v)| (AmenitiesKey(id), v))
                .collect())
        })
        .await
    }
}

impl Loader<StatsKey> for LoaderContext {
    type Value = PropertyStats;
    type Error = LoadError;

    async fn load(&self, keys: &[StatsKey]) -> Result<HashMap<StatsKey, PropertyStats>, LoadError> {
        self.batch("stats", keys.len(), async move {
            let stats = self.store.stats_for(&ids(keys, |k| k.0)).await?;
            Ok(keys
                .iter()
                .map(|k| (*k, stats.get(&k.0).copied().unwrap_or_default()))
                .collect())
        })
        .await
    }
}

impl Loader<HistoryCountKey> for LoaderContext {
    type Value = i64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[HistoryCountKey],
    ) -> Result<HashMap<HistoryCountKey, i64>, LoadError> {
        self.batch("history_count", keys.len(), async move {
            let counts = self.store.interaction_counts(&ids(keys, |k| k.0)).await?;
            Ok(keys
                .iter()
                .map(|k| (*k, counts.get(&k.0).copied().unwrap_or(0)))
                .collect())
        })
        .await
    }
}

impl Loader<SavedCountKey> for LoaderContext {
    type Value = i64;
    type Error = LoadError;

    async fn load(&self, keys: &[SavedCountKey]) -> Result<HashMap<SavedCountKey, i64>, LoadError> {
        self.batch("saved_count", keys.len(), async move {
            let counts = self
                .store
                .saved_counts(&ids(keys, |k| k.0), self.listing_viewer())
                .await?;
            Ok(keys
                .iter()
                .map(|k| (*k, counts.get(&k.0).copied().unwrap_or(0)))
                .collect())
        })
        .await
    }
}

/// Groups keys that differ only by user, so each group is one statement.
fn groups<K, G: Eq + std::hash::Hash>(keys: &[K], group: impl Fn(&K) -> G) -> HashMap<G, Vec<&K>> {
    let mut out: HashMap<G, Vec<&K>> = HashMap::new();
    for k in keys {
        out.entry(group(k)).or_default().push(k);
    }
    out
}

impl Loader<HistoryKey> for LoaderContext {
    type Value = Vec<interaction::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[HistoryKey],
    ) -> Result<HashMap<HistoryKey, Self::Value>, LoadError> {
        self.batch("history", keys.len(), async move {
            let mut out = HashMap::new();
            for ((limit, after), group) in groups(keys, |k| (k.limit, k.after)) {
                let users: Vec<Uuid> = group.iter().map(|k| k.user).collect();
                let rows = self
                    .store
                    .interactions_for_users(&users, limit, after)
                    .await?;
                let mut by_user: HashMap<Uuid, Vec<interaction::Model>> = HashMap::new();
                for row in rows {
                    by_user.entry(row.user_id).or_default().push(row);
                }
                for k in group {
                    out.insert(*k, by_user.remove(&k.user).unwrap_or_default());
                }
            }
            Ok(out)
        })
        .await
    }
}

impl Loader<SavedKey> for LoaderContext {
    type Value = Vec<SavedRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[SavedKey]) -> Result<HashMap<SavedKey, Self::Value>, LoadError> {
        self.batch("saved", keys.len(), async move {
            let mut out = HashMap::new();
            for ((limit, after), group) in groups(keys, |k| (k.limit, k.after)) {
                let users: Vec<Uuid> = group.iter().map(|k| k.user).collect();
                let rows = self
                    .store
                    .saved_for_users(&users, limit, after, self.listing_viewer())
                    .await?;
                let mut by_user: HashMap<Uuid, Vec<SavedRow>> = HashMap::new();
                for row in rows {
                    by_user.entry(row.user_id).or_default().push(row);
                }
                for k in group {
                    out.insert(*k, by_user.remove(&k.user).unwrap_or_default());
                }
            }
            Ok(out)
        })
        .await
    }
}

/// The caller's match score for a listing; every listing of a page in one model submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MatchKey(pub Uuid);

impl Loader<MatchKey> for LoaderContext {
    type Value = f64;
    type Error = Arc<RecommendError>;

    async fn load(&self, keys: &[MatchKey]) -> Result<HashMap<MatchKey, f64>, Self::Error> {
        self.batch("match_score", keys.len(), async move {
            let Some(viewer) = self.viewer.user_id() else {
                return Ok(HashMap::new());
            };
            let users = self
                .users(vec![viewer])
                .await
                .map_err(|e| Arc::new(RecommendError::Store(StoreError::unshare(e))))?;
            let Some(user) = users.get(&viewer) else {
                return Ok(HashMap::new());
            };
            let scores = self
                .recommender
                .match_scores(user, &ids(keys, |k| k.0))
                .await?;
            Ok(scores
                .into_iter()
                .map(|(id, s)| (MatchKey(id), s))
                .collect())
        })
        .await
    }
}

/// Listings like this one (same city and type, closest in price), `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SimilarKey {
    pub property: Uuid,
    pub limit: u64,
}

impl Loader<SimilarKey> for LoaderContext {
    type Value = Vec<Uuid>;
    type Error = LoadError;

    async fn load(&self, keys: &[SimilarKey]) -> Result<HashMap<SimilarKey, Vec<Uuid>>, LoadError> {
        self.batch("similar", keys.len(), async move {
            let mut out = HashMap::new();
            for (limit, group) in groups(keys, |k| k.limit) {
                let targets: Vec<Uuid> = group.iter().map(|k| k.property).collect();
                let mut found = self.store.similar_listings(&targets, limit).await?;
                for k in group {
                    out.insert(*k, found.remove(&k.property).unwrap_or_default());
                }
            }
            Ok(out)
        })
        .await
    }
}
