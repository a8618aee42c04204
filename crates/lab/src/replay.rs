//! Serving as it stood at a past moment, rebuilt from the stored history, for the offline tools
//! (training data and `rentgraph evaluate`): both rank through the serving code itself on what
//! serving would have known then, so training, evaluation and production see the same
//! candidates and the same feature rows.
//!
//! At a moment `at`:
//! - the listing index holds the listings on the market then: created before `at`, and either
//!   still active or deactivated after it (`updated_at` of an inactive listing is when it left);
//! - counters count the interactions before `at`, recent counters those of the `RECENT_DAYS`
//!   up to the newest of them, as the live index counts them;
//! - a user's state is built from their interactions before `at` with the same
//!   `ml.history_limit` as serving;
//! - the co-engagement table counts the `co_engagement::WINDOW_DAYS` up to the newest
//!   interaction before `at`, as the live index builds it.
use chrono::{DateTime, Duration, Utc};
use entity::{Amenity, interaction, property, user};
use rentgraph::recommend::MlSettings;
use rentgraph::recommend::co_engagement::{self, CoEngagement};
use rentgraph::recommend::index::{Entry, Snapshot};
use rentgraph::recommend::user_state::UserState;
use rentgraph::recommend::{Prepared, prepare};
use rentgraph::store::{IndexRow, PropertyFilter, Store, StoreError};
use rentgraph_model::features::{FeatureRow, ListingFacts, Popularity, RECENT_DAYS, UserProfile};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// What the offline tools (the training export, `evaluation`) read: every user, listing and
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

pub(crate) struct Moment {
    pub(crate) at: DateTime<Utc>,
    pub(crate) snap: Snapshot,
    /// Each user's interactions before `at`, newest first.
    history: HashMap<Uuid, Vec<interaction::Model>>,
}

/// What serving would have done for one user at the moment, up to the model's scores.
pub(crate) struct Served<'m> {
    pub(crate) state: UserState,
    pub(crate) profile: UserProfile,
    pub(crate) candidates: Vec<&'m Entry>,
    pub(crate) facts: Vec<ListingFacts>,
    pub(crate) rows: Vec<FeatureRow>,
}

impl Moment {
    pub(crate) fn new(corpus: &Corpus, at: DateTime<Utc>) -> Self {
        // `Corpus::load` reads interactions oldest first.
        let before = corpus.interactions.partition_point(|i| i.created_at < at);
        // As the live index counts it: the window ends at the newest interaction.
        let recent_from = before
            .checked_sub(1)
            .map_or(at, |i| corpus.interactions[i].created_at)
            - Duration::days(RECENT_DAYS);
        let mut all: HashMap<Uuid, Popularity> = HashMap::new();
        let mut recent: HashMap<Uuid, Popularity> = HashMap::new();
        let mut history: HashMap<Uuid, Vec<interaction::Model>> = HashMap::new();
        for i in &corpus.interactions[..before] {
            all.entry(i.property_id).or_default().add(i.kind);
            if i.created_at >= recent_from {
                recent.entry(i.property_id).or_default().add(i.kind);
            }
            history.entry(i.user_id).or_default().push(i.clone());
        }
        for h in history.values_mut() {
            h.reverse();
        }
        let entries: Vec<Arc<Entry>> = corpus
            .listings
            .iter()
            .filter(|p| p.created_at < at)
            .map(|p| {
                let mut row = IndexRow::from(p);
                row.is_active = p.is_active || p.updated_at > at;
                let a = corpus
                    .amenities
                    .get(&p.id)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let counted = all.get(&p.id).copied().unwrap_or_default();
                let recently = recent.get(&p.id).copied().unwrap_or_default();
                Arc::new(Entry::new(row, a, counted, recently))
            })
            .collect();
        let snap = Snapshot::from_entries(entries);
        // As the live index builds it: the window ends at the newest interaction.
        let co_from = before
            .checked_sub(1)
            .map_or(at, |i| corpus.interactions[i].created_at)
            - Duration::days(co_engagement::WINDOW_DAYS);
        let events = corpus.interactions[..before]
            .iter()
            .filter(|i| i.created_at >= co_from)
            .map(|i| co_engagement::Event {
                user: i.user_id,
                listing: i.property_id,
                kind: i.kind,
                at: i.created_at,
            });
        let co = CoEngagement::build(events, &|id| snap.get(id).is_some_and(|e| e.active));
        Self {
            at,
            snap: snap.with_co_engagement(Arc::new(co)),
            history,
        }
    }

    /// The user's interactions before the moment, newest first.
    pub(crate) fn history(&self, user: &Uuid) -> &[interaction::Model] {
        self.history.get(user).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Serving's retrieval and features for `user` at this moment.
    pub(crate) fn serve(&self, user: &user::Model, ml: &MlSettings) -> Served<'_> {
        let state = UserState::from_rows(self.history(&user.id), ml.state_limits());
        let filter = PropertyFilter {
            active: Some(true),
            ..Default::default()
        };
        let Prepared {
            profile,
            candidates,
            facts,
            rows,
        } = prepare(
            &self.snap,
            Some((user, &state)),
            &filter,
            ml.retrieval(),
            self.at,
        );
        Served {
            state,
            profile: profile.unwrap_or_default(),
            candidates,
            facts,
            rows,
        }
    }
}

/// Whether a renter is kept out of training and evaluated instead (when they have later
/// engagement to be evaluated on): a fixed share of renters, chosen by a hash of their id and
/// `seed`, so the export and the evaluation agree without sharing state.
pub fn held_out(user: &Uuid, seed: u64, share: f64) -> bool {
    let v = user.as_u128();
    let mut rng = crate::datagen::Rng::new(seed ^ (v as u64) ^ ((v >> 64) as u64).rotate_left(17));
    rng.f64() < share
}

/// The candidates and feature rows the replay gives `user` at `at` (the training/serving
/// parity test compares them with `Recommender::feature_rows`). Empty for an unknown user.
pub async fn feature_rows(
    store: &rentgraph::store::Store,
    ml: &MlSettings,
    user: Uuid,
    at: DateTime<Utc>,
) -> Result<Vec<(Uuid, FeatureRow)>, rentgraph::store::StoreError> {
    let corpus = Corpus::load(store).await?;
    let Some(u) = corpus.users.get(&user) else {
        return Ok(Vec::new());
    };
    let moment = Moment::new(&corpus, at);
    let served = moment.serve(u, ml);
    Ok(served
        .candidates
        .iter()
        .zip(served.rows)
        .map(|(e, r)| (e.id, r))
        .collect())
}
