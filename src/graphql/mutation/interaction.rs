use crate::graphql::context::Ctx;
use crate::graphql::errors::ApiError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::types::{Interaction, InteractionType};
use async_graphql::{Context, ID, Object};

#[derive(Default)]
pub struct InteractionMutation;

#[Object]
impl InteractionMutation {
    /// Records that the signed-in user viewed, liked, saved, asked about or dismissed a listing.
    async fn record_interaction(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        #[graphql(name = "type")] kind: InteractionType,
    ) -> async_graphql::Result<Interaction> {
        let (user, _) = ctx.require_user()?;
        let property = ids::decode(Kind::Property, &property_id)?;
        let row = ctx
            .store()?
            .record_interaction(user, property, kind.into())
            .await
            .map_err(ApiError::from)?;
        Ok(Interaction(row))
    }
}
