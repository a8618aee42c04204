//! Map clusters for a viewport, from the listing index in memory: the active listings that
//! pass the filter, inside the viewport, grouped by a square grid whose cell is a quarter of a
//! 256-pixel web-map tile at the zoom asked (so a cluster covers about 64 pixels on screen).
//! Each cell gives its count, centroid and cheapest price.
use super::index::Snapshot;
use crate::store::{Bounds, PropertyFilter};
use std::collections::HashMap;

/// More cells than this for one viewport (a low zoom on a big screen) and the grid is made
/// coarser, so the answer stays bounded whatever the request.
pub const MAX_CELLS: f64 = 2500.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub count: u64,
    pub latitude: f64,
    pub longitude: f64,
    pub min_price: i32,
    /// The cell's edges.
    pub south: f64,
    pub north: f64,
    pub west: f64,
    pub east: f64,
}

/// The grid cell for `zoom` (degrees), coarsened until the viewport has at most `MAX_CELLS`.
pub fn cell_degrees(viewport: &Bounds, zoom: u32) -> f64 {
    let (s, n, w, e) = viewport.edges();
    let mut cell = 360.0 / f64::from(1u32 << zoom.min(24)) / 4.0;
    while ((n - s) / cell).max(1.0) * ((e - w) / cell).max(1.0) > MAX_CELLS {
        cell *= 2.0;
    }
    cell
}

impl Snapshot {
    /// Clusters of `filter`'s active listings inside `viewport`, densest first.
    pub fn clusters(&self, filter: &PropertyFilter, viewport: Bounds, zoom: u32) -> Vec<Cluster> {
        let mut f = filter.clone();
        f.within = Some(viewport);
        let (s, _, w, _) = viewport.edges();
        let cell = cell_degrees(&viewport, zoom);
        // Per cell: count, sums of latitude and longitude, cheapest price.
        let mut cells: HashMap<(i64, i64), (u64, f64, f64, i32)> = HashMap::new();
        for e in self.active_candidates(&f).filter(|e| e.matches(&f)) {
            let (lat, lon) = e.location();
            let key = (
                ((lat - s) / cell).floor() as i64,
                ((lon - w) / cell).floor() as i64,
            );
            let c = cells.entry(key).or_insert((0, 0.0, 0.0, i32::MAX));
            c.0 += 1;
            c.1 += lat;
            c.2 += lon;
            c.3 = c.3.min(e.static_facts().monthly_price);
        }
        let mut out: Vec<Cluster> = cells
            .into_iter()
            .map(|((row, col), (count, lat, lon, min_price))| Cluster {
                count,
                latitude: lat / count as f64,
                longitude: lon / count as f64,
                min_price,
                south: s + row as f64 * cell,
                north: s + (row + 1) as f64 * cell,
                west: w + col as f64 * cell,
                east: w + (col + 1) as f64 * cell,
            })
            .collect();
        out.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.south.total_cmp(&b.south))
                .then(a.west.total_cmp(&b.west))
        });
        out
    }
}
