use crate::enums::{Amenity, PropertyType, Role};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What a user is looking for. Kept as one JSON document: it is always read and written whole,
/// and recommendations read it per user, never filter users by it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(default)]
pub struct Preferences {
    pub cities: Vec<String>,
    pub min_price: Option<i32>,
    pub max_price: Option<i32>,
    pub min_bedrooms: Option<i32>,
    pub property_types: Vec<PropertyType>,
    pub amenities: Vec<Amenity>,
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    pub display_name: String,
    pub role: Role,
    #[sea_orm(column_type = "Json")]
    pub preferences: Preferences,
    pub created_at: DateTimeUtc,
    /// `ISSUER#SUB` of the identity provider's account this user signs in with (`auth.issuers`);
    /// `None` for users of rentgraph's own tokens. Never exposed in the API.
    #[serde(default)]
    pub external_subject: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::property::Entity")]
    Property,
    #[sea_orm(has_many = "super::interaction::Entity")]
    Interaction,
}

impl Related<super::property::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Property.def()
    }
}

impl Related<super::interaction::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Interaction.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
