use crate::enums::Amenity;
use sea_orm::entity::prelude::*;

/// One row per (listing, amenity): a join table rather than an array column so that "has all of
/// these amenities" filters use an index on both PostgreSQL and SQLite.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "property_amenities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub property_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub amenity: Amenity,
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

impl ActiveModelBehavior for ActiveModel {}

impl Related<super::property::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Property.def()
    }
}
