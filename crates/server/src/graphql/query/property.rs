use crate::graphql::context::Ctx;
use crate::graphql::errors::{ApiError, ApiResult};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::PropertyKey;
use crate::graphql::types::connection_page_size as page_size;
use crate::graphql::types::{
    Property, PropertyConnection, PropertyEdge, PropertyFilterInput, PropertyOrderBy,
    PropertyTotal, property_cursor, property_page_request, search_cursor, search_offset,
};
use async_graphql::{Context, ID, Object};

#[derive(Default)]
pub(super) struct PropertyQuery;

/// A listing by id, if it exists and the caller may see it.
pub(super) async fn load_property(
    ctx: &Context<'_>,
    id: uuid::Uuid,
) -> ApiResult<Option<Property>> {
    let p = ctx.loaders()?.load_one(PropertyKey(id)).await?;
    Ok(
        p.filter(|p| crate::graphql::types::property_visible(ctx, p))
            .map(Property),
    )
}

#[Object]
impl PropertyQuery {
    /// A listing by id; null when it does not exist or is not visible to the caller.
    #[graphql(cache_control(max_age = 60))]
    async fn property(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Property>> {
        let id = ids::decode(Kind::Property, &id)?;
        Ok(load_property(ctx, id).await?)
    }

    /// Listings, filtered and ordered, as a cursor connection.
    #[graphql(
        complexity = "(first.or(last).unwrap_or(20).max(0) as usize).saturating_mul(child_complexity)",
        cache_control(max_age = 60)
    )]
    #[allow(clippy::too_many_arguments)] // the arguments are the schema's
    async fn properties(
        &self,
        ctx: &Context<'_>,
        filter: Option<PropertyFilterInput>,
        order_by: Option<PropertyOrderBy>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<PropertyConnection> {
        let filter = filter.unwrap_or_default().to_store(ctx)?;
        let order_by = order_by.unwrap_or_default();
        let request = property_page_request(first, after, last, before, &order_by, ctx.limits()?)?;
        let order = order_by.to_store();
        let page = ctx
            .store()?
            .page_properties(&filter, order, request)
            .await
            .map_err(ApiError::from)?;
        let edges = page
            .rows
            .into_iter()
            .map(|p| PropertyEdge {
                cursor: property_cursor(order.field, order.key_of(&p)),
                node: Property(p),
            })
            .collect();
        Ok(PropertyConnection::new(
            edges,
            page.has_next_page,
            page.has_previous_page,
            PropertyTotal::Filter(filter),
        ))
    }

    /// Full-text search over titles and descriptions, best match first.
    #[graphql(
        complexity = "(first.unwrap_or(20).max(0) as usize).saturating_mul(child_complexity)",
        cache_control(max_age = 60)
    )]
    async fn search_properties(
        &self,
        ctx: &Context<'_>,
        query: String,
        filter: Option<PropertyFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<PropertyConnection> {
        if query.trim().is_empty() {
            return Err(ApiError::bad_input("`query` must not be empty").into());
        }
        if query.len() > 200 {
            return Err(ApiError::bad_input("`query` must be at most 200 characters").into());
        }
        let filter = filter.unwrap_or_default().to_store(ctx)?;
        let limit = page_size(first, None, ctx.limits()?)?;
        let offset = search_offset(after.as_deref(), ctx.limits()?.max_search_offset)?;
        let store = ctx.store()?;
        let mut rows = store
            .search_properties(
                &query,
                &filter,
                (offset, limit + 1),
                ctx.limits()?.max_search_ranked,
            )
            .await
            .map_err(ApiError::from)?;
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let edges = rows
            .into_iter()
            .enumerate()
            .map(|(i, p)| PropertyEdge {
                cursor: search_cursor(offset + i as u64),
                node: Property(p),
            })
            .collect();
        Ok(PropertyConnection::new(
            edges,
            has_next,
            offset > 0,
            PropertyTotal::Search(query, filter),
        ))
    }
}
