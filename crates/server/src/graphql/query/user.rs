use crate::graphql::context::Ctx;
use crate::graphql::errors::{ApiError, ApiResult};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::UserKey;
use crate::graphql::types::User;
use async_graphql::{Context, ID, Object};

#[derive(Default)]
pub(super) struct UserQuery;

/// A user by id, for signed-in callers.
pub(super) async fn load_user(ctx: &Context<'_>, id: uuid::Uuid) -> ApiResult<Option<User>> {
    ctx.require_user()?;
    Ok(ctx.loaders()?.load_one(UserKey(id)).await?.map(User))
}

#[Object]
impl UserQuery {
    /// A user by id (signed-in callers); null when there is no such user.
    #[graphql(cache_control(private, max_age = 60))]
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        let id = ids::decode(Kind::User, &id)?;
        Ok(load_user(ctx, id).await?)
    }

    /// The signed-in caller; null for anonymous callers.
    #[graphql(cache_control(no_cache))]
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = ctx.principal().user_id() else {
            return Ok(None);
        };
        let user = ctx
            .loaders()?
            .load_one(UserKey(id))
            .await
            .map_err(ApiError::from)?;
        Ok(user.map(User))
    }
}
