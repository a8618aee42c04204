//! Recommendations and match scores, from memory: candidates and listing features from the
//! listing index (`index`), the user's recent interactions and exclusions from their cached
//! state (`user_state`), features from `ml::features` (the same code that produced the
//! training data), scores from the batching executor, then ranking with a small diversity
//! rule and reasons a person can read. A warm request runs no SQL. When the model cannot
//! answer (overload, deadline, failure) the list falls back to popularity and says so.

pub mod baseline;
pub mod clusters;
pub mod co_engagement;
pub mod facets;
pub mod index;
mod settings;
pub mod user_state;
pub use settings::{DEFAULT_ORT_LIBRARY, MlSettings};

use crate::store::{PropertyFilter, Store, StoreError};
use chrono::Utc;
use entity::{Amenity, InteractionKind, user};
use index::{Entry, ListingIndex, Snapshot};
use rentgraph_model::batcher::{Batcher, ScoreError};
use rentgraph_model::features::{
    FEATURE_NAMES, FeatureRow, ListingFacts, N_FEATURES, UserProfile, engages, features,
};
use rentgraph_model::model::ModelInfo;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use user_state::{UserState, UserStates};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Score(#[from] ScoreError),
    #[error("the recommendation model is turned off (ml.enabled = false)")]
    Disabled,
}

impl RecommendError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Store(_) => "store",
            Self::Score(ScoreError::Overloaded) => "overloaded",
            Self::Score(ScoreError::DeadlineExceeded) => "deadline",
            Self::Score(ScoreError::Failed(_)) => "failed",
            Self::Score(ScoreError::ShuttingDown) => "shutdown",
            Self::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Model,
    /// Retrieval's prior: for anonymous callers, or because the model could not answer.
    Popularity,
    /// The gate held the model back (its sealed evaluation does not beat this baseline).
    Baseline(baseline::Baseline),
}

/// What the gate decided at start-up: serve the model, or hold it back for a baseline.
#[derive(Debug, Clone)]
pub struct GateDecision {
    /// `Some`: the model is not served; this baseline answers instead.
    pub serve_baseline: Option<baseline::Baseline>,
    /// The sealed verdict it was made on (none: the model was sealed without an evaluation).
    pub sealed: Option<rentgraph_model::model::SealedGate>,
    /// `ml.serve_unproven` overrode a verdict that did not pass.
    pub overridden: bool,
}

impl GateDecision {
    /// Decides from the model's info: a model whose sealed evaluation did not pass (or that
    /// has none) is held back unless `serve_unproven`.
    pub fn decide(info: &ModelInfo, serve_unproven: bool) -> Self {
        let sealed = info.gate.clone();
        let passed = sealed.as_ref().is_some_and(|g| g.passed);
        let baseline = sealed
            .as_ref()
            .and_then(|g| baseline::Baseline::from_name(&g.serve_baseline))
            .unwrap_or(baseline::Baseline::ModelOff);
        Self {
            serve_baseline: (!passed && !serve_unproven).then_some(baseline),
            overridden: !passed && serve_unproven,
            sealed,
        }
    }

    /// What /ready reports.
    pub fn describe(&self, version: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "model": version,
            "serving": match self.serve_baseline {
                Some(b) => format!("baseline {}", b.name()),
                None => "model".to_owned(),
            },
            "gate": match &self.sealed {
                Some(g) => serde_json::json!({
                    "passed": g.passed,
                    "model_ndcg": g.model,
                    "best_baseline": g.best_baseline,
                    "best_baseline_ndcg": g.best_baseline_ndcg,
                    "ratio": g.vs_best_baseline.ratio,
                    "ci95": g.vs_best_baseline.ci95,
                    "overridden_by_serve_unproven": self.overridden,
                }),
                None => serde_json::json!("no sealed evaluation"),
            },
        })
    }
}

#[derive(Debug, Clone)]
pub struct Recommendation {
    /// The listing; the caller loads it (through the entity cache) and checks it is still
    /// active.
    pub id: Uuid,
    pub score: f64,
    pub rank: usize,
    pub reasons: Vec<String>,
    pub source: Source,
}

pub struct Recommender {
    index: Arc<ListingIndex>,
    states: UserStates,
    batcher: Option<Arc<Batcher>>,
    info: Option<ModelInfo>,
    settings: MlSettings,
    metrics: Arc<crate::infra::telemetry::Metrics>,
    /// Recent results per user (anonymous: `None`), by arguments.
    results: Option<moka::sync::Cache<Option<uuid::Uuid>, Arc<ResultsByArgs>>>,
    /// Whether the model is served (`None`: there is no model).
    gate: Option<GateDecision>,
}

type ResultsByArgs = Mutex<HashMap<u64, (Vec<Recommendation>, Source)>>;

/// Argument sets whose results are kept per caller (all anonymous callers share one map): a
/// caller varying `first` and `filter` on every request would otherwise grow it without end.
const RESULTS_PER_CALLER: usize = 32;

/// Keeps a result unless the caller's map is full of other arguments' results (they expire
/// with the map, after `ml.results_ttl_secs`).
fn keep_bounded<V>(map: &mut HashMap<u64, V>, args: u64, value: V) {
    if map.len() < RESULTS_PER_CALLER || map.contains_key(&args) {
        map.insert(args, value);
    }
}

/// Fewer candidates than this after the stated cities (two pages of recommendations), and
/// popular listings from anywhere are added: a stated city with a few dozen listings on the
/// market still gets its own recommendations.
const MIN_CANDIDATES: usize = 20;

/// The profile: stated preferences, and the user's latest interactions with the listings the
/// index knows (inactive ones included: they still say what the user likes).
pub fn profile_of(user: &user::Model, state: &UserState, snap: &Snapshot) -> UserProfile {
    let mut profile = UserProfile::build(
        user.preferences.clone(),
        state
            .events
            .iter()
            .filter_map(|(kind, id)| snap.get(id).map(|e| (*kind, e.static_facts()))),
    );
    let co = snap
        .co_engagement()
        .scores(state.events.iter().map(|(k, id)| (*k, *id)));
    profile.co_engagement = co.scores;
    profile.co_engagement_max = co.max;
    profile
}

/// Where a user looks: their stated cities, else the two they browse most.
pub fn looked_at(user: &user::Model, profile: &UserProfile) -> Vec<String> {
    if !user.preferences.cities.is_empty() {
        return user.preferences.cities.clone();
    }
    let mut cities: Vec<(&String, &f32)> = profile.city_share.iter().collect();
    cities.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    cities.into_iter().take(2).map(|(c, _)| c.clone()).collect()
}

/// Recently engaged listings (liked, saved, asked about) that retrieval looks for neighbours
/// of, newest first.
const ANCHORS: usize = 5;

/// Candidates for one user (anonymous: `None`), all passing `keep`:
/// - `co_candidates` listings with the highest co-engagement scores (item-kNN over what renters
///   who touched the same listings went on to), within the stated cities when there are any;
/// - listings like the ones the user recently liked, saved or asked about (`anchors`): same
///   city as the anchor (one of the stated cities, when the user states any), a bedroom
///   either way, price within a fifth either way, most popular first, a tenth of the
///   candidates in all;
/// - where the user looks (stated cities, else the two they browse most), within their budget
///   (stated and widened by a fifth either way, else 0.6-1.6 times the mean price they engaged
///   with) and size (the stated minimum of bedrooms, and within 1.5 of the mean they engaged
///   with), by the engagement prior (`Entry::prior`: recent popularity), plus a tenth of the
///   newest there (exploration: new listings have no popularity yet);
/// - then the most popular listings in the stated cities, or anywhere when there are none or
///   too few.
pub fn retrieve<'s>(
    snap: &'s Snapshot,
    user: Option<(&user::Model, &UserProfile)>,
    anchors: &[&Entry],
    total: usize,
    co_candidates: usize,
    keep: &dyn Fn(&Entry) -> bool,
) -> Vec<&'s Entry> {
    let mut out: Vec<&Entry> = Vec::with_capacity(total);
    // Each source skips what an earlier one gave, so the candidates add up to `total`.
    let seen: RefCell<HashSet<Uuid>> = RefCell::new(HashSet::with_capacity(total));
    let fresh = |e: &Entry| !seen.borrow().contains(&e.id);
    let add = |out: &mut Vec<&'s Entry>, more: Vec<&'s Entry>| {
        let mut seen = seen.borrow_mut();
        for e in more {
            if seen.insert(e.id) {
                out.push(e);
            }
        }
    };
    let stated: &[String] = user.map_or(&[], |(u, _)| u.preferences.cities.as_slice());
    let cities = user.map(|(u, p)| looked_at(u, p)).unwrap_or_default();
    // Stated cities are the user's word and bound the candidates; without them, anchors in
    // any city follow a renter whose search moved on.
    if let Some((_, profile)) = user
        && co_candidates > 0
    {
        let in_area =
            |e: &Entry| (stated.is_empty() || stated.contains(&e.static_facts().city)) && keep(e);
        let n = co_candidates.min(total);
        add(
            &mut out,
            baseline::co_engagement_list(snap, profile, n, &in_area),
        );
    }
    let anchored: Vec<&&Entry> = anchors
        .iter()
        .filter(|a| stated.is_empty() || stated.contains(&a.static_facts().city))
        .collect();
    if !anchored.is_empty() {
        let each = (total / 10 / anchored.len()).max(5);
        for a in anchored {
            let f = a.static_facts();
            let (lo, hi) = (
                f64::from(f.monthly_price) * 0.8,
                f64::from(f.monthly_price) * 1.25,
            );
            let like = |e: &Entry| {
                let g = e.static_facts();
                let price = f64::from(g.monthly_price);
                (g.bedrooms - f.bedrooms).abs() <= 1
                    && price >= lo
                    && price <= hi
                    && e.id != a.id
                    && fresh(e)
                    && keep(e)
            };
            add(
                &mut out,
                snap.popular_in(std::slice::from_ref(&f.city), each, &like),
            );
        }
    }
    let similar = out.len();
    if let Some((u, profile)) = user {
        // The budget and size: stated, else around the prices and sizes the user engaged with.
        let fit = baseline::Fit::of(u, profile, baseline::Area::Inferred);
        if !cities.is_empty() || fit.has_ceiling() {
            let in_budget = |e: &Entry| fit.accepts(e) && fresh(e) && keep(e);
            let explore = if cities.is_empty() { 0 } else { total / 10 };
            let n = (total * 2 / 3).saturating_sub(explore + similar);
            add(&mut out, snap.popular_in(&cities, n, &in_budget));
            add(&mut out, snap.newest_in(&cities, explore, &in_budget));
        }
    }
    let rest = |e: &Entry| fresh(e) && keep(e);
    let room = total.saturating_sub(out.len());
    add(&mut out, snap.popular_in(stated, room, &rest));
    if !stated.is_empty() && out.len() < MIN_CANDIDATES {
        let room = total.saturating_sub(out.len());
        add(&mut out, snap.popular_in(&[], room, &rest));
    }
    out
}

/// What serving ranks for a user (anonymous: `None`) with their state: their profile and
/// `total` candidates passing `filter`, never one they dismissed or asked about. The offline
/// replays (`replay`) call it too.
pub fn candidates_for<'s>(
    snap: &'s Snapshot,
    user: Option<(&user::Model, &UserState)>,
    filter: &PropertyFilter,
    total: usize,
    co_candidates: usize,
) -> (Option<UserProfile>, Vec<&'s Entry>) {
    let profile = user.map(|(u, s)| profile_of(u, s, snap));
    let keep = |e: &Entry| e.matches(filter) && !user.is_some_and(|(_, s)| s.excludes(&e.id));
    let mut anchors: Vec<&Entry> = Vec::with_capacity(ANCHORS);
    for (kind, id) in user.iter().flat_map(|(_, s)| s.events.iter()) {
        if anchors.len() == ANCHORS {
            break;
        }
        if engages(*kind)
            && !anchors.iter().any(|a| a.id == *id)
            && let Some(e) = snap.get(id)
        {
            anchors.push(e);
        }
    }
    let candidates = retrieve(
        snap,
        user.map(|(u, _)| u).zip(profile.as_ref()),
        &anchors,
        total,
        co_candidates,
        &keep,
    );
    (profile, candidates)
}

/// What serving ranks for one user: their profile (none for anonymous callers), the candidates
/// with their facts, and, for a signed-in user, the feature rows the model scores.
pub struct Prepared<'s> {
    pub profile: Option<UserProfile>,
    pub candidates: Vec<&'s Entry>,
    pub facts: Vec<ListingFacts>,
    pub rows: Vec<FeatureRow>,
}

/// Candidates (`candidates_for`), their facts and feature rows as of `now`: what
/// `recommendations`, the parity check and the offline replays (`replay`) all rank.
pub fn prepare<'s>(
    snap: &'s Snapshot,
    user: Option<(&user::Model, &UserState)>,
    filter: &PropertyFilter,
    (total, co_candidates): (usize, usize),
    now: chrono::DateTime<Utc>,
) -> Prepared<'s> {
    let (profile, candidates) = candidates_for(snap, user, filter, total, co_candidates);
    let facts: Vec<ListingFacts> = candidates.iter().map(|e| snap.facts(e)).collect();
    let rows = match &profile {
        Some(p) => facts.iter().map(|f| features(p, f, now)).collect(),
        None => Vec::new(),
    };
    Prepared {
        profile,
        candidates,
        facts,
        rows,
    }
}

impl Recommender {
    pub fn new(
        store: Store,
        batcher: Option<Arc<Batcher>>,
        info: Option<ModelInfo>,
        settings: MlSettings,
        redis: Option<crate::infra::redis::RedisStore>,
        metrics: Arc<crate::infra::telemetry::Metrics>,
    ) -> Self {
        let results = (settings.results_ttl_secs > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(settings.results_ttl_secs))
                .build()
        });
        let gate = info
            .as_ref()
            .map(|i| GateDecision::decide(i, settings.serve_unproven));
        let recommender = Self {
            gate,
            index: Arc::new(ListingIndex::new(store.clone())),
            states: UserStates::new(
                store,
                settings.state_limits(),
                settings.user_state_capacity,
                Duration::from_secs(settings.user_state_ttl_secs.max(1)),
                redis,
                Some(metrics.clone()),
            ),
            batcher,
            info,
            settings,
            metrics,
            results,
        };
        recommender.register_metrics();
        recommender
    }

    /// The index's gauges and the gate's: registered once, when the recommender is built.
    fn register_metrics(&self) {
        let metrics = &self.metrics;
        self.index.register_metrics(&metrics.meter());
        if let Some(gate) = &self.gate {
            let labels = [opentelemetry::KeyValue::new(
                "serving",
                gate.serve_baseline.map_or("model", |b| b.name()),
            )];
            let held_back = u64::from(gate.serve_baseline.is_some());
            metrics
                .meter()
                .u64_observable_gauge("rentgraph_recommender_gated")
                .with_description(
                    "1 when the model's sealed evaluation does not beat the best baseline and \
                     that baseline answers recommendations instead (label: what is served)",
                )
                .with_callback(move |o| o.observe(held_back, &labels))
                .build();
        }
    }

    pub fn model_version(&self) -> Option<&str> {
        self.info.as_ref().map(|i| i.version.as_str())
    }

    /// The gate's decision (`None`: no model is loaded).
    pub fn gate(&self) -> Option<&GateDecision> {
        self.gate.as_ref()
    }

    /// The baseline served in place of the model, when the gate held it back.
    fn gated(&self) -> Option<baseline::Baseline> {
        self.gate.as_ref().and_then(|g| g.serve_baseline)
    }

    pub fn index(&self) -> &Arc<ListingIndex> {
        &self.index
    }

    /// Loads the listing index now, then again every `ml.index_refresh_secs` in the
    /// background (a failed reload keeps the old snapshot and is logged).
    pub async fn start_index(&self) -> Result<(), StoreError> {
        self.index.reload().await?;
        let every = Duration::from_secs(self.settings.index_refresh_secs);
        if every.is_zero() {
            return Ok(());
        }
        let index = Arc::downgrade(&self.index);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(index) = index.upgrade() else { return };
                if let Err(e) = index.reload().await {
                    tracing::warn!(error = %e, "reloading the listing index failed");
                }
            }
        });
        Ok(())
    }

    /// An interaction recorded (or a like or save taken back, `removed`) through this instance:
    /// the user's state and the listing's counters move in place.
    pub async fn interaction_recorded(
        &self,
        user: Uuid,
        listing: Uuid,
        kind: InteractionKind,
        removed: bool,
    ) {
        self.states.record(user, kind, listing, removed).await;
        self.index.record(listing, kind, removed);
    }

    /// Follows the invalidation bus: a listing's change reaches the index and drops every
    /// cached result; a user's change drops their results, and their state when the change was
    /// made elsewhere (changes made here updated it in place); another instance's interaction
    /// moves the user's state and the listing's counters here in place; `None` (messages may
    /// have been lost) drops all of it and reloads the index.
    pub fn changed(
        &self,
        changed: Option<crate::infra::cache::Changed>,
        origin: crate::infra::cache::Origin,
    ) {
        use crate::infra::cache::{Changed, Origin};
        match changed {
            Some(Changed::Property(id)) => {
                // Asked before the index applies the change: is the listing coming onto the
                // market here (new, or active again)? Then it may belong in any cached list.
                // Otherwise only the lists that show it are stale; a list it might now enter
                // (a lower price, say) catches up within `ml.results_ttl_secs`. So one owner
                // editing a listing in a loop drops a few lists, not every user's.
                let arriving = self.index.snapshot().get(&id).is_none_or(|e| !e.active);
                self.index.changed(id);
                if arriving {
                    self.forget(None);
                } else {
                    self.forget_listing(id);
                }
            }
            Some(Changed::User(id)) => {
                if origin == Origin::Elsewhere {
                    self.states.forget(id);
                }
                self.forget(Some(id));
            }
            Some(Changed::Interaction {
                user,
                listing,
                kind,
                removed,
            }) => {
                if origin == Origin::Elsewhere {
                    self.states.follow(user, kind, listing, removed);
                    self.index.record(listing, kind, removed);
                }
                self.forget(Some(user));
            }
            None => {
                self.states.forget_all();
                self.forget(None);
                let snap = self.index.snapshot();
                // At start-up the index is loading anyway.
                if !snap.is_empty() && snap.age() > Duration::from_secs(5) {
                    let index = self.index.clone();
                    tokio::spawn(async move {
                        if let Err(e) = index.reload().await {
                            tracing::warn!(error = %e, "reloading the listing index failed");
                        }
                    });
                }
            }
        }
    }

    async fn score_rows(&self, rows: Vec<f32>) -> Result<Vec<f32>, RecommendError> {
        let batcher = self.batcher.as_ref().ok_or(RecommendError::Disabled)?;
        let deadline = Instant::now() + Duration::from_millis(self.settings.deadline_ms);
        use tracing::Instrument;
        let span = tracing::debug_span!("model", rows = rows.len() / N_FEATURES);
        Ok(batcher.score(rows, deadline).instrument(span).await?)
    }

    /// Up to `first` recommendations for `user` (popularity for anonymous callers).
    /// Recommendations, reused for `ml.results_ttl_secs` per (user, arguments) until the user's
    /// next interaction or preference change, a change to a listing they show, or a listing
    /// coming onto the market (`changed`). Popularity
    /// fallbacks of signed-in users are not kept: the model may answer on the next request.
    pub async fn recommend(
        &self,
        user: Option<&user::Model>,
        first: usize,
        filter: &PropertyFilter,
    ) -> Result<(Vec<Recommendation>, Source), StoreError> {
        let Some(results) = &self.results else {
            return self.compute(user, first, filter).await;
        };
        let owner = user.map(|u| u.id);
        let args = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (first, format!("{filter:?}")).hash(&mut h);
            h.finish()
        };
        let entry = results.get_with(owner, Default::default);
        if let Some(hit) = entry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&args)
        {
            self.metrics
                .record_cache("results", "recommendations", "hit", 1);
            return Ok(hit.clone());
        }
        self.metrics
            .record_cache("results", "recommendations", "miss", 1);
        let fresh = self.compute(user, first, filter).await?;
        if fresh.1 != Source::Popularity || owner.is_none() {
            keep_bounded(
                &mut entry
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                args,
                fresh.clone(),
            );
        }
        Ok(fresh)
    }

    /// Drops cached results: one user's (after their interaction or preference change), or
    /// everyone's (`None`, after a listing changed: a cached list must not show it as it was).
    pub fn forget(&self, user: Option<uuid::Uuid>) {
        if let Some(results) = &self.results {
            match user {
                Some(id) => results.invalidate(&Some(id)),
                None => results.invalidate_all(),
            }
        }
    }

    /// Drops the cached lists that show this listing (one pass over the cached callers).
    pub fn forget_listing(&self, listing: Uuid) {
        let Some(results) = &self.results else { return };
        for (_, by_args) in results.iter() {
            by_args
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, (list, _)| list.iter().all(|r| r.id != listing));
        }
    }

    async fn compute(
        &self,
        user: Option<&user::Model>,
        first: usize,
        filter: &PropertyFilter,
    ) -> Result<(Vec<Recommendation>, Source), StoreError> {
        let snap = self.index.fresh().await?;
        let state = match user {
            Some(u) => Some(self.states.get(u.id).await?),
            None => None,
        };
        let Prepared {
            profile,
            candidates,
            facts,
            rows,
        } = {
            let guard = state
                .as_ref()
                .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner));
            prepare(
                &snap,
                user.zip(guard.as_deref()),
                filter,
                self.settings.retrieval(),
                snap.clock(),
            )
        };
        let mut scored: Vec<(usize, f64, Option<FeatureRow>)> = Vec::with_capacity(facts.len());
        let mut source = Source::Popularity;
        let gated = self.gated().filter(|_| profile.is_some());
        if let (Some(b), Some(user), Some(profile)) = (gated, user, &profile)
            && b != baseline::Baseline::ModelOff
        {
            let guard = state
                .as_ref()
                .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner));
            let keep = |e: &Entry| {
                e.matches(filter) && !guard.as_deref().is_some_and(|s| s.excludes(&e.id))
            };
            let mut list = match b {
                baseline::Baseline::Popularity { window, area } => {
                    baseline::popularity_list(&snap, user, profile, (window, area), first, &keep)
                }
                _ => baseline::co_engagement_list(&snap, profile, first, &keep),
            };
            // Item-kNN runs out for a renter with little history: the model-off list fills in,
            // as in the evaluation.
            let off = model_off(
                &candidates,
                &facts,
                first,
                self.settings.max_per_neighbourhood,
            );
            for (i, _, _) in off {
                if list.len() >= first {
                    break;
                }
                if !list.iter().any(|x| x.id == candidates[i].id) {
                    list.push(candidates[i]);
                }
            }
            return Ok((
                baseline_answer(&snap, list, profile, b),
                Source::Baseline(b),
            ));
        }
        if gated == Some(baseline::Baseline::ModelOff) {
            source = Source::Baseline(baseline::Baseline::ModelOff);
        } else if profile.is_some()
            && let Some(model) = self.model_scores(rows).await
        {
            source = Source::Model;
            scored = model;
        }
        if source != Source::Model {
            scored = by_prior(&candidates);
        }
        let picked = pick(
            scored,
            &candidates,
            &facts,
            first,
            self.settings.max_per_neighbourhood,
        );
        let out = answer(picked, &candidates, &facts, profile.as_ref(), source);
        Ok((out, source))
    }

    /// The model's scores of the rows, through the batching executor; `None` (counted and
    /// logged) when it cannot answer, so the caller falls back to the prior.
    async fn model_scores(
        &self,
        rows: Vec<FeatureRow>,
    ) -> Option<Vec<(usize, f64, Option<FeatureRow>)>> {
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        match self.score_rows(flat).await {
            Ok(scores) => Some(
                rows.into_iter()
                    .zip(scores)
                    .enumerate()
                    .map(|(i, (r, s))| (i, f64::from(s), Some(r)))
                    .collect(),
            ),
            Err(e) => {
                self.metrics.record_fallback(e.reason());
                tracing::warn!(error = %e, "recommendations fall back to popularity");
                None
            }
        }
    }

    /// The candidates and feature rows `recommendations` would score for `user` at `now`
    /// (without filters). The training/serving parity test compares them with the replay's.
    pub async fn feature_rows(
        &self,
        user: &user::Model,
        now: chrono::DateTime<Utc>,
    ) -> Result<Vec<(Uuid, FeatureRow)>, StoreError> {
        let snap = self.index.fresh().await?;
        let state = self.states.get(user.id).await?;
        let guard = state.lock().unwrap_or_else(PoisonError::into_inner);
        let filter = PropertyFilter {
            active: Some(true),
            ..Default::default()
        };
        let prepared = prepare(
            &snap,
            Some((user, &guard)),
            &filter,
            self.settings.retrieval(),
            now,
        );
        Ok(prepared
            .candidates
            .iter()
            .map(|e| e.id)
            .zip(prepared.rows)
            .collect())
    }

    /// The model's score for each listing, for one user: one submission for all of them.
    pub async fn match_scores(
        &self,
        user: &user::Model,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, f64>, RecommendError> {
        if self.batcher.is_none() {
            return Err(RecommendError::Disabled);
        }
        let snap = self.index.fresh().await?;
        let state = self.states.get(user.id).await?;
        let profile = profile_of(
            user,
            &state.lock().unwrap_or_else(PoisonError::into_inner),
            &snap,
        );
        let known: Vec<(Uuid, ListingFacts)> = ids
            .iter()
            .filter_map(|id| snap.get(id).map(|e| (*id, snap.facts(e))))
            .collect();
        let now = snap.clock();
        let flat: Vec<f32> = known
            .iter()
            .flat_map(|(_, f)| features(&profile, f, now))
            .collect();
        let scores = self.score_rows(flat).await?;
        Ok(known
            .iter()
            .map(|(id, _)| *id)
            .zip(scores.into_iter().map(f64::from))
            .collect())
    }
}

/// A gated answer from a baseline's list: scores relative to the first, popularity reasons
/// (and co-engagement's, for listings the user's neighbours engaged with).
fn baseline_answer(
    snap: &Snapshot,
    list: Vec<&Entry>,
    profile: &UserProfile,
    b: baseline::Baseline,
) -> Vec<Recommendation> {
    let n = list.len().max(1) as f64;
    list.into_iter()
        .enumerate()
        .map(|(rank, e)| {
            let f = snap.facts(e);
            let mut reasons = Vec::new();
            if profile.co_engagement.get(&e.id).is_some_and(|s| *s > 0.0) {
                reasons.push("Renters who liked what you liked also liked this".to_owned());
            }
            reasons.extend(popularity_reasons(&f));
            reasons.truncate(3);
            Recommendation {
                id: e.id,
                score: 1.0 - rank as f64 / n,
                rank: rank + 1,
                reasons,
                source: Source::Baseline(b),
            }
        })
        .collect()
}

/// The model-off list: the candidates by retrieval's prior, through `pick` (the baseline the
/// evaluation measures and the gate serves, and what item-kNN falls back to).
pub fn model_off(
    candidates: &[&Entry],
    facts: &[ListingFacts],
    first: usize,
    per_neighbourhood: usize,
) -> Vec<(usize, f64, Option<FeatureRow>)> {
    pick(
        candidates
            .iter()
            .enumerate()
            .map(|(i, e)| (i, e.prior(), None))
            .collect(),
        candidates,
        facts,
        first,
        per_neighbourhood,
    )
}

/// The final list from scored candidates (index into `candidates`, score, features): best
/// first, ties by id, then the diversity rule.
pub fn pick(
    mut scored: Vec<(usize, f64, Option<FeatureRow>)>,
    candidates: &[&Entry],
    facts: &[ListingFacts],
    first: usize,
    per_neighbourhood: usize,
) -> Vec<(usize, f64, Option<FeatureRow>)> {
    scored.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(candidates[a.0].id.cmp(&candidates[b.0].id))
    });
    diversify(&scored, facts, first, per_neighbourhood)
}

/// Best first, but at most `per_neighbourhood` listings from one neighbourhood while others
/// are left; the rest fill up in score order.
fn diversify(
    scored: &[(usize, f64, Option<FeatureRow>)],
    listings: &[ListingFacts],
    first: usize,
    per_neighbourhood: usize,
) -> Vec<(usize, f64, Option<FeatureRow>)> {
    let mut picked = Vec::with_capacity(first);
    let mut skipped = Vec::new();
    let mut counts: HashMap<(&str, &str), usize> = HashMap::new();
    for item in scored {
        if picked.len() == first {
            break;
        }
        let p = &listings[item.0];
        let n = counts
            .entry((p.city.as_str(), p.neighbourhood.as_str()))
            .or_default();
        if *n < per_neighbourhood.max(1) {
            *n += 1;
            picked.push(*item);
        } else {
            skipped.push(*item);
        }
    }
    picked.extend(skipped.into_iter().take(first - picked.len()));
    picked
}

/// The position of the feature called `name` in a row (past the end when there is none).
fn feature_index(name: &str) -> usize {
    FEATURE_NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or(N_FEATURES)
}

/// The value of the feature called `name` in `row` (0 when there is none).
fn feature_value(row: &FeatureRow, name: &str) -> f32 {
    row.get(feature_index(name)).copied().unwrap_or(0.0)
}

fn label(a: Amenity) -> String {
    format!("{a:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let lower = c.to_ascii_lowercase();
            if c.is_uppercase() && i > 0 {
                vec![' ', lower]
            } else {
                vec![lower]
            }
        })
        .collect()
}

/// Up to three short reasons, from the strongest signals in the features.
fn reasons(row: &FeatureRow, f: &ListingFacts, profile: &UserProfile) -> Vec<String> {
    let p = f;
    let mut out = Vec::new();
    if feature_value(row, "pref_city_match") > 0.0 {
        out.push(format!("In {}, where you are looking", p.city));
    } else if feature_value(row, "hist_city_share") >= 0.3 {
        out.push(format!("In {}, a city you often browse", p.city));
    }
    if feature_value(row, "pref_price_in_range") > 0.0 {
        out.push(format!("Within your budget at {} a month", p.monthly_price));
    } else if profile.log_price_mean.is_some()
        && feature_value(row, "hist_price_abs_log_ratio") < 0.15
    {
        out.push("Priced like places you liked".to_owned());
    }
    let wanted: Vec<String> = profile
        .preferences
        .amenities
        .iter()
        .filter(|a| f.has(**a))
        .map(|a| label(*a))
        .collect();
    if !wanted.is_empty() {
        out.push(format!("Has the {} you asked for", wanted.join(" and ")));
    }
    if feature_value(row, "pref_type_match") > 0.0 || feature_value(row, "hist_type_share") >= 0.5 {
        let kind = format!("{:?}", p.property_type).to_lowercase();
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "An"
        } else {
            "A"
        };
        out.push(format!("{article} {kind}, the kind you prefer"));
    }
    if feature_value(row, "co_engagement_rel") >= 0.5 {
        out.push("Renters who liked what you liked also liked this".to_owned());
    }
    if feature_value(row, "hist_neighbourhood_share") >= 0.2 {
        out.push(format!(
            "In {}, a neighbourhood you keep coming back to",
            p.neighbourhood
        ));
    }
    if f.popularity.engaged() >= 5 {
        out.push(format!(
            "Popular: {} likes, saves and inquiries",
            f.popularity.engaged()
        ));
    }
    if out.is_empty() {
        out.push("Similar to listings you looked at".to_owned());
    }
    out.truncate(3);
    out
}

fn popularity_reasons(f: &ListingFacts) -> Vec<String> {
    let mut out = vec![format!("Popular: viewed {} times", f.popularity.views)];
    if f.popularity.engaged() > 0 {
        out.push(format!(
            "{} likes, saves and inquiries",
            f.popularity.engaged()
        ));
    }
    out
}

/// The candidates scored by the engagement prior retrieval ranks by, scaled to [0, 1].
fn by_prior(candidates: &[&Entry]) -> Vec<(usize, f64, Option<FeatureRow>)> {
    let max = candidates.iter().map(|e| e.prior()).fold(1.0, f64::max);
    candidates
        .iter()
        .enumerate()
        .map(|(i, e)| (i, e.prior().max(0.0) / max, None))
        .collect()
}

/// The picked candidates as ranked recommendations with their reasons.
fn answer(
    picked: Vec<(usize, f64, Option<FeatureRow>)>,
    candidates: &[&Entry],
    facts: &[ListingFacts],
    profile: Option<&UserProfile>,
    source: Source,
) -> Vec<Recommendation> {
    picked
        .into_iter()
        .enumerate()
        .map(|(rank, (i, score, row))| {
            let f = &facts[i];
            let reasons = match (&row, profile) {
                (Some(row), Some(prof)) => reasons(row, f, prof),
                _ => popularity_reasons(f),
            };
            Recommendation {
                id: candidates[i].id,
                score,
                rank: rank + 1,
                reasons,
                source,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_kept_results_are_bounded() {
        let mut map = HashMap::new();
        for args in 0..(RESULTS_PER_CALLER as u64 * 3) {
            keep_bounded(&mut map, args, args);
        }
        assert_eq!(map.len(), RESULTS_PER_CALLER);
        keep_bounded(&mut map, 0, 99);
        assert_eq!(
            map.get(&0),
            Some(&99),
            "known arguments are still refreshed"
        );
    }
    use crate::store::IndexRow;
    use chrono::{DateTime, Utc};
    use entity::{Preferences, Role};
    use rentgraph_model::features::Popularity;

    fn listing(city: &str, price: i32, bedrooms: i32, recent_views: u32) -> Arc<Entry> {
        let views = Popularity {
            views: recent_views,
            ..Default::default()
        };
        Arc::new(Entry::new(
            IndexRow {
                monthly_price: price,
                bedrooms,
                ..IndexRow::sample(Uuid::new_v4(), city)
            },
            &[],
            views,
            views,
        ))
    }

    fn renter(preferences: Preferences) -> user::Model {
        user::Model {
            id: Uuid::new_v4(),
            email: "renter@example.test".into(),
            display_name: "Renter".into(),
            role: Role::User,
            preferences,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            external_subject: None,
        }
    }

    fn state(events: &[(InteractionKind, &Arc<Entry>)]) -> UserState {
        let mut s = UserState::default();
        for (kind, e) in events.iter().rev() {
            s.record(
                *kind,
                e.id,
                user_state::StateLimits {
                    history: 200,
                    exclusions: 1000,
                },
            );
        }
        s
    }

    fn active() -> PropertyFilter {
        PropertyFilter {
            active: Some(true),
            ..Default::default()
        }
    }

    #[test]
    fn without_stated_preferences_the_budget_and_size_come_from_history() {
        let seen = listing("Lisbon", 1000, 2, 1);
        let fits = listing("Lisbon", 1050, 2, 5);
        let dear = listing("Lisbon", 3000, 2, 90);
        let big = listing("Lisbon", 1000, 5, 80);
        let elsewhere = listing("Porto", 1000, 2, 70);
        let snap = Snapshot::from_entries(vec![
            seen.clone(),
            fits.clone(),
            dear.clone(),
            big.clone(),
            elsewhere.clone(),
        ]);
        let user = renter(Preferences::default());
        let history = state(&[
            (InteractionKind::View, &seen),
            (InteractionKind::View, &seen),
        ]);
        let (_, candidates) = candidates_for(&snap, Some((&user, &history)), &active(), 30, 0);
        let ids: Vec<Uuid> = candidates.iter().map(|e| e.id).collect();
        // The fitting listings of the browsed city come before more popular ones that are too
        // dear, too big or elsewhere (those only fill the rest).
        assert_eq!(&ids[..2], &[fits.id, seen.id], "{ids:?}");
        assert_eq!(ids.len(), 5);
    }

    #[test]
    fn stated_cities_bound_the_candidates_and_saves_elsewhere_lead_without_them() {
        let saved = listing("Madrid", 900, 1, 0);
        let like_saved = listing("Madrid", 950, 1, 3);
        let unlike_saved = listing("Madrid", 2500, 4, 50);
        let lisbon: Vec<Arc<Entry>> = (0..25).map(|i| listing("Lisbon", 900, 1, i)).collect();
        let porto: Vec<Arc<Entry>> = (0..25).map(|i| listing("Porto", 900, 1, 100 + i)).collect();
        let mut all = vec![saved.clone(), like_saved.clone(), unlike_saved.clone()];
        all.extend(lisbon.iter().cloned());
        all.extend(porto.iter().cloned());
        let snap = Snapshot::from_entries(all);
        // Browsed Lisbon and Porto most, saved one listing in Madrid last.
        let mut events = vec![(InteractionKind::Save, &saved)];
        events.extend(lisbon.iter().take(5).map(|e| (InteractionKind::View, e)));
        events.extend(porto.iter().take(4).map(|e| (InteractionKind::View, e)));
        let history = state(&events);

        let open = renter(Preferences::default());
        let (_, candidates) = candidates_for(&snap, Some((&open, &history)), &active(), 40, 0);
        assert_eq!(
            candidates[0].id, like_saved.id,
            "a listing like the saved one comes first"
        );
        assert!(!candidates[..10].iter().any(|e| e.id == unlike_saved.id));

        let stated = renter(Preferences {
            cities: vec!["Lisbon".into()],
            ..Default::default()
        });
        let (_, candidates) = candidates_for(&snap, Some((&stated, &history)), &active(), 40, 0);
        assert!(
            candidates.iter().all(|e| e.static_facts().city == "Lisbon"),
            "a stated city with enough listings keeps the candidates"
        );
        assert_eq!(candidates.len(), 25);
    }
}
