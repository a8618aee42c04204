//! The one feature path. Training data (`rentgraph export-training-data`) and serving both call
//! `features()` on the same two structs, so the model never sees features computed one way in
//! training and another way in production. `FEATURE_NAMES` is written into
//! models/recommender.json by training and checked against this list when the model loads.
use chrono::{DateTime, Utc};
use entity::{Amenity, InteractionKind, Preferences, PropertyType};
use std::collections::HashMap;

pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "pref_has_price",
    "pref_price_log_ratio",
    "pref_price_in_range",
    "pref_has_cities",
    "pref_city_match",
    "pref_type_match",
    "pref_bedrooms_ok",
    "pref_amenity_overlap",
    "hist_events_log",
    "hist_price_log_ratio",
    "hist_price_abs_log_ratio",
    "hist_city_share",
    "hist_neighbourhood_share",
    "hist_type_share",
    "hist_bedrooms_diff",
    "hist_amenity_affinity",
    "pop_recent_views_rel",
    "pop_recent_engaged_rel",
    "pop_engagement_rate",
    "listing_age_log_days",
    "listing_bedrooms",
    "listing_log_price",
    "listing_log_area",
    "co_engagement_log",
    "co_engagement_rel",
    "pop_decayed_rel",
];
pub const N_FEATURES: usize = 26;

pub type FeatureRow = [f32; N_FEATURES];

const AMENITIES: [Amenity; 12] = [
    Amenity::Parking,
    Amenity::Balcony,
    Amenity::Elevator,
    Amenity::Washer,
    Amenity::Dishwasher,
    Amenity::AirConditioning,
    Amenity::Furnished,
    Amenity::PetsAllowed,
    Amenity::Garden,
    Amenity::Gym,
    Amenity::Pool,
    Amenity::Doorman,
];
const TYPES: [PropertyType; 6] = [
    PropertyType::Apartment,
    PropertyType::House,
    PropertyType::Studio,
    PropertyType::Condo,
    PropertyType::Townhouse,
    PropertyType::Room,
];

fn amenity_index(a: Amenity) -> usize {
    AMENITIES.iter().position(|x| *x == a).unwrap_or(0)
}
fn type_index(t: PropertyType) -> usize {
    TYPES.iter().position(|x| *x == t).unwrap_or(0)
}

/// Recent popularity counts the interactions of the last this-many days. Serving's listing
/// index and the offline replays (training data, evaluation) count the same window.
pub const RECENT_DAYS: i64 = 28;

/// The mean recent counters of the active listings in a city: recent popularity is divided by
/// it, so a feature means the same in a quiet training window and on a busy production day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MarketScale {
    pub views: f32,
    pub engaged: f32,
    /// The mean time-decayed popularity (`ListingFacts::decayed`).
    pub decayed: f32,
}

impl MarketScale {
    /// The mean over these listings' recent counters.
    pub fn of(recent: impl IntoIterator<Item = Popularity>) -> Self {
        let (mut n, mut views, mut engaged) = (0u32, 0f64, 0f64);
        for p in recent {
            n += 1;
            views += f64::from(p.views);
            engaged += f64::from(p.engaged());
        }
        if n == 0 {
            return Self::default();
        }
        Self {
            views: (views / f64::from(n)) as f32,
            engaged: (engaged / f64::from(n)) as f32,
            decayed: 0.0,
        }
    }
}

/// Likes, saves and inquiries: what a recommendation is for, and what `Popularity::engaged`
/// counts.
pub fn engages(kind: InteractionKind) -> bool {
    matches!(
        kind,
        InteractionKind::Like | InteractionKind::Save | InteractionKind::Inquiry
    )
}

/// Interaction counters of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Popularity {
    pub views: u32,
    pub likes: u32,
    pub saves: u32,
    pub inquiries: u32,
    pub dismissals: u32,
}

impl Popularity {
    /// The counter an interaction kind counts towards, as an index in `counts` order (views,
    /// likes, saves, inquiries, dismissals): the one mapping from kind to counter.
    pub fn slot(kind: InteractionKind) -> usize {
        match kind {
            InteractionKind::View => 0,
            InteractionKind::Like => 1,
            InteractionKind::Save => 2,
            InteractionKind::Inquiry => 3,
            InteractionKind::Dismiss => 4,
        }
    }

    /// The counters in `slot` order.
    pub fn counts(&self) -> [u32; 5] {
        [
            self.views,
            self.likes,
            self.saves,
            self.inquiries,
            self.dismissals,
        ]
    }

    /// Counters from `slot`-ordered counts.
    pub fn from_counts(c: [u32; 5]) -> Self {
        Self {
            views: c[0],
            likes: c[1],
            saves: c[2],
            inquiries: c[3],
            dismissals: c[4],
        }
    }

    pub fn add(&mut self, kind: InteractionKind) {
        let mut c = self.counts();
        c[Self::slot(kind)] += 1;
        *self = Self::from_counts(c);
    }

    /// Both counts together (saturating: a counter never wraps).
    pub fn plus(&self, other: &Self) -> Self {
        let (a, b) = (self.counts(), other.counts());
        Self::from_counts(std::array::from_fn(|i| a[i].saturating_add(b[i])))
    }
    pub fn engaged(&self) -> u32 {
        self.likes + self.saves + self.inquiries
    }
    /// The popularity baseline's score (and the fallback ranking when the model cannot run).
    pub fn score(&self) -> f64 {
        f64::from(self.views) + 3.0 * f64::from(self.engaged()) - f64::from(self.dismissals)
    }
}

/// What both training and serving know about a listing.
#[derive(Debug, Clone)]
pub struct ListingFacts {
    pub id: uuid::Uuid,
    pub city: String,
    pub neighbourhood: String,
    pub property_type: PropertyType,
    pub monthly_price: i32,
    pub bedrooms: i32,
    pub area: i32,
    /// Bit i set: the listing has `AMENITIES[i]`.
    pub amenities: u16,
    pub created_at: DateTime<Utc>,
    /// Since the listing was created.
    pub popularity: Popularity,
    /// In the last `RECENT_DAYS`.
    pub recent: Popularity,
    /// Recent counters of the city's average active listing.
    pub market: MarketScale,
    /// Time-decayed popularity (half-life 14 days) as of the index's last load.
    pub decayed: f32,
}

impl ListingFacts {
    pub fn amenity_mask(amenities: &[Amenity]) -> u16 {
        amenities
            .iter()
            .fold(0, |m, a| m | (1 << amenity_index(*a)))
    }
    pub fn has(&self, a: Amenity) -> bool {
        self.amenities & (1 << amenity_index(a)) != 0
    }
}

/// How much each kind of interaction says about taste (the profile and the co-engagement
/// table weigh alike).
pub fn interaction_weight(kind: InteractionKind) -> f32 {
    match kind {
        InteractionKind::View => 1.0,
        InteractionKind::Like => 2.0,
        InteractionKind::Save => 3.0,
        InteractionKind::Inquiry => 4.0,
        InteractionKind::Dismiss => 0.0,
    }
}

/// A user's stated preferences and a summary of their history.
#[derive(Debug, Clone, Default)]
pub struct UserProfile {
    pub preferences: Preferences,
    pub weight: f32,
    pub log_price_mean: Option<f32>,
    pub bedrooms_mean: Option<f32>,
    pub city_share: HashMap<String, f32>,
    pub neighbourhood_share: HashMap<String, f32>,
    pub type_share: [f32; 6],
    pub amenity_share: [f32; 12],
    /// Item-kNN scores over the co-engagement table (`recommend::co_engagement`): how strongly
    /// renters who touched what this user touched went on to these listings.
    pub co_engagement: HashMap<uuid::Uuid, f32>,
    /// The highest of them (0 when there is none).
    pub co_engagement_max: f32,
}

impl UserProfile {
    /// Builds the profile from the user's interactions (any order) with the listings involved.
    pub fn build<'a>(
        preferences: Preferences,
        history: impl IntoIterator<Item = (InteractionKind, &'a ListingFacts)>,
    ) -> Self {
        let mut p = UserProfile {
            preferences,
            ..Default::default()
        };
        let (mut price, mut beds) = (0.0f32, 0.0f32);
        for (kind, l) in history {
            let w = interaction_weight(kind);
            if w == 0.0 {
                continue;
            }
            p.weight += w;
            price += w * (l.monthly_price.max(1) as f32).ln();
            beds += w * l.bedrooms as f32;
            *p.city_share.entry(l.city.clone()).or_default() += w;
            *p.neighbourhood_share
                .entry(l.neighbourhood.clone())
                .or_default() += w;
            p.type_share[type_index(l.property_type)] += w;
            for (i, a) in AMENITIES.iter().enumerate() {
                if l.has(*a) {
                    p.amenity_share[i] += w;
                }
            }
        }
        if p.weight > 0.0 {
            let total = p.weight;
            p.log_price_mean = Some(price / total);
            p.bedrooms_mean = Some(beds / total);
            p.city_share.values_mut().for_each(|v| *v /= total);
            p.neighbourhood_share.values_mut().for_each(|v| *v /= total);
            p.type_share.iter_mut().for_each(|v| *v /= total);
            p.amenity_share.iter_mut().for_each(|v| *v /= total);
        }
        p
    }

    /// The preferred price point, when the user stated any price.
    fn preferred_price(&self) -> Option<f32> {
        match (self.preferences.min_price, self.preferences.max_price) {
            (Some(lo), Some(hi)) => Some((lo + hi) as f32 / 2.0),
            (None, Some(hi)) => Some(hi as f32 * 0.8),
            (Some(lo), None) => Some(lo as f32 * 1.2),
            (None, None) => None,
        }
    }
}

fn b(x: bool) -> f32 {
    if x { 1.0 } else { 0.0 }
}

pub fn features(user: &UserProfile, l: &ListingFacts, now: DateTime<Utc>) -> FeatureRow {
    let prefs = &user.preferences;
    let price = l.monthly_price.max(1) as f32;
    let log_price = price.ln();
    let pref_price = user.preferred_price();
    let in_range = prefs.min_price.is_none_or(|lo| l.monthly_price >= lo)
        && prefs.max_price.is_none_or(|hi| l.monthly_price <= hi);
    let amenity_overlap = if prefs.amenities.is_empty() {
        0.0
    } else {
        prefs.amenities.iter().filter(|a| l.has(**a)).count() as f32 / prefs.amenities.len() as f32
    };
    let hist_ratio = user
        .log_price_mean
        .map(|m| (log_price - m).clamp(-3.0, 3.0))
        .unwrap_or(0.0);
    let amenity_affinity: f32 = AMENITIES
        .iter()
        .enumerate()
        .filter(|(_, a)| l.has(**a))
        .map(|(i, _)| user.amenity_share[i])
        .sum();
    let pop = &l.popularity;
    // Relative to the city's average listing; the floor keeps a market with no recent
    // interactions from dividing by zero.
    let rel = |n: u32, mean: f32| (1.0 + n as f32 / mean.max(0.5)).ln();
    let age_days = ((now - l.created_at).num_seconds().max(0) as f32) / 86_400.0;
    let co = user.co_engagement.get(&l.id).copied().unwrap_or(0.0);
    [
        b(pref_price.is_some()),
        pref_price
            .map(|p| (log_price - p.max(1.0).ln()).clamp(-3.0, 3.0))
            .unwrap_or(0.0),
        b(pref_price.is_some() && in_range),
        b(!prefs.cities.is_empty()),
        b(prefs.cities.iter().any(|c| c.eq_ignore_ascii_case(&l.city))),
        b(prefs.property_types.contains(&l.property_type)),
        b(prefs.min_bedrooms.is_none_or(|m| l.bedrooms >= m)),
        amenity_overlap,
        (1.0 + user.weight).ln(),
        hist_ratio,
        hist_ratio.abs(),
        user.city_share.get(&l.city).copied().unwrap_or(0.0),
        user.neighbourhood_share
            .get(&l.neighbourhood)
            .copied()
            .unwrap_or(0.0),
        user.type_share[type_index(l.property_type)],
        user.bedrooms_mean
            .map(|m| (l.bedrooms as f32 - m).abs())
            .unwrap_or(0.0),
        amenity_affinity,
        rel(l.recent.views, l.market.views),
        rel(l.recent.engaged(), l.market.engaged),
        (pop.engaged() as f32 + 1.0) / (pop.views as f32 + pop.engaged() as f32 + 5.0),
        (1.0 + age_days).ln(),
        l.bedrooms as f32,
        log_price,
        (l.area.max(1) as f32).ln(),
        (1.0 + co).ln(),
        if user.co_engagement_max > 0.0 {
            co / user.co_engagement_max
        } else {
            0.0
        },
        (1.0 + l.decayed.max(0.0) / l.market.decayed.max(0.5)).ln(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_counts_towards_its_own_counter_and_counters_never_wrap() {
        let mut p = Popularity::default();
        for kind in [
            InteractionKind::View,
            InteractionKind::View,
            InteractionKind::Like,
            InteractionKind::Save,
            InteractionKind::Inquiry,
            InteractionKind::Dismiss,
        ] {
            p.add(kind);
        }
        assert_eq!(p.counts(), [2, 1, 1, 1, 1]);
        assert_eq!(p.engaged(), 3);
        assert!((p.score() - (2.0 + 3.0 * 3.0 - 1.0)).abs() < 1e-12);
        let full = Popularity::from_counts([u32::MAX; 5]);
        assert_eq!(full.plus(&p).counts(), [u32::MAX; 5]);
    }

    fn listing(city: &str, price: i32, amenities: &[Amenity]) -> ListingFacts {
        ListingFacts {
            id: uuid::Uuid::new_v4(),
            city: city.into(),
            neighbourhood: format!("{city}-centre"),
            property_type: PropertyType::Apartment,
            monthly_price: price,
            bedrooms: 2,
            area: 60,
            amenities: ListingFacts::amenity_mask(amenities),
            created_at: Utc::now(),
            popularity: Popularity {
                views: 9,
                likes: 1,
                ..Default::default()
            },
            recent: Popularity {
                views: 2,
                ..Default::default()
            },
            market: MarketScale {
                views: 4.0,
                engaged: 1.0,
                decayed: 2.0,
            },
            decayed: 3.0,
        }
    }

    #[test]
    fn history_and_preferences_show_in_the_features() {
        let lisbon = listing("Lisbon", 1200, &[Amenity::Balcony]);
        let paris = listing("Paris", 2400, &[]);
        let prefs = Preferences {
            cities: vec!["Lisbon".into()],
            max_price: Some(1500),
            ..Default::default()
        };
        let user = UserProfile::build(
            prefs,
            [
                (InteractionKind::Save, &lisbon),
                (InteractionKind::View, &lisbon),
            ],
        );
        let near = features(&user, &lisbon, Utc::now());
        let far = features(&user, &paris, Utc::now());
        let idx = |n: &str| {
            FEATURE_NAMES
                .iter()
                .position(|x| *x == n)
                .unwrap_or(usize::MAX)
        };
        assert_eq!(near[idx("pref_city_match")], 1.0);
        assert_eq!(far[idx("pref_city_match")], 0.0);
        assert_eq!(near[idx("hist_city_share")], 1.0);
        assert_eq!(near[idx("pref_price_in_range")], 1.0);
        assert_eq!(far[idx("pref_price_in_range")], 0.0);
        assert!(near[idx("hist_amenity_affinity")] > far[idx("hist_amenity_affinity")]);
        assert!(near.iter().chain(far.iter()).all(|v| v.is_finite()));
        assert_eq!(FEATURE_NAMES.len(), N_FEATURES);
    }

    #[test]
    fn a_new_user_gets_finite_neutral_features() {
        let user = UserProfile::build(Preferences::default(), []);
        let f = features(&user, &listing("Berlin", 0, &[]), Utc::now());
        assert!(f.iter().all(|v| v.is_finite()));
    }
}
