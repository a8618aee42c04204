//! Deterministic demo and load-test data with real structure, so that browsing looks plausible
//! and a recommender has something to learn:
//! - cities with their own price levels and neighbourhoods that are cheaper or dearer;
//! - listings whose type, size, bedrooms, amenities and price follow each other;
//! - every listing has a latent appeal drawn from a long-tailed (Pareto) distribution;
//! - every user has latent tastes (home city, budget, bedrooms, type, amenities); their stated
//!   preferences are a noisy, often incomplete view of those tastes;
//! - interactions come partly from popularity and mostly from taste: a user looks at a handful
//!   of candidates and picks by affinity, and the affinity decides like/save/inquiry/dismiss;
//! - the market moves: listings appear over time and leave it when rented (after enough
//!   inquiries) or withdrawn; renters search during a period of their own, in sessions, and
//!   some change their mind (city, budget, size) halfway; interactions happen only with
//!   listings on the market at that moment, and new listings draw a little more attention.
//!   The parameters are in `params`.
//!
//! The same `seed` always yields the same rows (ids included). PostgreSQL is loaded with COPY,
//! SQLite with multi-row INSERTs in one transaction. A generator, not data access: it lives out
//! of `store` and loads through the store's connection.
mod latent;

pub use latent::LatentParams;

use crate::store::{Store, StoreError, StoreResult};
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use entity::{
    Amenity, InteractionKind, Preferences, PropertyType, Role, interaction, property,
    property_amenity, property_image, user,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, IntoActiveModel, TransactionTrait};
use std::fmt::Write as _;
use std::time::Instant;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub struct SeedOptions {
    pub properties: usize,
    pub users: usize,
    pub interactions: usize,
    pub seed: u64,
    pub world: World,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SeedReport {
    pub users: usize,
    pub properties: usize,
    pub images: usize,
    pub amenities: usize,
    pub interactions: usize,
    pub generate_ms: u128,
    pub load_ms: u128,
}

/// xoshiro256** seeded through splitmix64: small, fast, and fixed forever, unlike `StdRng`
/// whose algorithm may change between `rand` releases and silently change every data set.
pub struct Rng([u64; 4]);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self([next(), next(), next(), next()])
    }
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    pub fn uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// Moves a uniform sample of `n` of `items` (all, at most) to the front, in random order: a
    /// partial Fisher-Yates shuffle.
    pub fn sample_to_front<T>(&mut self, items: &mut [T], n: usize) {
        for i in 0..n.min(items.len()) {
            let j = i + self.below(items.len() - i);
            items.swap(i, j);
        }
    }
}

/// Sampling proportional to weights in O(1) (Vose's alias method): the interaction loop draws
/// tens of millions of samples from arrays too large for the cache, where a binary search's
/// dozen dependent loads per draw dominated the whole generator.
struct Weighted {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl Weighted {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let w: Vec<f64> = weights.into_iter().map(|w| w.max(0.0)).collect();
        let n = w.len();
        let total: f64 = w.iter().sum();
        if n == 0 || total <= 0.0 {
            return Self {
                prob: vec![1.0; n],
                alias: (0..n as u32).collect(),
            };
        }
        let mut prob: Vec<f64> = w.iter().map(|x| x * n as f64 / total).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| prob[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            alias[s] = l as u32;
            prob[l] -= 1.0 - prob[s];
            if prob[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        for i in small.into_iter().chain(large) {
            prob[i] = 1.0;
        }
        Self { prob, alias }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let i = rng.below(self.prob.len());
        if rng.f64() < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

pub struct City {
    pub name: &'static str,
    pub lat: f64,
    pub lng: f64,
    /// Typical monthly rent of a 60 m² flat.
    pub base_price: f64,
    pub weight: f64,
    pub neighbourhoods: &'static [(&'static str, f64)],
}

pub const CITIES: &[City] = &[
    City {
        name: "Lisbon",
        lat: 38.72,
        lng: -9.14,
        base_price: 1400.0,
        weight: 1.2,
        neighbourhoods: &[
            ("Alfama", 1.1),
            ("Baixa", 1.3),
            ("Belem", 1.15),
            ("Campo de Ourique", 1.05),
            ("Marvila", 0.75),
            ("Olivais", 0.8),
        ],
    },
    City {
        name: "Berlin",
        lat: 52.52,
        lng: 13.40,
        base_price: 1250.0,
        weight: 1.6,
        neighbourhoods: &[
            ("Mitte", 1.35),
            ("Kreuzberg", 1.15),
            ("Neukolln", 0.9),
            ("Prenzlauer Berg", 1.25),
            ("Spandau", 0.7),
            ("Lichtenberg", 0.75),
        ],
    },
    City {
        name: "Barcelona",
        lat: 41.39,
        lng: 2.17,
        base_price: 1350.0,
        weight: 1.3,
        neighbourhoods: &[
            ("Eixample", 1.25),
            ("Gracia", 1.1),
            ("El Born", 1.3),
            ("Sants", 0.85),
            ("Poblenou", 1.05),
            ("Nou Barris", 0.7),
        ],
    },
    City {
        name: "Amsterdam",
        lat: 52.37,
        lng: 4.90,
        base_price: 2000.0,
        weight: 1.0,
        neighbourhoods: &[
            ("Jordaan", 1.4),
            ("De Pijp", 1.2),
            ("Oost", 1.0),
            ("Noord", 0.8),
            ("West", 0.95),
            ("Zuidoost", 0.7),
        ],
    },
    City {
        name: "Paris",
        lat: 48.86,
        lng: 2.35,
        base_price: 2100.0,
        weight: 1.5,
        neighbourhoods: &[
            ("Le Marais", 1.4),
            ("Montmartre", 1.1),
            ("Belleville", 0.85),
            ("Saint-Germain", 1.5),
            ("Bastille", 1.15),
            ("La Villette", 0.8),
        ],
    },
    City {
        name: "Milan",
        lat: 45.46,
        lng: 9.19,
        base_price: 1500.0,
        weight: 0.9,
        neighbourhoods: &[
            ("Brera", 1.4),
            ("Navigli", 1.15),
            ("Isola", 1.2),
            ("Citta Studi", 0.9),
            ("Lambrate", 0.8),
            ("Bovisa", 0.7),
        ],
    },
    City {
        name: "Vienna",
        lat: 48.21,
        lng: 16.37,
        base_price: 1100.0,
        weight: 0.8,
        neighbourhoods: &[
            ("Innere Stadt", 1.45),
            ("Leopoldstadt", 1.05),
            ("Neubau", 1.15),
            ("Favoriten", 0.75),
            ("Donaustadt", 0.85),
            ("Hietzing", 1.1),
        ],
    },
    City {
        name: "Prague",
        lat: 50.08,
        lng: 14.44,
        base_price: 950.0,
        weight: 0.7,
        neighbourhoods: &[
            ("Stare Mesto", 1.4),
            ("Vinohrady", 1.2),
            ("Zizkov", 0.95),
            ("Holesovice", 1.0),
            ("Smichov", 0.9),
            ("Prosek", 0.7),
        ],
    },
];

const TYPES: &[(PropertyType, f64)] = &[
    (PropertyType::Apartment, 0.45),
    (PropertyType::Studio, 0.12),
    (PropertyType::Condo, 0.14),
    (PropertyType::House, 0.11),
    (PropertyType::Townhouse, 0.08),
    (PropertyType::Room, 0.10),
];

const ADJECTIVES: &[&str] = &[
    "Bright",
    "Cosy",
    "Spacious",
    "Modern",
    "Charming",
    "Renovated",
    "Quiet",
    "Sunny",
    "Elegant",
    "Stylish",
    "Airy",
    "Classic",
];
const FIRST: &[&str] = &[
    "Ana", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Karin",
    "Luca", "Maria", "Nils", "Olga", "Pablo", "Rosa", "Sven", "Tara", "Yusuf",
];
const LAST: &[&str] = &[
    "Silva", "Schmidt", "Garcia", "de Vries", "Martin", "Rossi", "Huber", "Novak", "Costa",
    "Weber", "Lopez", "Bakker", "Bernard", "Bianchi", "Gruber", "Dvorak",
];

/// The market's dynamics: how long listings live, how renters search. Documented, with the
/// reasons for each value, in docs/RECOMMENDER.md ("The data").
pub mod params {
    /// Listings appear uniformly over this many days before the data set's epoch.
    pub const LISTING_DAYS: f64 = 400.0;
    /// Interactions happen over the last this-many days of that span.
    pub const SEARCH_DAYS: f64 = 365.0;
    /// A listing nobody rents is withdrawn after an exponentially distributed lifetime.
    pub const MEAN_LISTING_LIFETIME_DAYS: f64 = 150.0;
    /// A listing is rented (and leaves the market 1-7 days later) after this many inquiries,
    /// drawn uniformly in the range.
    pub const RENTED_AFTER_INQUIRIES: (usize, usize) = (3, 8);
    /// A renter searches during one period of an exponentially distributed length (at least
    /// a week).
    pub const MEAN_SEARCH_DAYS: f64 = 60.0;
    /// A session is one sitting: 1 + a geometric number of interactions, 30 s to 5 min apart,
    /// all in one city.
    pub const MEAN_SESSION_INTERACTIONS: f64 = 6.0;
    /// Share of renters who change their mind halfway through their search (another city,
    /// another budget or size); half of them update their stated preferences.
    pub const CHANGE_OF_MIND: f64 = 0.2;
    /// Share of interactions that follow popularity alone (the front page), not taste.
    pub const POPULARITY_DRIVEN: f64 = 0.2;
    /// Listings a renter looks at before picking one by affinity (softmax sampling).
    pub const LOOKED_AT: usize = 16;
    /// Weight of a listing's age (ln(1 + days/7)) against it: new listings draw attention.
    pub const FRESHNESS: f64 = 0.2;
}
use params::*;

/// What a user really wants; only partly visible through their stated preferences.
#[derive(Clone)]
struct Taste {
    home_city: usize,
    second_city: Option<usize>,
    budget: f64,
    price_sensitivity: f64,
    bedrooms: i32,
    property_type: PropertyType,
    amenities: Vec<Amenity>,
}

/// A renter's search: when, and what they want before and after a change of mind.
struct Search {
    start: f64,
    end: f64,
    taste: Taste,
    changed: Option<(f64, Taste)>,
}

impl Search {
    fn taste_at(&self, day: f64) -> &Taste {
        match &self.changed {
            Some((at, t)) if day >= *at => t,
            _ => &self.taste,
        }
    }
}

fn type_of(rng: &mut Rng) -> PropertyType {
    let w = Weighted::new(TYPES.iter().map(|t| t.1));
    TYPES[w.sample(rng)].0
}

fn type_factor(t: PropertyType) -> f64 {
    match t {
        PropertyType::Apartment => 1.0,
        PropertyType::Studio => 1.05,
        PropertyType::Condo => 1.15,
        PropertyType::House => 1.1,
        PropertyType::Townhouse => 1.12,
        PropertyType::Room => 0.8,
    }
}

/// How much a renter with taste `t` likes a listing `age_days` old.
fn affinity(
    t: &Taste,
    p: &property::Model,
    p_amen: &[Amenity],
    city: usize,
    appeal: f64,
    age_days: f64,
) -> f64 {
    let mut a = 0.0;
    if city == t.home_city {
        a += 2.0;
    } else if Some(city) == t.second_city {
        a += 1.2;
    }
    a -= t.price_sensitivity * (f64::from(p.monthly_price) / t.budget).ln().abs() * 2.5;
    a -= 0.6 * f64::from((p.bedrooms - t.bedrooms).abs());
    if p.property_type == t.property_type {
        a += 0.9;
    }
    let matched = t.amenities.iter().filter(|x| p_amen.contains(x)).count() as f64;
    a += 0.5 * matched;
    a + 0.35 * appeal.ln() - FRESHNESS * (1.0 + age_days.max(0.0) / 7.0).ln()
}

/// Stated preferences: some users say nothing, others part of the truth, with noise.
fn stated(rng: &mut Rng, taste: &Taste) -> Preferences {
    if rng.chance(0.3) {
        return Preferences::default();
    }
    let noisy = taste.budget * (0.15 * rng.normal()).exp();
    Preferences {
        cities: std::iter::once(CITIES[taste.home_city].name.to_owned())
            .chain(taste.second_city.map(|c| CITIES[c].name.to_owned()))
            .collect(),
        min_price: rng
            .chance(0.5)
            .then(|| (noisy * 0.6 / 10.0).round() as i32 * 10),
        max_price: Some((noisy * 1.3 / 10.0).round() as i32 * 10),
        min_bedrooms: rng.chance(0.6).then_some(taste.bedrooms.max(1) - 1),
        property_types: if rng.chance(0.5) {
            vec![taste.property_type]
        } else {
            vec![]
        },
        amenities: taste.amenities.iter().take(rng.below(3)).copied().collect(),
    }
}

fn budget_for(rng: &mut Rng, city: usize, bedrooms: i32) -> f64 {
    CITIES[city].base_price * (0.55 + 0.3 * f64::from(bedrooms)) * (0.25 * rng.normal()).exp()
}

/// An exponentially distributed duration with this mean.
fn exponential(rng: &mut Rng, mean: f64) -> f64 {
    -(1.0 - rng.f64()).max(1e-12).ln() * mean
}

pub struct Dataset {
    pub users: Vec<user::Model>,
    pub properties: Vec<property::Model>,
    pub images: Vec<property_image::Model>,
    pub amenities: Vec<property_amenity::Model>,
    pub interactions: Vec<interaction::Model>,
}

/// The instant the data set is anchored to, so the same seed gives the same timestamps.
fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// The generator's clock: day 0 is `LISTING_DAYS` before the epoch, the epoch is day
/// `LISTING_DAYS`.
fn at_day(day: f64) -> DateTime<Utc> {
    let back = ((LISTING_DAYS - day) * 86_400_000_000.0) as i64;
    epoch() - ChronoDuration::microseconds(back)
}

/// The data set: users with tastes and a search period, listings with a lifetime, and
/// interactions simulated in time order (see the module's documentation and `params`).
pub fn generate(opts: SeedOptions) -> Dataset {
    match opts.world {
        World::Default => generate_default(opts),
        World::Latent(p) => latent::generate(opts, p),
    }
}

/// The market simulators behind `rentgraph seed --world`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum World {
    /// This module's market (the demo, load and shipped-model data).
    #[default]
    Default,
    /// `latent`: the independently designed market of tastes no column shows.
    Latent(LatentParams),
}

impl World {
    /// The world named `name` with `KEY=VALUE` parameters (only `latent` takes any).
    pub fn parse(name: &str, params: &[String]) -> Result<Self, String> {
        match name {
            "default" if params.is_empty() => Ok(World::Default),
            "default" => Err("--world default takes no --world-param".into()),
            "latent" => {
                let mut p = LatentParams::default();
                for kv in params {
                    p.set(kv)?;
                }
                Ok(World::Latent(p))
            }
            other => Err(format!("--world {other}: unknown (default, latent)")),
        }
    }
}

fn generate_default(opts: SeedOptions) -> Dataset {
    use sea_orm::Iterable;
    // Declaration order, so a seed keeps producing the same data.
    let all_amenities: Vec<Amenity> = Amenity::iter().collect();
    let mut rng = Rng::new(opts.seed);
    let city_pick = Weighted::new(CITIES.iter().map(|c| c.weight));
    let first_search_day = LISTING_DAYS - SEARCH_DAYS;

    // Users, their tastes and searches. Drawn before anything else so that the users of a
    // seed do not depend on how many listings or interactions are asked for.
    let n_users = opts.users.max(2);
    let mut users = Vec::with_capacity(n_users);
    let mut searches = Vec::with_capacity(n_users);
    for i in 0..n_users {
        let role = match i {
            0 => Role::Admin,
            1 => Role::Partner,
            // A couple of owners even in the smallest data sets.
            2 | 3 => Role::Owner,
            _ if rng.chance(0.10) => Role::Owner,
            _ => Role::User,
        };
        let home_city = city_pick.sample(&mut rng);
        let second_city = rng.chance(0.25).then(|| city_pick.sample(&mut rng));
        let bedrooms = [0, 1, 1, 2, 2, 2, 3, 3, 4][rng.below(9)];
        let budget = budget_for(&mut rng, home_city, bedrooms);
        let mut amen: Vec<Amenity> = Vec::new();
        for _ in 0..(1 + rng.below(3)) {
            let a = *rng.pick(&all_amenities);
            if !amen.contains(&a) {
                amen.push(a);
            }
        }
        let taste = Taste {
            home_city,
            second_city,
            budget,
            price_sensitivity: 0.5 + rng.f64(),
            bedrooms,
            property_type: type_of(&mut rng),
            amenities: amen,
        };
        let start = first_search_day + rng.f64() * (SEARCH_DAYS - 7.0);
        let end = (start + exponential(&mut rng, MEAN_SEARCH_DAYS).max(7.0)).min(LISTING_DAYS);
        let changed = rng.chance(CHANGE_OF_MIND).then(|| {
            let mut t = taste.clone();
            if rng.chance(0.6) {
                let moved = t
                    .second_city
                    .filter(|_| rng.chance(0.5))
                    .unwrap_or_else(|| {
                        let c = city_pick.sample(&mut rng);
                        if c == t.home_city {
                            (c + 1) % CITIES.len()
                        } else {
                            c
                        }
                    });
                t.second_city = None;
                t.home_city = moved;
            }
            if rng.chance(0.3) {
                t.bedrooms = (t.bedrooms + if rng.chance(0.5) { 1 } else { -1 }).clamp(0, 4);
            }
            t.budget = budget_for(&mut rng, t.home_city, t.bedrooms);
            (start + (0.3 + 0.4 * rng.f64()) * (end - start), t)
        });
        // Half of those who changed their mind said so in their profile.
        let shown = match &changed {
            Some((_, t)) if rng.chance(0.5) => t,
            _ => &taste,
        };
        let preferences = stated(&mut rng, shown);
        let first = rng.pick(FIRST);
        let last = rng.pick(LAST);
        users.push(user::Model {
            id: rng.uuid(),
            email: format!("user{i}@rentgraph.example"),
            display_name: format!("{first} {last}"),
            role,
            preferences,
            created_at: at_day(start - rng.f64() * 30.0),
        });
        searches.push(Search {
            start,
            end,
            taste,
            changed,
        });
    }
    let owners: Vec<usize> = users
        .iter()
        .enumerate()
        .filter(|(_, u)| matches!(u.role, Role::Owner | Role::Admin))
        .map(|(i, _)| i)
        .collect();

    // Listings.
    let mut properties = Vec::with_capacity(opts.properties);
    let mut images = Vec::with_capacity(opts.properties * 3);
    let mut amenities = Vec::with_capacity(opts.properties * 4);
    let mut prop_amen: Vec<Vec<Amenity>> = Vec::with_capacity(opts.properties);
    let mut prop_city: Vec<usize> = Vec::with_capacity(opts.properties);
    let mut appeal: Vec<f64> = Vec::with_capacity(opts.properties);
    // Each listing's first and last day on the market, and the inquiries that rent it.
    let mut listed: Vec<(f64, f64)> = Vec::with_capacity(opts.properties);
    let mut rented_after: Vec<usize> = Vec::with_capacity(opts.properties);
    for _ in 0..opts.properties {
        let city_idx = city_pick.sample(&mut rng);
        let city = &CITIES[city_idx];
        let (hood, hood_mult) = *rng.pick(city.neighbourhoods);
        let ptype = type_of(&mut rng);
        let bedrooms = match ptype {
            PropertyType::Studio | PropertyType::Room => 0,
            PropertyType::Apartment | PropertyType::Condo => 1 + rng.below(3) as i32,
            PropertyType::House => 2 + rng.below(4) as i32,
            PropertyType::Townhouse => 2 + rng.below(3) as i32,
        };
        let area = match ptype {
            PropertyType::Room => 12.0 + rng.f64() * 10.0,
            PropertyType::Studio => 22.0 + rng.f64() * 18.0,
            _ => 30.0 + 24.0 * f64::from(bedrooms) + rng.f64() * 25.0,
        };
        let mut amen: Vec<Amenity> = Vec::new();
        for &a in &all_amenities {
            let p = match a {
                Amenity::Garden => {
                    if matches!(ptype, PropertyType::House | PropertyType::Townhouse) {
                        0.6
                    } else {
                        0.05
                    }
                }
                Amenity::Elevator => {
                    if matches!(ptype, PropertyType::House | PropertyType::Townhouse) {
                        0.0
                    } else {
                        0.5
                    }
                }
                Amenity::Pool | Amenity::Gym | Amenity::Doorman => {
                    if ptype == PropertyType::Condo {
                        0.45
                    } else {
                        0.06
                    }
                }
                Amenity::Furnished => {
                    if matches!(ptype, PropertyType::Room | PropertyType::Studio) {
                        0.75
                    } else {
                        0.3
                    }
                }
                _ => 0.35,
            };
            if rng.chance(p) {
                amen.push(a);
            }
        }
        let amenity_premium = 1.0 + 0.03 * amen.len() as f64;
        let price = city.base_price
            * hood_mult
            * (area / 60.0).powf(0.8)
            * type_factor(ptype)
            * amenity_premium
            * (0.12 * rng.normal()).exp();
        let price = ((price / 10.0).round() as i32 * 10).max(150);
        let id = rng.uuid();
        let adjective = rng.pick(ADJECTIVES);
        let type_word = format!("{ptype:?}").to_lowercase();
        let title = if bedrooms == 0 {
            format!("{adjective} {type_word} in {hood}")
        } else {
            format!("{adjective} {bedrooms}-bedroom {type_word} in {hood}")
        };
        let mut description = format!(
            "{adjective} {type_word} of {area:.0} m² in {hood}, {}. ",
            city.name
        );
        if amen.is_empty() {
            description.push_str("Simple and practical, close to public transport.");
        } else {
            description.push_str("Features: ");
            let names: Vec<String> = amen
                .iter()
                .map(|a| format!("{a:?}").to_lowercase().replace('_', " "))
                .collect();
            description.push_str(&names.join(", "));
            description.push_str(". Close to shops, cafés and public transport.");
        }
        let created_day = rng.f64() * LISTING_DAYS;
        let created = at_day(created_day);
        listed.push((
            created_day,
            created_day + exponential(&mut rng, MEAN_LISTING_LIFETIME_DAYS),
        ));
        let (lo, hi) = RENTED_AFTER_INQUIRIES;
        rented_after.push(lo + rng.below(hi - lo + 1));
        let owner = &users[owners[rng
            .below(owners.len().max(1))
            .min(owners.len().saturating_sub(1))]];
        let n_images = 1 + rng.below(5);
        for pos in 0..n_images {
            images.push(property_image::Model {
                id: rng.uuid(),
                property_id: id,
                url: format!("https://images.rentgraph.example/{id}/{pos}.jpg"),
                position: pos as i32,
            });
        }
        for &a in &amen {
            amenities.push(property_amenity::Model {
                property_id: id,
                amenity: a,
            });
        }
        // Pareto(alpha = 1.3): a few listings draw most of the attention.
        appeal.push((1.0 - rng.f64()).max(1e-9).powf(-1.0 / 1.3).min(200.0));
        prop_amen.push(amen);
        prop_city.push(city_idx);
        properties.push(property::Model {
            id,
            owner_id: owner.id,
            title,
            description,
            monthly_price: price,
            city: city.name.to_owned(),
            neighbourhood: hood.to_owned(),
            latitude: city.lat + rng.normal() * 0.03,
            longitude: city.lng + rng.normal() * 0.04,
            bedrooms,
            bathrooms: 1 + i32::from(bedrooms >= 3) + i32::from(bedrooms >= 5),
            area: area.round() as i32,
            property_type: ptype,
            // Set once the simulation knows whether it was rented or withdrawn.
            is_active: true,
            created_at: created,
            updated_at: created,
        });
    }

    let interactions = if properties.is_empty() {
        Vec::new()
    } else {
        simulate(
            &mut rng,
            opts.interactions,
            &users,
            &searches,
            &properties,
            &prop_amen,
            &prop_city,
            &appeal,
            &mut listed,
            &rented_after,
            &city_pick,
        )
    };
    for (p, &(_, end)) in properties.iter_mut().zip(&listed) {
        if end < LISTING_DAYS {
            p.is_active = false;
            p.updated_at = at_day(end);
        }
    }
    Dataset {
        users,
        properties,
        images,
        amenities,
        interactions,
    }
}

/// Renters' sessions, in time order, over the listings on the market at that moment. An
/// inquiry counts towards renting the listing, which then leaves the market.
#[allow(clippy::too_many_arguments)]
fn simulate(
    rng: &mut Rng,
    wanted: usize,
    users: &[user::Model],
    searches: &[Search],
    properties: &[property::Model],
    prop_amen: &[Vec<Amenity>],
    prop_city: &[usize],
    appeal: &[f64],
    listed: &mut [(f64, f64)],
    rented_after: &[usize],
    city_pick: &Weighted,
) -> Vec<interaction::Model> {
    let popular = Weighted::new(appeal.iter().copied());
    let mut by_city: Vec<Vec<usize>> = vec![Vec::new(); CITIES.len()];
    for (i, &c) in prop_city.iter().enumerate() {
        by_city[c].push(i);
    }
    let city_popular: Vec<Weighted> = by_city
        .iter()
        .map(|ids| Weighted::new(ids.iter().map(|&i| appeal[i])))
        .collect();
    // Heavy-tailed activity: some users browse a lot, most a little.
    let activity = Weighted::new((0..users.len()).map(|_| (0.9 * rng.normal()).exp()));
    // Some interactions find nothing on the market (a tiny data set): plan a few more
    // sessions than needed and thin the result out uniformly at the end.
    let planned = wanted + wanted / 8 + 1;
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

    let mut inquiries = vec![0usize; properties.len()];
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
            let on_market = |p: usize, listed: &[(f64, f64)]| listed[p].0 <= t && t < listed[p].1;
            let mut chosen = None;
            if rng.chance(POPULARITY_DRIVEN) {
                for _ in 0..64 {
                    let p = popular.sample(rng);
                    if on_market(p, listed) {
                        chosen = Some(p);
                        break;
                    }
                }
            } else {
                let mut best_score = f64::NEG_INFINITY;
                let mut looked = 0;
                for _ in 0..LOOKED_AT * 8 {
                    let cand = if by_city[city].is_empty() {
                        popular.sample(rng)
                    } else {
                        by_city[city][city_popular[city].sample(rng)]
                    };
                    if !on_market(cand, listed) {
                        continue;
                    }
                    // Gumbel noise turns argmax into sampling by softmax of affinity.
                    let gumbel = -(-(rng.f64().max(1e-12)).ln()).ln();
                    let s = affinity(
                        taste,
                        &properties[cand],
                        &prop_amen[cand],
                        prop_city[cand],
                        appeal[cand],
                        t - listed[cand].0,
                    ) + gumbel;
                    if s > best_score {
                        best_score = s;
                        chosen = Some(cand);
                    }
                    looked += 1;
                    if looked == LOOKED_AT {
                        break;
                    }
                }
            }
            let Some(p) = chosen else { continue };
            let a = affinity(
                taste,
                &properties[p],
                &prop_amen[p],
                prop_city[p],
                appeal[p],
                t - listed[p].0,
            );
            let s = 1.0 / (1.0 + (-(a - 1.5)).exp());
            let r = rng.f64();
            let kind = if r < 0.22 * s {
                InteractionKind::Like
            } else if r < 0.36 * s {
                InteractionKind::Save
            } else if r < 0.42 * s {
                InteractionKind::Inquiry
            } else if r > 1.0 - 0.12 * (1.0 - s) {
                InteractionKind::Dismiss
            } else {
                InteractionKind::View
            };
            if kind == InteractionKind::Inquiry {
                inquiries[p] += 1;
                if inquiries[p] == rented_after[p] {
                    listed[p].1 = listed[p].1.min(t + 1.0 + rng.f64() * 6.0);
                }
            }
            out.push(interaction::Model {
                id: rng.uuid(),
                user_id: users[u].id,
                property_id: properties[p].id,
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

impl Store {
    /// Generates and loads a data set; refuses a database that already has listings, so a
    /// mistyped command never mixes two data sets or loses what is stored.
    pub async fn seed(
        &self,
        opts: SeedOptions,
        progress: impl Fn(&str) + Send + Sync,
    ) -> StoreResult<SeedReport> {
        if self.any_property().await? {
            return Err(StoreError::Invalid(
                "the database already has listings; seed an empty database".into(),
            ));
        }
        let started = Instant::now();
        progress(&format!(
            "generating {} users, {} properties, {} interactions (seed {})",
            opts.users, opts.properties, opts.interactions, opts.seed
        ));
        let data = tokio::task::spawn_blocking(move || generate(opts))
            .await
            .map_err(|e| StoreError::Invalid(format!("data generation failed: {e}")))?;
        let generate_ms = started.elapsed().as_millis();
        let loading = Instant::now();
        match self.backend() {
            DbBackend::Postgres => self.load_postgres(&data, &progress).await?,
            _ => self.load_generic(&data, &progress).await?,
        }
        progress("counting interactions per listing");
        self.conn()
            .execute_unprepared(migration::REBUILD_PROPERTY_STATS)
            .await?;
        if self.backend() == DbBackend::Postgres {
            // Fresh statistics, and the GIN index's pending list merged (a bulk load leaves it
            // full, which makes the planner shun full-text index scans until autovacuum runs).
            progress("vacuum and analyze");
            self.conn().execute_unprepared("VACUUM ANALYZE").await?;
        }
        Ok(SeedReport {
            users: data.users.len(),
            properties: data.properties.len(),
            images: data.images.len(),
            amenities: data.amenities.len(),
            interactions: data.interactions.len(),
            generate_ms,
            load_ms: loading.elapsed().as_millis(),
        })
    }

    async fn load_postgres(
        &self,
        data: &Dataset,
        progress: &(impl Fn(&str) + Sync),
    ) -> StoreResult<()> {
        let pool = self.conn().get_postgres_connection_pool();
        let copy_err =
            |e: sea_orm::sqlx::Error| StoreError::Db(DbErr::Custom(format!("COPY failed: {e}")));
        let users = |u: &user::Model, b: &mut String| {
            let prefs = serde_json::to_string(&u.preferences).unwrap_or_else(|_| "{}".into());
            let _ = writeln!(
                b,
                "{}\t{}\t{}\t{}\t{}\t{}",
                u.id,
                esc(&u.email),
                esc(&u.display_name),
                enum_str(&u.role),
                esc(&prefs),
                ts(&u.created_at)
            );
        };
        let properties = |p: &property::Model, b: &mut String| {
            let _ = writeln!(
                b,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                p.id,
                p.owner_id,
                esc(&p.title),
                esc(&p.description),
                p.monthly_price,
                esc(&p.city),
                esc(&p.neighbourhood),
                p.latitude,
                p.longitude,
                p.bedrooms,
                p.bathrooms,
                p.area,
                enum_str(&p.property_type),
                if p.is_active { "t" } else { "f" },
                ts(&p.created_at),
                ts(&p.updated_at)
            );
        };
        let images = |i: &property_image::Model, b: &mut String| {
            let _ = writeln!(
                b,
                "{}\t{}\t{}\t{}",
                i.id,
                i.property_id,
                esc(&i.url),
                i.position
            );
        };
        let amenities = |a: &property_amenity::Model, b: &mut String| {
            let _ = writeln!(b, "{}\t{}", a.property_id, enum_str(&a.amenity));
        };
        let interactions = |i: &interaction::Model, b: &mut String| {
            let _ = writeln!(
                b,
                "{}\t{}\t{}\t{}\t{}",
                i.id,
                i.user_id,
                i.property_id,
                enum_str(&i.kind),
                ts(&i.created_at)
            );
        };
        const USERS: &str =
            "COPY users (id, email, display_name, role, preferences, created_at) FROM STDIN";
        const PROPERTIES: &str = "COPY properties (id, owner_id, title, description, monthly_price, city, neighbourhood, latitude, longitude, bedrooms, bathrooms, area, property_type, is_active, created_at, updated_at) FROM STDIN";
        const IMAGES: &str = "COPY property_images (id, property_id, url, position) FROM STDIN";
        const AMENITIES: &str = "COPY property_amenities (property_id, amenity) FROM STDIN";
        const INTERACTIONS: &str =
            "COPY interactions (id, user_id, property_id, kind, created_at) FROM STDIN";

        copy_table(pool, USERS, "users", &data.users, users, progress)
            .await
            .map_err(copy_err)?;
        copy_table(
            pool,
            PROPERTIES,
            "properties",
            &data.properties,
            properties,
            progress,
        )
        .await
        .map_err(copy_err)?;
        // The rest only refers to users and listings: load it on three connections at once.
        let half = data.interactions.len() / 2;
        let (first, second) = data.interactions.split_at(half);
        let side_tables = async {
            copy_table(
                pool,
                IMAGES,
                "property_images",
                &data.images,
                images,
                progress,
            )
            .await?;
            copy_table(
                pool,
                AMENITIES,
                "property_amenities",
                &data.amenities,
                amenities,
                progress,
            )
            .await
        };
        tokio::try_join!(
            side_tables,
            copy_table(
                pool,
                INTERACTIONS,
                "interactions (1/2)",
                first,
                interactions,
                progress
            ),
            copy_table(
                pool,
                INTERACTIONS,
                "interactions (2/2)",
                second,
                interactions,
                progress
            ),
        )
        .map_err(copy_err)?;
        Ok(())
    }

    async fn load_generic(
        &self,
        data: &Dataset,
        progress: &(impl Fn(&str) + Sync),
    ) -> StoreResult<()> {
        let txn = self.conn().begin().await?;
        macro_rules! load {
            ($entity:ty, $rows:expr, $name:expr, $chunk:expr) => {{
                let rows = $rows;
                for chunk in rows.chunks($chunk) {
                    <$entity>::insert_many(chunk.iter().cloned().map(|m| m.into_active_model()))
                        .exec_without_returning(&txn)
                        .await?;
                }
                progress(&format!("{}: {} rows loaded", $name, rows.len()));
            }};
        }
        // SQLite allows 32766 bound values per statement.
        load!(user::Entity, &data.users, "users", 2000);
        load!(property::Entity, &data.properties, "properties", 1500);
        load!(
            property_image::Entity,
            &data.images,
            "property_images",
            5000
        );
        load!(
            property_amenity::Entity,
            &data.amenities,
            "property_amenities",
            10000
        );
        load!(
            interaction::Entity,
            &data.interactions,
            "interactions",
            5000
        );
        txn.commit().await?;
        Ok(())
    }
}

/// Streams `rows` into one COPY on a connection of its own. The session drops the statement
/// timeout (a large COPY is one long statement) and, where the role may, skips foreign-key
/// triggers: the generator's rows are consistent by construction, and the checks would double
/// the load time. Both settings are reset before the connection goes back to the pool.
async fn copy_table<T>(
    pool: &sea_orm::sqlx::PgPool,
    statement: &str,
    name: &str,
    rows: &[T],
    line: impl Fn(&T, &mut String),
    progress: &(impl Fn(&str) + Sync),
) -> Result<(), sea_orm::sqlx::Error> {
    use sea_orm::sqlx::Executor;
    let mut conn = pool.acquire().await?;
    conn.execute("SET statement_timeout = 0").await?;
    let fast = conn
        .execute("SET session_replication_role = replica")
        .await
        .is_ok();
    let result = async {
        let mut copy = conn.copy_in_raw(statement).await?;
        let mut buf = String::with_capacity(1 << 20);
        let step = (rows.len() / 5).max(100_000);
        for (i, row) in rows.iter().enumerate() {
            line(row, &mut buf);
            if buf.len() >= 1 << 20 {
                copy.send(buf.as_bytes()).await?;
                buf.clear();
            }
            if (i + 1) % step == 0 {
                progress(&format!("{name}: {}/{}", i + 1, rows.len()));
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_bytes()).await?;
        }
        copy.finish().await?;
        Ok::<(), sea_orm::sqlx::Error>(())
    }
    .await;
    let reset = conn
        .execute("RESET statement_timeout; RESET session_replication_role")
        .await;
    if reset.is_err() {
        // Never hand a connection with checks switched off back to the pool.
        conn.detach();
    }
    result?;
    progress(&format!(
        "{name}: {} rows loaded{}",
        rows.len(),
        if fast {
            ""
        } else {
            " (with foreign-key checks)"
        }
    ));
    Ok(())
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn ts(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// The stored string of an enum column, taken from sea-orm so it cannot disagree with it.
fn enum_str<E: sea_orm::ActiveEnum<Value = String>>(e: &E) -> String {
    e.to_value()
}
