use super::listing;
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
/// The listing a caller may change: their own as an OWNER (a user demoted to USER may not
/// change the listings they made), any as an ADMIN.
async fn owned(ctx: &Context<'_>, id: &ID) -> ApiResult<entity::property::Model> {
    let (caller, role) = ctx.require_user()?;
    let id = ids::decode(Kind::Property, id)?;
    let found = ctx.store()?.properties_by_ids(&[id]).await?;
    let p = found
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound("property"))?;
    let allowed = role == Role::Admin || (role == Role::Owner && p.owner_id == caller);
    if !allowed {
        return Err(ApiError::Forbidden(
            "only the listing's owner or an admin may change it",
        ));
    }
    Ok(p)
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
        let quota = ctx.limits()?.max_listings_per_owner_per_day;
        if quota > 0 && !ctx.principal().is_admin() {
            let recent = ctx
                .store()?
                .listings_created_since(owner, chrono::Utc::now() - chrono::Duration::days(1))
                .await
                .map_err(ApiError::from)?;
            if recent >= quota {
                return Err(ApiError::Quota(format!(
                    "at most {quota} listings may be created in 24 hours"
                ))
                .into());
            }
        }
        let new = NewProperty {
            title: listing::title(&input.title)?,
            description: listing::description(&input.description)?,
            monthly_price: listing::monthly_price(input.monthly_price)?,
            city: listing::city(&input.city)?,
            neighbourhood: listing::neighbourhood(&input.neighbourhood)?,
            latitude: listing::latitude(input.latitude)?,
            longitude: listing::longitude(input.longitude)?,
            bedrooms: listing::bedrooms(input.bedrooms)?,
            bathrooms: listing::bathrooms(input.bathrooms)?,
            area: listing::area(input.area)?,
            property_type: input.property_type.into(),
            amenities: input.amenities.into_iter().map(Into::into).collect(),
            image_urls: listing::image_urls(&input.image_urls, &ctx.limits()?.image_hosts)?,
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
        let listing = owned(ctx, &id).await?;
        let id = listing.id;
        let admin = ctx.principal().is_admin();
        if input.is_active == Some(true) && listing.taken_down && !admin {
            return Err(ApiError::Forbidden(
                "an admin took this listing down; only an admin may reactivate it",
            )
            .into());
        }
        let i = input;
        let patch = PropertyPatch {
            title: i.title.as_deref().map(listing::title).transpose()?,
            description: i
                .description
                .as_deref()
                .map(listing::description)
                .transpose()?,
            monthly_price: i.monthly_price.map(listing::monthly_price).transpose()?,
            city: i.city.as_deref().map(listing::city).transpose()?,
            neighbourhood: i
                .neighbourhood
                .as_deref()
                .map(listing::neighbourhood)
                .transpose()?,
            latitude: i.latitude.map(listing::latitude).transpose()?,
            longitude: i.longitude.map(listing::longitude).transpose()?,
            bedrooms: i.bedrooms.map(listing::bedrooms).transpose()?,
            bathrooms: i.bathrooms.map(listing::bathrooms).transpose()?,
            area: i.area.map(listing::area).transpose()?,
            property_type: i.property_type.map(Into::into),
            amenities: i.amenities.map(|a| a.into_iter().map(Into::into).collect()),
            image_urls: i
                .image_urls
                .as_deref()
                .map(|urls| listing::image_urls(urls, &ctx.limits()?.image_hosts))
                .transpose()?,
            is_active: i.is_active,
            // An admin putting a listing back on the market lifts a takedown.
            taken_down: (admin && i.is_active == Some(true)).then_some(false),
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
        let listing = owned(ctx, &id).await?;
        let id = listing.id;
        let caller = ctx.principal().user_id();
        // An admin deactivating someone else's listing takes it down: its owner cannot undo it.
        let takedown = ctx.principal().is_admin() && caller != Some(listing.owner_id);
        let patch = PropertyPatch {
            is_active: Some(false),
            taken_down: takedown.then_some(true),
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
