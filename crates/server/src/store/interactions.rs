use super::properties::now_micros;
use super::{Params, Store, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use entity::{InteractionKind, interaction, property};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, Set, Statement,
    TransactionTrait,
};
use std::collections::HashMap;
use uuid::Uuid;

/// Position in a user's history, newest first: (time, id) of the last row seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistoryCursor {
    pub at_micros: i64,
    pub id: Uuid,
}

#[derive(Debug, Clone, FromQueryResult)]
pub struct SavedRow {
    pub user_id: Uuid,
    pub property_id: Uuid,
    pub saved_at: DateTime<Utc>,
}

fn cursor_time(c: &HistoryCursor) -> StoreResult<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(c.at_micros)
        .ok_or_else(|| StoreError::Invalid("cursor is out of range".into()))
}

impl Store {
    /// Records an interaction with a listing that exists and is active. The same interaction
    /// (user, listing, kind) again within `dedupe_window` is not recorded twice: the earlier
    /// one is returned with `true`, and the listing's counters do not move (a double tap or a
    /// retried request must not inflate popularity).
    pub async fn record_interaction(
        &self,
        user_id: Uuid,
        property_id: Uuid,
        kind: InteractionKind,
        dedupe_window: std::time::Duration,
    ) -> StoreResult<(interaction::Model, bool)> {
        let active = property::Entity::find_by_id(property_id)
            .select_only()
            .column(property::Column::IsActive)
            .into_tuple::<bool>()
            .one(self.conn())
            .await?;
        if active != Some(true) {
            return Err(StoreError::NotFound("property"));
        }
        let model = interaction::Model {
            id: Uuid::new_v4(),
            user_id,
            property_id,
            kind,
            created_at: now_micros(),
        };
        let am = interaction::ActiveModel {
            id: Set(model.id),
            user_id: Set(user_id),
            property_id: Set(property_id),
            kind: Set(kind),
            created_at: Set(model.created_at),
        };
        // The interaction and its listing's counter change together or not at all.
        let txn = self.conn().begin().await?;
        if !dedupe_window.is_zero() {
            if self.backend() == sea_orm::DbBackend::Postgres {
                // Two identical requests at once must not both see "no earlier one".
                let mut p = Params::new(self.backend());
                let key = p.push(format!("interaction:{user_id}:{property_id}:{kind:?}"));
                txn.execute_raw(p.statement(format!(
                    "SELECT pg_advisory_xact_lock(hashtextextended({key}, 0))"
                )))
                .await?;
            }
            let since = model.created_at
                - chrono::Duration::from_std(dedupe_window).unwrap_or(chrono::Duration::zero());
            use sea_orm::{ColumnTrait, QueryOrder};
            let earlier = interaction::Entity::find()
                .filter(interaction::Column::UserId.eq(user_id))
                .filter(interaction::Column::PropertyId.eq(property_id))
                .filter(interaction::Column::Kind.eq(kind))
                .filter(interaction::Column::CreatedAt.gte(since))
                .order_by_desc(interaction::Column::CreatedAt)
                .one(&txn)
                .await?;
            if let Some(earlier) = earlier {
                txn.commit().await?;
                return Ok((earlier, true));
            }
        }
        interaction::Entity::insert(am)
            .exec_without_returning(&txn)
            .await?;
        // property_stats' counter columns, in `Popularity::slot` order.
        const COLUMNS: [&str; 5] = ["views", "likes", "saves", "inquiries", "dismissals"];
        let column = COLUMNS[rentgraph_model::features::Popularity::slot(kind)];
        let mut p = Params::new(self.backend());
        let id = p.push(property_id);
        let sql = format!(
            "INSERT INTO property_stats (property_id, {column}) VALUES ({id}, 1)
             ON CONFLICT (property_id) DO UPDATE SET {column} = property_stats.{column} + 1"
        );
        txn.execute_raw(p.statement(sql)).await?;
        txn.commit().await?;
        Ok((model, false))
    }

    pub async fn interactions_by_ids(&self, ids: &[Uuid]) -> StoreResult<Vec<interaction::Model>> {
        Ok(interaction::Entity::find()
            .filter(super::id_in(self.backend(), interaction::Column::Id, ids))
            .all(&self.read())
            .await?)
    }

    /// The newest `limit` interactions of each user (after `after`), in one statement.
    pub async fn interactions_for_users(
        &self,
        users: &[Uuid],
        limit: u64,
        after: Option<HistoryCursor>,
    ) -> StoreResult<Vec<interaction::Model>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let stmt = self.interactions_statement(users, limit, after)?;
        Ok(interaction::Model::find_by_statement(stmt)
            .all(&self.read())
            .await?)
    }

    pub fn interactions_statement(
        &self,
        users: &[Uuid],
        limit: u64,
        after: Option<HistoryCursor>,
    ) -> StoreResult<Statement> {
        let mut p = Params::new(self.backend());
        let users_in = p.in_list("user_id", users);
        let mut extra = String::new();
        if let Some(c) = after {
            let at = p.push(cursor_time(&c)?);
            let at2 = p.push(cursor_time(&c)?);
            let id = p.push(c.id);
            extra = format!(" AND (created_at < {at} OR (created_at = {at2} AND id < {id}))");
        }
        let lim = p.push(limit as i64);
        let sql = format!(
            "SELECT id, user_id, property_id, kind, created_at FROM (
                SELECT id, user_id, property_id, kind, created_at,
                       ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY created_at DESC, id DESC) AS rn
                FROM interactions WHERE {users_in}{extra}
             ) ranked WHERE rn <= {lim} ORDER BY user_id, rn"
        );
        Ok(p.statement(sql))
    }

    /// What recommendations keep of one user, in one statement: the newest `limit`
    /// interactions, plus every dismissal and inquiry however old (those listings are never
    /// recommended again). Newest first.
    pub async fn user_state_rows(
        &self,
        user: Uuid,
        limit: u64,
    ) -> StoreResult<Vec<interaction::Model>> {
        let mut p = Params::new(self.backend());
        let u1 = p.push(user);
        let dismiss = p.push(sea_orm::ActiveEnum::to_value(&InteractionKind::Dismiss));
        let inquiry = p.push(sea_orm::ActiveEnum::to_value(&InteractionKind::Inquiry));
        let u2 = p.push(user);
        let lim = p.push(limit as i64);
        let sql = format!(
            "SELECT id, user_id, property_id, kind, created_at FROM interactions
             WHERE user_id = {u1} AND (kind IN ({dismiss}, {inquiry}) OR id IN (
                SELECT id FROM interactions WHERE user_id = {u2}
                ORDER BY created_at DESC, id DESC LIMIT {lim}))
             ORDER BY created_at DESC, id DESC"
        );
        Ok(interaction::Model::find_by_statement(p.statement(sql))
            .all(&self.read())
            .await?)
    }

    pub async fn interaction_counts(&self, users: &[Uuid]) -> StoreResult<HashMap<Uuid, i64>> {
        let rows: Vec<(Uuid, i64)> = interaction::Entity::find()
            .select_only()
            .column(interaction::Column::UserId)
            .expr(Expr::col(interaction::Column::Id).count())
            .filter(super::id_in(
                self.backend(),
                interaction::Column::UserId,
                users,
            ))
            .group_by(interaction::Column::UserId)
            .into_tuple()
            .all(&self.read())
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Each user's saved listings (latest save first, one row per listing), in one statement.
    /// Saved listings, most recently saved first. `visible_to`: leave out inactive listings
    /// that this user does not own (`None`: an admin, who sees every listing), so pages and
    /// counts hold only what the caller will be shown.
    pub async fn saved_for_users(
        &self,
        users: &[Uuid],
        limit: u64,
        after: Option<HistoryCursor>,
        visible_to: Option<Uuid>,
    ) -> StoreResult<Vec<SavedRow>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = Params::new(self.backend());
        let kind = p.push("SAVE");
        let users_in = p.in_list("user_id", users);
        let visible = visible_listing(&mut p, visible_to);
        let mut having = String::new();
        if let Some(c) = after {
            let at = p.push(cursor_time(&c)?);
            let at2 = p.push(cursor_time(&c)?);
            let id = p.push(c.id);
            having = format!(
                " HAVING (MAX(created_at) < {at} OR (MAX(created_at) = {at2} AND property_id < {id}))"
            );
        }
        let lim = p.push(limit as i64);
        let sql = format!(
            "SELECT user_id, property_id, saved_at FROM (
                SELECT user_id, property_id, MAX(created_at) AS saved_at,
                       ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY MAX(created_at) DESC, property_id DESC) AS rn
                FROM interactions WHERE kind = {kind} AND {users_in}{visible}
                GROUP BY user_id, property_id{having}
             ) ranked WHERE rn <= {lim} ORDER BY user_id, rn"
        );
        Ok(SavedRow::find_by_statement(p.statement(sql))
            .all(&self.read())
            .await?)
    }

    /// How many listings each user saved, counted as `saved_for_users` lists them.
    pub async fn saved_counts(
        &self,
        users: &[Uuid],
        visible_to: Option<Uuid>,
    ) -> StoreResult<HashMap<Uuid, i64>> {
        let mut p = Params::new(self.backend());
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let kind = p.push("SAVE");
        let users_in = p.in_list("user_id", users);
        let visible = visible_listing(&mut p, visible_to);
        let sql = format!(
            "SELECT user_id, COUNT(DISTINCT property_id) AS n FROM interactions
             WHERE kind = {kind} AND {users_in}{visible} GROUP BY user_id"
        );
        let rows = self.read().query_all_raw(p.statement(sql)).await?;
        let mut out = HashMap::new();
        for row in rows {
            let user: Uuid = row.try_get("", "user_id")?;
            let n: i64 = row.try_get("", "n")?;
            out.insert(user, n);
        }
        Ok(out)
    }
}

/// ` AND property_id IN (visible listings)` for a caller; nothing for an admin (`None`). The
/// SQL form of `Principal::may_see_listing`.
fn visible_listing(p: &mut Params, viewer: Option<Uuid>) -> String {
    match viewer {
        None => String::new(),
        Some(v) => {
            let v = p.push(v);
            format!(
                " AND property_id IN (SELECT id FROM properties WHERE is_active OR owner_id = {v})"
            )
        }
    }
}
