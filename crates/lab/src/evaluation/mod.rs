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
//! - Baselines on the same protocol, on the same users:
//!   - model off: retrieval's candidates by retrieval's prior, through the same `pick`;
//!   - popularity where the user looks (stated cities, else the two browsed most), all-time,
//!     recent (serving's 28-day prior) and time-decayed (half-life 14 days), with the budget
//!     as stated and as retrieval infers it (`recommend::baseline`);
//!   - item-kNN over the co-engagement table;
//!   - ALS matrix factorisation over everyone's history before the cutoff (`als`);
//!   - global popularity; random.
//! - Every method excludes what serving excludes (dismissed, already contacted), and
//!   popularity ties are broken at random.
//! - Retrieval's own ceiling is reported too: the share of targets among the candidates.
//! - Means with 95% confidence intervals (normal approximation over users), every method's
//!   per-user values on new listings, and the model's ratio to the best baseline with a paired
//!   bootstrap interval (`gate`, what the server reads once sealed).
mod als;

use crate::datagen::Rng;
use crate::replay::{Corpus, Moment, Served};
use chrono::{DateTime, Utc};
use entity::Role;
use rentgraph::recommend::MlSettings;
use rentgraph::recommend::baseline::{
    Area, Baseline, Window, co_engagement_list, popularity_pools, popularity_score,
};
use rentgraph::recommend::index::{Entry, Snapshot};
use rentgraph::recommend::{model_off, pick};
use rentgraph::store::{Store, StoreError};
use rentgraph_model::features::engages;
use rentgraph_model::model::{ModelError, Scorer};
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
    pub users: Users,
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
    /// The model against the best baseline, paired (what `ml.serve_unproven` overrides).
    pub gate: Option<Gate>,
    /// Each method's NDCG@10 on new listings, per evaluated user with new targets (the same
    /// users in the same order for every method): pooled over data sets and resampled by
    /// ml/replay_summary.py.
    pub new_to_user_ndcg_per_user: BTreeMap<String, Vec<f64>>,
    /// The users of those values, in the same order (ml/api_replay.py asks the live server
    /// for the same users' recommendations).
    pub new_to_user_users: Vec<Uuid>,
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
    /// Retrieval's recall: the share of the targets among the candidates (no ranking).
    fn add_recall(&mut self, candidates: &[&Entry], all: &HashSet<Uuid>, new: &HashSet<Uuid>) {
        let cand_set: HashSet<Uuid> = candidates.iter().map(|e| e.id).collect();
        self.all.push((
            0.0,
            all.intersection(&cand_set).count() as f64 / all.len() as f64,
        ));
        if !new.is_empty() {
            self.new.push((
                0.0,
                new.intersection(&cand_set).count() as f64 / new.len() as f64,
            ));
        }
    }

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

/// All-time popularity.
fn all_time(e: &Entry) -> f64 {
    e.popularity().score()
}

/// Resamples of the paired bootstrap.
const BOOTSTRAP: usize = 2000;

/// The ratio of two means over the same users, with a paired bootstrap 95% interval (users
/// resampled with replacement, both methods together).
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub ratio: f64,
    pub ci95: [f64; 2],
}

pub fn paired_ratio(a: &[f64], b: &[f64], seed: u64) -> Ratio {
    let n = a.len().min(b.len());
    let mean = |v: &[f64]| v.iter().take(n).sum::<f64>() / n.max(1) as f64;
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { f64::INFINITY };
    let point = ratio(mean(a), mean(b));
    if n == 0 {
        return Ratio {
            ratio: 0.0,
            ci95: [0.0, 0.0],
        };
    }
    let mut rng = Rng::new(seed);
    let mut draws: Vec<f64> = (0..BOOTSTRAP)
        .map(|_| {
            let (mut sa, mut sb) = (0.0, 0.0);
            for _ in 0..n {
                let i = rng.below(n);
                sa += a[i];
                sb += b[i];
            }
            ratio(sa, sb)
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let q = |p: f64| draws[((BOOTSTRAP - 1) as f64 * p).round() as usize];
    let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
    Ratio {
        ratio: r4(point),
        ci95: [r4(q(0.025)), r4(q(0.975))],
    }
}

/// The model against the best baseline on new-to-user NDCG@10, as the server's gate reads it.
#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub metric: &'static str,
    pub users: usize,
    pub model: f64,
    /// The baseline with the highest mean.
    pub best_baseline: String,
    pub best_baseline_ndcg: f64,
    /// The model over the best baseline, with its paired interval.
    pub vs_best_baseline: Ratio,
    /// The best baseline the server can serve (`recommend::baseline::Baseline`), which answers
    /// when the model does not pass.
    pub serve_baseline: String,
    /// The model beats the best baseline: the paired interval's lower end is above 1.
    pub passed: bool,
}

/// Names of the methods that are not baselines.
const NOT_BASELINES: [&str; 1] = ["model"];

fn gate(per_user: &BTreeMap<String, Vec<f64>>, seed: u64) -> Option<Gate> {
    let model = per_user.get("model")?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let best = |servable_only: bool| {
        per_user
            .iter()
            .filter(|(name, _)| !NOT_BASELINES.contains(&name.as_str()))
            .filter(|(name, _)| !servable_only || Baseline::from_name(name).is_some())
            .max_by(|a, b| mean(a.1).total_cmp(&mean(b.1)).then(b.0.cmp(a.0)))
    };
    let (name, values) = best(false)?;
    let serve = best(true).map_or(Baseline::ModelOff.name().to_owned(), |b| b.0.clone());
    let vs = paired_ratio(model, values, seed);
    let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
    Some(Gate {
        metric: "ndcg@10, listings new to the user",
        users: model.len(),
        model: r4(mean(model)),
        best_baseline: name.clone(),
        best_baseline_ndcg: r4(mean(values)),
        passed: vs.ci95[0] > 1.0,
        vs_best_baseline: vs,
        serve_baseline: serve,
    })
}

/// Who is evaluated.
#[derive(Debug, Clone, Copy)]
pub enum Users {
    /// Anyone with targets (a data set the model was not trained on).
    All,
    /// Only the renters `held_out` keeps out of training (the same database the model was
    /// trained on: `scripts/retrain`).
    HeldOut { seed: u64, share: f64 },
}

/// Replays serving at the cutoff for the chosen renters and scores the model's served top
/// `first` against every baseline on the listings each renter engaged with afterwards.
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
    let factors = als::Als::fit(
        interactions
            .iter()
            .take_while(|i| i.created_at < cutoff)
            .map(|i| (i.user_id, i.property_id, i.kind)),
        opts.seed,
    );
    let targets = targets(&corpus, &moment.snap, cutoff);
    let mut rng = Rng::new(opts.seed);
    let chosen = choose_users(&corpus, &targets, opts, &mut rng);
    let cx = Context {
        moment: &moment,
        ml,
        k: opts.first,
        actives: moment
            .snap
            .popular_in(&[], usize::MAX, &|e: &Entry| e.active),
        factors,
    };
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut retrieval = Tally::default();
    let mut with_new: Vec<Uuid> = Vec::new();
    for uid in &chosen {
        let Some(user) = corpus.users.get(uid) else {
            continue;
        };
        let touched: HashSet<Uuid> = moment.history(uid).iter().map(|i| i.property_id).collect();
        let all = &targets[uid];
        let new: HashSet<Uuid> = all.difference(&touched).copied().collect();
        if !new.is_empty() {
            with_new.push(*uid);
        }
        let mut add = |name: &'static str, ranked: &[Uuid]| {
            tallies
                .entry(name)
                .or_default()
                .add(ranked, all, &new, cx.k);
        };
        let served = moment.serve(user, ml);
        retrieval.add_recall(&served.candidates, all, &new);
        let model_off = cx.rank(&served, scorer, &mut add)?;
        cx.baselines(user, &served, &model_off, &mut rng, &mut add);
    }
    let per_user: BTreeMap<String, Vec<f64>> = tallies
        .iter()
        .map(|(name, t)| {
            let r6 = |x: f64| (x * 1e6).round() / 1e6;
            ((*name).to_owned(), t.new.iter().map(|x| r6(x.0)).collect())
        })
        .collect();
    Ok(EvalReport {
        cutoff,
        first: cx.k,
        candidates: ml.candidates,
        users: chosen.len(),
        retrieval_recall: retrieval.scores(),
        methods: tallies
            .iter()
            .map(|(name, t)| ((*name).to_owned(), t.scores()))
            .collect(),
        gate: gate(&per_user, opts.seed),
        new_to_user_ndcg_per_user: per_user,
        new_to_user_users: with_new,
    })
}

/// Targets: later likes, saves and inquiries on listings on the market at the cutoff.
fn targets(
    corpus: &Corpus,
    snap: &Snapshot,
    cutoff: DateTime<Utc>,
) -> HashMap<Uuid, HashSet<Uuid>> {
    let mut targets: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
    for i in corpus
        .interactions
        .iter()
        .filter(|i| i.created_at >= cutoff)
    {
        if engages(i.kind) && snap.get(&i.property_id).is_some_and(|e| e.active) {
            targets.entry(i.user_id).or_default().insert(i.property_id);
        }
    }
    targets
}

/// At most `max_users` renters with targets (held out ones only, if asked), in a random order
/// fixed by the seed.
fn choose_users(
    corpus: &Corpus,
    targets: &HashMap<Uuid, HashSet<Uuid>>,
    opts: &EvalOptions,
    rng: &mut Rng,
) -> Vec<Uuid> {
    let mut chosen: Vec<(u64, Uuid)> = targets
        .keys()
        .filter(|u| corpus.users.get(u).is_some_and(|u| u.role == Role::User))
        .filter(|u| match opts.users {
            Users::All => true,
            Users::HeldOut { seed, share } => crate::replay::held_out(u, seed, share),
        })
        .map(|u| (0, *u))
        .collect();
    chosen.sort_by_key(|c| c.1);
    for c in &mut chosen {
        c.0 = rng.next_u64();
    }
    chosen.sort();
    chosen.truncate(opts.max_users);
    chosen.into_iter().map(|c| c.1).collect()
}

/// What every renter's evaluation shares.
struct Context<'a> {
    moment: &'a Moment,
    ml: &'a MlSettings,
    k: usize,
    /// Listings on the market at the cutoff, most popular first.
    actives: Vec<&'a Entry>,
    factors: als::Als,
}

impl Context<'_> {
    /// The model through the serving path, and the model off (the same candidates by
    /// retrieval's prior, the same `pick`); returns the model-off list, which other baselines
    /// fall back on.
    fn rank(
        &self,
        served: &Served<'_>,
        scorer: &mut dyn Scorer,
        add: &mut impl FnMut(&'static str, &[Uuid]),
    ) -> Result<Vec<Uuid>, EvalError> {
        let (k, ml) = (self.k, self.ml);
        let cand_ids: Vec<Uuid> = served.candidates.iter().map(|e| e.id).collect();
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
        let picked = pick(
            scored,
            &served.candidates,
            &served.facts,
            k,
            ml.max_per_neighbourhood,
        );
        let ranked: Vec<Uuid> = picked.into_iter().map(|(i, _, _)| cand_ids[i]).collect();
        add("model", &ranked);
        let model_off: Vec<Uuid> = model_off(
            &served.candidates,
            &served.facts,
            k,
            ml.max_per_neighbourhood,
        )
        .into_iter()
        .map(|(i, _, _)| cand_ids[i])
        .collect();
        add(Baseline::ModelOff.name(), &model_off);
        Ok(model_off)
    }

    /// The baselines that do not use the model's candidates' scores.
    fn baselines(
        &self,
        user: &entity::user::Model,
        served: &Served<'_>,
        model_off: &[Uuid],
        rng: &mut Rng,
        add: &mut impl FnMut(&'static str, &[Uuid]),
    ) {
        let (snap, k) = (&self.moment.snap, self.k);
        let keep = |e: &Entry| e.active && !served.state.excludes(&e.id);
        // Popularity where the user looks, all-time, recent and time-decayed, with the area
        // as stated and as retrieval infers it.
        for area in [Area::Stated, Area::Inferred] {
            let (local, rest) = popularity_pools(snap, user, &served.profile, area, k, &keep);
            for window in [Window::AllTime, Window::Recent, Window::Decayed] {
                let score = |e: &Entry| popularity_score(snap, e, window);
                let mut ranked = by_popularity(local.clone(), k, rng, score);
                if ranked.len() < k {
                    ranked.extend(by_popularity(rest.clone(), k - ranked.len(), rng, score));
                }
                add(Baseline::Popularity { window, area }.name(), &ranked);
            }
        }
        // Item-kNN over co-engagement, the model-off list filling in when it runs out.
        let mut knn: Vec<Uuid> = co_engagement_list(snap, &served.profile, k, &keep)
            .into_iter()
            .map(|e| e.id)
            .collect();
        for id in model_off {
            if knn.len() == k {
                break;
            }
            if !knn.contains(id) {
                knn.push(*id);
            }
        }
        add(Baseline::CoEngagement.name(), &knn);
        add(
            "als_matrix_factorisation",
            &self.als(&user.id, model_off, &keep),
        );
        let global = by_popularity(snap.popular_in(&[], usize::MAX, &keep), k, rng, all_time);
        add("popularity_global", &global);
        add("random", &self.random(rng, &keep));
    }

    /// ALS over everyone's history before the cutoff; a renter it does not know gets the
    /// model-off list.
    fn als(&self, uid: &Uuid, model_off: &[Uuid], keep: &dyn Fn(&Entry) -> bool) -> Vec<Uuid> {
        if !self.factors.knows(uid) {
            return model_off.to_vec();
        }
        let mut scored: Vec<(f64, Uuid)> = self
            .actives
            .iter()
            .filter(|e| keep(e))
            .filter_map(|e| self.factors.score(uid, &e.id).map(|s| (s, e.id)))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(self.k).map(|x| x.1).collect()
    }

    /// Listings on the market drawn uniformly.
    fn random(&self, rng: &mut Rng, keep: &dyn Fn(&Entry) -> bool) -> Vec<Uuid> {
        let (actives, k) = (&self.actives, self.k);
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
        random
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rentgraph::recommend::index::Snapshot;
    use rentgraph::store::IndexRow;
    use rentgraph_model::features::Popularity;
    use std::sync::Arc;

    /// An active two-bedroom apartment at 1,000 a month in `city`, created at the epoch.
    fn sample_row(id: Uuid, city: &str) -> IndexRow {
        IndexRow {
            id,
            city: city.into(),
            neighbourhood: "Centre".into(),
            property_type: entity::PropertyType::Apartment,
            monthly_price: 1000,
            bedrooms: 2,
            area: 60,
            is_active: true,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            latitude: 0.0,
            longitude: 0.0,
        }
    }

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
    fn the_paired_ratio_is_the_ratio_of_means_with_an_interval_around_it() {
        let b: Vec<f64> = (0..200).map(|i| f64::from(i % 7) / 10.0).collect();
        // The same values: exactly 1, and every resample says 1.
        let same = paired_ratio(&b, &b, 3);
        assert_eq!(same.ratio, 1.0);
        assert_eq!(same.ci95, [1.0, 1.0]);
        // Twice the values per user: exactly 2 in every resample, however noisy the users.
        let twice: Vec<f64> = b.iter().map(|x| 2.0 * x).collect();
        let r = paired_ratio(&twice, &b, 3);
        assert_eq!((r.ratio, r.ci95), (2.0, [2.0, 2.0]));
        // Noise around 1.2: the interval contains the point and has width.
        let noisy: Vec<f64> = b
            .iter()
            .enumerate()
            .map(|(i, x)| x * 1.2 + if i % 2 == 0 { 0.05 } else { -0.05 })
            .collect();
        let r = paired_ratio(&noisy, &b, 3);
        assert!(r.ci95[0] < r.ratio && r.ratio < r.ci95[1], "{r:?}");
        assert!(r.ci95[0] > 1.0, "{r:?}");
        // Pairing: a model that beats the baseline by the same small amount for every user is
        // surely better, though unpaired intervals of such spread values would overlap.
        let base: Vec<f64> = (0..100).map(f64::from).collect();
        let model: Vec<f64> = base.iter().map(|x| x + 1.0).collect();
        assert!(paired_ratio(&model, &base, 1).ci95[0] > 1.0);
    }

    #[test]
    fn the_gate_compares_with_the_best_baseline_and_serves_the_best_servable_one() {
        let per_user: BTreeMap<String, Vec<f64>> = [
            ("model", vec![0.2, 0.3, 0.1, 0.4]),
            ("model_off", vec![0.1, 0.1, 0.0, 0.1]),
            ("item_knn_co_engagement", vec![0.2, 0.2, 0.1, 0.2]),
            // Best, but the server cannot serve it.
            ("als_matrix_factorisation", vec![0.3, 0.3, 0.1, 0.3]),
            ("random", vec![0.0, 0.0, 0.0, 0.0]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let g = gate(&per_user, 1).expect("a gate");
        assert_eq!(g.best_baseline, "als_matrix_factorisation");
        assert_eq!(g.serve_baseline, "item_knn_co_engagement");
        assert!((g.vs_best_baseline.ratio - 1.0).abs() < 1e-9);
        assert!(!g.passed, "equal means never pass");
        let mut winning = per_user.clone();
        winning.insert("model".into(), vec![0.6, 0.6, 0.2, 0.6]);
        let g = gate(&winning, 1).expect("a gate");
        assert!(g.passed && g.vs_best_baseline.ratio == 2.0, "{g:?}");
    }

    #[test]
    fn held_out_renters_are_a_stable_share() {
        let ids: Vec<Uuid> = (0..4000u128)
            .map(|i| Uuid::from_u128(i * 7_919 + 11))
            .collect();
        let out = ids
            .iter()
            .filter(|u| crate::replay::held_out(u, 42, 0.3))
            .count();
        assert!((1000..1400).contains(&out), "{out}");
        // The same renters for the same seed, others for another.
        let again: Vec<bool> = ids
            .iter()
            .map(|u| crate::replay::held_out(u, 42, 0.3))
            .collect();
        let first: Vec<bool> = ids
            .iter()
            .map(|u| crate::replay::held_out(u, 42, 0.3))
            .collect();
        let other: Vec<bool> = ids
            .iter()
            .map(|u| crate::replay::held_out(u, 43, 0.3))
            .collect();
        assert_eq!(again, first);
        assert_ne!(first, other);
    }

    #[test]
    fn popularity_ties_are_broken_at_random_not_by_position() {
        // Every entry has the same popularity: over many draws each comes first sometimes.
        let entries: Vec<Arc<Entry>> = (0..4)
            .map(|i| {
                Arc::new(Entry::new(
                    sample_row(Uuid::from_u128(i), "A"),
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
