use crate::graphql::context::Ctx;
use crate::graphql::errors::ApiError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::types::{Interaction, InteractionType};
use async_graphql::{Context, ID, Object};
use entity::InteractionKind;
use uuid::Uuid;

#[derive(Default)]
pub(super) struct InteractionMutation;

#[Object]
impl InteractionMutation {
    /// Records that the signed-in user viewed, liked, saved, asked about or dismissed a listing.
    /// A like, save, inquiry or dismissal is held once per user and listing, a view once per
    /// user, listing and UTC day: asking again returns the one held and changes nothing (nor
    /// costs more than the lookup), so the listing's counters count people.
    async fn record_interaction(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        #[graphql(name = "type")] kind: InteractionType,
    ) -> async_graphql::Result<Interaction> {
        let (user, _) = ctx.require_user()?;
        let property = ids::decode(Kind::Property, &property_id)?;
        let (row, held) = ctx
            .store()?
            .record_interaction(user, property, kind.into())
            .await
            .map_err(ApiError::from)?;
        if held {
            if let Ok(refund) = ctx.data::<crate::limits::CostRefund>() {
                // Nothing was written: the caller's budget is not spent twice either.
                refund.add(crate::graphql::weights::weight_of(
                    "Mutation",
                    "recordInteraction",
                ));
            }
        } else {
            changed(ctx, user, property, kind.into(), false).await;
        }
        Ok(Interaction(row))
    }

    /// Takes back the signed-in user's like of a listing: it leaves their history and the
    /// listing's counters. `false`: there was none.
    async fn unlike_property(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
    ) -> async_graphql::Result<bool> {
        take_back(ctx, property_id, InteractionKind::Like).await
    }

    /// Takes back the signed-in user's save of a listing: it leaves `savedProperties`, their
    /// history and the listing's counters (a listing that left the market can be unsaved too).
    /// `false`: there was none.
    async fn unsave_property(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
    ) -> async_graphql::Result<bool> {
        take_back(ctx, property_id, InteractionKind::Save).await
    }
}

async fn take_back(
    ctx: &Context<'_>,
    property_id: ID,
    kind: InteractionKind,
) -> async_graphql::Result<bool> {
    let (user, _) = ctx.require_user()?;
    let property = ids::decode(Kind::Property, &property_id)?;
    let removed = ctx
        .store()?
        .remove_interaction(user, property, kind)
        .await
        .map_err(ApiError::from)?;
    if removed {
        changed(ctx, user, property, kind, true).await;
    }
    Ok(removed)
}

/// The user's state and the listing's counters move here; the change goes out on the bus for
/// the other instances and drops the user's cached recommendations everywhere.
async fn changed(
    ctx: &Context<'_>,
    user: Uuid,
    listing: Uuid,
    kind: InteractionKind,
    removed: bool,
) {
    if let Ok(rec) = ctx.data::<std::sync::Arc<crate::recommend::Recommender>>() {
        rec.interaction_recorded(user, listing, kind, removed).await;
    }
    super::invalidate(
        ctx,
        crate::infra::cache::Changed::Interaction {
            user,
            listing,
            kind,
            removed,
        },
    )
    .await;
}
