//! Co-engagement: "renters who engaged with this listing also engaged with these". Tastes that
//! no listing column shows (a style, a favourite street, quality that only behaviour reveals)
//! show up as listings the same renters keep coming back to; this table is how retrieval, the
//! features and the item-kNN baseline see them.
//!
//! Built from the interactions of the last `WINDOW_DAYS` (up to the newest one, like the recent
//! counters), each renter's `PER_USER` most recent distinct listings with the weight of their
//! strongest interaction (a view 1, a like 2, a save 3, an inquiry 4, as the profile weighs
//! them; dismissals say nothing of taste). The similarity of two listings is the cosine of
//! their weighted renter vectors; each listing active at build time keeps its `NEIGHBOURS`
//! most similar active listings.
//!
//! The build is item-major (for each listing, the renters who touched it, then what else they
//! touched), so it needs memory for one row of scratch, not for every pair. Sums run in a fixed
//! order (listings and renters by id), so the live index and the offline replays compute
//! bit-identical tables from the same interactions.
//!
//! Computed at each full reload of the listing index (`ml.index_refresh_secs`), not per
//! interaction: a listing's neighbours move slowly, and a new listing has none until the next
//! reload (the other retrieval sources cover it).
use entity::InteractionKind;
use rentgraph_model::features::interaction_weight;
use std::collections::HashMap;
use uuid::Uuid;

/// Interactions of this many days, up to the newest, count.
pub const WINDOW_DAYS: i64 = 90;
/// A renter's most recent distinct listings that count, in the build and in a user's scores.
pub const PER_USER: usize = 50;
/// Neighbours kept per listing.
pub const NEIGHBOURS: usize = 20;
/// Half-life of the time-decayed popularity kept with the table.
pub const DECAY_HALF_LIFE_DAYS: f64 = 14.0;

/// The neighbour table. Listings are numbered densely so a neighbour costs 8 bytes.
#[derive(Default)]
pub struct CoEngagement {
    ids: Vec<Uuid>,
    by_id: HashMap<Uuid, u32>,
    /// `neighbours[i]`: (listing number, cosine), most similar first.
    neighbours: Vec<Box<[(u32, f32)]>>,
    /// Time-decayed popularity of every listing in the window, as of its newest interaction:
    /// each interaction weighs as in `Popularity::score` (a view 1, an engagement 3, a
    /// dismissal -1) times 2^(-age / `DECAY_HALF_LIFE_DAYS`).
    decayed: HashMap<Uuid, f32>,
}

pub use crate::store::InteractionEvent as Event;

/// A renter's listings, newest first, each once with the weight of its strongest interaction,
/// at most `PER_USER` (the same cut in the build and in a user's scores).
fn distinct_weighted(
    events: impl IntoIterator<Item = (InteractionKind, Uuid)>,
) -> Vec<(Uuid, f64)> {
    let mut out: Vec<(Uuid, f64)> = Vec::new();
    for (kind, id) in events {
        let w = f64::from(interaction_weight(kind));
        if w == 0.0 {
            continue;
        }
        match out.iter().position(|(x, _)| *x == id) {
            Some(i) => out[i].1 = out[i].1.max(w),
            None if out.len() < PER_USER => out.push((id, w)),
            None => {}
        }
    }
    out
}

impl CoEngagement {
    /// The table from these interactions (any order), keeping neighbours among the listings
    /// `active` accepts.
    pub fn build(events: impl IntoIterator<Item = Event>, active: &dyn Fn(&Uuid) -> bool) -> Self {
        let mut by_user: HashMap<Uuid, Vec<Event>> = HashMap::new();
        for e in events {
            by_user.entry(e.user).or_default().push(e);
        }
        let decayed = decayed_popularity(&by_user);
        let mut users: Vec<(Uuid, Vec<(Uuid, f64)>)> = by_user
            .into_iter()
            .map(|(u, mut evs)| {
                // Newest first; ties by listing and kind, so the cut is the same everywhere.
                evs.sort_by(|a, b| {
                    b.at.cmp(&a.at)
                        .then(a.listing.cmp(&b.listing))
                        .then((a.kind as u8).cmp(&(b.kind as u8)))
                });
                (
                    u,
                    distinct_weighted(evs.iter().map(|e| (e.kind, e.listing))),
                )
            })
            .filter(|(_, items)| items.len() > 1)
            .collect();
        users.sort_by_key(|u| u.0);
        let mut ids: Vec<Uuid> = users
            .iter()
            .flat_map(|(_, items)| items.iter().map(|i| i.0))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let by_id: HashMap<Uuid, u32> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u32))
            .collect();
        // Renter -> (listing, weight) by listing number; listing -> (renter, weight) by renter.
        let user_items: Vec<Vec<(u32, f64)>> = users
            .iter()
            .map(|(_, items)| {
                let mut v: Vec<(u32, f64)> = items.iter().map(|(id, w)| (by_id[id], *w)).collect();
                v.sort_by_key(|x| x.0);
                v
            })
            .collect();
        let mut item_users: Vec<Vec<(u32, f64)>> = vec![Vec::new(); ids.len()];
        for (u, items) in user_items.iter().enumerate() {
            for &(i, w) in items {
                item_users[i as usize].push((u as u32, w));
            }
        }
        let norm: Vec<f64> = item_users
            .iter()
            .map(|us| us.iter().map(|(_, w)| w * w).sum::<f64>().sqrt())
            .collect();
        let keep: Vec<bool> = ids.iter().map(active).collect();
        let mut acc = vec![0.0f64; ids.len()];
        let mut touched: Vec<u32> = Vec::new();
        let mut neighbours: Vec<Box<[(u32, f32)]>> = Vec::with_capacity(ids.len());
        for i in 0..ids.len() {
            for &(u, wi) in &item_users[i] {
                for &(j, wj) in &user_items[u as usize] {
                    if j as usize == i || !keep[j as usize] {
                        continue;
                    }
                    if acc[j as usize] == 0.0 {
                        touched.push(j);
                    }
                    acc[j as usize] += wi * wj;
                }
            }
            let mut row: Vec<(u32, f32)> = touched
                .iter()
                .map(|&j| {
                    let sim = acc[j as usize] / (norm[i] * norm[j as usize]).max(f64::MIN_POSITIVE);
                    (j, sim as f32)
                })
                .collect();
            for &j in &touched {
                acc[j as usize] = 0.0;
            }
            touched.clear();
            row.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            row.truncate(NEIGHBOURS);
            neighbours.push(row.into_boxed_slice());
        }
        Self {
            ids,
            by_id,
            neighbours,
            decayed,
        }
    }

    /// A listing's time-decayed popularity (0 when it had no interaction in the window).
    pub fn decayed(&self, id: &Uuid) -> f32 {
        self.decayed.get(id).copied().unwrap_or(0.0)
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// A listing's neighbours, most similar first.
    pub fn neighbours(&self, id: &Uuid) -> impl Iterator<Item = (Uuid, f32)> + '_ {
        self.by_id
            .get(id)
            .map(|&i| &self.neighbours[i as usize][..])
            .unwrap_or(&[])
            .iter()
            .map(|&(j, s)| (self.ids[j as usize], s))
    }

    /// Item-kNN scores for a renter with this history (newest first, as the user state keeps
    /// it): for each listing, the sum over the renter's listings of weight x similarity.
    pub fn scores(&self, history: impl IntoIterator<Item = (InteractionKind, Uuid)>) -> UserScores {
        let listings = distinct_weighted(history);
        // Sized once: at most NEIGHBOURS per listing (a request's hot path).
        let mut sums: HashMap<Uuid, f64> = HashMap::with_capacity(listings.len() * NEIGHBOURS);
        for (id, w) in listings {
            for (j, s) in self.neighbours(&id) {
                *sums.entry(j).or_default() += w * f64::from(s);
            }
        }
        let max = sums.values().copied().fold(0.0, f64::max);
        UserScores {
            scores: sums.into_iter().map(|(k, v)| (k, v as f32)).collect(),
            max: max as f32,
        }
    }

    /// Approximate memory held.
    pub fn bytes(&self) -> usize {
        self.ids.len() * (16 + 16 + 4 + std::mem::size_of::<Box<[(u32, f32)]>>())
            + self.neighbours.iter().map(|n| n.len() * 8).sum::<usize>()
            + self.decayed.capacity() * (16 + 4 + 8)
    }
}

/// Decayed popularity as of the newest event, summed per listing in time order (then user and
/// kind), so the live index and the replays get the same bits.
fn decayed_popularity(by_user: &HashMap<Uuid, Vec<Event>>) -> HashMap<Uuid, f32> {
    let Some(as_of) = by_user.values().flatten().map(|e| e.at).max() else {
        return HashMap::new();
    };
    let mut per_listing: HashMap<Uuid, Vec<&Event>> = HashMap::new();
    for e in by_user.values().flatten() {
        per_listing.entry(e.listing).or_default().push(e);
    }
    per_listing
        .into_iter()
        .map(|(id, mut evs)| {
            evs.sort_by(|a, b| {
                a.at.cmp(&b.at)
                    .then(a.user.cmp(&b.user))
                    .then((a.kind as u8).cmp(&(b.kind as u8)))
            });
            let sum: f64 = evs
                .iter()
                .map(|e| {
                    let w = match e.kind {
                        InteractionKind::View => 1.0,
                        InteractionKind::Dismiss => -1.0,
                        _ => 3.0,
                    };
                    let days = (as_of - e.at).num_milliseconds() as f64 / 86_400_000.0;
                    w * (-days / DECAY_HALF_LIFE_DAYS).exp2()
                })
                .sum();
            (id, sum as f32)
        })
        .collect()
}

/// One renter's item-kNN scores.
#[derive(Debug, Clone, Default)]
pub struct UserScores {
    pub scores: HashMap<Uuid, f32>,
    /// The highest score (0 when there is none).
    pub max: f32,
}

impl UserScores {
    pub fn get(&self, id: &Uuid) -> f32 {
        self.scores.get(id).copied().unwrap_or(0.0)
    }

    /// The listings by score, best first (ties by id), that `keep` accepts.
    pub fn ranked(&self, keep: &dyn Fn(&Uuid) -> bool) -> Vec<(Uuid, f32)> {
        let mut v: Vec<(Uuid, f32)> = self
            .scores
            .iter()
            .filter(|(id, _)| keep(id))
            .map(|(id, s)| (*id, *s))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn ev(user: u128, listing: u128, kind: InteractionKind, minute: u32) -> Event {
        Event {
            user: Uuid::from_u128(user),
            listing: Uuid::from_u128(listing),
            kind,
            at: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, minute, 0)
                .single()
                .unwrap_or_default(),
        }
    }

    #[test]
    fn listings_engaged_by_the_same_renters_are_neighbours_and_score_for_a_new_renter() {
        use InteractionKind::{Dismiss, Save, View};
        // Renters 1-3 like listings 10 and 11 together; renter 4 likes 10 and 12 once.
        let mut events = Vec::new();
        for u in 1..=3 {
            events.push(ev(u, 10, Save, 1));
            events.push(ev(u, 11, Save, 2));
        }
        events.push(ev(4, 10, View, 1));
        events.push(ev(4, 12, View, 2));
        // Dismissals carry no taste.
        events.push(ev(5, 10, Dismiss, 1));
        events.push(ev(5, 13, Dismiss, 2));
        let table = CoEngagement::build(events.clone(), &|_| true);
        let n: Vec<(Uuid, f32)> = table.neighbours(&Uuid::from_u128(10)).collect();
        assert_eq!(n[0].0, Uuid::from_u128(11), "{n:?}");
        assert!(n[0].1 > n[1].1);
        assert!(!n.iter().any(|(id, _)| *id == Uuid::from_u128(13)));

        // A renter who saved 10 gets 11 first; listings they touched are scored too.
        let s = table.scores([(Save, Uuid::from_u128(10))]);
        let ranked = s.ranked(&|id| *id != Uuid::from_u128(10));
        assert_eq!(ranked[0].0, Uuid::from_u128(11));
        assert_eq!(s.max, ranked[0].1);

        // Inactive listings are nobody's neighbour.
        let only_active = CoEngagement::build(events.clone(), &|id| *id != Uuid::from_u128(11));
        assert!(
            only_active
                .neighbours(&Uuid::from_u128(10))
                .all(|(id, _)| id != Uuid::from_u128(11))
        );

        // The same interactions in another order give the same table, bit for bit.
        events.reverse();
        let again = CoEngagement::build(events, &|_| true);
        for id in 10..=13 {
            let a: Vec<_> = table.neighbours(&Uuid::from_u128(id)).collect();
            let b: Vec<_> = again.neighbours(&Uuid::from_u128(id)).collect();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn only_a_renters_most_recent_listings_count() {
        use InteractionKind::View;
        // One renter touches PER_USER + 1 listings; the oldest is left out.
        let mut events: Vec<Event> = (0..=PER_USER as u128)
            .map(|i| ev(1, 100 + i, View, (i % 60) as u32))
            .collect();
        for e in events.iter_mut().enumerate() {
            e.1.at += chrono::Duration::hours(e.0 as i64);
        }
        let table = CoEngagement::build(events, &|_| true);
        assert_eq!(table.neighbours(&Uuid::from_u128(100)).count(), 0);
        assert!(table.neighbours(&Uuid::from_u128(101)).count() > 0);
    }
}
