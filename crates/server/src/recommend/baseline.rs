//! The simple recommenders a model has to beat, written once for the offline evaluation and
//! for serving: a model whose sealed evaluation does not beat the best of them is not served,
//! and the best servable one answers instead (`Recommender`, "the gate").
//!
//! - `ModelOff`: retrieval's candidates ranked by retrieval's own prior (recent popularity),
//!   then `pick`: the whole serving path without the model. Also what recommendations fall
//!   back to when the model cannot answer.
//! - `Popularity { window, area }`: the most popular listings where the user looks, all-time,
//!   over the recent window (`RECENT_DAYS`) or time-decayed (half-life 14 days), with the area either as stated (stated cities, else
//!   the two browsed most, and the stated budget) or as retrieval infers it (budget and size
//!   from history when none is stated, `recommend::retrieve`'s filter). Too few there, and the
//!   most popular listings anywhere fill the list.
//! - `CoEngagement`: item-kNN over the co-engagement table, filled up by `ModelOff` when the
//!   user's neighbours run out.
use super::index::{Entry, Snapshot};
use super::looked_at;
use entity::user;
use rentgraph_model::features::UserProfile;
use serde::{Deserialize, Serialize};

/// Popularity over all time or over the recent window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    AllTime,
    Recent,
    /// Time-decayed (half-life 14 days, `co_engagement::DECAY_HALF_LIFE_DAYS`).
    Decayed,
}

/// Where the user looks, as stated or as retrieval infers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    Stated,
    Inferred,
}

/// A baseline the server can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    ModelOff,
    Popularity { window: Window, area: Area },
    CoEngagement,
}

impl Baseline {
    pub const ALL: [Baseline; 8] = [
        Baseline::ModelOff,
        Baseline::Popularity {
            window: Window::AllTime,
            area: Area::Stated,
        },
        Baseline::Popularity {
            window: Window::Recent,
            area: Area::Stated,
        },
        Baseline::Popularity {
            window: Window::AllTime,
            area: Area::Inferred,
        },
        Baseline::Popularity {
            window: Window::Recent,
            area: Area::Inferred,
        },
        Baseline::Popularity {
            window: Window::Decayed,
            area: Area::Stated,
        },
        Baseline::Popularity {
            window: Window::Decayed,
            area: Area::Inferred,
        },
        Baseline::CoEngagement,
    ];

    /// The name in evaluation reports and the sealed gate.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::ModelOff => "model_off",
            Baseline::Popularity {
                window: Window::AllTime,
                area: Area::Stated,
            } => "popularity_stated_area",
            Baseline::Popularity {
                window: Window::Recent,
                area: Area::Stated,
            } => "recent_popularity_stated_area",
            Baseline::Popularity {
                window: Window::AllTime,
                area: Area::Inferred,
            } => "popularity_inferred_area",
            Baseline::Popularity {
                window: Window::Recent,
                area: Area::Inferred,
            } => "recent_popularity_inferred_area",
            Baseline::Popularity {
                window: Window::Decayed,
                area: Area::Stated,
            } => "decayed_popularity_stated_area",
            Baseline::Popularity {
                window: Window::Decayed,
                area: Area::Inferred,
            } => "decayed_popularity_inferred_area",
            Baseline::CoEngagement => "item_knn_co_engagement",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// The score a popularity baseline ranks by.
pub fn popularity_score(snap: &Snapshot, e: &Entry, window: Window) -> f64 {
    match window {
        Window::AllTime => e.popularity().score(),
        Window::Recent => e.prior(),
        Window::Decayed => f64::from(snap.co_engagement().decayed(&e.id)),
    }
}

/// The budget and size a user looks for: stated (widened by a fifth either way) or, when
/// `Area::Inferred` and nothing is stated, from the prices and sizes they engaged with. The
/// filter `recommend::retrieve` applies to where the user looks.
pub struct Fit {
    lo: Option<f64>,
    hi: Option<f64>,
    min_beds: Option<i32>,
    seen_beds: Option<f32>,
}

impl Fit {
    pub fn of(user: &user::Model, profile: &UserProfile, area: Area) -> Self {
        let prefs = &user.preferences;
        match area {
            Area::Stated => Self {
                lo: prefs.min_price.map(f64::from),
                hi: prefs.max_price.map(f64::from),
                min_beds: None,
                seen_beds: None,
            },
            Area::Inferred => {
                let seen_price = profile.log_price_mean.map(|m| f64::from(m).exp());
                Self {
                    lo: prefs
                        .min_price
                        .map(|x| f64::from(x) * 0.8)
                        .or(seen_price.map(|p| p * 0.6)),
                    hi: prefs
                        .max_price
                        .map(|x| f64::from(x) * 1.25)
                        .or(seen_price.map(|p| p * 1.6)),
                    min_beds: prefs.min_bedrooms,
                    seen_beds: profile.bedrooms_mean,
                }
            }
        }
    }

    /// Whether there is a price ceiling (stated or from history).
    pub fn has_ceiling(&self) -> bool {
        self.hi.is_some()
    }

    pub fn accepts(&self, e: &Entry) -> bool {
        let f = e.static_facts();
        let price = f64::from(f.monthly_price);
        self.lo.is_none_or(|lo| price >= lo)
            && self.hi.is_none_or(|hi| price <= hi)
            && self.min_beds.is_none_or(|m| f.bedrooms >= m)
            && self
                .seen_beds
                .is_none_or(|m| (f.bedrooms as f32 - m).abs() <= 1.5)
    }
}

/// A popularity baseline's pools for one user: the listings where they look that fit (`local`)
/// and, when those are fewer than `k`, the rest of the market (`rest`), both passing `keep`.
pub fn popularity_pools<'s>(
    snap: &'s Snapshot,
    user: &user::Model,
    profile: &UserProfile,
    area: Area,
    k: usize,
    keep: &dyn Fn(&Entry) -> bool,
) -> (Vec<&'s Entry>, Vec<&'s Entry>) {
    let cities = looked_at(user, profile);
    let fit = Fit::of(user, profile, area);
    let local = snap.popular_in(&cities, usize::MAX, &|e: &Entry| keep(e) && fit.accepts(e));
    let rest = if local.len() < k {
        let have: std::collections::HashSet<uuid::Uuid> = local.iter().map(|e| e.id).collect();
        snap.popular_in(&[], usize::MAX, &|e: &Entry| {
            keep(e) && !have.contains(&e.id)
        })
    } else {
        Vec::new()
    };
    (local, rest)
}

/// The `n` best of `pool` by `score`, ties kept in pool order (the pools are sorted by prior,
/// then id).
pub fn best_of(pool: Vec<&Entry>, n: usize, score: impl Fn(&Entry) -> f64) -> Vec<&Entry> {
    let mut keyed: Vec<(f64, usize, &Entry)> = pool
        .into_iter()
        .enumerate()
        .map(|(i, e)| (score(e), i, e))
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().take(n).map(|k| k.2).collect()
}

/// A popularity baseline's list for one user (serving's version: ties in pool order).
pub fn popularity_list<'s>(
    snap: &'s Snapshot,
    user: &user::Model,
    profile: &UserProfile,
    (window, area): (Window, Area),
    k: usize,
    keep: &dyn Fn(&Entry) -> bool,
) -> Vec<&'s Entry> {
    let (local, rest) = popularity_pools(snap, user, profile, area, k, keep);
    let score = |e: &Entry| popularity_score(snap, e, window);
    let mut out = best_of(local, k, score);
    let room = k - out.len();
    out.extend(best_of(rest, room, score));
    out
}

/// Item-kNN: the user's `k` best co-engagement scores, best first (ties by id), passing
/// `keep`. Retrieval's co-engagement source takes its candidates here too.
pub fn co_engagement_list<'s>(
    snap: &'s Snapshot,
    profile: &UserProfile,
    k: usize,
    keep: &dyn Fn(&Entry) -> bool,
) -> Vec<&'s Entry> {
    let mut scored: Vec<(&Entry, f32)> = profile
        .co_engagement
        .iter()
        .filter_map(|(id, s)| snap.get(id).map(|e| (e, *s)))
        .filter(|(e, _)| keep(e))
        .collect();
    // The best `k` only: a partial selection, then a sort of those (the order is total, so
    // the result is the full sort's first `k`). On a request's hot path.
    let order =
        |a: &(&Entry, f32), b: &(&Entry, f32)| b.1.total_cmp(&a.1).then(a.0.id.cmp(&b.0.id));
    if scored.len() > k && k > 0 {
        scored.select_nth_unstable_by(k - 1, order);
    }
    scored.truncate(k);
    scored.sort_by(order);
    scored.into_iter().map(|(e, _)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::IndexRow;
    use entity::{Preferences, Role};
    use rentgraph_model::features::Popularity;
    use std::sync::Arc;
    use uuid::Uuid;

    fn listing(city: &str, price: i32, all_time: u32, recent: u32) -> Arc<Entry> {
        let p = |views| Popularity {
            views,
            ..Default::default()
        };
        Arc::new(Entry::new(
            IndexRow {
                monthly_price: price,
                ..IndexRow::sample(Uuid::new_v4(), city)
            },
            &[],
            p(all_time),
            p(recent),
        ))
    }

    fn renter(preferences: Preferences) -> user::Model {
        user::Model {
            id: Uuid::new_v4(),
            email: "r@example.test".into(),
            display_name: "R".into(),
            role: Role::User,
            preferences,
            created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            external_subject: None,
        }
    }

    #[test]
    fn popularity_baselines_rank_the_stated_area_by_their_window_and_fill_from_elsewhere() {
        let old_hit = listing("Lisbon", 1000, 90, 0);
        let new_hit = listing("Lisbon", 1100, 20, 15);
        let dear = listing("Lisbon", 5000, 500, 100);
        let elsewhere = listing("Porto", 900, 1000, 100);
        let snap = Snapshot::from_entries(vec![
            old_hit.clone(),
            new_hit.clone(),
            dear.clone(),
            elsewhere.clone(),
        ]);
        let user = renter(Preferences {
            cities: vec!["Lisbon".into()],
            max_price: Some(2000),
            ..Default::default()
        });
        let profile = UserProfile::default();
        let all = |_: &Entry| true;
        let ids = |v: Vec<&Entry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        let by_all_time = popularity_list(
            &snap,
            &user,
            &profile,
            (Window::AllTime, Area::Stated),
            3,
            &all,
        );
        assert_eq!(ids(by_all_time), [old_hit.id, new_hit.id, elsewhere.id]);
        let by_recent = popularity_list(
            &snap,
            &user,
            &profile,
            (Window::Recent, Area::Stated),
            2,
            &all,
        );
        assert_eq!(ids(by_recent), [new_hit.id, old_hit.id]);
        // Exclusions hold: what `keep` refuses never appears.
        let not_old = |e: &Entry| e.id != old_hit.id;
        let kept = popularity_list(
            &snap,
            &user,
            &profile,
            (Window::AllTime, Area::Stated),
            3,
            &not_old,
        );
        assert!(!ids(kept).contains(&old_hit.id));
    }

    #[test]
    fn the_inferred_area_widens_a_stated_budget_and_reads_history_without_one() {
        let user = renter(Preferences {
            max_price: Some(1000),
            ..Default::default()
        });
        let profile = UserProfile::default();
        let at = |price| listing("Lisbon", price, 1, 1);
        let stated = Fit::of(&user, &profile, Area::Stated);
        let inferred = Fit::of(&user, &profile, Area::Inferred);
        assert!(!stated.accepts(&at(1200)) && inferred.accepts(&at(1200)));
        assert!(!inferred.accepts(&at(1300)));
        let silent = renter(Preferences::default());
        let seen = UserProfile {
            log_price_mean: Some((800f32).ln()),
            ..Default::default()
        };
        let fit = Fit::of(&silent, &seen, Area::Inferred);
        assert!(fit.accepts(&at(1200)) && !fit.accepts(&at(1400)) && !fit.accepts(&at(400)));
        assert!(Fit::of(&silent, &seen, Area::Stated).accepts(&at(5000)));
    }

    #[test]
    fn every_baseline_has_a_name_the_gate_can_read_back() {
        for b in Baseline::ALL {
            assert_eq!(Baseline::from_name(b.name()), Some(b));
        }
        assert_eq!(Baseline::from_name("als_matrix_factorisation"), None);
    }
}
