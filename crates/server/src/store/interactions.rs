use super::properties::now_micros;
use super::{Params, Store, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use entity::{InteractionKind, interaction, property};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, Statement,
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
    /// Records an interaction with a listing that exists and is active. Interactions are state
    /// where they are state (`entity::interaction::OnceKey`, held by migration 7's unique
    /// indexes): a like, save, inquiry or dismissal the user already holds, or a second view of
    /// the listing the same UTC day, is not written again. The one held is returned with `true`
    /// and the listing's counters do not move, so popularity counts people, not taps.
    pub async fn record_interaction(
        &self,
        user_id: Uuid,
        property_id: Uuid,
        kind: InteractionKind,
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
        // The interaction and its listing's counter change together or not at all.
        let txn = self.conn().begin().await?;
        let mut p = Params::new(self.backend());
        let values = [
            p.push(model.id),
            p.push(user_id),
            p.push(property_id),
            p.push(sea_orm::ActiveEnum::to_value(&kind)),
            p.push(model.created_at),
        ]
        .join(", ");
        // No conflict target: either unique index (or both) may be the one that holds.
        let inserted = txn
            .execute_raw(p.statement(format!(
                "INSERT INTO interactions (id, user_id, property_id, kind, created_at)
                 VALUES ({values}) ON CONFLICT DO NOTHING"
            )))
            .await?
            .rows_affected();
        if inserted == 0 {
            txn.commit().await?;
            let held = self.held_interaction(&model).await?;
            return Ok((held.unwrap_or(model), true));
        }
        self.add_to_counter(&txn, property_id, kind, 1).await?;
        txn.commit().await?;
        Ok((model, false))
    }

    /// The interaction that holds `fresh`'s `OnceKey` (`None` if it went meanwhile).
    async fn held_interaction(
        &self,
        fresh: &interaction::Model,
    ) -> StoreResult<Option<interaction::Model>> {
        use sea_orm::{ColumnTrait, QueryOrder};
        let mut q = interaction::Entity::find()
            .filter(interaction::Column::UserId.eq(fresh.user_id))
            .filter(interaction::Column::PropertyId.eq(fresh.property_id))
            .filter(interaction::Column::Kind.eq(fresh.kind));
        if let Some(day) = fresh.once_key().day {
            let midnight = day.and_time(chrono::NaiveTime::MIN).and_utc();
            q = q.filter(interaction::Column::CreatedAt.gte(midnight));
        }
        Ok(q.order_by_desc(interaction::Column::CreatedAt)
            .one(self.conn())
            .await?)
    }

    /// Takes back a like or a save (`unlikeProperty`, `unsaveProperty`): the interaction goes
    /// from the history, the saved listings and the listing's counter, as if it had never been
    /// made. Works on a listing that has left the market. `false`: the user did not hold one.
    pub async fn remove_interaction(
        &self,
        user_id: Uuid,
        property_id: Uuid,
        kind: InteractionKind,
    ) -> StoreResult<bool> {
        let txn = self.conn().begin().await?;
        let mut p = Params::new(self.backend());
        let (u, l, k) = (
            p.push(user_id),
            p.push(property_id),
            p.push(sea_orm::ActiveEnum::to_value(&kind)),
        );
        let removed = txn
            .execute_raw(p.statement(format!(
                "DELETE FROM interactions WHERE user_id = {u} AND property_id = {l} AND kind = {k}"
            )))
            .await?
            .rows_affected();
        if removed > 0 {
            self.add_to_counter(&txn, property_id, kind, -(removed as i64))
                .await?;
        }
        txn.commit().await?;
        Ok(removed > 0)
    }

    /// Moves one of a listing's counters by `by`, never below zero.
    async fn add_to_counter(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        property_id: Uuid,
        kind: InteractionKind,
        by: i64,
    ) -> StoreResult<()> {
        // property_stats' counter columns, in `Popularity::slot` order.
        const COLUMNS: [&str; 5] = ["views", "likes", "saves", "inquiries", "dismissals"];
        let column = COLUMNS[rentgraph_model::features::Popularity::slot(kind)];
        let mut p = Params::new(self.backend());
        let id = p.push(property_id);
        let start = p.push(Ord::max(by, 0));
        // SQLite's `?` binds in order of appearance: one parameter per use.
        let (by1, by2) = (p.push(by), p.push(by));
        let sql = format!(
            "INSERT INTO property_stats (property_id, {column}) VALUES ({id}, {start})
             ON CONFLICT (property_id) DO UPDATE SET {column} =
                CASE WHEN property_stats.{column} + {by1} < 0 THEN 0
                     ELSE property_stats.{column} + {by2} END"
        );
        txn.execute_raw(p.statement(sql)).await?;
        Ok(())
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
    /// interactions, plus the newest `exclusions` dismissals and inquiries however old (those
    /// listings are never recommended again; a script dismissing the whole market must not make
    /// the state as large as the market). Newest first.
    pub async fn user_state_rows(
        &self,
        user: Uuid,
        limit: u64,
        exclusions: u64,
    ) -> StoreResult<Vec<interaction::Model>> {
        let mut p = Params::new(self.backend());
        let u1 = p.push(user);
        let u2 = p.push(user);
        let dismiss = p.push(sea_orm::ActiveEnum::to_value(&InteractionKind::Dismiss));
        let inquiry = p.push(sea_orm::ActiveEnum::to_value(&InteractionKind::Inquiry));
        let ex = p.push(exclusions as i64);
        let u3 = p.push(user);
        let lim = p.push(limit as i64);
        let sql = format!(
            "SELECT id, user_id, property_id, kind, created_at FROM interactions
             WHERE user_id = {u1} AND (id IN (
                SELECT id FROM interactions WHERE user_id = {u2} AND kind IN ({dismiss}, {inquiry})
                ORDER BY created_at DESC, id DESC LIMIT {ex}) OR id IN (
                SELECT id FROM interactions WHERE user_id = {u3}
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
