use super::{Store, StoreError, StoreResult};
use entity::{Preferences, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

impl Store {
    pub async fn users_by_ids(&self, ids: &[Uuid]) -> StoreResult<Vec<user::Model>> {
        Ok(user::Entity::find()
            .filter(super::id_in(self.backend(), user::Column::Id, ids))
            .all(&self.read())
            .await?)
    }

    /// The user's current role, or `None` for an unknown user: what a token is checked against.
    pub async fn user_role(&self, id: Uuid) -> StoreResult<Option<entity::Role>> {
        use sea_orm::QuerySelect;
        Ok(user::Entity::find_by_id(id)
            .select_only()
            .column(user::Column::Role)
            .into_tuple::<entity::Role>()
            .one(&self.read())
            .await?)
    }

    pub async fn update_preferences(
        &self,
        id: Uuid,
        preferences: Preferences,
    ) -> StoreResult<user::Model> {
        let current = user::Entity::find_by_id(id)
            .one(self.conn())
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        let mut am: user::ActiveModel = current.into();
        am.preferences = Set(preferences);
        Ok(am.update(self.conn()).await?)
    }

    pub async fn any_property(&self) -> StoreResult<bool> {
        use sea_orm::{PaginatorTrait, QuerySelect};
        Ok(entity::property::Entity::find()
            .limit(1)
            .count(&self.read())
            .await?
            > 0)
    }

    pub async fn first_user_with_role(
        &self,
        role: entity::Role,
    ) -> StoreResult<Option<user::Model>> {
        use sea_orm::QueryOrder;
        Ok(user::Entity::find()
            .filter(user::Column::Role.eq(role))
            .order_by_asc(user::Column::CreatedAt)
            .one(self.conn())
            .await?)
    }
}
