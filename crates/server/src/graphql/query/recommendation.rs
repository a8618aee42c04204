use crate::graphql::context::Ctx;
use crate::graphql::errors::ApiError;
use crate::graphql::loaders::UserKey;
use crate::graphql::types::{PropertyFilterInput, Recommendation, recommendations_for};
use async_graphql::{Context, Object};

#[derive(Default)]
pub(super) struct RecommendationQuery;

#[Object]
impl RecommendationQuery {
    /// Listings recommended to the caller, best first. Anonymous callers get popular listings
    /// (`source: POPULARITY`); so does everyone when the model cannot answer in time.
    #[graphql(
        complexity = "(first.max(0) as usize).saturating_mul(child_complexity)",
        cache_control(no_cache)
    )]
    async fn recommendations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
        filter: Option<PropertyFilterInput>,
    ) -> async_graphql::Result<Vec<Recommendation>> {
        let user = match ctx.principal().user_id() {
            Some(id) => ctx
                .loaders()?
                .load_one(UserKey(id))
                .await
                .map_err(ApiError::from)?,
            None => None,
        };
        Ok(recommendations_for(ctx, user.as_ref(), first, filter).await?)
    }
}
