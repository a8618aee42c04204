//! Facet counts for filter chips, from the listing index in memory: for the current filter,
//! how many active listings each city, neighbourhood, type, bedroom count, amenity and price
//! bucket has, each facet counted without its own restriction (a chip shows what choosing it
//! would give, not only what is already chosen). One pass over the index's active entries (a
//! viewport's latitude band only), with the tests `Entry::matches` mirrors the SQL's filters
//! by (`index::failed_restrictions`), so the counts agree with `totalCount`
//! (`tests/api/facets.rs` checks them against SQL).
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
    /// them). One pass: each listing is tested against the faceted restrictions once, and
    /// counts towards a facet when it fails none but that facet's own.
    pub fn facets(&self, filter: &PropertyFilter) -> Facets {
        use super::index::failed_restrictions;
        use super::index::restriction::*;
        let all_amenities: Vec<Amenity> = {
            use sea_orm::Iterable;
            Amenity::iter().collect()
        };
        let (mut cities, mut neighbourhoods, mut types) =
            (HashMap::new(), HashMap::new(), HashMap::new());
        let (mut bedrooms, mut amenities, mut prices) =
            (HashMap::new(), HashMap::new(), HashMap::<i32, u64>::new());
        for e in self.active_candidates(filter).filter(|e| e.in_area(filter)) {
            let l = e.static_facts();
            let failed = failed_restrictions(filter, l);
            let only = |own: u8| failed & !own == 0;
            // Keys borrowed from the snapshot: no allocation per listing.
            if only(CITY | NEIGHBOURHOOD) {
                *cities.entry(l.city.as_str()).or_insert(0) += 1;
            }
            if only(NEIGHBOURHOOD) {
                *neighbourhoods
                    .entry((l.city.as_str(), l.neighbourhood.as_str()))
                    .or_insert(0) += 1;
            }
            if only(TYPE) {
                *types.entry(l.property_type).or_insert(0) += 1;
            }
            if only(BEDROOMS) {
                *bedrooms.entry(l.bedrooms).or_insert(0) += 1;
            }
            if only(AMENITIES) {
                for a in &all_amenities {
                    if l.has(*a) {
                        *amenities.entry(*a).or_insert(0) += 1;
                    }
                }
            }
            if only(PRICE) {
                let bucket = (l.monthly_price.max(0) / PRICE_BUCKET).min(PRICE_BUCKETS);
                *prices.entry(bucket).or_insert(0) += 1;
            }
        }
        let mut prices: Vec<(i32, Option<i32>, u64)> = prices
            .into_iter()
            .map(|(b, n)| {
                let low = b * PRICE_BUCKET;
                let high = (b < PRICE_BUCKETS).then_some(low + PRICE_BUCKET - 1);
                (low, high, n)
            })
            .collect();
        prices.sort_by_key(|p| p.0);
        let mut bedrooms = ranked(bedrooms);
        bedrooms.sort_by_key(|x| x.0);
        let owned = |v: Vec<(&str, u64)>| -> Vec<(String, u64)> {
            v.into_iter().map(|(k, n)| (k.to_owned(), n)).collect()
        };
        Facets {
            cities: owned(ranked(cities)),
            neighbourhoods: ranked(neighbourhoods)
                .into_iter()
                .map(|((c, nb), n)| ((c.to_owned(), nb.to_owned()), n))
                .collect(),
            types: ranked(types),
            bedrooms,
            amenities: ranked(amenities),
            prices,
        }
    }
}
