use crate::graphql::errors::ApiError;
use crate::graphql::types::{BoundsInput, PropertyFilterInput};
use async_graphql::{Context, Object, SimpleObject};

#[derive(Default)]
pub(super) struct MapQuery;

/// A cell of the map grid with the listings in it.
#[derive(SimpleObject)]
pub(crate) struct MapCluster {
    pub count: i64,
    /// The listings' centroid: where to draw the marker.
    pub latitude: f64,
    pub longitude: f64,
    /// The cheapest monthly price in the cell.
    pub min_price: i32,
    /// The cell, to zoom into it.
    pub bounds: MapCell,
}

#[derive(SimpleObject)]
pub(crate) struct MapCell {
    pub north: f64,
    pub south: f64,
    pub east: f64,
    pub west: f64,
}

#[Object]
impl MapQuery {
    /// Markers for a map viewport: the active listings passing `filter` inside `within`,
    /// grouped by a grid of about 64 pixels at `zoom` (0-22, web-map zoom levels; a viewport
    /// that would need more than 2,500 cells gets a coarser grid), densest first. From memory:
    /// no statement.
    #[graphql(cache_control(max_age = 30))]
    async fn map_clusters(
        &self,
        ctx: &Context<'_>,
        filter: Option<PropertyFilterInput>,
        within: BoundsInput,
        zoom: i32,
    ) -> async_graphql::Result<Vec<MapCluster>> {
        if !(0..=22).contains(&zoom) {
            return Err(ApiError::bad_input("`zoom` must be between 0 and 22").into());
        }
        let filter = filter.unwrap_or_default();
        if filter.active != Some(true) {
            return Err(ApiError::bad_input("map clusters show active listings only").into());
        }
        let filter = filter.to_store(ctx)?;
        let viewport = within.to_store()?;
        let rec = ctx
            .data::<std::sync::Arc<crate::recommend::Recommender>>()
            .map_err(|_| ApiError::Internal("the recommender is missing".into()))?;
        let snap = rec.index().fresh().await.map_err(ApiError::from)?;
        Ok(snap
            .clusters(&filter, viewport, zoom as u32)
            .into_iter()
            .map(|c| MapCluster {
                count: c.count as i64,
                latitude: c.latitude,
                longitude: c.longitude,
                min_price: c.min_price,
                bounds: MapCell {
                    north: c.north,
                    south: c.south,
                    east: c.east,
                    west: c.west,
                },
            })
            .collect())
    }
}
