//! Queries behind recommendations: candidates, popularity, similar listings and the bulk reads
//! the training-data export needs.
use super::{Params, Store, StoreResult};
use entity::{interaction, property, property_amenity, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use std::collections::HashMap;
use uuid::Uuid;

/// One interaction, as the co-engagement table reads it.
#[derive(Debug, Clone, Copy)]
pub struct InteractionEvent {
    pub user: Uuid,
    pub listing: Uuid,
    pub kind: entity::InteractionKind,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// What the listing index keeps of a listing row.
#[derive(Debug, Clone, FromQueryResult)]
pub struct IndexRow {
    pub id: Uuid,
    pub city: String,
    pub neighbourhood: String,
    pub property_type: entity::PropertyType,
    pub monthly_price: i32,
    pub bedrooms: i32,
    pub area: i32,
    pub is_active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub latitude: f64,
    pub longitude: f64,
}

impl From<&property::Model> for IndexRow {
    fn from(p: &property::Model) -> Self {
        Self {
            id: p.id,
            city: p.city.clone(),
            neighbourhood: p.neighbourhood.clone(),
            property_type: p.property_type,
            monthly_price: p.monthly_price,
            bedrooms: p.bedrooms,
            area: p.area,
            is_active: p.is_active,
            created_at: p.created_at,
            latitude: p.latitude,
            longitude: p.longitude,
        }
    }
}

#[cfg(test)]
impl IndexRow {
    /// An active two-bedroom apartment of 60 m² at 1,000 a month in the centre of `city`,
    /// created at the epoch: the fields a test does not care about.
    pub(crate) fn sample(id: Uuid, city: &str) -> Self {
        Self {
            id,
            city: city.into(),
            neighbourhood: "Centre".into(),
            property_type: entity::PropertyType::Apartment,
            monthly_price: 1000,
            bedrooms: 2,
            area: 60,
            is_active: true,
            created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            latitude: 0.0,
            longitude: 0.0,
        }
    }
}

impl Store {
    /// Active listings by popularity (views count 1, likes/saves/inquiries 3, dismissals -1),
    /// most first: a walk down the `property_stats_score` index, skipping listings that left
    /// the market (the most popular are the first to be rented).
    pub async fn popular_listing_ids(&self, limit: u64) -> StoreResult<Vec<(Uuid, f64)>> {
        let sql = format!(
            "SELECT s.property_id, s.score FROM property_stats s
             JOIN properties p ON p.id = s.property_id AND p.is_active
             ORDER BY s.score DESC, s.property_id LIMIT {limit}"
        );
        let rows = self
            .conn()
            .query_all_raw(Statement::from_string(self.backend(), sql))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: Uuid = row.try_get("", "property_id")?;
            let score: i64 = row.try_get("", "score")?;
            out.push((id, score as f64));
        }
        Ok(out)
    }

    /// For each listing, up to `limit` active listings in the same city and of the same type,
    /// closest in price first (within ±30%), in one statement.
    pub async fn similar_listings(
        &self,
        ids: &[Uuid],
        limit: u64,
    ) -> StoreResult<HashMap<Uuid, Vec<Uuid>>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut p = Params::new(self.backend());
        let targets = p.in_list("t.id", ids);
        let lim = p.push(limit as i64);
        let sql = format!(
            "SELECT target, id FROM (
                SELECT t.id AS target, p.id AS id,
                       ROW_NUMBER() OVER (PARTITION BY t.id ORDER BY ABS(p.monthly_price - t.monthly_price), p.id) AS rn
                FROM properties t JOIN properties p
                  ON p.city = t.city AND p.property_type = t.property_type AND p.id <> t.id AND p.is_active
                 AND p.monthly_price BETWEEN t.monthly_price * 0.7 AND t.monthly_price * 1.3
                WHERE {targets}
             ) ranked WHERE rn <= {lim} ORDER BY target, rn"
        );
        let rows = self.read().query_all_raw(p.statement(sql)).await?;
        let mut out: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for row in rows {
            let target: Uuid = row.try_get("", "target")?;
            let id: Uuid = row.try_get("", "id")?;
            out.entry(target).or_default().push(id);
        }
        Ok(out)
    }

    /// Up to `limit` listings (active or not) with ids after `after`, in id order: the index
    /// loads in chunks of these.
    pub async fn index_rows(&self, after: Option<Uuid>, limit: u64) -> StoreResult<Vec<IndexRow>> {
        let mut q = index_select()
            .order_by_asc(property::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            q = q.filter(property::Column::Id.gt(after));
        }
        Ok(q.into_model::<IndexRow>().all(&self.read()).await?)
    }

    /// These listings' index rows, in one statement.
    pub async fn index_rows_for(&self, ids: &[Uuid]) -> StoreResult<Vec<IndexRow>> {
        Ok(index_select()
            .filter(super::id_in(self.backend(), property::Column::Id, ids))
            .into_model::<IndexRow>()
            .all(&self.read_primary())
            .await?)
    }

    /// Interactions per listing and kind since `since` (the listing index's recent
    /// popularity): every listing's, or only these listings'. One range scan of
    /// `interactions_time`.
    pub async fn recent_counts(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        ids: Option<&[Uuid]>,
    ) -> StoreResult<HashMap<Uuid, super::PropertyStats>> {
        use interaction::Column as C;
        use sea_orm::sea_query::{Expr, Func};
        let mut q = interaction::Entity::find()
            .select_only()
            .column(C::PropertyId)
            .column(C::Kind)
            .column_as(Expr::from(Func::count(Expr::col(C::Id))), "n")
            .filter(C::CreatedAt.gte(since))
            .group_by(C::PropertyId)
            .group_by(C::Kind);
        if let Some(ids) = ids {
            q = q.filter(super::id_in(self.backend(), C::PropertyId, ids));
        }
        let rows: Vec<(Uuid, entity::InteractionKind, i64)> =
            q.into_tuple().all(&self.read()).await?;
        let mut out: HashMap<Uuid, super::PropertyStats> = HashMap::new();
        for (id, kind, n) in rows {
            out.entry(id).or_default().add(kind, n);
        }
        Ok(out)
    }

    /// When the newest interaction was recorded (`None`: there is none).
    pub async fn newest_interaction(&self) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        use sea_orm::sea_query::{Expr, Func};
        let newest: Option<Option<chrono::DateTime<chrono::Utc>>> = interaction::Entity::find()
            .select_only()
            .column_as(
                Expr::from(Func::max(Expr::col(interaction::Column::CreatedAt))),
                "newest",
            )
            .into_tuple()
            .one(&self.read())
            .await?;
        Ok(newest.flatten())
    }

    /// Every interaction since `since` as the co-engagement table reads it (one statement;
    /// the `interactions_time` index serves the range).
    pub async fn interactions_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<InteractionEvent>> {
        use interaction::Column as C;
        let rows: Vec<(
            Uuid,
            Uuid,
            entity::InteractionKind,
            chrono::DateTime<chrono::Utc>,
        )> = interaction::Entity::find()
            .select_only()
            .columns([C::UserId, C::PropertyId, C::Kind, C::CreatedAt])
            .filter(C::CreatedAt.gte(since))
            .into_tuple()
            .all(&self.read())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(user, listing, kind, at)| InteractionEvent {
                user,
                listing,
                kind,
                at,
            })
            .collect())
    }

    pub async fn all_users(&self) -> StoreResult<Vec<user::Model>> {
        Ok(user::Entity::find().all(self.conn()).await?)
    }

    pub async fn all_properties(&self) -> StoreResult<Vec<property::Model>> {
        Ok(property::Entity::find().all(self.conn()).await?)
    }

    pub async fn all_amenities(&self) -> StoreResult<Vec<property_amenity::Model>> {
        Ok(property_amenity::Entity::find().all(self.conn()).await?)
    }

    pub async fn all_interactions(&self) -> StoreResult<Vec<interaction::Model>> {
        Ok(interaction::Entity::find()
            .order_by_asc(interaction::Column::CreatedAt)
            .all(self.conn())
            .await?)
    }
}

/// Listings with only the columns the listing index keeps (`IndexRow`).
fn index_select() -> sea_orm::Select<property::Entity> {
    use property::Column as C;
    property::Entity::find().select_only().columns([
        C::Id,
        C::City,
        C::Neighbourhood,
        C::PropertyType,
        C::MonthlyPrice,
        C::Bedrooms,
        C::Area,
        C::IsActive,
        C::CreatedAt,
        C::Latitude,
        C::Longitude,
    ])
}
