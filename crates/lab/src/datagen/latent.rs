//! `rentgraph seed --world latent`: a second market, written apart from the default one so the
//! recommender is judged on data whose utility is not its own features term for term.
//!
//! What renters value, and what no listing column shows:
//! - a latent style: every listing has a style vector and every renter a taste vector
//!   (`taste_dims` dimensions); their dot product is part of the utility. Only co-engagement
//!   reveals it: renters of similar taste engage with the same listings;
//! - a listing quality that features cannot see (it raises the price a little and the utility
//!   more: value for money);
//! - price, asymmetrically: above the renter's true budget utility falls steeply, below it rises
//!   a little (up to a point);
//! - must-have amenities (pets, parking, a lift, a washer, furniture): a listing without one is
//!   almost never taken;
//! - a favourite neighbourhood for half the renters.
//!
//! How renters meet listings: a logging policy, not the renter, decides what is shown. Each
//! session the platform shows `SHOWN` listings of one city, filtered by the renter's stated
//! budget when they stated one and ranked by time-decayed engagement plus noise (popularity
//! feedback: what was shown gets engaged and is shown more). A renter examines position `p`
//! with probability `(1 + p)^-position_bias`, views what appeals, and likes, saves or asks about
//! what appeals more; nobody engages with a listing twice.
//!
//! Stated preferences are sparse (`stated_share` of renters state anything), aspirational (the
//! stated ceiling is below the real budget) and stale (a renter who moves to another city
//! mid-search rarely updates them). Arrivals are seasonal (more renters in late summer).
//! Listings appear over `LISTING_DAYS`, are rented after a few inquiries or withdrawn.
//!
//! Deterministic: the same seed and parameters give the same rows.
use super::{ADJECTIVES, CITIES, Dataset, FIRST, LAST, Rng, SeedOptions, Weighted, exponential};
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use entity::{
    Amenity, InteractionKind, Preferences, PropertyType, Role, interaction, property,
    property_amenity, property_image, user,
};
use std::collections::HashSet;

/// The parameters a sweep varies (`--world-param KEY=VALUE`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatentParams {
    /// Dimensions of the latent taste and style vectors.
    pub taste_dims: usize,
    /// Share of renters who state any preference at all.
    pub stated_share: f64,
    /// Exponent of the position bias: position p (0 first) is examined with probability
    /// (1 + p)^-position_bias.
    pub position_bias: f64,
    /// Weight of the latent style match in the utility.
    pub style_weight: f64,
}

impl Default for LatentParams {
    fn default() -> Self {
        Self {
            taste_dims: 6,
            stated_share: 0.5,
            position_bias: 1.0,
            style_weight: 1.5,
        }
    }
}

impl LatentParams {
    /// Applies one `KEY=VALUE`.
    pub fn set(&mut self, kv: &str) -> Result<(), String> {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--world-param {kv}: expected KEY=VALUE"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("--world-param {k}: {v} is not a non-negative number"))
        };
        match k {
            "taste_dims" => self.taste_dims = (num(v)? as usize).clamp(1, 64),
            "stated_share" => self.stated_share = num(v)?.min(1.0),
            "position_bias" => self.position_bias = num(v)?,
            "style_weight" => self.style_weight = num(v)?,
            _ => {
                return Err(format!(
                    "--world-param {k}: unknown (taste_dims, stated_share, position_bias, style_weight)"
                ));
            }
        }
        Ok(())
    }
}

/// Days over which listings appear; interactions run over the last `SEARCH_DAYS`.
const LISTING_DAYS: f64 = 360.0;
const SEARCH_DAYS: f64 = 300.0;
const MEAN_LISTING_LIFETIME_DAYS: f64 = 90.0;
/// Inquiries after which a listing is rented (then gone within days).
const RENTED_AFTER: (usize, usize) = (2, 6);
const MEAN_SEARCH_DAYS: f64 = 45.0;
/// Listings the platform shows per session, and how many it considers before ranking.
const SHOWN: usize = 20;
const CONSIDERED: usize = 80;
/// Half-life of the engagement the logging policy ranks by.
const POLICY_HALF_LIFE_DAYS: f64 = 21.0;
/// Share of renters who move to another city halfway through their search, and of those, the
/// share who update their stated city.
const MOVERS: f64 = 0.15;
const MOVERS_WHO_SAY_SO: f64 = 0.3;
/// The stated ceiling is this share of the real budget (aspirational).
const ASPIRATION: f64 = 0.85;
const MUST_HAVES: [Amenity; 5] = [
    Amenity::PetsAllowed,
    Amenity::Parking,
    Amenity::Elevator,
    Amenity::Washer,
    Amenity::Furnished,
];

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

fn at_day(day: f64) -> DateTime<Utc> {
    epoch() - ChronoDuration::microseconds(((LISTING_DAYS - day) * 86_400_000_000.0) as i64)
}

struct Renter {
    taste: Vec<f64>,
    home: usize,
    second: Option<usize>,
    /// (day, city) the renter moves to.
    moves: Option<(f64, usize)>,
    hood: Option<&'static str>,
    bedrooms: i32,
    budget: f64,
    must_have: Option<Amenity>,
    start: f64,
    end: f64,
    activity: f64,
}

struct Listing {
    style: Vec<f64>,
    quality: f64,
    city: usize,
    from: f64,
    until: f64,
    rented_after: usize,
    inquiries: usize,
    /// Time-decayed engagement as the logging policy sees it, and when it was last decayed.
    engaged: f64,
    engaged_at: f64,
}

fn utility(
    p: &LatentParams,
    r: &Renter,
    l: &Listing,
    m: &property::Model,
    amen: &[Amenity],
) -> f64 {
    let style: f64 = r.taste.iter().zip(&l.style).map(|(a, b)| a * b).sum();
    let ratio = (f64::from(m.monthly_price) / r.budget).ln();
    let price = if ratio > 0.0 {
        -7.0 * ratio
    } else if ratio > -0.5 {
        -0.8 * ratio
    } else {
        0.4 - 2.0 * (-0.5 - ratio)
    };
    let mut u = p.style_weight * style + 0.9 * l.quality + price;
    u -= 0.7 * f64::from((m.bedrooms - r.bedrooms).abs());
    if r.must_have.is_some_and(|a| !amen.contains(&a)) {
        u -= 3.0;
    }
    if r.hood.is_some_and(|h| h == m.neighbourhood) {
        u += 0.8;
    }
    u
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A seasonal arrival day: more renters start searching in late summer.
fn arrival(rng: &mut Rng) -> f64 {
    let first = LISTING_DAYS - SEARCH_DAYS;
    loop {
        let d = first + rng.f64() * (SEARCH_DAYS - 7.0);
        // Day 0 is in early October of the year before the epoch; the peak ~ day 320.
        let season = 1.0 + 0.6 * (std::f64::consts::TAU * (d - 230.0) / 365.0).sin();
        if rng.f64() * 1.6 < season {
            return d;
        }
    }
}

const TYPES: [(PropertyType, f64); 6] = [
    (PropertyType::Apartment, 0.5),
    (PropertyType::Studio, 0.15),
    (PropertyType::Room, 0.1),
    (PropertyType::House, 0.1),
    (PropertyType::Condo, 0.1),
    (PropertyType::Townhouse, 0.05),
];

/// A random direction in taste space (unit length on average).
fn unit(rng: &mut Rng, dims: usize) -> Vec<f64> {
    (0..dims)
        .map(|_| rng.normal() / (dims as f64).sqrt())
        .collect()
}

pub(super) fn generate(opts: SeedOptions, p: LatentParams) -> Dataset {
    use sea_orm::Iterable;
    let all_amenities: Vec<Amenity> = Amenity::iter().collect();
    let mut rng = Rng::new(opts.seed ^ 0x6c61_7465_6e74);
    let city_pick = Weighted::new(CITIES.iter().map(|c| c.weight));
    let dims = p.taste_dims.max(1);
    let n_users = opts.users.max(2);
    let (users, renters): (Vec<_>, Vec<_>) = (0..n_users)
        .map(|i| renter(&mut rng, i, &p, &city_pick, dims))
        .unzip();
    let owners: Vec<usize> = users
        .iter()
        .enumerate()
        .filter(|(_, u)| matches!(u.role, Role::Owner | Role::Admin))
        .map(|(i, _)| i)
        .collect();
    let type_pick = Weighted::new(TYPES.iter().map(|t| t.1));
    let picks = Picks {
        city: &city_pick,
        kind: &type_pick,
        dims,
    };
    let mut market = Market::with_capacity(opts.properties);
    for _ in 0..opts.properties {
        market.list(&mut rng, &picks, &all_amenities, &users, &owners);
    }
    let interactions = simulate(
        &mut rng,
        &p,
        opts.interactions,
        &users,
        &renters,
        &mut market,
    );
    for (m, l) in market.properties.iter_mut().zip(&market.listings) {
        if l.until < LISTING_DAYS {
            m.is_active = false;
            m.updated_at = at_day(l.until);
        }
    }
    Dataset {
        users,
        properties: market.properties,
        images: market.images,
        amenities: market.amenities,
        interactions,
        repeats_left_out: 0,
    }
}

/// User `i` and, for a renter, their hidden wants: cities (and a move), bedrooms, budget,
/// a must-have amenity, a favourite neighbourhood, a search period and a taste direction.
fn renter(
    rng: &mut Rng,
    i: usize,
    p: &LatentParams,
    city_pick: &Weighted,
    dims: usize,
) -> (user::Model, Renter) {
    let role = match i {
        0 => Role::Admin,
        1 => Role::Partner,
        2 | 3 => Role::Owner,
        _ if rng.chance(0.08) => Role::Owner,
        _ => Role::User,
    };
    let home = city_pick.sample(rng);
    let second = rng.chance(0.2).then(|| city_pick.sample(rng));
    let bedrooms = [0, 1, 1, 1, 2, 2, 2, 3, 3, 4][rng.below(10)];
    let budget =
        CITIES[home].base_price * (0.6 + 0.28 * f64::from(bedrooms)) * (0.22 * rng.normal()).exp();
    let start = arrival(rng);
    let end = (start + exponential(rng, MEAN_SEARCH_DAYS).max(5.0)).min(LISTING_DAYS);
    let moves = rng.chance(MOVERS).then(|| {
        let c = city_pick.sample(rng);
        (
            start + 0.5 * (end - start),
            if c == home { (c + 1) % CITIES.len() } else { c },
        )
    });
    let hood = rng
        .chance(0.5)
        .then(|| rng.pick(CITIES[home].neighbourhoods).0);
    let must_have = rng.chance(0.4).then(|| *rng.pick(&MUST_HAVES));
    let r = Renter {
        taste: unit(rng, dims),
        home,
        second,
        moves,
        hood,
        bedrooms,
        budget,
        must_have,
        start,
        end,
        activity: (0.8 * rng.normal()).exp(),
    };
    let preferences = if role == Role::User && rng.chance(p.stated_share) {
        stated(rng, &r)
    } else {
        Preferences::default()
    };
    let user = user::Model {
        id: rng.uuid(),
        email: format!("renter{i}@latent.example"),
        display_name: format!("{} {}", rng.pick(FIRST), rng.pick(LAST)),
        role,
        preferences,
        created_at: at_day(start - rng.f64() * 20.0),
        external_subject: None,
    };
    (user, r)
}

/// Sparse, aspirational, stale: said at sign-up, about the first city.
fn stated(rng: &mut Rng, r: &Renter) -> Preferences {
    let moved_and_said = r.moves.filter(|_| rng.chance(MOVERS_WHO_SAY_SO));
    let city = moved_and_said.map_or(r.home, |(_, c)| c);
    Preferences {
        cities: if rng.chance(0.8) {
            vec![CITIES[city].name.to_owned()]
        } else {
            vec![]
        },
        min_price: None,
        max_price: rng
            .chance(0.7)
            .then(|| (r.budget * ASPIRATION / 10.0).round() as i32 * 10),
        min_bedrooms: rng.chance(0.4).then_some(r.bedrooms),
        property_types: vec![],
        amenities: r
            .must_have
            .filter(|_| rng.chance(0.5))
            .into_iter()
            .collect(),
    }
}

/// The draws a listing is made from.
struct Picks<'a> {
    city: &'a Weighted,
    kind: &'a Weighted,
    dims: usize,
}

/// The listings, their hidden style and quality, and their life on the market.
struct Market {
    properties: Vec<property::Model>,
    images: Vec<property_image::Model>,
    amenities: Vec<property_amenity::Model>,
    prop_amen: Vec<Vec<Amenity>>,
    listings: Vec<Listing>,
}

impl Market {
    fn with_capacity(n: usize) -> Self {
        Self {
            properties: Vec::with_capacity(n),
            images: Vec::new(),
            amenities: Vec::new(),
            prop_amen: Vec::with_capacity(n),
            listings: Vec::with_capacity(n),
        }
    }

    fn list(
        &mut self,
        rng: &mut Rng,
        picks: &Picks<'_>,
        all_amenities: &[Amenity],
        users: &[user::Model],
        owners: &[usize],
    ) {
        let city = picks.city.sample(rng);
        let (hood, hood_mult) = *rng.pick(CITIES[city].neighbourhoods);
        let ptype = TYPES[picks.kind.sample(rng)].0;
        let bedrooms = match ptype {
            PropertyType::Studio | PropertyType::Room => 0,
            PropertyType::House | PropertyType::Townhouse => 2 + rng.below(3) as i32,
            _ => 1 + rng.below(3) as i32,
        };
        let area = 18.0 + 26.0 * f64::from(bedrooms) + rng.f64() * 30.0;
        let amen: Vec<Amenity> = all_amenities
            .iter()
            .copied()
            .filter(|_| rng.chance(0.3))
            .collect();
        let quality = rng.normal();
        let price = CITIES[city].base_price
            * hood_mult
            * (area / 60.0).powf(0.75)
            * (0.12 * quality + 0.15 * rng.normal()).exp();
        let price = ((price / 10.0).round() as i32 * 10).max(200);
        let from = rng.f64() * LISTING_DAYS;
        let id = rng.uuid();
        let adjective = rng.pick(ADJECTIVES);
        let kind = format!("{ptype:?}").to_lowercase();
        for pos in 0..(1 + rng.below(4)) {
            self.images.push(property_image::Model {
                id: rng.uuid(),
                property_id: id,
                url: format!("https://images.rentgraph.example/{id}/{pos}.jpg"),
                position: pos as i32,
            });
        }
        for &a in &amen {
            self.amenities.push(property_amenity::Model {
                property_id: id,
                amenity: a,
            });
        }
        let owner = &users[owners[rng
            .below(owners.len().max(1))
            .min(owners.len().saturating_sub(1))]];
        self.properties.push(property::Model {
            id,
            owner_id: owner.id,
            title: format!("{adjective} {kind} in {hood}"),
            description: format!(
                "{adjective} {kind} of {area:.0} m² in {hood}, {}. {} bedrooms.",
                CITIES[city].name, bedrooms
            ),
            monthly_price: price,
            city: CITIES[city].name.to_owned(),
            neighbourhood: hood.to_owned(),
            latitude: CITIES[city].lat + rng.normal() * 0.03,
            longitude: CITIES[city].lng + rng.normal() * 0.04,
            bedrooms,
            bathrooms: 1 + i32::from(bedrooms >= 3),
            area: area.round() as i32,
            property_type: ptype,
            is_active: true,
            created_at: at_day(from),
            updated_at: at_day(from),
            taken_down: false,
        });
        self.listings.push(Listing {
            style: unit(rng, picks.dims),
            quality,
            city,
            from,
            until: from + exponential(rng, MEAN_LISTING_LIFETIME_DAYS),
            rented_after: RENTED_AFTER.0 + rng.below(RENTED_AFTER.1 - RENTED_AFTER.0 + 1),
            inquiries: 0,
            engaged: 0.0,
            engaged_at: from,
        });
        self.prop_amen.push(amen);
    }
}

/// Sessions in time order: the logging policy shows, the renter examines by position, views
/// and engages by utility.
fn simulate(
    rng: &mut Rng,
    p: &LatentParams,
    wanted: usize,
    users: &[user::Model],
    renters: &[Renter],
    market: &mut Market,
) -> Vec<interaction::Model> {
    let mut by_city: Vec<Vec<usize>> = vec![Vec::new(); CITIES.len()];
    for (i, l) in market.listings.iter().enumerate() {
        by_city[l.city].push(i);
    }
    let searching: Vec<usize> = (0..users.len())
        .filter(|&u| users[u].role == Role::User)
        .collect();
    if searching.is_empty() || market.properties.is_empty() {
        return Vec::new();
    }
    let sessions = plan_sessions(rng, &searching, renters, wanted);
    let mut log = Log {
        p,
        users,
        properties: &market.properties,
        prop_amen: &market.prop_amen,
        out: Vec::with_capacity(wanted + wanted / 4),
        engaged: HashSet::new(),
        viewed: HashSet::new(),
    };
    let listings = &mut market.listings;
    let mut considered: Vec<(f64, usize)> = Vec::with_capacity(CONSIDERED);
    for (day, u) in sessions {
        let r = &renters[u];
        let moved = r.moves.filter(|(at, _)| day >= *at);
        let home = moved.map_or(r.home, |(_, c)| c);
        let city = match r.second {
            Some(c) if moved.is_none() && rng.chance(0.25) => c,
            _ => home,
        };
        let ceiling = users[u].preferences.max_price.map(|m| f64::from(m) * 1.1);
        log.policy(
            rng,
            listings,
            &by_city[city],
            (day, ceiling),
            &mut considered,
        );
        log.examine(rng, listings, (u, r), day, &considered);
    }
    let mut out = log.out;
    if out.len() > wanted {
        rng.sample_to_front(&mut out, wanted);
        out.truncate(wanted);
    }
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    out
}

/// Sessions (day, user): interactions per session depend on the parameters (position bias
/// above all), so plan sessions for a low rate; the simulation thins out at the end.
fn plan_sessions(
    rng: &mut Rng,
    searching: &[usize],
    renters: &[Renter],
    wanted: usize,
) -> Vec<(f64, usize)> {
    let activity = Weighted::new(searching.iter().map(|&u| renters[u].activity));
    let mut sessions: Vec<(f64, usize)> = (0..(wanted * 5 / 2 + 1))
        .map(|_| {
            let u = searching[activity.sample(rng)];
            let r = &renters[u];
            (r.start + rng.f64() * (r.end - r.start), u)
        })
        .collect();
    sessions.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    sessions
}

/// What the simulation has logged so far, and what it reads to log more.
struct Log<'a> {
    p: &'a LatentParams,
    users: &'a [user::Model],
    properties: &'a [property::Model],
    prop_amen: &'a [Vec<Amenity>],
    out: Vec<interaction::Model>,
    engaged: HashSet<(usize, usize)>,
    viewed: HashSet<(usize, usize)>,
}

impl Log<'_> {
    /// The policy: a sample of the city's listings on the market (within the stated ceiling),
    /// by decayed engagement plus noise, best first.
    fn policy(
        &self,
        rng: &mut Rng,
        listings: &mut [Listing],
        pool: &[usize],
        (day, ceiling): (f64, Option<f64>),
        considered: &mut Vec<(f64, usize)>,
    ) {
        considered.clear();
        for _ in 0..CONSIDERED * 4 {
            if considered.len() == CONSIDERED || pool.is_empty() {
                break;
            }
            let j = pool[rng.below(pool.len())];
            let l = &mut listings[j];
            if !(l.from <= day && day < l.until)
                || ceiling.is_some_and(|c| f64::from(self.properties[j].monthly_price) > c)
                || considered.iter().any(|c| c.1 == j)
            {
                continue;
            }
            l.engaged *= (-(day - l.engaged_at) / POLICY_HALF_LIFE_DAYS).exp2();
            l.engaged_at = day;
            considered.push(((1.0 + l.engaged).ln() + 0.6 * rng.normal(), j));
        }
        considered.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    }

    /// The renter examines the shown listings by position: views what appeals, engages with
    /// some, dismisses a few of the worst, and stops after eight views.
    fn examine(
        &mut self,
        rng: &mut Rng,
        listings: &mut [Listing],
        (u, r): (usize, &Renter),
        day: f64,
        considered: &[(f64, usize)],
    ) {
        let mut t = day;
        let mut views = 0;
        for (pos, &(_, j)) in considered.iter().take(SHOWN).enumerate() {
            if rng.f64() >= (1.0 + pos as f64).powf(-self.p.position_bias) {
                continue;
            }
            if self.engaged.contains(&(u, j)) || (self.viewed.contains(&(u, j)) && rng.chance(0.7))
            {
                continue;
            }
            let util = utility(
                self.p,
                r,
                &listings[j],
                &self.properties[j],
                &self.prop_amen[j],
            );
            if rng.f64() >= sigmoid(util - 0.5) {
                if util < -2.0 && rng.chance(0.03) {
                    t += (20.0 + rng.f64() * 100.0) / 86_400.0;
                    self.push(rng, u, j, InteractionKind::Dismiss, t);
                }
                continue;
            }
            t += (30.0 + rng.f64() * 200.0) / 86_400.0;
            self.viewed.insert((u, j));
            self.push(rng, u, j, InteractionKind::View, t);
            views += 1;
            let e = sigmoid(util - 1.2);
            let x = rng.f64();
            let kind = if x < 0.35 * e {
                Some(InteractionKind::Save)
            } else if x < 0.6 * e {
                Some(InteractionKind::Like)
            } else if x < 0.75 * e {
                Some(InteractionKind::Inquiry)
            } else {
                None
            };
            if let Some(kind) = kind {
                t += (10.0 + rng.f64() * 60.0) / 86_400.0;
                self.engaged.insert((u, j));
                let l = &mut listings[j];
                l.engaged += 1.0;
                if kind == InteractionKind::Inquiry {
                    l.inquiries += 1;
                    if l.inquiries == l.rented_after {
                        l.until = l.until.min(t + 1.0 + rng.f64() * 5.0);
                    }
                }
                self.push(rng, u, j, kind, t);
            }
            if views == 8 {
                break;
            }
        }
    }

    fn push(&mut self, rng: &mut Rng, u: usize, j: usize, kind: InteractionKind, day: f64) {
        self.out.push(interaction::Model {
            id: rng.uuid(),
            user_id: self.users[u].id,
            property_id: self.properties[j].id,
            kind,
            created_at: at_day(day),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64, p: LatentParams) -> Dataset {
        generate(
            SeedOptions {
                properties: 600,
                users: 150,
                interactions: 6_000,
                seed,
                world: super::super::World::Default,
            },
            p,
        )
    }

    #[test]
    fn the_same_seed_and_parameters_give_the_same_rows() {
        let a = small(5, LatentParams::default());
        let b = small(5, LatentParams::default());
        let ids = |d: &Dataset| -> Vec<_> {
            d.interactions
                .iter()
                .map(|i| (i.id, i.user_id, i.property_id, i.kind, i.created_at))
                .collect()
        };
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(
            a.properties
                .iter()
                .map(|p| (p.id, p.monthly_price, p.is_active))
                .collect::<Vec<_>>(),
            b.properties
                .iter()
                .map(|p| (p.id, p.monthly_price, p.is_active))
                .collect::<Vec<_>>()
        );
        let c = small(6, LatentParams::default());
        assert_ne!(ids(&a), ids(&c));
        let d = small(
            5,
            LatentParams {
                position_bias: 2.0,
                ..Default::default()
            },
        );
        assert_ne!(ids(&a), ids(&d));
    }

    #[test]
    fn the_market_has_engagement_without_repeats_and_sparse_preferences() {
        let d = small(7, LatentParams::default());
        assert!(d.interactions.len() > 2_000, "{}", d.interactions.len());
        let mut seen = HashSet::new();
        for i in d
            .interactions
            .iter()
            .filter(|i| rentgraph_model::features::engages(i.kind))
        {
            assert!(seen.insert((i.user_id, i.property_id)), "engaged twice");
        }
        assert!(!seen.is_empty());
        let renters: Vec<_> = d.users.iter().filter(|u| u.role == Role::User).collect();
        let stating = renters
            .iter()
            .filter(|u| u.preferences != Preferences::default())
            .count();
        assert!(stating > 0 && stating < renters.len());
        assert!(
            d.interactions
                .windows(2)
                .all(|w| w[0].created_at <= w[1].created_at)
        );
    }

    #[test]
    fn parameters_parse_and_unknown_ones_are_refused() {
        let mut p = LatentParams::default();
        assert!(p.set("taste_dims=3").is_ok() && p.taste_dims == 3);
        assert!(p.set("stated_share=0.2").is_ok());
        assert!(p.set("bogus=1").is_err());
        assert!(p.set("position_bias=-1").is_err());
        assert!(p.set("style_weight").is_err());
    }
}
