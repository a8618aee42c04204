use super::connection::{history_cursor_encode, page_size};
use super::{
    Amenity, Interaction, InteractionConnection, PageInfo, Property, PropertyConnection,
    PropertyTotal, PropertyType, Role, history_cursor,
};
use crate::graphql::context::Ctx;
use crate::graphql::errors::{ApiError, ApiResult};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::{HistoryKey, PropertyKey, SavedKey};
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::user;

#[derive(Clone)]
pub(crate) struct User(pub user::Model);

/// What a user is looking for; drives recommendations.
#[derive(SimpleObject, Clone)]
pub(crate) struct Preferences {
    pub cities: Vec<String>,
    pub min_price: Option<i32>,
    pub max_price: Option<i32>,
    pub min_bedrooms: Option<i32>,
    pub property_types: Vec<PropertyType>,
    pub amenities: Vec<Amenity>,
}

impl From<&entity::Preferences> for Preferences {
    fn from(p: &entity::Preferences) -> Self {
        Self {
            cities: p.cities.clone(),
            min_price: p.min_price,
            max_price: p.max_price,
            min_bedrooms: p.min_bedrooms,
            property_types: p.property_types.iter().map(|&t| t.into()).collect(),
            amenities: p.amenities.iter().map(|&a| a.into()).collect(),
        }
    }
}

impl User {
    fn private(&self, ctx: &Context<'_>) -> ApiResult<()> {
        if ctx.principal().may_see_user(self.0.id) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "only the user themself or an admin may see this",
            ))
        }
    }
}

#[Object(cache_control(max_age = 60))]
impl User {
    pub async fn id(&self) -> ID {
        ids::encode(Kind::User, self.0.id)
    }
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// Visible to the user themself and admins; null for everyone else (a role tells who
    /// holds rights worth attacking).
    async fn role(&self, ctx: &Context<'_>) -> Option<Role> {
        self.private(ctx).is_ok().then(|| self.0.role.into())
    }
    /// Null for anonymous callers, who see a user's display name only.
    async fn created_at(&self, ctx: &Context<'_>) -> Option<DateTime<Utc>> {
        ctx.principal().user_id().map(|_| self.0.created_at)
    }
    /// Visible to the user themself and admins; null for everyone else.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        self.private(ctx).is_ok().then_some(self.0.email.as_str())
    }
    /// Visible to the user themself and admins; null for everyone else.
    async fn preferences(&self, ctx: &Context<'_>) -> Option<Preferences> {
        self.private(ctx)
            .is_ok()
            .then(|| (&self.0.preferences).into())
    }

    /// Listings recommended to this user (the user themself or an admin).
    #[graphql(cache_control(no_cache))]
    async fn recommendations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
        filter: Option<super::PropertyFilterInput>,
    ) -> async_graphql::Result<Vec<super::Recommendation>> {
        self.private(ctx)?;
        Ok(super::recommendations_for(ctx, Some(&self.0), first, filter).await?)
    }

    /// The user's interactions, newest first (the user themself or an admin).
    #[graphql(
        complexity = "(first.unwrap_or(20).max(0) as usize).saturating_mul(child_complexity)",
        cache_control(no_cache)
    )]
    async fn interactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<InteractionConnection> {
        self.private(ctx)?;
        let limit = page_size(first, None, ctx.limits()?)?;
        let after_key = history_cursor(after.as_deref(), "interaction")?;
        let rows = ctx
            .loaders()?
            .load_one(HistoryKey {
                user: self.0.id,
                limit: limit + 1,
                after: after_key,
            })
            .await
            .map_err(ApiError::from)?
            .unwrap_or_default();
        let has_next = rows.len() as u64 > limit;
        let edges: Vec<_> = rows
            .into_iter()
            .take(limit as usize)
            .map(|i| super::connection::InteractionEdge {
                cursor: history_cursor_encode("interaction", i.created_at.timestamp_micros(), i.id),
                node: Interaction(i),
            })
            .collect();
        Ok(InteractionConnection {
            page_info: PageInfo::of(
                edges.iter().map(|e| &e.cursor),
                has_next,
                after_key.is_some(),
            ),
            edges,
            user: self.0.id,
        })
    }

    /// Listings the user saved, most recently saved first (the user themself or an admin).
    #[graphql(
        complexity = "(first.unwrap_or(20).max(0) as usize).saturating_mul(child_complexity)",
        cache_control(no_cache)
    )]
    async fn saved_properties(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PropertyConnection> {
        self.private(ctx)?;
        let limit = page_size(first, None, ctx.limits()?)?;
        let after_key = history_cursor(after.as_deref(), "saved")?;
        let loaders = ctx.loaders()?;
        let rows = loaders
            .load_one(SavedKey {
                user: self.0.id,
                limit: limit + 1,
                after: after_key,
            })
            .await
            .map_err(ApiError::from)?
            .unwrap_or_default();
        let has_next = rows.len() as u64 > limit;
        let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
        let props = loaders
            .load_many(rows.iter().map(|r| PropertyKey(r.property_id)))
            .await
            .map_err(ApiError::from)?;
        let edges = rows
            .iter()
            .filter_map(|r| {
                props
                    .get(&PropertyKey(r.property_id))
                    .map(|p| super::connection::PropertyEdge {
                        cursor: history_cursor_encode(
                            "saved",
                            r.saved_at.timestamp_micros(),
                            r.property_id,
                        ),
                        node: Property(p.clone()),
                    })
            })
            .collect();
        Ok(PropertyConnection::new(
            edges,
            has_next,
            after_key.is_some(),
            PropertyTotal::Saved(self.0.id),
        ))
    }
}
