use sea_orm::entity::prelude::*;

/// Interaction counters per listing, kept up to date as interactions are recorded, so that
/// `Property.stats` and popularity are index lookups instead of counts over the interactions.
/// The table also has a generated `score` column (views + 3 × engagement − dismissals) with an
/// index, which the popularity ranking reads.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "property_stats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub property_id: Uuid,
    pub views: i64,
    pub likes: i64,
    pub saves: i64,
    pub inquiries: i64,
    pub dismissals: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::property::Entity",
        from = "Column::PropertyId",
        to = "super::property::Column::Id"
    )]
    Property,
}

impl Related<super::property::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Property.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
