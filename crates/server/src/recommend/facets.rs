//! Facet counts for filter chips, from the listing index in memory: for the current filter,
//! how many active listings each city, neighbourhood, type, bedroom count, amenity and price
//! bucket has, each facet counted without its own restriction (a chip shows what choosing it
//! would give, not only what is already chosen). One pass per facet over the index's entries;
//! the same `Entry::matches` the SQL's filters are mirrored by, so the counts agree with
//! `totalCount` (`tests/api/facets.rs` checks them against SQL).
use super::index::Snapshot;
use crate::store::PropertyFilter;
use entity::{Amenity, PropertyType};
use std::collections::HashMap;

/// Price buckets are this wide; the last one is open.
pub const PRICE_BUCKET: i32 = 500;
pub const PRICE_BUCKETS: i32 = 10;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Facets {
    pub cities: Vec<(String, u64)>,
    /// (city, neighbourhood): the same name in two cities is two places.
    pub neighbourhoods: Vec<((String, String), u64)>,
    pub types: Vec<(PropertyType, u64)>,
    pub bedrooms: Vec<(i32, u64)>,
    pub amenities: Vec<(Amenity, u64)>,
    /// (lowest price, highest price or `None` for the open bucket, count).
    pub prices: Vec<(i32, Option<i32>, u64)>,
}

/// Most first, then by value: a stable order for chips.
fn ranked<K: std::fmt::Debug>(counts: HashMap<K, u64>) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    v.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)))
    });
    v
}

impl Snapshot {
    /// The facets of `filter` (active listings only: the caller checks the filter asks for
    /// them).
    pub fn facets(&self, filter: &PropertyFilter) -> Facets {
        let without = |clear: &dyn Fn(&mut PropertyFilter)| {
            let mut f = filter.clone();
            clear(&mut f);
            f
        };
        let count = |f: &PropertyFilter, key: &mut dyn FnMut(&super::index::Entry)| {
            for e in self.entries().filter(|e| e.active && e.matches(f)) {
                key(e);
            }
        };
        let mut cities = HashMap::new();
        count(
            &without(&|f| {
                f.city = None;
                f.cities.clear();
                f.neighbourhoods.clear();
            }),
            &mut |e| *cities.entry(e.static_facts().city.clone()).or_insert(0) += 1,
        );
        let mut neighbourhoods = HashMap::new();
        count(&without(&|f| f.neighbourhoods.clear()), &mut |e| {
            let l = e.static_facts();
            *neighbourhoods
                .entry((l.city.clone(), l.neighbourhood.clone()))
                .or_insert(0) += 1;
        });
        let mut types = HashMap::new();
        count(&without(&|f| f.property_types.clear()), &mut |e| {
            *types.entry(e.static_facts().property_type).or_insert(0) += 1;
        });
        let mut bedrooms = HashMap::new();
        count(
            &without(&|f| {
                f.min_bedrooms = None;
                f.max_bedrooms = None;
            }),
            &mut |e| *bedrooms.entry(e.static_facts().bedrooms).or_insert(0) += 1,
        );
        let all_amenities: Vec<Amenity> = {
            use sea_orm::Iterable;
            Amenity::iter().collect()
        };
        let mut amenities = HashMap::new();
        count(&without(&|f| f.amenities.clear()), &mut |e| {
            for a in &all_amenities {
                if e.static_facts().has(*a) {
                    *amenities.entry(*a).or_insert(0) += 1;
                }
            }
        });
        let mut prices: HashMap<i32, u64> = HashMap::new();
        count(
            &without(&|f| {
                f.min_price = None;
                f.max_price = None;
            }),
            &mut |e| {
                let bucket =
                    (e.static_facts().monthly_price.max(0) / PRICE_BUCKET).min(PRICE_BUCKETS);
                *prices.entry(bucket).or_insert(0) += 1;
            },
        );
        let mut prices: Vec<(i32, Option<i32>, u64)> = prices
            .into_iter()
            .map(|(b, n)| {
                let low = b * PRICE_BUCKET;
                let high = (b < PRICE_BUCKETS).then_some(low + PRICE_BUCKET - 1);
                (low, high, n)
            })
            .collect();
        prices.sort_by_key(|p| p.0);
        Facets {
            cities: ranked(cities),
            neighbourhoods: ranked(neighbourhoods),
            types: ranked(types),
            bedrooms: {
                let mut b = ranked(bedrooms);
                b.sort_by_key(|x| x.0);
                b
            },
            amenities: ranked(amenities),
            prices,
        }
    }
}
