use crate::graphql::context::Ctx;
use crate::graphql::errors::ApiError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::types::{Interaction, InteractionType};
use async_graphql::{Context, ID, Object};

#[derive(Default)]
pub(super) struct InteractionMutation;

#[Object]
impl InteractionMutation {
    /// Records that the signed-in user viewed, liked, saved, asked about or dismissed a listing.
    /// The same interaction again within `graphql.dedupe_interactions_secs` returns the
    /// earlier one and changes nothing (nor costs anything).
    async fn record_interaction(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        #[graphql(name = "type")] kind: InteractionType,
    ) -> async_graphql::Result<Interaction> {
        let (user, _) = ctx.require_user()?;
        let property = ids::decode(Kind::Property, &property_id)?;
        let window = ctx.limits()?.dedupe_interactions();
        let (row, deduplicated) = ctx
            .store()?
            .record_interaction(user, property, kind.into(), window)
            .await
            .map_err(ApiError::from)?;
        if deduplicated {
            if let Ok(refund) = ctx.data::<crate::limits::CostRefund>() {
                // Nothing was written: the caller's budget is not spent twice either.
                refund.add(crate::graphql::weights::weight_of(
                    "Mutation",
                    "recordInteraction",
                ));
            }
        } else {
            if let Ok(rec) = ctx.data::<std::sync::Arc<crate::recommend::Recommender>>() {
                rec.interaction_recorded(user, property, kind.into()).await;
            }
            // The user's history changed: their cached recommendations are stale.
            super::invalidate(ctx, crate::infra::cache::Changed::User(user)).await;
        }
        Ok(Interaction(row))
    }
}
