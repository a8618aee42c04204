use super::property::load_property;
use super::user::load_user;
use crate::graphql::context::Ctx;
use crate::graphql::errors::ApiError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::InteractionKey;
use crate::graphql::types::{Interaction, Property, User};
use async_graphql::{Context, ID, Interface, Object};

/// Any object with a global id (Relay).
#[derive(Interface)]
#[allow(clippy::duplicated_attributes)]
#[graphql(field(name = "id", ty = "ID"))]
pub(super) enum Node {
    Property(Property),
    User(User),
    Interaction(Interaction),
}

#[derive(Default)]
pub(super) struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Fetches any object by its global id; null when it does not exist or is not visible.
    #[graphql(cache_control(max_age = 60))]
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        let (kind, uuid) = ids::decode_any(&id)?;
        Ok(match kind {
            Kind::Property => load_property(ctx, uuid).await?.map(Node::Property),
            Kind::User => load_user(ctx, uuid).await?.map(Node::User),
            Kind::Interaction => {
                let (caller, _) = ctx.require_user()?;
                let found = ctx
                    .loaders()?
                    .load_one(InteractionKey(uuid))
                    .await
                    .map_err(ApiError::from)?;
                found
                    .filter(|i| i.user_id == caller || ctx.principal().is_admin())
                    .map(|i| Node::Interaction(Interaction(i)))
            }
        })
    }
}
