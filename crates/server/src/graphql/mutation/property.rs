use crate::graphql::context::Ctx;
use crate::graphql::errors::{ApiError, ApiResult};
use crate::graphql::ids::{self, Kind};
use crate::graphql::types::{Amenity, Property, PropertyType};
use crate::store::{NewProperty, PropertyPatch};
use async_graphql::{Context, ID, InputObject, Object};
use entity::Role;
use uuid::Uuid;

#[derive(Default)]
pub(super) struct PropertyMutation;

#[derive(InputObject)]
pub(super) struct CreatePropertyInput {
    pub title: String,
    pub description: String,
    pub monthly_price: i32,
    pub city: String,
    pub neighbourhood: String,
    pub latitude: f64,
    pub longitude: f64,
    pub bedrooms: i32,
    pub bathrooms: i32,
    pub area: i32,
    pub property_type: PropertyType,
    #[graphql(default)]
    pub amenities: Vec<Amenity>,
    /// Image URLs in display order.
    #[graphql(default)]
    pub image_urls: Vec<String>,
}

/// Fields left out stay as they are.
#[derive(InputObject, Default)]
pub(super) struct UpdatePropertyInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub monthly_price: Option<i32>,
    pub city: Option<String>,
    pub neighbourhood: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub bedrooms: Option<i32>,
    pub bathrooms: Option<i32>,
    pub area: Option<i32>,
    pub property_type: Option<PropertyType>,
    pub amenities: Option<Vec<Amenity>>,
    pub image_urls: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

fn text(name: &str, v: &str, max: usize) -> ApiResult<String> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(ApiError::bad_input(format!(
            "`{name}` must have 1 to {max} characters"
        )));
    }
    Ok(t.to_owned())
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(name: &str, v: T, lo: T, hi: T) -> ApiResult<T> {
    // Written so that NaN fails too.
    if !(v >= lo && v <= hi) {
        return Err(ApiError::bad_input(format!(
            "`{name}` must be between {lo} and {hi}"
        )));
    }
    Ok(v)
}

fn urls(v: &[String]) -> ApiResult<Vec<String>> {
    if v.len() > 20 {
        return Err(ApiError::bad_input("at most 20 images"));
    }
    v.iter()
        .map(|u| {
            let u = u.trim();
            if (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 500 {
                Ok(u.to_owned())
            } else {
                Err(ApiError::bad_input(
                    "image URLs must be http(s) URLs of at most 500 characters",
                ))
            }
        })
        .collect()
}

/// Only owners and admins list properties.
fn require_lister(ctx: &Context<'_>) -> ApiResult<Uuid> {
    let (id, role) = ctx.require_user()?;
    if matches!(role, Role::Owner | Role::Admin) {
        Ok(id)
    } else {
        Err(ApiError::Forbidden(
            "only owners and admins may list properties",
        ))
    }
}

/// The listing, if the caller is its owner or an admin.
async fn owned(ctx: &Context<'_>, id: &ID) -> ApiResult<Uuid> {
    let (caller, role) = ctx.require_user()?;
    let id = ids::decode(Kind::Property, id)?;
    let found = ctx.store()?.properties_by_ids(&[id]).await?;
    let p = found.first().ok_or(ApiError::NotFound("property"))?;
    if p.owner_id != caller && role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only the listing's owner or an admin may change it",
        ));
    }
    Ok(id)
}

#[Object]
impl PropertyMutation {
    /// Lists a new property owned by the caller (owners and admins).
    async fn create_property(
        &self,
        ctx: &Context<'_>,
        input: CreatePropertyInput,
    ) -> async_graphql::Result<Property> {
        let owner = require_lister(ctx)?;
        let new = NewProperty {
            title: text("title", &input.title, 200)?,
            description: text("description", &input.description, 5000)?,
            monthly_price: range("monthlyPrice", input.monthly_price, 1, 1_000_000)?,
            city: text("city", &input.city, 100)?,
            neighbourhood: text("neighbourhood", &input.neighbourhood, 100)?,
            latitude: range("latitude", input.latitude, -90.0, 90.0)?,
            longitude: range("longitude", input.longitude, -180.0, 180.0)?,
            bedrooms: range("bedrooms", input.bedrooms, 0, 50)?,
            bathrooms: range("bathrooms", input.bathrooms, 0, 50)?,
            area: range("area", input.area, 1, 100_000)?,
            property_type: input.property_type.into(),
            amenities: input.amenities.into_iter().map(Into::into).collect(),
            image_urls: urls(&input.image_urls)?,
        };
        let created = ctx
            .store()?
            .create_property(owner, new)
            .await
            .map_err(ApiError::from)?;
        // Nothing cached to drop, but every instance's listing index learns of it.
        super::invalidate(ctx, crate::infra::cache::Changed::Property(created.id)).await;
        Ok(Property(created))
    }

    /// Changes a listing (its owner or an admin).
    async fn update_property(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePropertyInput,
    ) -> async_graphql::Result<Property> {
        let id = owned(ctx, &id).await?;
        let i = input;
        let patch = PropertyPatch {
            title: i
                .title
                .as_deref()
                .map(|v| text("title", v, 200))
                .transpose()?,
            description: i
                .description
                .as_deref()
                .map(|v| text("description", v, 5000))
                .transpose()?,
            monthly_price: i
                .monthly_price
                .map(|v| range("monthlyPrice", v, 1, 1_000_000))
                .transpose()?,
            city: i
                .city
                .as_deref()
                .map(|v| text("city", v, 100))
                .transpose()?,
            neighbourhood: i
                .neighbourhood
                .as_deref()
                .map(|v| text("neighbourhood", v, 100))
                .transpose()?,
            latitude: i
                .latitude
                .map(|v| range("latitude", v, -90.0, 90.0))
                .transpose()?,
            longitude: i
                .longitude
                .map(|v| range("longitude", v, -180.0, 180.0))
                .transpose()?,
            bedrooms: i
                .bedrooms
                .map(|v| range("bedrooms", v, 0, 50))
                .transpose()?,
            bathrooms: i
                .bathrooms
                .map(|v| range("bathrooms", v, 0, 50))
                .transpose()?,
            area: i.area.map(|v| range("area", v, 1, 100_000)).transpose()?,
            property_type: i.property_type.map(Into::into),
            amenities: i.amenities.map(|a| a.into_iter().map(Into::into).collect()),
            image_urls: i.image_urls.as_deref().map(urls).transpose()?,
            is_active: i.is_active,
        };
        let updated = ctx
            .store()?
            .update_property(id, patch)
            .await
            .map_err(ApiError::from)?;
        super::invalidate(ctx, crate::infra::cache::Changed::Property(id)).await;
        Ok(Property(updated))
    }

    /// Takes a listing off the market (its owner or an admin). It stays visible to them.
    async fn deactivate_property(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Property> {
        let id = owned(ctx, &id).await?;
        let patch = PropertyPatch {
            is_active: Some(false),
            ..Default::default()
        };
        let updated = ctx
            .store()?
            .update_property(id, patch)
            .await
            .map_err(ApiError::from)?;
        super::invalidate(ctx, crate::infra::cache::Changed::Property(id)).await;
        Ok(Property(updated))
    }
}
