use super::{Store, StoreError, StoreResult};
use entity::{Preferences, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

impl Store {
    pub async fn users_by_ids(&self, ids: &[Uuid]) -> StoreResult<Vec<user::Model>> {
        Ok(user::Entity::find()
            .filter(super::id_in(self.backend(), user::Column::Id, ids))
            .all(&self.read_primary())
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

    /// The local user an identity provider's subject (`ISSUER#SUB`) signs in as, with its role.
    pub async fn user_by_external_subject(
        &self,
        subject: &str,
    ) -> StoreResult<Option<(Uuid, entity::Role)>> {
        use sea_orm::QuerySelect;
        Ok(user::Entity::find()
            .filter(user::Column::ExternalSubject.eq(subject))
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::Role)
            .into_tuple::<(Uuid, entity::Role)>()
            .one(self.conn())
            .await?)
    }

    pub async fn set_user_role(&self, id: Uuid, role: entity::Role) -> StoreResult<()> {
        user::Entity::update_many()
            .col_expr(user::Column::Role, sea_orm::sea_query::Expr::value(role))
            .filter(user::Column::Id.eq(id))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Creates the local user of a provider's subject on its first sign-in. The provider's
    /// email is used when no other user has it (else a placeholder: an email is not proof of
    /// owning the account that has it here, so accounts are never linked by email). When a
    /// concurrent first request created it already, that user is returned.
    pub async fn create_external_user(
        &self,
        subject: &str,
        email: Option<&str>,
        name: Option<&str>,
        role: entity::Role,
    ) -> StoreResult<Uuid> {
        use sha2::Digest;
        let placeholder = || {
            let digest = sha2::Sha256::digest(subject.as_bytes());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}@external.invalid")
        };
        let email = match email.filter(|e| e.contains('@') && e.len() <= 254) {
            Some(e) => {
                let taken = user::Entity::find()
                    .filter(user::Column::Email.eq(e))
                    .one(self.conn())
                    .await?
                    .is_some();
                if taken { placeholder() } else { e.to_owned() }
            }
            None => placeholder(),
        };
        let display_name = name
            .map(|n| n.chars().take(100).collect::<String>())
            .or_else(|| email.split('@').next().map(str::to_owned))
            .unwrap_or_else(|| "user".to_owned());
        let id = Uuid::new_v4();
        let row = user::ActiveModel {
            id: Set(id),
            email: Set(email),
            display_name: Set(display_name),
            role: Set(role),
            preferences: Set(Preferences::default()),
            created_at: Set(chrono::Utc::now()),
            external_subject: Set(Some(subject.to_owned())),
        };
        match user::Entity::insert(row).exec(self.conn()).await {
            Ok(_) => Ok(id),
            Err(e) => match self.user_by_external_subject(subject).await? {
                Some((existing, _)) => Ok(existing),
                None => Err(e.into()),
            },
        }
    }
}
