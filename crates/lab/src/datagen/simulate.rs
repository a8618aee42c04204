//! The default world's interactions: renters' sessions over the market in time order.
use super::generate::{Market, Search, Taste, affinity};
use super::params::*;
use super::rng::{Rng, Weighted, exponential};
use super::world::{CITIES, at_day};
use entity::{InteractionKind, interaction, user};

/// Renters' sessions, in time order, over the listings on the market at that moment. An
/// inquiry counts towards renting the listing, which then leaves the market.
pub(super) fn simulate(
    rng: &mut Rng,
    wanted: usize,
    users: &[user::Model],
    searches: &[Search],
    market: &mut Market,
    city_pick: &Weighted,
) -> Vec<interaction::Model> {
    let popular = Weighted::new(market.appeal.iter().copied());
    let mut by_city: Vec<Vec<usize>> = vec![Vec::new(); CITIES.len()];
    for (i, &c) in market.prop_city.iter().enumerate() {
        by_city[c].push(i);
    }
    let city_popular: Vec<Weighted> = by_city
        .iter()
        .map(|ids| Weighted::new(ids.iter().map(|&i| market.appeal[i])))
        .collect();
    let looks = Looks {
        popular: &popular,
        by_city: &by_city,
        city_popular: &city_popular,
    };
    // Some interactions find nothing on the market (a tiny data set): plan a few more
    // sessions than needed and thin the result out uniformly at the end.
    let planned = wanted + wanted / 8 + 1;
    let sessions = plan_sessions(rng, users.len(), searches, planned);
    let mut inquiries = vec![0usize; market.properties.len()];
    let mut out = Vec::with_capacity(planned);
    for (day, u, len) in sessions {
        let taste = searches[u].taste_at(day);
        let city = if rng.chance(0.85) {
            taste.home_city
        } else {
            taste.second_city.unwrap_or_else(|| city_pick.sample(rng))
        };
        let mut t = day;
        for _ in 0..len {
            t += (30.0 + rng.f64() * 270.0) / 86_400.0;
            let Some(p) = looks.choose(rng, market, taste, city, t) else {
                continue;
            };
            let a = affinity_at(market, taste, p, t);
            let kind = kind_for(rng, a);
            if kind == InteractionKind::Inquiry {
                inquiries[p] += 1;
                if inquiries[p] == market.rented_after[p] {
                    market.listed[p].1 = market.listed[p].1.min(t + 1.0 + rng.f64() * 6.0);
                }
            }
            out.push(interaction::Model {
                id: rng.uuid(),
                user_id: users[u].id,
                property_id: market.properties[p].id,
                kind,
                created_at: at_day(t),
            });
        }
    }
    // Thin out uniformly, then back into time order.
    if out.len() > wanted {
        rng.sample_to_front(&mut out, wanted);
        out.truncate(wanted);
        out.sort_by_key(|i| i.created_at);
    }
    out
}

/// Sessions (day, user, length) until `planned` interactions, in time order. Heavy-tailed
/// activity: some users browse a lot, most a little.
fn plan_sessions(
    rng: &mut Rng,
    n_users: usize,
    searches: &[Search],
    planned: usize,
) -> Vec<(f64, usize, usize)> {
    let activity = Weighted::new((0..n_users).map(|_| (0.9 * rng.normal()).exp()));
    let mut sessions: Vec<(f64, usize, usize)> = Vec::new();
    let mut total = 0usize;
    while total < planned {
        let u = activity.sample(rng);
        let s = &searches[u];
        let day = s.start + rng.f64() * (s.end - s.start);
        let len = (1 + exponential(rng, MEAN_SESSION_INTERACTIONS - 1.0) as usize).min(40);
        sessions.push((day, u, len));
        total += len;
    }
    sessions.sort_by(|a, b| a.0.total_cmp(&b.0));
    sessions
}

/// How renters come across listings: the front page (popularity alone) or the city's
/// listings weighted by appeal.
struct Looks<'a> {
    popular: &'a Weighted,
    by_city: &'a [Vec<usize>],
    city_popular: &'a [Weighted],
}

impl Looks<'_> {
    /// The listing a renter engages with at `t`: one from the front page, or the best by
    /// affinity (with Gumbel noise, so sampling by softmax) of `LOOKED_AT` in the city.
    fn choose(
        &self,
        rng: &mut Rng,
        market: &Market,
        taste: &Taste,
        city: usize,
        t: f64,
    ) -> Option<usize> {
        let on_market = |p: usize| market.listed[p].0 <= t && t < market.listed[p].1;
        if rng.chance(POPULARITY_DRIVEN) {
            for _ in 0..64 {
                let p = self.popular.sample(rng);
                if on_market(p) {
                    return Some(p);
                }
            }
            return None;
        }
        let mut chosen = None;
        let mut best_score = f64::NEG_INFINITY;
        let mut looked = 0;
        for _ in 0..LOOKED_AT * 8 {
            let cand = if self.by_city[city].is_empty() {
                self.popular.sample(rng)
            } else {
                self.by_city[city][self.city_popular[city].sample(rng)]
            };
            if !on_market(cand) {
                continue;
            }
            // Gumbel noise turns argmax into sampling by softmax of affinity.
            let gumbel = -(-(rng.f64().max(1e-12)).ln()).ln();
            let s = affinity_at(market, taste, cand, t) + gumbel;
            if s > best_score {
                best_score = s;
                chosen = Some(cand);
            }
            looked += 1;
            if looked == LOOKED_AT {
                break;
            }
        }
        chosen
    }
}

fn affinity_at(market: &Market, taste: &Taste, p: usize, t: f64) -> f64 {
    affinity(
        taste,
        &market.properties[p],
        &market.prop_amen[p],
        market.prop_city[p],
        market.appeal[p],
        t - market.listed[p].0,
    )
}

/// What the renter does with the listing: the more they like it, the likelier a like, save or
/// inquiry; the less, the likelier a dismissal.
fn kind_for(rng: &mut Rng, affinity: f64) -> InteractionKind {
    let s = 1.0 / (1.0 + (-(affinity - 1.5)).exp());
    let r = rng.f64();
    if r < 0.22 * s {
        InteractionKind::Like
    } else if r < 0.36 * s {
        InteractionKind::Save
    } else if r < 0.42 * s {
        InteractionKind::Inquiry
    } else if r > 1.0 - 0.12 * (1.0 - s) {
        InteractionKind::Dismiss
    } else {
        InteractionKind::View
    }
}
