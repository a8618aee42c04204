//! `rentgraph export-training-data`: the training and evaluation sets, made by replaying
//! serving (`replay::Moment`): the same listing index, user state (the last
//! `ml.history_limit` interactions), retrieval and `features()` that production runs. Offline
//! code, kept out of the serving modules (`recommend`, `ml`); it reads through `store` like any
//! other client.
//!
//! Time decides everything, so nothing from the future leaks into a row:
//! - training: eight windows between the 25th and the 85th percentile of interaction time
//!   (`TRAINING_WINDOWS`); the last of them is written as the validation split, by time. At
//!   each window's start serving is rebuilt; for every user who liked, saved or asked about a
//!   listing on the market then during the window, one group of rows:
//!   - label 1: those listings among the candidates serving would have given the user at the
//!     start (what retrieval missed is not the ranker's to learn from: those rows would teach
//!     it that whatever retrieval ranks low is good);
//!   - label 0: candidates the user dismissed in the window, and `NEGATIVES_PER_USER`
//!     candidates they did not take;
//! - evaluation: the same at the 85th percentile, to the end of the data, for at most
//!   `eval_users` of the renters `replay::held_out` keeps out of the training windows, with
//!   `EVAL_NEGATIVES_PER_USER` candidates each.
use crate::datagen::Rng;
use crate::replay::{Corpus, Moment, held_out};
use chrono::{DateTime, Utc};
use entity::InteractionKind;
use rentgraph::recommend::MlSettings;
use rentgraph::recommend::index::Entry;
use rentgraph::store::{Store, StoreError};
use rentgraph_model::features::{FEATURE_NAMES, engages};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    pub eval_users: usize,
    /// The share of renters kept out of training (`replay::held_out`).
    pub held_out_share: f64,
    pub seed: u64,
}

#[derive(Debug, Default)]
pub struct ExportReport {
    pub train_rows: usize,
    pub eval_rows: usize,
    pub eval_users: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not enough interactions to split by time (need at least 100, have {0})")]
    TooFew(usize),
}

/// Candidates sampled as negatives per user and window: what serving would have shown the user
/// and they did not take.
const NEGATIVES_PER_USER: usize = 50;
/// Where the training windows start and end, as quantiles of interaction time; the last ends
/// where evaluation begins.
const TRAINING_WINDOWS: [f64; 9] = [0.25, 0.325, 0.40, 0.475, 0.55, 0.625, 0.70, 0.775, 0.85];
/// Candidates sampled per evaluated user.
const EVAL_NEGATIVES_PER_USER: usize = 100;

fn write_row(
    out: &mut (impl Write + ?Sized),
    split: &str,
    group: usize,
    label: u8,
    e: &Entry,
    row: &[f32],
) -> std::io::Result<()> {
    write!(out, "{split},{group},{},{label},{}", e.id, e.prior())?;
    for v in row {
        write!(out, ",{v}")?;
    }
    writeln!(out)
}

/// Rows for one window: serving rebuilt at `start`, labels from what each user did until
/// `end`. Returns (rows, groups) written.
#[allow(clippy::too_many_arguments)]
fn window_rows(
    out: &mut impl Write,
    corpus: &Corpus,
    ml: &MlSettings,
    rng: &mut Rng,
    split: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    users: &dyn Fn(&Uuid) -> bool,
    negatives: usize,
    group: &mut usize,
) -> std::io::Result<(usize, usize)> {
    let moment = Moment::new(corpus, start);
    let snap = &moment.snap;
    // What each user did in the window, with listings on the market at its start.
    let mut did: BTreeMap<Uuid, (Vec<Uuid>, Vec<Uuid>)> = BTreeMap::new();
    for i in corpus
        .interactions
        .iter()
        .filter(|i| i.created_at >= start && i.created_at < end)
    {
        if !users(&i.user_id) || !snap.get(&i.property_id).is_some_and(|e| e.active) {
            continue;
        }
        let (pos, neg) = did.entry(i.user_id).or_default();
        if engages(i.kind) {
            if !pos.contains(&i.property_id) {
                pos.push(i.property_id);
            }
        } else if i.kind == InteractionKind::Dismiss && !neg.contains(&i.property_id) {
            neg.push(i.property_id);
        }
    }
    let (mut rows, mut groups) = (0, 0);
    for (uid, (pos, dismissed)) in did {
        let Some(user) = corpus.users.get(&uid) else {
            continue;
        };
        if pos.is_empty() {
            continue;
        }
        let served = moment.serve(user, ml);
        // Only what serving would have ranked (every row is a candidate's, with the features
        // serving computed): a positive retrieval missed would teach the model that whatever
        // retrieval ranks low is good.
        let offered: HashMap<Uuid, usize> = served
            .candidates
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id, i))
            .collect();
        let pos: Vec<usize> = pos
            .iter()
            .filter_map(|id| offered.get(id).copied())
            .collect();
        if pos.is_empty() {
            continue;
        }
        *group += 1;
        groups += 1;
        let mut emit = |out: &mut dyn Write, i: usize, label: u8| -> std::io::Result<()> {
            rows += 1;
            write_row(
                out,
                split,
                *group,
                label,
                served.candidates[i],
                &served.rows[i],
            )
        };
        for &i in &pos {
            emit(out, i, 1)?;
        }
        for i in dismissed.iter().filter_map(|d| offered.get(d).copied()) {
            if !pos.contains(&i) {
                emit(out, i, 0)?;
            }
        }
        // A uniform sample of the candidates the user did not take.
        let mut pool: Vec<usize> = (0..served.candidates.len())
            .filter(|i| !pos.contains(i) && !dismissed.contains(&served.candidates[*i].id))
            .collect();
        let n = negatives.min(pool.len());
        rng.sample_to_front(&mut pool, n);
        for &i in &pool[..n] {
            emit(out, i, 0)?;
        }
    }
    Ok((rows, groups))
}

pub async fn export(
    store: &Store,
    path: &Path,
    ml: &MlSettings,
    opts: ExportOptions,
) -> Result<ExportReport, ExportError> {
    let corpus = Corpus::load(store).await?;
    let n = corpus.interactions.len();
    if n < 100 {
        return Err(ExportError::TooFew(n));
    }
    let at = |q: f64| corpus.interactions[((n - 1) as f64 * q) as usize].created_at;
    let eval_cut = at(0.85);
    let end = corpus.interactions[n - 1].created_at + chrono::Duration::seconds(1);

    let io = |source| ExportError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    write!(out, "split,group,listing,label,popularity").map_err(io)?;
    for name in FEATURE_NAMES {
        write!(out, ",{name}").map_err(io)?;
    }
    writeln!(out).map_err(io)?;

    // Evaluation users: the renters with likes, saves or inquiries after the cutoff that
    // `replay::held_out` picks (the ones `rentgraph evaluate --held-out-share` scores), at most
    // `eval_users` of them; they are kept out of the training rows.
    let mut rng = Rng::new(opts.seed);
    let later: BTreeSet<Uuid> = corpus
        .interactions
        .iter()
        .filter(|i| i.created_at >= eval_cut && engages(i.kind))
        .map(|i| i.user_id)
        .collect();
    // Only renters who have something to be evaluated on are kept out: the rest would cost
    // training rows and evaluate nothing.
    let out_of_training =
        |u: &Uuid| later.contains(u) && held_out(u, opts.seed, opts.held_out_share);
    let held_out: HashSet<Uuid> = later
        .iter()
        .filter(|u| out_of_training(u))
        .take(opts.eval_users)
        .copied()
        .collect();
    let mut report = ExportReport::default();
    let mut group = 0usize;
    let last = TRAINING_WINDOWS.len() - 2;
    for (w, (start, stop)) in TRAINING_WINDOWS
        .windows(2)
        .map(|w| (at(w[0]), at(w[1])))
        .enumerate()
    {
        // The last window validates (train.py picks the number of trees on it), by time.
        let split = if w == last { "valid" } else { "train" };
        let (rows, _) = window_rows(
            &mut out,
            &corpus,
            ml,
            &mut rng,
            split,
            (start, stop),
            &|u| !out_of_training(u),
            // Validation ranks every candidate, as serving does; training samples.
            if w == last {
                usize::MAX
            } else {
                NEGATIVES_PER_USER
            },
            &mut group,
        )
        .map_err(io)?;
        report.train_rows += rows;
    }
    let (rows, users) = window_rows(
        &mut out,
        &corpus,
        ml,
        &mut rng,
        "eval",
        (eval_cut, end),
        &|u| held_out.contains(u),
        EVAL_NEGATIVES_PER_USER,
        &mut group,
    )
    .map_err(io)?;
    report.eval_rows = rows;
    report.eval_users = users;
    out.flush().map_err(io)?;
    Ok(report)
}
