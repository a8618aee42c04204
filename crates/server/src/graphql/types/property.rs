use super::{Amenity, PropertyType, User};
use crate::graphql::context::Ctx;
use crate::graphql::errors::{ApiError, ApiResult};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{
    AmenitiesKey, ImagesKey, MatchKey, PropertyKey, SimilarKey, StatsKey, UserKey,
};
use crate::store::{OrderDirection, PropertyFilter, PropertyOrder, PropertyOrderField};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::property;

/// A rental listing.
#[derive(Clone)]
pub(crate) struct Property(pub property::Model);

#[derive(SimpleObject, Clone)]
pub(super) struct PropertyImage {
    pub url: String,
    /// Display order, 0 first.
    pub position: i32,
}

/// How often people interacted with a listing.
#[derive(SimpleObject, Clone, Copy)]
pub(crate) struct PropertyStats {
    pub views: i64,
    pub likes: i64,
    pub saves: i64,
    pub inquiries: i64,
}

// Listings change rarely and every instance drops them from its caches within a second; a
// minute of staleness in a browser or CDN is the price of serving pages from there.
#[Object(cache_control(max_age = 60))]
impl Property {
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Property, self.0.id)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Rent per month, in whole currency units.
    async fn monthly_price(&self) -> i32 {
        self.0.monthly_price
    }
    async fn city(&self) -> &str {
        &self.0.city
    }
    async fn neighbourhood(&self) -> &str {
        &self.0.neighbourhood
    }
    async fn latitude(&self) -> f64 {
        self.0.latitude
    }
    async fn longitude(&self) -> f64 {
        self.0.longitude
    }
    async fn bedrooms(&self) -> i32 {
        self.0.bedrooms
    }
    async fn bathrooms(&self) -> i32 {
        self.0.bathrooms
    }
    /// Floor area in square metres.
    async fn area(&self) -> i32 {
        self.0.area
    }
    async fn property_type(&self) -> PropertyType {
        self.0.property_type.into()
    }
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let owner = ctx
            .loaders()?
            .load_one(UserKey(self.0.owner_id))
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("owner"))?;
        Ok(User(owner))
    }

    async fn images(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PropertyImage>> {
        let images = ctx
            .loaders()?
            .load_one(ImagesKey(self.0.id))
            .await
            .map_err(ApiError::from)?
            .unwrap_or_default();
        Ok(images
            .into_iter()
            .map(|i| PropertyImage {
                url: i.url,
                position: i.position,
            })
            .collect())
    }

    async fn amenities(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Amenity>> {
        let amenities = ctx
            .loaders()?
            .load_one(AmenitiesKey(self.0.id))
            .await
            .map_err(ApiError::from)?
            .unwrap_or_default();
        Ok(amenities.into_iter().map(Into::into).collect())
    }

    /// How well this listing matches the signed-in caller, from 0 to 1 (the recommendation
    /// model's estimate); null for anonymous callers, and null with a MODEL_* error when the
    /// model cannot answer. A page of listings costs one model submission.
    #[graphql(cache_control(no_cache))]
    async fn match_score(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<f64>> {
        if ctx.principal().user_id().is_none() {
            return Ok(None);
        }
        Ok(ctx
            .loaders()?
            .load_one(MatchKey(self.0.id))
            .await
            .map_err(ApiError::from)?)
    }

    /// Active listings like this one: same city and type, closest in price.
    #[graphql(complexity = "(first.max(0) as usize).saturating_mul(child_complexity)")]
    async fn similar_properties(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5)] first: i32,
    ) -> async_graphql::Result<Vec<Property>> {
        let max = ctx.limits()?.max_page_size;
        if first < 0 || first as usize > max {
            return Err(ApiError::bad_input(format!("`first` must be between 0 and {max}")).into());
        }
        let loaders = ctx.loaders()?;
        let ids = loaders
            .load_one(SimilarKey {
                property: self.0.id,
                limit: first as u64,
            })
            .await
            .map_err(ApiError::from)?
            .unwrap_or_default();
        let found = loaders
            .load_many(ids.iter().map(|id| PropertyKey(*id)))
            .await
            .map_err(ApiError::from)?;
        Ok(ids
            .iter()
            .filter_map(|id| found.get(&PropertyKey(*id)).cloned().map(Property))
            .collect())
    }

    async fn stats(&self, ctx: &Context<'_>) -> async_graphql::Result<PropertyStats> {
        let s = ctx
            .loaders()?
            .load_one(StatsKey(self.0.id))
            .await
            .map_err(ApiError::from)?
            .unwrap_or_default();
        Ok(PropertyStats {
            views: s.views,
            likes: s.likes,
            saves: s.saves,
            inquiries: s.inquiries,
        })
    }
}

/// Which listings to return. Unset fields match everything.
#[derive(InputObject, Clone)]
#[graphql(name = "PropertyFilter")]
pub(crate) struct PropertyFilterInput {
    pub city: Option<String>,
    pub min_price: Option<i32>,
    pub max_price: Option<i32>,
    pub min_bedrooms: Option<i32>,
    pub max_bedrooms: Option<i32>,
    /// Any of these types.
    pub types: Option<Vec<PropertyType>>,
    /// All of these amenities.
    pub amenities: Option<Vec<Amenity>>,
    /// true (default): active listings; false: inactive ones; null: both. Inactive listings
    /// are your own (any, for admins), so false and null narrow the list to your listings.
    #[graphql(default_with = "Some(true)")]
    pub active: Option<bool>,
    /// Any of these neighbourhoods (by name; with `city`, that city's).
    pub neighbourhoods: Option<Vec<String>>,
    /// Within `radiusKm` of a point.
    pub near: Option<NearInput>,
    /// Inside a map viewport, edges included. A box across the antimeridian (west east of
    /// east) is not supported.
    pub within: Option<BoundsInput>,
}

/// A point and a radius (at most 100 km; distances are equirectangular, within 0.5% there).
#[derive(InputObject, Clone, Copy)]
#[graphql(name = "Near")]
pub(crate) struct NearInput {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_km: f64,
}

/// A latitude/longitude box: a map viewport.
#[derive(InputObject, Clone, Copy)]
#[graphql(name = "Bounds")]
pub(crate) struct BoundsInput {
    pub north: f64,
    pub south: f64,
    pub east: f64,
    pub west: f64,
}

/// The largest `near.radiusKm`: beyond it the equirectangular distance drifts, and a
/// continent-wide radius is a `within` box's job.
const MAX_RADIUS_KM: f64 = 100.0;

fn latitude_ok(v: f64) -> bool {
    v.is_finite() && (-90.0..=90.0).contains(&v)
}

fn longitude_ok(v: f64) -> bool {
    v.is_finite() && (-180.0..=180.0).contains(&v)
}

impl NearInput {
    fn to_store(self) -> ApiResult<crate::store::Near> {
        if !latitude_ok(self.latitude) || !longitude_ok(self.longitude) {
            return Err(ApiError::bad_input(
                "`near` needs a latitude in [-90, 90] and a longitude in [-180, 180]",
            ));
        }
        if !(self.radius_km.is_finite() && self.radius_km > 0.0 && self.radius_km <= MAX_RADIUS_KM)
        {
            return Err(ApiError::bad_input(format!(
                "`near.radiusKm` must be above 0 and at most {MAX_RADIUS_KM}"
            )));
        }
        Ok(crate::store::Near::new(
            self.latitude,
            self.longitude,
            self.radius_km,
        ))
    }
}

impl BoundsInput {
    pub(crate) fn to_store(self) -> ApiResult<crate::store::Bounds> {
        if ![self.north, self.south].into_iter().all(latitude_ok)
            || ![self.east, self.west].into_iter().all(longitude_ok)
        {
            return Err(ApiError::bad_input(
                "`within` needs latitudes in [-90, 90] and longitudes in [-180, 180]",
            ));
        }
        if self.south > self.north {
            return Err(ApiError::bad_input(
                "`within.south` is north of `within.north`",
            ));
        }
        if self.west > self.east {
            return Err(ApiError::bad_input(
                "`within.west` is east of `within.east`: boxes across the antimeridian are not supported; send two",
            ));
        }
        Ok(crate::store::Bounds::new(
            self.south, self.north, self.west, self.east,
        ))
    }
}

impl Default for PropertyFilterInput {
    /// What an omitted filter means: every active listing.
    fn default() -> Self {
        Self {
            city: None,
            min_price: None,
            max_price: None,
            min_bedrooms: None,
            max_bedrooms: None,
            types: None,
            amenities: None,
            active: Some(true),
            neighbourhoods: None,
            near: None,
            within: None,
        }
    }
}

impl PropertyFilterInput {
    /// Validates the filter and narrows it to what the caller may see.
    pub(crate) fn to_store(&self, ctx: &Context<'_>) -> ApiResult<PropertyFilter> {
        for (name, v) in [
            ("minPrice", self.min_price),
            ("maxPrice", self.max_price),
            ("minBedrooms", self.min_bedrooms),
            ("maxBedrooms", self.max_bedrooms),
        ] {
            if v.is_some_and(|v| v < 0) {
                return Err(ApiError::bad_input(format!(
                    "`{name}` must not be negative"
                )));
            }
        }
        if let (Some(a), Some(b)) = (self.min_price, self.max_price)
            && a > b
        {
            return Err(ApiError::bad_input("`minPrice` is greater than `maxPrice`"));
        }
        if let (Some(a), Some(b)) = (self.min_bedrooms, self.max_bedrooms)
            && a > b
        {
            return Err(ApiError::bad_input(
                "`minBedrooms` is greater than `maxBedrooms`",
            ));
        }
        let principal = ctx.principal();
        let mut owner_id = None;
        if self.active != Some(true) && !principal.is_admin() {
            // Inactive listings are visible to their owner only.
            owner_id = Some(principal.user_id().ok_or(ApiError::Unauthenticated)?);
        }
        // Each amenity is one condition: duplicates would only grow the statement.
        let mut amenities: Vec<entity::Amenity> =
            self.amenities.iter().flatten().map(|&a| a.into()).collect();
        amenities.sort();
        amenities.dedup();
        let mut property_types: Vec<entity::PropertyType> = Vec::new();
        for t in self.types.iter().flatten().map(|&t| t.into()) {
            if !property_types.contains(&t) {
                property_types.push(t);
            }
        }
        Ok(PropertyFilter {
            city: self.city.clone(),
            min_price: self.min_price,
            max_price: self.max_price,
            min_bedrooms: self.min_bedrooms,
            max_bedrooms: self.max_bedrooms,
            property_types,
            amenities,
            active: self.active,
            owner_id,
            neighbourhoods: {
                let mut n: Vec<String> = self.neighbourhoods.iter().flatten().cloned().collect();
                n.sort();
                n.dedup();
                n
            },
            near: self.near.map(NearInput::to_store).transpose()?,
            within: self.within.map(BoundsInput::to_store).transpose()?,
            ..Default::default()
        })
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
#[graphql(name = "PropertyOrderField")]
pub enum OrderField {
    #[default]
    CreatedAt,
    Price,
    Area,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum SortDirection {
    Asc,
    #[default]
    Desc,
}

/// Sort order; ties are broken by id so pages never overlap.
#[derive(InputObject, Clone, Copy, Default)]
#[graphql(name = "PropertyOrder")]
pub(crate) struct PropertyOrderBy {
    #[graphql(default)]
    pub field: OrderField,
    #[graphql(default)]
    pub direction: SortDirection,
}

impl PropertyOrderBy {
    pub(crate) fn to_store(self) -> PropertyOrder {
        PropertyOrder {
            field: match self.field {
                OrderField::CreatedAt => PropertyOrderField::CreatedAt,
                OrderField::Price => PropertyOrderField::Price,
                OrderField::Area => PropertyOrderField::Area,
            },
            direction: match self.direction {
                SortDirection::Asc => OrderDirection::Asc,
                SortDirection::Desc => OrderDirection::Desc,
            },
        }
    }
}

/// Whether the caller may see this listing: active ones are public, inactive ones belong to
/// their owner and admins.
pub(crate) fn visible(ctx: &Context<'_>, p: &property::Model) -> bool {
    ctx.principal().may_see_listing(p)
}
