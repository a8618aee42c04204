//! Recommendations and match scores: candidates from SQL, features from `ml::features` (the
//! same code that produced the training data), scores from the batching executor, then ranking
//! with a small diversity rule and reasons a person can read. When the model cannot answer
//! (overload, deadline, failure) the list falls back to popularity and says so.

use crate::config::MlSettings;
use crate::ml::batcher::{Batcher, ScoreError};
use crate::ml::features::{
    FEATURE_NAMES, FeatureRow, ListingFacts, N_FEATURES, Popularity, UserProfile, features,
};
use crate::ml::model::ModelInfo;
use crate::store::{PropertyFilter, PropertyStats, Store, StoreError};
use chrono::Utc;
use entity::{Amenity, property, user};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
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
    Popularity,
}

#[derive(Debug, Clone)]
pub struct Recommendation {
    pub property: property::Model,
    pub score: f64,
    pub rank: usize,
    pub reasons: Vec<String>,
    pub source: Source,
}

pub struct Recommender {
    store: Store,
    batcher: Option<Arc<Batcher>>,
    info: Option<ModelInfo>,
    settings: MlSettings,
    popular: Mutex<Option<(Instant, PopularList)>>,
    metrics: Option<Arc<crate::telemetry::Metrics>>,
    /// Recent results per user (anonymous: `None`), by arguments.
    results: Option<moka::sync::Cache<Option<uuid::Uuid>, Arc<ResultsByArgs>>>,
}

type ResultsByArgs = Mutex<HashMap<u64, (Vec<Recommendation>, Source)>>;

/// Fewer candidates than this after the preferred cities, and popular listings from anywhere
/// are added.
const MIN_CANDIDATES: usize = 50;

/// Listing ids with their popularity score, most popular first.
type PopularList = Arc<Vec<(Uuid, f64)>>;

/// A user's latest interactions and the listings involved.
struct History {
    events: Vec<entity::interaction::Model>,
    listings: Vec<property::Model>,
}

impl History {
    /// The profile, from preferences and history; `facts` must cover the history's listings.
    fn profile(&self, user: &user::Model, facts: &HashMap<Uuid, ListingFacts>) -> UserProfile {
        UserProfile::build(
            user.preferences.clone(),
            self.events
                .iter()
                .filter_map(|i| facts.get(&i.property_id).map(|f| (i.kind, f))),
        )
    }

    /// Enough of the profile to know where the user looks: cities need no amenities or counters.
    fn whereabouts(&self, user: &user::Model) -> UserProfile {
        let bare: HashMap<Uuid, ListingFacts> = self
            .listings
            .iter()
            .map(|p| (p.id, to_facts(p, &[], PropertyStats::default())))
            .collect();
        self.profile(user, &bare)
    }
}

/// Listings with what features need about them.
struct Facts {
    listings: Vec<property::Model>,
    facts: HashMap<Uuid, ListingFacts>,
}

pub(crate) fn to_facts(
    p: &property::Model,
    amenities: &[Amenity],
    stats: PropertyStats,
) -> ListingFacts {
    let c = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    ListingFacts {
        city: p.city.clone(),
        neighbourhood: p.neighbourhood.clone(),
        property_type: p.property_type,
        monthly_price: p.monthly_price,
        bedrooms: p.bedrooms,
        area: p.area,
        amenities: ListingFacts::amenity_mask(amenities),
        created_at: p.created_at,
        popularity: Popularity {
            views: c(stats.views),
            likes: c(stats.likes),
            saves: c(stats.saves),
            inquiries: c(stats.inquiries),
            dismissals: c(stats.dismissals),
        },
    }
}

impl Recommender {
    pub fn new(
        store: Store,
        batcher: Option<Arc<Batcher>>,
        info: Option<ModelInfo>,
        settings: MlSettings,
    ) -> Self {
        let results = (settings.results_ttl_secs > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(settings.results_ttl_secs))
                .build()
        });
        Self {
            store,
            batcher,
            info,
            settings,
            popular: Mutex::new(None),
            metrics: None,
            results,
        }
    }

    /// Counts popularity fallbacks in these metrics.
    pub fn with_metrics(mut self, metrics: Arc<crate::telemetry::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn model_version(&self) -> Option<&str> {
        self.info.as_ref().map(|i| i.version.as_str())
    }

    /// Amenities and counters of listings, turned into feature inputs (two statements).
    async fn facts(&self, listings: Vec<property::Model>) -> Result<Facts, StoreError> {
        let ids: Vec<Uuid> = listings.iter().map(|p| p.id).collect();
        let amenities = self.store.amenities_for(&ids).await?;
        let stats = self.store.stats_for(&ids).await?;
        let facts = listings
            .iter()
            .map(|p| {
                let a = amenities.get(&p.id).map(Vec::as_slice).unwrap_or(&[]);
                (
                    p.id,
                    to_facts(p, a, stats.get(&p.id).copied().unwrap_or_default()),
                )
            })
            .collect();
        Ok(Facts { listings, facts })
    }

    /// The user's latest interactions and the listings they touched (two statements).
    async fn history(&self, user: &user::Model) -> Result<History, StoreError> {
        let events = self
            .store
            .interactions_for_users(&[user.id], self.settings.history_limit as u64, None)
            .await?;
        let ids: Vec<Uuid> = events
            .iter()
            .map(|i| i.property_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let listings = self.store.properties_by_ids(&ids).await?;
        Ok(History { events, listings })
    }

    /// Facts for `listings` and for the history's listings in one pass (two statements);
    /// returns `listings` in their order and the facts of both.
    async fn facts_with_history(
        &self,
        mut listings: Vec<property::Model>,
        history: Option<&History>,
    ) -> Result<Facts, StoreError> {
        let n = listings.len();
        if let Some(h) = history {
            let have: HashSet<Uuid> = listings.iter().map(|p| p.id).collect();
            listings.extend(h.listings.iter().filter(|p| !have.contains(&p.id)).cloned());
        }
        let mut facts = self.facts(listings).await?;
        facts.listings.truncate(n);
        Ok(facts)
    }

    async fn score_rows(&self, rows: Vec<f32>) -> Result<Vec<f32>, RecommendError> {
        let batcher = self.batcher.as_ref().ok_or(RecommendError::Disabled)?;
        let deadline = Instant::now() + Duration::from_millis(self.settings.deadline_ms);
        use tracing::Instrument;
        let span = tracing::debug_span!("model", rows = rows.len() / N_FEATURES);
        Ok(batcher.score(rows, deadline).instrument(span).await?)
    }

    /// Most popular listing ids, cached for `popular_ttl_secs` (one GROUP BY over interactions).
    async fn popular(&self) -> Result<PopularList, StoreError> {
        let ttl = Duration::from_secs(self.settings.popular_ttl_secs);
        if let Some((at, list)) = self
            .popular
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && at.elapsed() < ttl
        {
            return Ok(list.clone());
        }
        let list = Arc::new(
            self.store
                .popular_listing_ids(self.settings.candidates as u64)
                .await?,
        );
        *self.popular.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// Candidates: listings matching the user's stated (or, failing that, observed) cities and
    /// budget, plus popular listings; all within `filter`, none the user dismissed.
    async fn candidates(
        &self,
        user: Option<&user::Model>,
        profile: Option<&UserProfile>,
        filter: &PropertyFilter,
    ) -> Result<Vec<property::Model>, StoreError> {
        let total = self.settings.candidates as u64;
        let mut base = filter.clone();
        base.active = Some(true);
        if let Some(u) = user {
            base.exclude_dismissed_by = Some(u.id);
        }
        let mut out: Vec<property::Model> = Vec::new();
        if let (Some(u), Some(p)) = (user, profile) {
            let mut matching = base.clone();
            let prefs = &u.preferences;
            matching.cities = if prefs.cities.is_empty() {
                let mut cities: Vec<(&String, &f32)> = p.city_share.iter().collect();
                cities.sort_by(|a, b| b.1.total_cmp(a.1));
                cities.into_iter().take(2).map(|(c, _)| c.clone()).collect()
            } else {
                prefs.cities.clone()
            };
            let widen = |v: Option<i32>, f: f64| v.map(|x| (f64::from(x) * f) as i32);
            matching.min_price = matching.min_price.max(widen(prefs.min_price, 0.8));
            matching.max_price = match (matching.max_price, widen(prefs.max_price, 1.25)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if !matching.cities.is_empty() || prefs.max_price.is_some() {
                out = self
                    .store
                    .candidate_listings(&matching, total * 2 / 3)
                    .await?;
            }
        }
        let popular = self.popular().await?;
        let mut pop_filter = base;
        pop_filter.ids = popular.iter().map(|(id, _)| *id).collect();
        // Cities the user asked for bound the popular candidates too: history pulls the model
        // towards where the user used to look, and a stated search area should win over that.
        // Too few listings there, and popular ones from anywhere fill up.
        let stated: Vec<String> = user
            .map(|u| u.preferences.cities.clone())
            .unwrap_or_default();
        let widen = !stated.is_empty();
        pop_filter.cities = stated;
        if !pop_filter.ids.is_empty() {
            self.add_candidates(&mut out, &pop_filter, total).await?;
            if widen && out.len() < MIN_CANDIDATES {
                pop_filter.cities = Vec::new();
                self.add_candidates(&mut out, &pop_filter, total).await?;
            }
        }
        if out.is_empty() {
            // Nothing popular yet (a fresh database): newest listings within the filter.
            let mut newest = filter.clone();
            newest.active = Some(true);
            out = self.store.candidate_listings(&newest, total).await?;
        }
        Ok(out)
    }

    /// Adds listings matching `filter` that are not candidates yet, up to the total.
    async fn add_candidates(
        &self,
        out: &mut Vec<property::Model>,
        filter: &PropertyFilter,
        total: u64,
    ) -> Result<(), StoreError> {
        let seen: HashSet<Uuid> = out.iter().map(|p| p.id).collect();
        let room = total.saturating_sub(out.len() as u64).max(total / 3);
        let extra = self.store.candidate_listings(filter, room).await?;
        out.extend(extra.into_iter().filter(|p| !seen.contains(&p.id)));
        Ok(())
    }

    /// Up to `first` recommendations for `user` (popularity for anonymous callers).
    /// Recommendations, reused for `ml.results_ttl_secs` per (user, arguments) until the user's
    /// next interaction or preference change, or any listing's change (`forget`). Popularity
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
            return Ok(hit.clone());
        }
        let fresh = self.compute(user, first, filter).await?;
        if fresh.1 == Source::Model || owner.is_none() {
            entry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(args, fresh.clone());
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

    async fn compute(
        &self,
        user: Option<&user::Model>,
        first: usize,
        filter: &PropertyFilter,
    ) -> Result<(Vec<Recommendation>, Source), StoreError> {
        let history = match user {
            Some(u) => Some(self.history(u).await?),
            None => None,
        };
        let looking = history.as_ref().zip(user).map(|(h, u)| h.whereabouts(u));
        let candidates = self.candidates(user, looking.as_ref(), filter).await?;
        let Facts { listings, facts } = self
            .facts_with_history(candidates, history.as_ref())
            .await?;
        let profile = history
            .as_ref()
            .zip(user)
            .map(|(h, u)| h.profile(u, &facts));
        let now = Utc::now();
        let mut scored: Vec<(usize, f64, Option<FeatureRow>)> = Vec::with_capacity(listings.len());
        let mut source = Source::Popularity;
        if let Some(profile) = &profile {
            let rows: Vec<FeatureRow> = listings
                .iter()
                .map(|p| features(profile, &facts[&p.id], now))
                .collect();
            let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
            match self.score_rows(flat).await {
                Ok(scores) => {
                    source = Source::Model;
                    scored = rows
                        .into_iter()
                        .zip(scores)
                        .enumerate()
                        .map(|(i, (r, s))| (i, f64::from(s), Some(r)))
                        .collect();
                }
                Err(e) => {
                    if let Some(m) = &self.metrics {
                        m.record_fallback(e.reason());
                    }
                    tracing::warn!(error = %e, "recommendations fall back to popularity")
                }
            }
        }
        if source == Source::Popularity {
            let max = listings
                .iter()
                .map(|p| facts[&p.id].popularity.score())
                .fold(1.0, f64::max);
            scored = listings
                .iter()
                .enumerate()
                .map(|(i, p)| (i, facts[&p.id].popularity.score().max(0.0) / max, None))
                .collect();
        }
        scored.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(listings[a.0].id.cmp(&listings[b.0].id))
        });
        let picked = diversify(
            &scored,
            &listings,
            first,
            self.settings.max_per_neighbourhood,
        );
        let out = picked
            .into_iter()
            .enumerate()
            .map(|(rank, (i, score, row))| {
                let p = &listings[i];
                let reasons = match (&row, &profile) {
                    (Some(row), Some(prof)) => reasons(row, p, &facts[&p.id], prof),
                    _ => popularity_reasons(&facts[&p.id]),
                };
                Recommendation {
                    property: p.clone(),
                    score,
                    rank: rank + 1,
                    reasons,
                    source,
                }
            })
            .collect();
        Ok((out, source))
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
        let history = self.history(user).await?;
        let listings = self.store.properties_by_ids(ids).await?;
        let Facts { listings, facts } = self.facts_with_history(listings, Some(&history)).await?;
        let profile = history.profile(user, &facts);
        let now = Utc::now();
        let flat: Vec<f32> = listings
            .iter()
            .flat_map(|p| features(&profile, &facts[&p.id], now))
            .collect();
        let scores = self.score_rows(flat).await?;
        Ok(listings
            .iter()
            .map(|p| p.id)
            .zip(scores.into_iter().map(f64::from))
            .collect())
    }
}

/// Best first, but at most `per_neighbourhood` listings from one neighbourhood while others
/// are left; the rest fill up in score order.
fn diversify(
    scored: &[(usize, f64, Option<FeatureRow>)],
    listings: &[property::Model],
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

fn idx(name: &str) -> usize {
    FEATURE_NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or(N_FEATURES)
}

fn at(row: &FeatureRow, name: &str) -> f32 {
    row.get(idx(name)).copied().unwrap_or(0.0)
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
fn reasons(
    row: &FeatureRow,
    p: &property::Model,
    f: &ListingFacts,
    profile: &UserProfile,
) -> Vec<String> {
    let mut out = Vec::new();
    if at(row, "pref_city_match") > 0.0 {
        out.push(format!("In {}, where you are looking", p.city));
    } else if at(row, "hist_city_share") >= 0.3 {
        out.push(format!("In {}, a city you often browse", p.city));
    }
    if at(row, "pref_price_in_range") > 0.0 {
        out.push(format!("Within your budget at {} a month", p.monthly_price));
    } else if profile.log_price_mean.is_some() && at(row, "hist_price_abs_log_ratio") < 0.15 {
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
    if at(row, "pref_type_match") > 0.0 || at(row, "hist_type_share") >= 0.5 {
        let kind = format!("{:?}", p.property_type).to_lowercase();
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "An"
        } else {
            "A"
        };
        out.push(format!("{article} {kind}, the kind you prefer"));
    }
    if at(row, "hist_neighbourhood_share") >= 0.2 {
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
