//! The default world's users (tastes, searches, stated preferences) and listings (type, size,
//! amenities, price, appeal, time on the market). The order of random draws is part of the
//! output: a seed yields the same rows only while every draw stays where it is.
use super::params::*;
use super::rng::{Rng, Weighted, exponential};
use super::simulate::simulate;
use super::world::{ADJECTIVES, CITIES, City, FIRST, LAST, at_day, type_factor, type_of};
use super::{Dataset, SeedOptions};
use entity::{
    Amenity, Preferences, PropertyType, Role, property, property_amenity, property_image, user,
};

/// What a user really wants; only partly visible through their stated preferences.
#[derive(Clone)]
pub(super) struct Taste {
    pub(super) home_city: usize,
    pub(super) second_city: Option<usize>,
    budget: f64,
    price_sensitivity: f64,
    bedrooms: i32,
    property_type: PropertyType,
    amenities: Vec<Amenity>,
}

/// A renter's search: when, and what they want before and after a change of mind.
pub(super) struct Search {
    pub(super) start: f64,
    pub(super) end: f64,
    taste: Taste,
    changed: Option<(f64, Taste)>,
}

impl Search {
    pub(super) fn taste_at(&self, day: f64) -> &Taste {
        match &self.changed {
            Some((at, t)) if day >= *at => t,
            _ => &self.taste,
        }
    }
}

/// How much a renter with taste `t` likes a listing `age_days` old.
pub(super) fn affinity(
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

/// The default world's data set: users first (so a seed's users do not depend on how many
/// listings or interactions are asked for), then listings, then the simulated interactions.
pub(super) fn generate(opts: SeedOptions) -> Dataset {
    use sea_orm::Iterable;
    // Declaration order, so a seed keeps producing the same data.
    let all_amenities: Vec<Amenity> = Amenity::iter().collect();
    let mut rng = Rng::new(opts.seed);
    let city_pick = Weighted::new(CITIES.iter().map(|c| c.weight));
    let n_users = opts.users.max(2);
    let (users, searches): (Vec<_>, Vec<_>) = (0..n_users)
        .map(|i| renter(&mut rng, i, &city_pick, &all_amenities))
        .unzip();
    let owners: Vec<usize> = users
        .iter()
        .enumerate()
        .filter(|(_, u)| matches!(u.role, Role::Owner | Role::Admin))
        .map(|(i, _)| i)
        .collect();
    let mut market = Market::with_capacity(opts.properties);
    for _ in 0..opts.properties {
        market.list(&mut rng, &city_pick, &all_amenities, &users, &owners);
    }
    let interactions = if market.properties.is_empty() {
        Vec::new()
    } else {
        simulate(
            &mut rng,
            opts.interactions,
            &users,
            &searches,
            &mut market,
            &city_pick,
        )
    };
    for (p, &(_, end)) in market.properties.iter_mut().zip(&market.listed) {
        if end < LISTING_DAYS {
            p.is_active = false;
            p.updated_at = at_day(end);
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

/// User `i`: role, taste, search period, a possible change of mind, and what they state.
fn renter(
    rng: &mut Rng,
    i: usize,
    city_pick: &Weighted,
    all_amenities: &[Amenity],
) -> (user::Model, Search) {
    let role = match i {
        0 => Role::Admin,
        1 => Role::Partner,
        // A couple of owners even in the smallest data sets.
        2 | 3 => Role::Owner,
        _ if rng.chance(0.10) => Role::Owner,
        _ => Role::User,
    };
    let home_city = city_pick.sample(rng);
    let second_city = rng.chance(0.25).then(|| city_pick.sample(rng));
    let bedrooms = [0, 1, 1, 2, 2, 2, 3, 3, 4][rng.below(9)];
    let budget = budget_for(rng, home_city, bedrooms);
    let mut amen: Vec<Amenity> = Vec::new();
    for _ in 0..(1 + rng.below(3)) {
        let a = *rng.pick(all_amenities);
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
        property_type: type_of(rng),
        amenities: amen,
    };
    let start = LISTING_DAYS - SEARCH_DAYS + rng.f64() * (SEARCH_DAYS - 7.0);
    let end = (start + exponential(rng, MEAN_SEARCH_DAYS).max(7.0)).min(LISTING_DAYS);
    let changed = rng
        .chance(CHANGE_OF_MIND)
        .then(|| change_of_mind(rng, &taste, start, end, city_pick));
    // Half of those who changed their mind said so in their profile.
    let shown = match &changed {
        Some((_, t)) if rng.chance(0.5) => t,
        _ => &taste,
    };
    let preferences = stated(rng, shown);
    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let user = user::Model {
        id: rng.uuid(),
        email: format!("user{i}@rentgraph.example"),
        display_name: format!("{first} {last}"),
        role,
        preferences,
        created_at: at_day(start - rng.f64() * 30.0),
        external_subject: None,
    };
    let search = Search {
        start,
        end,
        taste,
        changed,
    };
    (user, search)
}

/// Halfway through a search: another city (often the second one), perhaps another size, and
/// the budget that goes with them; returns the day it happens and the new taste.
fn change_of_mind(
    rng: &mut Rng,
    taste: &Taste,
    start: f64,
    end: f64,
    city_pick: &Weighted,
) -> (f64, Taste) {
    let mut t = taste.clone();
    if rng.chance(0.6) {
        let moved = t
            .second_city
            .filter(|_| rng.chance(0.5))
            .unwrap_or_else(|| {
                let c = city_pick.sample(rng);
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
    t.budget = budget_for(rng, t.home_city, t.bedrooms);
    (start + (0.3 + 0.4 * rng.f64()) * (end - start), t)
}

/// The listings and what the simulation needs to know about each, index by index.
pub(super) struct Market {
    pub(super) properties: Vec<property::Model>,
    images: Vec<property_image::Model>,
    amenities: Vec<property_amenity::Model>,
    pub(super) prop_amen: Vec<Vec<Amenity>>,
    pub(super) prop_city: Vec<usize>,
    pub(super) appeal: Vec<f64>,
    /// Each listing's first and last day on the market (the simulation ends it early when
    /// the listing is rented).
    pub(super) listed: Vec<(f64, f64)>,
    /// The inquiries that rent each listing.
    pub(super) rented_after: Vec<usize>,
}

impl Market {
    fn with_capacity(n: usize) -> Self {
        Self {
            properties: Vec::with_capacity(n),
            images: Vec::with_capacity(n * 3),
            amenities: Vec::with_capacity(n * 4),
            prop_amen: Vec::with_capacity(n),
            prop_city: Vec::with_capacity(n),
            appeal: Vec::with_capacity(n),
            listed: Vec::with_capacity(n),
            rented_after: Vec::with_capacity(n),
        }
    }

    /// One more listing: where, what, how big, which amenities, its price, text, time on the
    /// market, owner, images and appeal.
    fn list(
        &mut self,
        rng: &mut Rng,
        city_pick: &Weighted,
        all_amenities: &[Amenity],
        users: &[user::Model],
        owners: &[usize],
    ) {
        let city_idx = city_pick.sample(rng);
        let city = &CITIES[city_idx];
        let (hood, hood_mult) = *rng.pick(city.neighbourhoods);
        let ptype = type_of(rng);
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
        let amen: Vec<Amenity> = all_amenities
            .iter()
            .copied()
            .filter(|&a| rng.chance(amenity_chance(a, ptype)))
            .collect();
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
        let (title, description) = describe(adjective, ptype, bedrooms, area, hood, city, &amen);
        let created_day = rng.f64() * LISTING_DAYS;
        let created = at_day(created_day);
        self.listed.push((
            created_day,
            created_day + exponential(rng, MEAN_LISTING_LIFETIME_DAYS),
        ));
        let (lo, hi) = RENTED_AFTER_INQUIRIES;
        self.rented_after.push(lo + rng.below(hi - lo + 1));
        let owner = &users[owners[rng
            .below(owners.len().max(1))
            .min(owners.len().saturating_sub(1))]];
        let n_images = 1 + rng.below(5);
        for pos in 0..n_images {
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
        // Pareto(alpha = 1.3): a few listings draw most of the attention.
        self.appeal
            .push((1.0 - rng.f64()).max(1e-9).powf(-1.0 / 1.3).min(200.0));
        self.prop_amen.push(amen);
        self.prop_city.push(city_idx);
        self.properties.push(property::Model {
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
            taken_down: false,
        });
    }
}

/// How likely a listing of this type has the amenity.
fn amenity_chance(a: Amenity, ptype: PropertyType) -> f64 {
    let house = matches!(ptype, PropertyType::House | PropertyType::Townhouse);
    match a {
        Amenity::Garden if house => 0.6,
        Amenity::Garden => 0.05,
        Amenity::Elevator if house => 0.0,
        Amenity::Elevator => 0.5,
        Amenity::Pool | Amenity::Gym | Amenity::Doorman if ptype == PropertyType::Condo => 0.45,
        Amenity::Pool | Amenity::Gym | Amenity::Doorman => 0.06,
        Amenity::Furnished if matches!(ptype, PropertyType::Room | PropertyType::Studio) => 0.75,
        Amenity::Furnished => 0.3,
        _ => 0.35,
    }
}

/// A listing's title and description.
fn describe(
    adjective: &str,
    ptype: PropertyType,
    bedrooms: i32,
    area: f64,
    hood: &str,
    city: &City,
    amen: &[Amenity],
) -> (String, String) {
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
    (title, description)
}
