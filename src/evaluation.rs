//! `rentgraph evaluate`: what the served recommendations are worth, measured by replaying the
//! serving path. Offline code, kept out of the serving modules; it reads through `store`.
//!
//! Protocol:
//! - Time splits. The cutoff is a quantile of all interaction times (0.85 by default).
//! - Serving is rebuilt as it stood at the cutoff (`replay::Moment`): the listings on the
//!   market then with counters from the interactions before it, and each evaluated user's
//!   state from their interactions before it.
//! - The real serving code then produces each user's top `first`: `recommend::retrieve`,
//!   `ml::features`, the model, and `recommend::pick` (ranking and the diversity rule).
//! - Targets are the user's likes, saves and inquiries after the cutoff on listings that
//!   were on the market then. They are scored over all of them, and separately over listings new to the
//!   user (never touched before the cutoff).
//! - Evaluated users are users with such targets, picked at random (seeded). Run it on a data
//!   set generated with another seed than the training set's, and the users are held out as
//!   well (ml/evaluate.sh does).
//! - Baselines on the same protocol:
//!   - global popularity;
//!   - popularity within the user's cities (stated, else the two they browse most) and stated
//!     budget, all-time and recent (serving's engagement prior);
//!   - random.
//! - Every method excludes what serving excludes (dismissed, already contacted), and
//!   popularity ties are broken at random.
//! - Retrieval's own ceiling is reported too: the share of targets among the candidates.
//! - Means with 95% confidence intervals (normal approximation over users).
use crate::config::MlSettings;
use crate::datagen::Rng;
use crate::ml::features::engages;
use crate::ml::model::{ModelError, Scorer};
use crate::recommend::index::Entry;
use crate::recommend::{looked_at, pick};
use crate::replay::Moment;
use crate::store::{Store, StoreError};
use crate::training::Corpus;
use chrono::{DateTime, Utc};
use entity::Role;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("no interactions to evaluate on: seed the database first")]
    Empty,
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub max_users: usize,
    pub cutoff_quantile: f64,
    pub seed: u64,
    pub first: usize,
}

/// A mean over users with the half-width of its 95% confidence interval.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub mean: f64,
    pub ci95: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub users: usize,
    pub ndcg: Estimate,
    pub recall: Estimate,
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodScores {
    /// Over all later likes, saves and inquiries.
    pub all: Scores,
    /// Over those on listings the user had never touched before the cutoff.
    pub new_to_user: Scores,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub cutoff: DateTime<Utc>,
    pub first: usize,
    pub candidates: usize,
    pub users: usize,
    /// Share of each user's targets among the candidates retrieval gives the model.
    pub retrieval_recall: MethodScores,
    pub methods: BTreeMap<String, MethodScores>,
}

/// NDCG and recall of a ranked list against a set of relevant ids (binary relevance).
pub fn ndcg_recall(ranked: &[Uuid], relevant: &HashSet<Uuid>, k: usize) -> (f64, f64) {
    if relevant.is_empty() {
        return (0.0, 0.0);
    }
    let mut dcg = 0.0;
    let mut hits = 0usize;
    for (i, id) in ranked.iter().take(k).enumerate() {
        if relevant.contains(id) {
            dcg += 1.0 / ((i + 2) as f64).log2();
            hits += 1;
        }
    }
    let ideal: f64 = (0..relevant.len().min(k))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    (dcg / ideal, hits as f64 / relevant.len() as f64)
}

fn estimate(values: &[f64]) -> Estimate {
    let n = values.len() as f64;
    if values.is_empty() {
        return Estimate {
            mean: 0.0,
            ci95: 0.0,
        };
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    Estimate {
        mean: round(mean),
        ci95: round(1.96 * (var / n).sqrt()),
    }
}

/// Per-method accumulator: (ndcg, recall) per user, over all targets and new ones.
#[derive(Default)]
struct Tally {
    all: Vec<(f64, f64)>,
    new: Vec<(f64, f64)>,
}

impl Tally {
    fn add(&mut self, ranked: &[Uuid], all: &HashSet<Uuid>, new: &HashSet<Uuid>, k: usize) {
        self.all.push(ndcg_recall(ranked, all, k));
        if !new.is_empty() {
            self.new.push(ndcg_recall(ranked, new, k));
        }
    }

    fn scores(&self) -> MethodScores {
        let s = |v: &[(f64, f64)]| Scores {
            users: v.len(),
            ndcg: estimate(&v.iter().map(|x| x.0).collect::<Vec<_>>()),
            recall: estimate(&v.iter().map(|x| x.1).collect::<Vec<_>>()),
        };
        MethodScores {
            all: s(&self.all),
            new_to_user: s(&self.new),
        }
    }
}

/// The `n` best of `pool` by `score`, ties broken at random.
fn by_popularity(
    pool: Vec<&Entry>,
    n: usize,
    rng: &mut Rng,
    score: impl Fn(&Entry) -> f64,
) -> Vec<Uuid> {
    let mut keyed: Vec<(f64, u64, Uuid)> = pool
        .into_iter()
        .map(|e| (score(e), rng.next_u64(), e.id))
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().take(n).map(|k| k.2).collect()
}

type ScoreFn = fn(&Entry) -> f64;

/// All-time popularity.
fn all_time(e: &Entry) -> f64 {
    e.popularity().score()
}

/// Recent popularity (serving's engagement prior).
fn recent(e: &Entry) -> f64 {
    e.prior()
}

pub async fn evaluate(
    store: &Store,
    scorer: &mut dyn Scorer,
    ml: &MlSettings,
    opts: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let corpus = Corpus::load(store).await?;
    let interactions = &corpus.interactions;
    if interactions.is_empty() {
        return Err(EvalError::Empty);
    }
    let q = opts.cutoff_quantile.clamp(0.0, 1.0);
    let cutoff = interactions[((interactions.len() - 1) as f64 * q) as usize].created_at;
    let moment = Moment::new(&corpus, cutoff);
    let snap = &moment.snap;

    // Targets: later likes, saves and inquiries on listings on the market at the cutoff.
    let mut targets: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
    for i in interactions.iter().filter(|i| i.created_at >= cutoff) {
        if engages(i.kind) && snap.get(&i.property_id).is_some_and(|e| e.active) {
            targets.entry(i.user_id).or_default().insert(i.property_id);
        }
    }
    let mut rng = Rng::new(opts.seed);
    let mut chosen: Vec<(u64, Uuid)> = targets
        .keys()
        .filter(|u| corpus.users.get(u).is_some_and(|u| u.role == Role::User))
        .map(|u| (0, *u))
        .collect();
    chosen.sort_by_key(|c| c.1);
    for c in &mut chosen {
        c.0 = rng.next_u64();
    }
    chosen.sort();
    chosen.truncate(opts.max_users);

    let k = opts.first;
    let actives: Vec<&Entry> = snap.popular_in(&[], usize::MAX, &|e: &Entry| e.active);
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut retrieval = Tally::default();
    for (_, uid) in &chosen {
        let Some(user) = corpus.users.get(uid) else {
            continue;
        };
        let touched: HashSet<Uuid> = moment.history(uid).iter().map(|i| i.property_id).collect();
        let all = &targets[uid];
        let new: HashSet<Uuid> = all.difference(&touched).copied().collect();

        // The model, through the serving path.
        let served = moment.serve(user, ml);
        let cand_ids: Vec<Uuid> = served.candidates.iter().map(|e| e.id).collect();
        let cand_set: HashSet<Uuid> = cand_ids.iter().copied().collect();
        retrieval.all.push((
            0.0,
            all.intersection(&cand_set).count() as f64 / all.len() as f64,
        ));
        if !new.is_empty() {
            retrieval.new.push((
                0.0,
                new.intersection(&cand_set).count() as f64 / new.len() as f64,
            ));
        }
        let flat: Vec<f32> = served.rows.iter().flat_map(|r| r.iter().copied()).collect();
        let scores = if served.rows.is_empty() {
            Vec::new()
        } else {
            scorer.score(&flat, served.rows.len())?
        };
        let scored = served
            .rows
            .iter()
            .zip(scores)
            .enumerate()
            .map(|(i, (r, s))| (i, f64::from(s), Some(*r)))
            .collect();
        let ranked: Vec<Uuid> = pick(
            scored,
            &served.candidates,
            &served.facts,
            k,
            ml.max_per_neighbourhood,
        )
        .into_iter()
        .map(|(i, _, _)| cand_ids[i])
        .collect();
        tallies
            .entry("model")
            .or_default()
            .add(&ranked, all, &new, k);

        // Popularity (all-time, and recent) within the user's cities and stated budget.
        let keep = |e: &Entry| e.active && !served.state.excludes(&e.id);
        let profile = &served.profile;
        let prefs = &user.preferences;
        let cities = looked_at(user, profile);
        let in_budget = |e: &Entry| {
            let p = e.static_facts().monthly_price;
            keep(e)
                && prefs.min_price.is_none_or(|m| p >= m)
                && prefs.max_price.is_none_or(|m| p <= m)
        };
        let score_fns: [(&'static str, ScoreFn); 2] = [
            ("popularity_in_cities_and_budget", all_time),
            ("recent_popularity_in_cities_and_budget", recent),
        ];
        // Too few there, and the rest comes from anywhere.
        let local = snap.popular_in(&cities, usize::MAX, &in_budget);
        let rest = if local.len() < k {
            let have: HashSet<Uuid> = local.iter().map(|e| e.id).collect();
            snap.popular_in(&[], usize::MAX, &|e: &Entry| {
                keep(e) && !have.contains(&e.id)
            })
        } else {
            Vec::new()
        };
        for (name, score) in score_fns {
            let more = if rest.is_empty() {
                Vec::new()
            } else {
                by_popularity(rest.clone(), k - local.len(), &mut rng, score)
            };
            let mut ranked = by_popularity(local.clone(), k, &mut rng, score);
            ranked.extend(more);
            tallies.entry(name).or_default().add(&ranked, all, &new, k);
        }

        // Global popularity.
        let global = by_popularity(
            snap.popular_in(&[], usize::MAX, &keep),
            k,
            &mut rng,
            all_time,
        );
        tallies
            .entry("popularity")
            .or_default()
            .add(&global, all, &new, k);

        // Random.
        let mut random = Vec::with_capacity(k);
        let mut seen = HashSet::new();
        for _ in 0..k * 20 {
            if random.len() == k || actives.is_empty() {
                break;
            }
            let e = actives[rng.below(actives.len())];
            if keep(e) && seen.insert(e.id) {
                random.push(e.id);
            }
        }
        tallies
            .entry("random")
            .or_default()
            .add(&random, all, &new, k);
    }
    Ok(EvalReport {
        cutoff,
        first: k,
        candidates: ml.candidates,
        users: chosen.len(),
        retrieval_recall: retrieval.scores(),
        methods: tallies
            .into_iter()
            .map(|(name, t)| (name.to_owned(), t.scores()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::features::Popularity;
    use crate::recommend::index::Snapshot;
    use crate::store::IndexRow;
    use std::sync::Arc;

    #[test]
    fn ndcg_rewards_early_hits_and_recall_counts_them() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let relevant: HashSet<Uuid> = [a, b].into();
        let (best, r) = ndcg_recall(&[a, b, c], &relevant, 10);
        assert!((best - 1.0).abs() < 1e-12 && (r - 1.0).abs() < 1e-12);
        let (late, r) = ndcg_recall(&[c, a], &relevant, 10);
        assert!(late < best && (r - 0.5).abs() < 1e-12);
        assert_eq!(ndcg_recall(&[c], &relevant, 10), (0.0, 0.0));
    }

    #[test]
    fn popularity_ties_are_broken_at_random_not_by_position() {
        // Every entry has the same popularity: over many draws each comes first sometimes.
        let entries: Vec<Arc<Entry>> = (0..4)
            .map(|i| {
                Arc::new(Entry::new(
                    IndexRow::sample(Uuid::from_u128(i), "A"),
                    &[],
                    Popularity::default(),
                    Popularity::default(),
                ))
            })
            .collect();
        let snap = Snapshot::from_entries(entries);
        let mut rng = Rng::new(1);
        let mut firsts = HashSet::new();
        for _ in 0..50 {
            let pool = snap.popular_in(&[], 10, &|_: &Entry| true);
            firsts.insert(by_popularity(pool, 1, &mut rng, all_time)[0]);
        }
        assert_eq!(firsts.len(), 4);
    }
}
