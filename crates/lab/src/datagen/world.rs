//! The default world's geography and vocabulary, and its clock.
use super::params::LISTING_DAYS;
use super::rng::{Rng, Weighted};
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use entity::PropertyType;

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

pub(crate) const TYPES: &[(PropertyType, f64)] = &[
    (PropertyType::Apartment, 0.45),
    (PropertyType::Studio, 0.12),
    (PropertyType::Condo, 0.14),
    (PropertyType::House, 0.11),
    (PropertyType::Townhouse, 0.08),
    (PropertyType::Room, 0.10),
];

pub(crate) const ADJECTIVES: &[&str] = &[
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
pub(crate) const FIRST: &[&str] = &[
    "Ana", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Karin",
    "Luca", "Maria", "Nils", "Olga", "Pablo", "Rosa", "Sven", "Tara", "Yusuf",
];
pub(crate) const LAST: &[&str] = &[
    "Silva", "Schmidt", "Garcia", "de Vries", "Martin", "Rossi", "Huber", "Novak", "Costa",
    "Weber", "Lopez", "Bakker", "Bernard", "Bianchi", "Gruber", "Dvorak",
];

pub(super) fn type_of(rng: &mut Rng) -> PropertyType {
    let w = Weighted::new(TYPES.iter().map(|t| t.1));
    TYPES[w.sample(rng)].0
}

pub(super) fn type_factor(t: PropertyType) -> f64 {
    match t {
        PropertyType::Apartment => 1.0,
        PropertyType::Studio => 1.05,
        PropertyType::Condo => 1.15,
        PropertyType::House => 1.1,
        PropertyType::Townhouse => 1.12,
        PropertyType::Room => 0.8,
    }
}

/// The instant the data set is anchored to, so the same seed gives the same timestamps.
fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// The generator's clock: day 0 is `LISTING_DAYS` before the epoch, the epoch is day
/// `LISTING_DAYS`.
pub(super) fn at_day(day: f64) -> DateTime<Utc> {
    let back = ((LISTING_DAYS - day) * 86_400_000_000.0) as i64;
    epoch() - ChronoDuration::microseconds(back)
}
