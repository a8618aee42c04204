use super::{InteractionType, Property, User};
use crate::graphql::context::Ctx;
use crate::graphql::errors::ApiError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{PropertyKey, UserKey};
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use entity::interaction;

/// One thing a user did with a listing.
#[derive(Clone)]
pub(crate) struct Interaction(pub interaction::Model);

// What a user did is theirs and changes with every action: never kept by a cache.
#[Object(cache_control(no_cache))]
impl Interaction {
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Interaction, self.0.id)
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> InteractionType {
        self.0.kind.into()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The listing; null once it is deactivated, unless the caller owns it or is an admin.
    async fn property(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Property>> {
        Ok(ctx
            .loaders()?
            .load_one(PropertyKey(self.0.property_id))
            .await
            .map_err(ApiError::from)?
            .map(Property))
    }
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let u = ctx
            .loaders()?
            .load_one(UserKey(self.0.user_id))
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("user"))?;
        Ok(User(u))
    }
}
