//! `rentgraph export-training-data`: the training and evaluation sets, computed with the same
//! `features()` that serving uses. Offline code, kept out of the serving modules (`recommend`,
//! `ml`); it reads through `store` like any other client.
//!
//! Time decides everything, so nothing from the future leaks into a row:
//! - evaluation: profiles and popularity from interactions before the 85th percentile of time;
//!   targets are each user's likes/saves/inquiries after it, ranked against 100 listings the
//!   user never touched (50 uniformly random, 50 from the user's most browsed city);
//! - training: two windows (55th-70th and 70th-85th percentile of time), each with profiles and
//!   popularity from before the window; labels from the interactions inside it:
//!   likes/saves/inquiries are 1, dismissals are 0, plus 4 sampled untouched listings per
//!   positive (2 random, 2 from the user's most browsed city).
use crate::datagen::Rng;
use crate::ml::features::{FEATURE_NAMES, ListingFacts, Popularity, UserProfile, features};
use crate::recommend::index::facts_of;
use crate::store::{IndexRow, Store, StoreError};
use chrono::{DateTime, Utc};
use entity::{Amenity, InteractionKind, interaction, property, user};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    pub eval_users: usize,
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

/// What the offline tools (this export, `evaluation`) read: every user, listing and
/// amenity, and every interaction, oldest first.
pub(crate) struct Corpus {
    pub(crate) users: HashMap<Uuid, user::Model>,
    pub(crate) listings: Vec<property::Model>,
    pub(crate) amenities: HashMap<Uuid, Vec<Amenity>>,
    pub(crate) interactions: Vec<interaction::Model>,
}

impl Corpus {
    pub(crate) async fn load(store: &Store) -> Result<Self, StoreError> {
        let users = store
            .all_users()
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let listings = store.all_properties().await?;
        let mut amenities: HashMap<Uuid, Vec<Amenity>> = HashMap::new();
        for a in store.all_amenities().await? {
            amenities.entry(a.property_id).or_default().push(a.amenity);
        }
        let interactions = store.all_interactions().await?;
        Ok(Self {
            users,
            listings,
            amenities,
            interactions,
        })
    }
}

/// Likes, saves and inquiries: what a recommendation is for.
pub(crate) fn positive(k: InteractionKind) -> bool {
    matches!(
        k,
        InteractionKind::Like | InteractionKind::Save | InteractionKind::Inquiry
    )
}

struct World {
    users: HashMap<Uuid, user::Model>,
    listings: Vec<property::Model>,
    index: HashMap<Uuid, usize>,
    amenities: HashMap<Uuid, Vec<Amenity>>,
    interactions: Vec<interaction::Model>,
    by_city: HashMap<String, Vec<usize>>,
    active: Vec<usize>,
}

impl World {
    /// Listing facts with popularity counted from interactions before `cutoff`.
    fn facts_at(&self, cutoff: DateTime<Utc>) -> Vec<ListingFacts> {
        let mut pop = vec![Popularity::default(); self.listings.len()];
        for i in self
            .interactions
            .iter()
            .take_while(|i| i.created_at < cutoff)
        {
            if let Some(&ix) = self.index.get(&i.property_id) {
                pop[ix].add(i.kind);
            }
        }
        self.listings
            .iter()
            .zip(pop)
            .map(|(p, pop)| {
                let a = self.amenities.get(&p.id).map(Vec::as_slice).unwrap_or(&[]);
                facts_of(IndexRow::from(p), a, pop)
            })
            .collect()
    }

    fn profiles_at(
        &self,
        cutoff: DateTime<Utc>,
        facts: &[ListingFacts],
    ) -> HashMap<Uuid, UserProfile> {
        let mut history: HashMap<Uuid, Vec<(InteractionKind, usize)>> = HashMap::new();
        for i in self
            .interactions
            .iter()
            .take_while(|i| i.created_at < cutoff)
        {
            if let Some(&ix) = self.index.get(&i.property_id) {
                history.entry(i.user_id).or_default().push((i.kind, ix));
            }
        }
        history
            .into_iter()
            .filter_map(|(u, events)| {
                let prefs = self.users.get(&u)?.preferences.clone();
                Some((
                    u,
                    UserProfile::build(prefs, events.iter().map(|(k, ix)| (*k, &facts[*ix]))),
                ))
            })
            .collect()
    }

    fn top_city(profile: &UserProfile) -> Option<&String> {
        profile
            .city_share
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(c, _)| c)
    }

    fn sample(
        &self,
        rng: &mut Rng,
        city: Option<&String>,
        avoid: &HashSet<usize>,
    ) -> Option<usize> {
        let pool = city
            .and_then(|c| self.by_city.get(c))
            .unwrap_or(&self.active);
        for _ in 0..50 {
            let ix = *rng.pick(pool);
            if !avoid.contains(&ix) {
                return Some(ix);
            }
        }
        None
    }
}

fn write_row(
    out: &mut impl Write,
    split: &str,
    group: usize,
    ix: usize,
    label: u8,
    f: &ListingFacts,
    row: &[f32],
) -> std::io::Result<()> {
    write!(out, "{split},{group},{ix},{label},{}", f.popularity.score())?;
    for v in row {
        write!(out, ",{v}")?;
    }
    writeln!(out)
}

pub async fn export(
    store: &Store,
    path: &Path,
    opts: ExportOptions,
) -> Result<ExportReport, ExportError> {
    let Corpus {
        users,
        listings,
        amenities,
        interactions,
    } = Corpus::load(store).await?;
    if interactions.len() < 100 {
        return Err(ExportError::TooFew(interactions.len()));
    }
    let index: HashMap<Uuid, usize> = listings
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id, i))
        .collect();
    let mut by_city: HashMap<String, Vec<usize>> = HashMap::new();
    let mut active = Vec::new();
    for (i, p) in listings.iter().enumerate() {
        if p.is_active {
            by_city.entry(p.city.clone()).or_default().push(i);
            active.push(i);
        }
    }
    let world = World {
        users,
        listings,
        index,
        amenities,
        interactions,
        by_city,
        active,
    };
    let at = |q: f64| {
        world.interactions[((world.interactions.len() - 1) as f64 * q) as usize].created_at
    };
    let eval_cut = at(0.85);
    let windows = [(at(0.55), at(0.70)), (at(0.70), eval_cut)];

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

    let mut rng = Rng::new(opts.seed);
    let mut report = ExportReport::default();
    let touched: HashMap<Uuid, HashSet<usize>> =
        world.interactions.iter().fold(HashMap::new(), |mut m, i| {
            if let Some(&ix) = world.index.get(&i.property_id) {
                m.entry(i.user_id).or_default().insert(ix);
            }
            m
        });
    let empty = HashSet::new();

    // Training rows: two windows, each with profiles and popularity from before it.
    let mut group = 0usize;
    for (start, end) in windows {
        let facts = world.facts_at(start);
        let profiles = world.profiles_at(start, &facts);
        for i in world
            .interactions
            .iter()
            .filter(|i| i.created_at >= start && i.created_at < end)
        {
            let (Some(profile), Some(&ix)) =
                (profiles.get(&i.user_id), world.index.get(&i.property_id))
            else {
                continue;
            };
            let label = if positive(i.kind) {
                1
            } else if i.kind == InteractionKind::Dismiss {
                0
            } else {
                continue;
            };
            group += 1;
            write_row(
                &mut out,
                "train",
                group,
                ix,
                label,
                &facts[ix],
                &features(profile, &facts[ix], start),
            )
            .map_err(io)?;
            report.train_rows += 1;
            if label == 1 {
                let avoid = touched.get(&i.user_id).unwrap_or(&empty);
                let city = World::top_city(profile);
                for k in 0..4 {
                    if let Some(neg) =
                        world.sample(&mut rng, if k < 2 { None } else { city }, avoid)
                    {
                        write_row(
                            &mut out,
                            "train",
                            group,
                            neg,
                            0,
                            &facts[neg],
                            &features(profile, &facts[neg], start),
                        )
                        .map_err(io)?;
                        report.train_rows += 1;
                    }
                }
            }
        }
    }

    // Evaluation groups: one per user.
    let facts = world.facts_at(eval_cut);
    let profiles = world.profiles_at(eval_cut, &facts);
    let mut targets: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for i in world
        .interactions
        .iter()
        .filter(|i| i.created_at >= eval_cut && positive(i.kind))
    {
        if let Some(&ix) = world.index.get(&i.property_id) {
            let t = targets.entry(i.user_id).or_default();
            if !t.contains(&ix) {
                t.push(ix);
            }
        }
    }
    let mut eval_users: Vec<&Uuid> = targets
        .keys()
        .filter(|u| profiles.contains_key(*u))
        .collect();
    eval_users.sort();
    for u in eval_users.into_iter().take(opts.eval_users) {
        let (Some(profile), Some(t)) = (profiles.get(u), targets.get(u)) else {
            continue;
        };
        group += 1;
        report.eval_users += 1;
        let avoid = touched.get(u).unwrap_or(&empty);
        for &ix in t {
            write_row(
                &mut out,
                "eval",
                group,
                ix,
                1,
                &facts[ix],
                &features(profile, &facts[ix], eval_cut),
            )
            .map_err(io)?;
            report.eval_rows += 1;
        }
        let city = World::top_city(profile);
        let mut chosen = HashSet::new();
        for k in 0..100 {
            if let Some(neg) = world.sample(&mut rng, if k < 50 { None } else { city }, avoid)
                && chosen.insert(neg)
            {
                write_row(
                    &mut out,
                    "eval",
                    group,
                    neg,
                    0,
                    &facts[neg],
                    &features(profile, &facts[neg], eval_cut),
                )
                .map_err(io)?;
                report.eval_rows += 1;
            }
        }
    }
    out.flush().map_err(io)?;
    Ok(report)
}
