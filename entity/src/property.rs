use crate::enums::PropertyType;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "properties")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    /// Whole currency units per month.
    pub monthly_price: i32,
    pub city: String,
    pub neighbourhood: String,
    pub latitude: f64,
    pub longitude: f64,
    pub bedrooms: i32,
    pub bathrooms: i32,
    /// Square metres.
    pub area: i32,
    pub property_type: PropertyType,
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Deactivated by an admin who does not own it: only an admin may put it back on the
    /// market. Never exposed in the API.
    #[serde(default)]
    pub taken_down: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::OwnerId",
        to = "super::user::Column::Id"
    )]
    Owner,
    #[sea_orm(has_many = "super::property_image::Entity")]
    Image,
    #[sea_orm(has_many = "super::property_amenity::Entity")]
    Amenity,
    #[sea_orm(has_many = "super::interaction::Entity")]
    Interaction,
    #[sea_orm(has_one = "super::property_stat::Entity")]
    Stats,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Owner.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
