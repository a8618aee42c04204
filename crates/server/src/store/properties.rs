use super::pagination::{Page, PageRequest, SortKey};
use super::{Store, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use entity::{Amenity, PropertyType, property, property_amenity, property_image, property_stat};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Select, Set, TransactionTrait,
};
use std::collections::HashMap;
use uuid::Uuid;

/// Filters on listings. Empty vectors mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PropertyFilter {
    pub city: Option<String>,
    pub min_price: Option<i32>,
    pub max_price: Option<i32>,
    pub min_bedrooms: Option<i32>,
    pub max_bedrooms: Option<i32>,
    pub property_types: Vec<PropertyType>,
    /// Listings that have every one of these.
    pub amenities: Vec<Amenity>,
    /// `Some(true)`: active only; `Some(false)`: inactive only; `None`: both.
    pub active: Option<bool>,
    pub owner_id: Option<Uuid>,
    /// Any of these cities (recommendation candidates).
    pub cities: Vec<String>,
    /// Only these listings, when not empty.
    pub ids: Vec<Uuid>,
    /// Leaves out the listings this user dismissed. A subquery rather than a list of ids, so a
    /// user's dismissals can grow without growing the statement or its parameters.
    pub exclude_dismissed_by: Option<Uuid>,
    /// Any of these neighbourhoods (by name, in whichever city the other filters allow).
    pub neighbourhoods: Vec<String>,
    /// Within a radius of a point.
    pub near: Option<Near>,
    /// Inside a latitude/longitude box (edges included).
    pub within: Option<Bounds>,
}

/// Micro-degrees: the filter stays `Eq` and `Hash` (it keys cached results), and 1e-6 degrees
/// is 0.11 m.
const MICRO: f64 = 1e6;
/// Kilometres per degree of latitude (the mean Earth radius, 6371.0088 km).
const KM_PER_DEGREE: f64 = 111.195_08;

/// A point and a radius, compared by equirectangular distance: exact enough for the radii a map
/// or a "within 5 km" filter asks (under 0.5% at 100 km), and plain arithmetic, so SQLite, which
/// may lack trigonometric functions, and the listing index compute it exactly as PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Near {
    pub latitude_e6: i64,
    pub longitude_e6: i64,
    pub radius_m: i64,
}

impl Near {
    pub fn new(latitude: f64, longitude: f64, radius_km: f64) -> Self {
        Self {
            latitude_e6: (latitude * MICRO).round() as i64,
            longitude_e6: (longitude * MICRO).round() as i64,
            radius_m: (radius_km * 1000.0).round() as i64,
        }
    }

    fn centre(&self) -> (f64, f64) {
        (
            self.latitude_e6 as f64 / MICRO,
            self.longitude_e6 as f64 / MICRO,
        )
    }

    /// The radius in degrees of latitude, and how much shorter a degree of longitude is here.
    fn scale(&self) -> (f64, f64) {
        let (lat, _) = self.centre();
        (
            self.radius_m as f64 / 1000.0 / KM_PER_DEGREE,
            lat.to_radians().cos().max(1e-6),
        )
    }

    /// The latitudes the circle spans.
    pub fn latitude_band(&self) -> (f64, f64) {
        let (lat0, _) = self.centre();
        let (r, _) = self.scale();
        (lat0 - r, lat0 + r)
    }

    pub fn contains(&self, latitude: f64, longitude: f64) -> bool {
        let (lat0, lon0) = self.centre();
        let (r, k) = self.scale();
        let (dx, dy) = ((longitude - lon0) * k, latitude - lat0);
        dx * dx + dy * dy <= r * r
    }
}

/// A box by its edges, in micro-degrees; `west <= east` (a box across the antimeridian is not
/// supported: the input refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bounds {
    pub south_e6: i64,
    pub north_e6: i64,
    pub west_e6: i64,
    pub east_e6: i64,
}

impl Bounds {
    pub fn new(south: f64, north: f64, west: f64, east: f64) -> Self {
        let e6 = |v: f64| (v * MICRO).round() as i64;
        Self {
            south_e6: e6(south),
            north_e6: e6(north),
            west_e6: e6(west),
            east_e6: e6(east),
        }
    }

    /// South, north, west, east in degrees.
    pub fn edges(&self) -> (f64, f64, f64, f64) {
        (
            self.south_e6 as f64 / MICRO,
            self.north_e6 as f64 / MICRO,
            self.west_e6 as f64 / MICRO,
            self.east_e6 as f64 / MICRO,
        )
    }

    pub fn contains(&self, latitude: f64, longitude: f64) -> bool {
        let (s, n, w, e) = self.edges();
        (s..=n).contains(&latitude) && (w..=e).contains(&longitude)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PropertyOrderField {
    #[default]
    CreatedAt,
    Price,
    Area,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OrderDirection {
    Asc,
    #[default]
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PropertyOrder {
    pub field: PropertyOrderField,
    pub direction: OrderDirection,
}

impl PropertyOrder {
    fn column(&self) -> property::Column {
        match self.field {
            PropertyOrderField::CreatedAt => property::Column::CreatedAt,
            PropertyOrderField::Price => property::Column::MonthlyPrice,
            PropertyOrderField::Area => property::Column::Area,
        }
    }

    /// The cursor value of a row in this ordering.
    pub fn key_of(&self, row: &property::Model) -> SortKey {
        let value = match self.field {
            PropertyOrderField::CreatedAt => row.created_at.timestamp_micros(),
            PropertyOrderField::Price => i64::from(row.monthly_price),
            PropertyOrderField::Area => i64::from(row.area),
        };
        SortKey { value, id: row.id }
    }

    fn key_value(&self, key: &SortKey) -> StoreResult<sea_orm::Value> {
        Ok(match self.field {
            PropertyOrderField::CreatedAt => DateTime::<Utc>::from_timestamp_micros(key.value)
                .ok_or_else(|| StoreError::Invalid("cursor is out of range".into()))?
                .into(),
            PropertyOrderField::Price | PropertyOrderField::Area => i32::try_from(key.value)
                .map_err(|_| StoreError::Invalid("cursor is out of range".into()))?
                .into(),
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PropertyStats {
    pub views: i64,
    pub likes: i64,
    pub saves: i64,
    pub inquiries: i64,
    pub dismissals: i64,
}

impl PropertyStats {
    pub fn add(&mut self, kind: entity::InteractionKind, n: i64) {
        use entity::InteractionKind as K;
        match kind {
            K::View => self.views += n,
            K::Like => self.likes += n,
            K::Save => self.saves += n,
            K::Inquiry => self.inquiries += n,
            K::Dismiss => self.dismissals += n,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewProperty {
    pub title: String,
    pub description: String,
    pub monthly_price: i32,
    pub city: String,
    pub neighbourhood: String,
    pub latitude: f64,
    pub longitude: f64,
    pub bedrooms: i32,
    pub bathrooms: i32,
    pub area: i32,
    pub property_type: PropertyType,
    pub amenities: Vec<Amenity>,
    pub image_urls: Vec<String>,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PropertyPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub monthly_price: Option<i32>,
    pub city: Option<String>,
    pub neighbourhood: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub bedrooms: Option<i32>,
    pub bathrooms: Option<i32>,
    pub area: Option<i32>,
    pub property_type: Option<PropertyType>,
    pub amenities: Option<Vec<Amenity>>,
    pub image_urls: Option<Vec<String>>,
    pub is_active: Option<bool>,
    pub taken_down: Option<bool>,
}

pub(super) fn filtered(filter: &PropertyFilter) -> Select<property::Entity> {
    use property::Column as C;
    let mut cond = Condition::all();
    // Written as a literal, not a bound parameter, so the planner can match the partial
    // indexes' `WHERE is_active` on both backends.
    match filter.active {
        Some(true) => cond = cond.add(Expr::cust("\"properties\".\"is_active\"")),
        Some(false) => cond = cond.add(Expr::cust("NOT \"properties\".\"is_active\"")),
        None => {}
    }
    if let Some(city) = &filter.city {
        cond = cond.add(C::City.eq(city.as_str()));
    }
    if !filter.cities.is_empty() {
        cond = cond.add(C::City.is_in(filter.cities.iter().map(String::as_str)));
    }
    if !filter.neighbourhoods.is_empty() {
        cond = cond.add(C::Neighbourhood.is_in(filter.neighbourhoods.iter().map(String::as_str)));
    }
    if let Some(user) = filter.exclude_dismissed_by {
        use entity::{InteractionKind, interaction};
        let dismissed = Query::select()
            .column(interaction::Column::PropertyId)
            .from(interaction::Entity)
            .and_where(interaction::Column::UserId.eq(user))
            .and_where(interaction::Column::Kind.eq(InteractionKind::Dismiss))
            .to_owned();
        cond = cond.add(C::Id.not_in_subquery(dismissed));
    }
    if !filter.ids.is_empty() {
        cond = cond.add(C::Id.is_in(filter.ids.iter().copied()));
    }
    if let Some(min) = filter.min_price {
        cond = cond.add(C::MonthlyPrice.gte(min));
    }
    if let Some(max) = filter.max_price {
        cond = cond.add(C::MonthlyPrice.lte(max));
    }
    if let Some(min) = filter.min_bedrooms {
        cond = cond.add(C::Bedrooms.gte(min));
    }
    if let Some(max) = filter.max_bedrooms {
        cond = cond.add(C::Bedrooms.lte(max));
    }
    if !filter.property_types.is_empty() {
        cond = cond.add(C::PropertyType.is_in(filter.property_types.iter().copied()));
    }
    if let Some(owner) = filter.owner_id {
        cond = cond.add(C::OwnerId.eq(owner));
    }
    if let Some(b) = filter.within {
        let (s, n, w, e) = b.edges();
        cond = cond
            .add(C::Latitude.between(s, n))
            .add(C::Longitude.between(w, e));
    }
    if let Some(near) = filter.near {
        let (lat0, lon0) = near.centre();
        let (r, k) = near.scale();
        // The box around the circle first (the index on latitude and longitude serves it),
        // then the distance, as `Near::contains` computes it.
        cond = cond
            .add(C::Latitude.between(lat0 - r, lat0 + r))
            .add(C::Longitude.between(lon0 - r / k, lon0 + r / k))
            .add({
                let dx = Expr::col((property::Entity, C::Longitude)).sub(lon0).mul(k);
                let dy = Expr::col((property::Entity, C::Latitude)).sub(lat0);
                dx.clone().mul(dx).add(dy.clone().mul(dy)).lte(r * r)
            });
    }
    for amenity in &filter.amenities {
        let sub = Query::select()
            .expr(Expr::val(1))
            .from(property_amenity::Entity)
            .and_where(
                Expr::col((
                    property_amenity::Entity,
                    property_amenity::Column::PropertyId,
                ))
                .equals((property::Entity, C::Id)),
            )
            .and_where(
                Expr::col((property_amenity::Entity, property_amenity::Column::Amenity))
                    .eq(*amenity),
            )
            .to_owned();
        cond = cond.add(Expr::exists(sub));
    }
    property::Entity::find().filter(cond)
}

/// Turns words a user typed into an FTS5 query that cannot be a syntax error: every word
/// quoted, all required, the last one as a prefix so results follow typing.
fn fts5_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    if words.is_empty() {
        return None;
    }
    let mut q = words.join(" ");
    q.push('*');
    Some(q)
}

impl Store {
    fn page_select(
        &self,
        filter: &PropertyFilter,
        order: PropertyOrder,
        page: PageRequest,
    ) -> StoreResult<Select<property::Entity>> {
        use sea_orm::Order;
        let col = order.column();
        let (dir, cursor, forward) = match page {
            PageRequest::Forward { after, .. } => (order.direction, after, true),
            PageRequest::Backward { before, .. } => (order.direction, before, false),
        };
        // Scanning backwards is scanning forwards in the opposite order.
        let ascending = matches!(dir, OrderDirection::Asc) == forward;
        let mut select = filtered(filter);
        if let Some(key) = cursor {
            let value = order.key_value(&key)?;
            let past = if ascending {
                Condition::any().add(col.gt(value.clone())).add(
                    Condition::all()
                        .add(col.eq(value))
                        .add(property::Column::Id.gt(key.id)),
                )
            } else {
                Condition::any().add(col.lt(value.clone())).add(
                    Condition::all()
                        .add(col.eq(value))
                        .add(property::Column::Id.lt(key.id)),
                )
            };
            select = select.filter(past);
        }
        let ord = if ascending { Order::Asc } else { Order::Desc };
        Ok(select
            .order_by(col, ord.clone())
            .order_by(property::Column::Id, ord)
            .limit(page.limit() + 1))
    }

    pub async fn page_properties(
        &self,
        filter: &PropertyFilter,
        order: PropertyOrder,
        page: PageRequest,
    ) -> StoreResult<Page<property::Model>> {
        let rows = self
            .page_select(filter, order, page)?
            .all(&self.read())
            .await?;
        Ok(Page::from_overfetch(rows, page))
    }

    /// The statement `page_properties` runs, for EXPLAIN.
    pub fn page_properties_statement(
        &self,
        filter: &PropertyFilter,
        order: PropertyOrder,
        page: PageRequest,
    ) -> StoreResult<sea_orm::Statement> {
        Ok(self.page_select(filter, order, page)?.build(self.backend()))
    }

    pub async fn count_properties(&self, filter: &PropertyFilter) -> StoreResult<u64> {
        Ok(filtered(filter).count(&self.read()).await?)
    }

    /// The matching listings, best first, out of at most `ranked` matches: the matches that
    /// pass the filter are taken as the index yields them, up to `ranked`, and only those are
    /// ranked (PostgreSQL's `ts_rank`, SQLite's bm25). Ranking every match of a common word
    /// costs a sort of all of them per request; the bound makes a search's work independent of
    /// how common its words are, at the price of ranking a sample when more match (their count
    /// is still exact in `count_search`). Searches are priced by the bound (`limits::cost`).
    fn search_select(
        &self,
        text: &str,
        filter: &PropertyFilter,
        ranked: u64,
    ) -> Option<Select<property::Entity>> {
        // The bounded set, each with its rank, as a derived table: ranked where it is read, so
        // the outer query only joins the page's rows back (an `IN (subquery)` made PostgreSQL
        // scan the table to semi-join it).
        let matches = self.search_matches(text, filter)?;
        let rank = match self.backend() {
            DbBackend::Postgres => Expr::cust_with_values(
                "ts_rank(\"properties\".\"search_vector\", websearch_to_tsquery('english', $1))",
                [text.trim()],
            ),
            // bm25 is lower for better matches: negated, so both rank descending.
            _ => Expr::cust("-\"hits\".\"rank\""),
        };
        let bounded = matches
            .select_only()
            .column(property::Column::Id)
            .expr_as(rank, "search_rank")
            .limit(Ord::max(ranked, 1))
            .into_query();
        let mut select = property::Entity::find();
        QuerySelect::query(&mut select).join_subquery(
            JoinType::InnerJoin,
            bounded,
            Alias::new("ranked"),
            Expr::col((Alias::new("ranked"), property::Column::Id))
                .equals((property::Entity, property::Column::Id)),
        );
        Some(
            select
                .order_by_desc(Expr::col((Alias::new("ranked"), Alias::new("search_rank"))))
                .order_by_asc(property::Column::Id),
        )
    }

    /// Every listing that passes the filter and matches the words (unordered; on SQLite joined
    /// to its FTS5 hit as `hits`, with bm25 as `hits.rank`).
    fn search_matches(
        &self,
        text: &str,
        filter: &PropertyFilter,
    ) -> Option<Select<property::Entity>> {
        let select = filtered(filter);
        match self.backend() {
            DbBackend::Postgres => {
                let words = text.trim();
                if words.is_empty() {
                    return None;
                }
                Some(select.filter(Expr::cust_with_values(
                    "\"properties\".\"search_vector\" @@ websearch_to_tsquery('english', $1)",
                    [words],
                )))
            }
            _ => {
                let q = fts5_query(text)?;
                let hits = Query::select()
                    .column(Alias::new("property_id"))
                    .expr_as(Expr::cust("bm25(properties_fts)"), Alias::new("rank"))
                    .from(Alias::new("properties_fts"))
                    .and_where(Expr::cust_with_values("properties_fts MATCH ?", [q]))
                    .to_owned();
                let mut select = select;
                QuerySelect::query(&mut select).join_subquery(
                    JoinType::InnerJoin,
                    hits,
                    Alias::new("hits"),
                    Expr::col((Alias::new("hits"), Alias::new("property_id")))
                        .equals((property::Entity, property::Column::Id)),
                );
                Some(select)
            }
        }
    }

    /// Full-text search, best match first, out of at most `ranked` matches (`search_select`).
    /// Offset-paged: relevance has no stable key.
    pub async fn search_properties(
        &self,
        text: &str,
        filter: &PropertyFilter,
        page: (u64, u64),
        ranked: u64,
    ) -> StoreResult<Vec<property::Model>> {
        let Some(select) = self.search_select(text, filter, ranked) else {
            return Ok(Vec::new());
        };
        let (offset, limit) = page;
        Ok(select.offset(offset).limit(limit).all(&self.read()).await?)
    }

    /// How many listings match, all of them (not only the ranked ones).
    pub async fn count_search(&self, text: &str, filter: &PropertyFilter) -> StoreResult<u64> {
        let Some(select) = self.search_matches(text, filter) else {
            return Ok(0);
        };
        Ok(select.count(&self.read()).await?)
    }

    pub fn search_statement(
        &self,
        text: &str,
        filter: &PropertyFilter,
        ranked: u64,
    ) -> Option<sea_orm::Statement> {
        self.search_select(text, filter, ranked)
            .map(|s| s.limit(20).build(self.backend()))
    }

    pub async fn properties_by_ids(&self, ids: &[Uuid]) -> StoreResult<Vec<property::Model>> {
        Ok(property::Entity::find()
            .filter(super::id_in(self.backend(), property::Column::Id, ids))
            .all(&self.read_primary())
            .await?)
    }

    /// Each listing's images in display order, in one statement; every id is in the map (with
    /// no images, an empty list), so a caller can cache "none" as well.
    pub async fn images_for(
        &self,
        ids: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, Vec<property_image::Model>>> {
        let rows = property_image::Entity::find()
            .filter(super::id_in(
                self.backend(),
                property_image::Column::PropertyId,
                ids,
            ))
            .order_by_asc(property_image::Column::PropertyId)
            .order_by_asc(property_image::Column::Position)
            .all(&self.read_primary())
            .await?;
        Ok(by_listing(ids, rows, |r| (r.property_id, r)))
    }

    /// Each listing's amenities, in one statement; every id is in the map.
    pub async fn amenities_for(&self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, Vec<Amenity>>> {
        let rows = property_amenity::Entity::find()
            .filter(super::id_in(
                self.backend(),
                property_amenity::Column::PropertyId,
                ids,
            ))
            .order_by_asc(property_amenity::Column::Amenity)
            .all(&self.read_primary())
            .await?;
        Ok(by_listing(ids, rows, |r| (r.property_id, r.amenity)))
    }

    /// Interaction counters for many listings: one primary-key lookup each, in one statement.
    pub async fn stats_for(&self, ids: &[Uuid]) -> StoreResult<HashMap<Uuid, PropertyStats>> {
        let rows = property_stat::Entity::find()
            .filter(super::id_in(
                self.backend(),
                property_stat::Column::PropertyId,
                ids,
            ))
            .all(&self.read())
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let stats = PropertyStats {
                    views: r.views,
                    likes: r.likes,
                    saves: r.saves,
                    inquiries: r.inquiries,
                    dismissals: r.dismissals,
                };
                (r.property_id, stats)
            })
            .collect())
    }

    /// Listings an owner created since `since` (the createProperty quota).
    pub async fn listings_created_since(
        &self,
        owner_id: Uuid,
        since: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<u64> {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        Ok(property::Entity::find()
            .filter(property::Column::OwnerId.eq(owner_id))
            .filter(property::Column::CreatedAt.gte(since))
            .count(self.conn())
            .await?)
    }

    pub async fn create_property(
        &self,
        owner_id: Uuid,
        new: NewProperty,
    ) -> StoreResult<property::Model> {
        let now = now_micros();
        let id = Uuid::new_v4();
        let txn = self.conn().begin().await?;
        let model = property::ActiveModel {
            id: Set(id),
            owner_id: Set(owner_id),
            title: Set(new.title),
            description: Set(new.description),
            monthly_price: Set(new.monthly_price),
            city: Set(new.city),
            neighbourhood: Set(new.neighbourhood),
            latitude: Set(new.latitude),
            longitude: Set(new.longitude),
            bedrooms: Set(new.bedrooms),
            bathrooms: Set(new.bathrooms),
            area: Set(new.area),
            property_type: Set(new.property_type),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            taken_down: Set(false),
        };
        property::Entity::insert(model)
            .exec_without_returning(&txn)
            .await?;
        replace_amenities(&txn, id, &new.amenities).await?;
        replace_images(&txn, id, &new.image_urls).await?;
        let created = property::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("property"))?;
        txn.commit().await?;
        Ok(created)
    }

    pub async fn update_property(
        &self,
        id: Uuid,
        patch: PropertyPatch,
    ) -> StoreResult<property::Model> {
        let txn = self.conn().begin().await?;
        let current = property::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound("property"))?;
        let mut am: property::ActiveModel = current.into();
        macro_rules! apply {
            ($($field:ident),*) => {$(
                if let Some(v) = patch.$field { am.$field = Set(v); }
            )*};
        }
        apply!(
            title,
            description,
            monthly_price,
            city,
            neighbourhood,
            latitude,
            longitude,
            bedrooms,
            bathrooms,
            area,
            property_type,
            is_active,
            taken_down
        );
        am.updated_at = Set(now_micros());
        let updated = am.update(&txn).await?;
        if let Some(amenities) = &patch.amenities {
            replace_amenities(&txn, id, amenities).await?;
        }
        if let Some(urls) = &patch.image_urls {
            replace_images(&txn, id, urls).await?;
        }
        txn.commit().await?;
        Ok(updated)
    }
}

async fn replace_amenities<C: sea_orm::ConnectionTrait>(
    conn: &C,
    id: Uuid,
    amenities: &[Amenity],
) -> StoreResult<()> {
    property_amenity::Entity::delete_many()
        .filter(property_amenity::Column::PropertyId.eq(id))
        .exec(conn)
        .await?;
    let mut unique: Vec<Amenity> = amenities.to_vec();
    unique.sort();
    unique.dedup();
    if unique.is_empty() {
        return Ok(());
    }
    property_amenity::Entity::insert_many(unique.into_iter().map(|amenity| {
        property_amenity::ActiveModel {
            property_id: Set(id),
            amenity: Set(amenity),
        }
    }))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

async fn replace_images<C: sea_orm::ConnectionTrait>(
    conn: &C,
    id: Uuid,
    urls: &[String],
) -> StoreResult<()> {
    property_image::Entity::delete_many()
        .filter(property_image::Column::PropertyId.eq(id))
        .exec(conn)
        .await?;
    if urls.is_empty() {
        return Ok(());
    }
    property_image::Entity::insert_many(urls.iter().enumerate().map(|(i, url)| {
        property_image::ActiveModel {
            id: Set(Uuid::new_v4()),
            property_id: Set(id),
            url: Set(url.clone()),
            position: Set(i as i32),
        }
    }))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Timestamps are kept to microseconds: PostgreSQL stores no more, and SQLite compares them as
/// text, which only orders correctly when every value has the same precision.
pub(crate) fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::<Utc>::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Rows grouped by listing, in their order, with an entry (maybe empty) for every id.
fn by_listing<R, T>(
    ids: &[Uuid],
    rows: Vec<R>,
    split: impl Fn(R) -> (Uuid, T),
) -> HashMap<Uuid, Vec<T>> {
    let mut out: HashMap<Uuid, Vec<T>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    for row in rows {
        let (id, item) = split(row);
        out.entry(id).or_default().push(item);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fts5_query;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a user types, the FTS5 query is quoted words and a prefix star: no quote
        /// inside a word, so no FTS5 syntax (operators, columns, NEAR) gets through. (Words are
        /// lower-cased, which may add combining marks: "İ" becomes "i̇".)
        #[test]
        fn fts5_queries_are_quoted_words(text in "\\PC{0,80}") {
            if let Some(q) = fts5_query(&text) {
                let body = q.strip_suffix('*').expect("prefix star");
                for word in body.split(' ') {
                    let inner = word.strip_prefix('"').and_then(|w| w.strip_suffix('"'));
                    prop_assert!(inner.is_some_and(|w| !w.is_empty() && !w.contains('"') && !w.contains(' ')), "{}", q);
                }
            } else {
                prop_assert!(!text.chars().any(char::is_alphanumeric));
            }
        }
    }
}
