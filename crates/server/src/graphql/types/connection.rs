//! Relay cursor connections. Cursors are opaque base64 strings; each names the ordering it
//! belongs to, so a cursor from one ordering used with another is refused instead of silently
//! skipping rows.
use super::property::Property;
use super::{Interaction, PropertyOrderBy};
use crate::graphql::GraphqlSettings;
use crate::graphql::context::Ctx;
use crate::graphql::errors::{ApiError, ApiResult};
use crate::graphql::loaders::{HistoryCountKey, SavedCountKey};
use crate::store::{HistoryCursor, PageRequest, PropertyFilter, PropertyOrderField, SortKey};
use async_graphql::{Context, Object, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    /// Page info for edges with these cursors, in order.
    pub(crate) fn of<'a>(
        mut cursors: impl DoubleEndedIterator<Item = &'a String>,
        has_next_page: bool,
        has_previous_page: bool,
    ) -> Self {
        let start_cursor = cursors.next().cloned();
        let end_cursor = cursors
            .next_back()
            .cloned()
            .or_else(|| start_cursor.clone());
        Self {
            has_next_page,
            has_previous_page,
            start_cursor,
            end_cursor,
        }
    }
}

fn encode(text: String) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn decode(cursor: &str) -> ApiResult<String> {
    let bad = || ApiError::bad_input(format!("`{cursor}` is not a valid cursor"));
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    String::from_utf8(raw).map_err(|_| bad())
}

fn tag(field: PropertyOrderField) -> &'static str {
    match field {
        PropertyOrderField::CreatedAt => "created",
        PropertyOrderField::Price => "price",
        PropertyOrderField::Area => "area",
    }
}

pub(crate) fn property_cursor(field: PropertyOrderField, key: SortKey) -> String {
    encode(format!("{}:{}:{}", tag(field), key.value, key.id))
}

fn parse_keyed(cursor: &str, expected_tag: &str) -> ApiResult<(i64, Uuid)> {
    let text = decode(cursor)?;
    let bad = || {
        ApiError::bad_input(format!(
            "`{cursor}` is not a cursor of this list (or of this ordering)"
        ))
    };
    let mut parts = text.splitn(3, ':');
    let (Some(t), Some(v), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if t != expected_tag {
        return Err(bad());
    }
    Ok((
        v.parse().map_err(|_| bad())?,
        Uuid::parse_str(id).map_err(|_| bad())?,
    ))
}

/// Checks `first`/`last` against the configured page size.
pub(crate) fn page_size(
    first: Option<i32>,
    last: Option<i32>,
    limits: &GraphqlSettings,
) -> ApiResult<u64> {
    let n = match (first, last) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_input(
                "pass either `first` or `last`, not both",
            ));
        }
        (Some(n), None) | (None, Some(n)) => n,
        (None, None) => limits.default_page_size as i32,
    };
    let arg = if last.is_some() { "last" } else { "first" };
    if n < 0 {
        return Err(ApiError::bad_input(format!("`{arg}` must not be negative")));
    }
    if n as usize > limits.max_page_size {
        return Err(ApiError::bad_input(format!(
            "`{arg}` must be at most {}",
            limits.max_page_size
        )));
    }
    Ok(n as u64)
}

pub(crate) fn property_page_request(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
    order: &PropertyOrderBy,
    limits: &GraphqlSettings,
) -> ApiResult<PageRequest> {
    let limit = page_size(first, last, limits)?;
    let field = order.to_store().field;
    let key = |c: &str| -> ApiResult<SortKey> {
        let (value, id) = parse_keyed(c, tag(field))?;
        Ok(SortKey { value, id })
    };
    if last.is_some() {
        if after.is_some() {
            return Err(ApiError::bad_input(
                "`after` goes with `first`; use `before` with `last`",
            ));
        }
        Ok(PageRequest::Backward {
            limit,
            before: before.as_deref().map(key).transpose()?,
        })
    } else {
        if before.is_some() {
            return Err(ApiError::bad_input(
                "`before` goes with `last`; use `after` with `first`",
            ));
        }
        Ok(PageRequest::Forward {
            limit,
            after: after.as_deref().map(key).transpose()?,
        })
    }
}

pub(super) fn history_cursor_encode(prefix: &str, at_micros: i64, id: Uuid) -> String {
    encode(format!("{prefix}:{at_micros}:{id}"))
}

pub(crate) fn history_cursor(
    cursor: Option<&str>,
    prefix: &str,
) -> ApiResult<Option<HistoryCursor>> {
    cursor
        .map(|c| {
            let (at_micros, id) = parse_keyed(c, prefix)?;
            Ok(HistoryCursor { at_micros, id })
        })
        .transpose()
}

/// Search results are ranked by relevance, which has no stable key: their cursors are offsets,
/// and a client can write any offset into one. Offsets past `max_offset` are refused (paging
/// that deep through relevance-ranked results is a scan, not a use), which also keeps the
/// arithmetic and the SQL binder far from overflow.
pub(crate) fn search_offset(after: Option<&str>, max_offset: u64) -> ApiResult<u64> {
    let Some(c) = after else { return Ok(0) };
    let text = decode(c)?;
    let n = text
        .strip_prefix("offset:")
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| ApiError::bad_input(format!("`{c}` is not a cursor of this list")))?;
    if n >= max_offset {
        return Err(ApiError::bad_input(format!(
            "search results can be paged through the first {max_offset} only"
        )));
    }
    Ok(n.saturating_add(1))
}

pub(crate) fn search_cursor(offset: u64) -> String {
    encode(format!("offset:{offset}"))
}

#[derive(Clone, Debug)]
pub(crate) enum PropertyTotal {
    Filter(PropertyFilter),
    Search(String, PropertyFilter),
    Saved(Uuid),
}

#[derive(SimpleObject, Clone)]
pub(crate) struct PropertyEdge {
    pub cursor: String,
    pub node: Property,
}

pub(crate) struct PropertyConnection {
    pub edges: Vec<PropertyEdge>,
    pub page_info: PageInfo,
    pub total: PropertyTotal,
}

impl PropertyConnection {
    pub(crate) fn new(
        edges: Vec<PropertyEdge>,
        has_next: bool,
        has_previous: bool,
        total: PropertyTotal,
    ) -> Self {
        let page_info = PageInfo::of(edges.iter().map(|e| &e.cursor), has_next, has_previous);
        Self {
            edges,
            page_info,
            total,
        }
    }
}

#[Object]
impl PropertyConnection {
    async fn edges(&self) -> &[PropertyEdge] {
        &self.edges
    }

    /// The nodes of `edges`, for clients that need no cursors.
    async fn nodes(&self) -> Vec<&Property> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// Counts for filter chips: for this connection's filter, how many active listings each
    /// city, neighbourhood, type, bedroom count, amenity and price bucket has, each counted
    /// without its own restriction. From memory (the listing index), so a map viewport with
    /// facets costs no statement. Null where it does not apply: search results, saved
    /// listings, and filters that include inactive listings.
    #[graphql(cache_control(max_age = 30))]
    async fn facets(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<PropertyFacets>> {
        let PropertyTotal::Filter(f) = &self.total else {
            return Ok(None);
        };
        if f.active != Some(true) || f.owner_id.is_some() {
            return Ok(None);
        }
        let rec = ctx
            .data::<std::sync::Arc<crate::recommend::Recommender>>()
            .map_err(|_| ApiError::Internal("the recommender is missing".into()))?;
        let snap = rec.index().fresh().await.map_err(ApiError::from)?;
        Ok(Some(PropertyFacets(snap.facets(f))))
    }

    /// Rows matching the query across all pages (computed only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let store = ctx.store()?;
        let n = match &self.total {
            PropertyTotal::Filter(f) => {
                store.count_properties(f).await.map_err(ApiError::from)? as i64
            }
            PropertyTotal::Search(q, f) => {
                store.count_search(q, f).await.map_err(ApiError::from)? as i64
            }
            PropertyTotal::Saved(user) => ctx
                .loaders()?
                .load_one(SavedCountKey(*user))
                .await
                .map_err(ApiError::from)?
                .unwrap_or(0),
        };
        Ok(n)
    }
}

#[derive(SimpleObject, Clone)]
pub(crate) struct InteractionEdge {
    pub cursor: String,
    pub node: Interaction,
}

pub(crate) struct InteractionConnection {
    pub edges: Vec<InteractionEdge>,
    pub page_info: PageInfo,
    pub user: Uuid,
}

#[Object]
impl InteractionConnection {
    async fn edges(&self) -> &[InteractionEdge] {
        &self.edges
    }

    async fn nodes(&self) -> Vec<&Interaction> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(ctx
            .loaders()?
            .load_one(HistoryCountKey(self.user))
            .await
            .map_err(ApiError::from)?
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field(i: usize) -> PropertyOrderField {
        [
            PropertyOrderField::CreatedAt,
            PropertyOrderField::Price,
            PropertyOrderField::Area,
        ][i]
    }

    proptest! {
        #[test]
        fn property_cursors_round_trip(value in any::<i64>(), id in any::<u128>(), f in 0usize..3) {
            let key = SortKey { value, id: Uuid::from_u128(id) };
            let cursor = property_cursor(field(f), key);
            prop_assert_eq!(parse_keyed(&cursor, tag(field(f))).ok(), Some((value, key.id)));
            // A cursor of one ordering is refused by another.
            prop_assert!(parse_keyed(&cursor, tag(field((f + 1) % 3))).is_err());
        }

        #[test]
        fn crafted_cursors_are_errors_never_panics(text in ".{0,120}") {
            let encoded = encode(text.clone());
            let _ = parse_keyed(&text, "price");
            let _ = parse_keyed(&encoded, "price");
            let _ = history_cursor(Some(&encoded), "saved");
            for c in [&text, &encoded] {
                if let Ok(offset) = search_offset(Some(c), 10_000) {
                    prop_assert!((1..=10_000).contains(&offset));
                }
            }
        }

        #[test]
        fn search_offsets_are_range_checked(n in any::<u64>()) {
            let cursor = search_cursor(n);
            match search_offset(Some(&cursor), 10_000) {
                Ok(offset) => prop_assert!(n < 10_000 && offset == n + 1),
                Err(_) => prop_assert!(n >= 10_000),
            }
        }
    }
}

/// Facet counts, most first (bedrooms and prices in their own order).
pub(crate) struct PropertyFacets(crate::recommend::facets::Facets);

#[derive(SimpleObject)]
pub(crate) struct FacetCount {
    pub value: String,
    pub count: i64,
}

#[derive(SimpleObject)]
pub(crate) struct NeighbourhoodFacet {
    pub city: String,
    pub neighbourhood: String,
    pub count: i64,
}

#[derive(SimpleObject)]
pub(crate) struct PropertyTypeFacet {
    #[graphql(name = "type")]
    pub kind: super::PropertyType,
    pub count: i64,
}

#[derive(SimpleObject)]
pub(crate) struct BedroomsFacet {
    pub bedrooms: i32,
    pub count: i64,
}

#[derive(SimpleObject)]
pub(crate) struct AmenityFacet {
    pub amenity: super::Amenity,
    pub count: i64,
}

/// Monthly prices from `min` to `max` (inclusive; null: and above).
#[derive(SimpleObject)]
pub(crate) struct PriceFacet {
    pub min: i32,
    pub max: Option<i32>,
    pub count: i64,
}

#[Object(cache_control(max_age = 30))]
impl PropertyFacets {
    async fn cities(&self) -> Vec<FacetCount> {
        self.0
            .cities
            .iter()
            .map(|(c, n)| FacetCount {
                value: c.clone(),
                count: *n as i64,
            })
            .collect()
    }
    async fn neighbourhoods(&self) -> Vec<NeighbourhoodFacet> {
        self.0
            .neighbourhoods
            .iter()
            .map(|((city, neighbourhood), n)| NeighbourhoodFacet {
                city: city.clone(),
                neighbourhood: neighbourhood.clone(),
                count: *n as i64,
            })
            .collect()
    }
    async fn types(&self) -> Vec<PropertyTypeFacet> {
        self.0
            .types
            .iter()
            .map(|(t, n)| PropertyTypeFacet {
                kind: (*t).into(),
                count: *n as i64,
            })
            .collect()
    }
    async fn bedrooms(&self) -> Vec<BedroomsFacet> {
        self.0
            .bedrooms
            .iter()
            .map(|(b, n)| BedroomsFacet {
                bedrooms: *b,
                count: *n as i64,
            })
            .collect()
    }
    async fn amenities(&self) -> Vec<AmenityFacet> {
        self.0
            .amenities
            .iter()
            .map(|(a, n)| AmenityFacet {
                amenity: (*a).into(),
                count: *n as i64,
            })
            .collect()
    }
    async fn prices(&self) -> Vec<PriceFacet> {
        self.0
            .prices
            .iter()
            .map(|(min, max, n)| PriceFacet {
                min: *min,
                max: *max,
                count: *n as i64,
            })
            .collect()
    }
}
