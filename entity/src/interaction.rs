use crate::enums::InteractionKind;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "interactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub property_id: Uuid,
    pub kind: InteractionKind,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
    #[sea_orm(
        belongs_to = "super::property::Entity",
        from = "Column::PropertyId",
        to = "super::property::Column::Id"
    )]
    Property,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Related<super::property::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Property.def()
    }
}

/// What makes two interactions the same one (migration 7's unique indexes): a like, save,
/// inquiry or dismissal is state, held once per user and listing; a view counts once per user,
/// listing and UTC day. Counters and popularity count rows, so they count people, and one
/// account repeating itself moves nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OnceKey {
    pub user_id: Uuid,
    pub property_id: Uuid,
    pub kind: crate::InteractionKind,
    /// The UTC day of a view; `None` for the other kinds.
    pub day: Option<chrono::NaiveDate>,
}

impl Model {
    pub fn once_key(&self) -> OnceKey {
        OnceKey {
            user_id: self.user_id,
            property_id: self.property_id,
            kind: self.kind,
            day: (self.kind == crate::InteractionKind::View).then(|| self.created_at.date_naive()),
        }
    }
}

/// Keeps the first of each `OnceKey` (in the order given), as the database would have.
pub fn keep_first_of_each(rows: Vec<Model>) -> Vec<Model> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    rows.into_iter()
        .filter(|r| seen.insert(r.once_key()))
        .collect()
}
