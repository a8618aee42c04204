use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    #[sea_orm(string_value = "USER")]
    User,
    #[sea_orm(string_value = "OWNER")]
    Owner,
    #[sea_orm(string_value = "PARTNER")]
    Partner,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PropertyType {
    #[sea_orm(string_value = "APARTMENT")]
    Apartment,
    #[sea_orm(string_value = "HOUSE")]
    House,
    #[sea_orm(string_value = "STUDIO")]
    Studio,
    #[sea_orm(string_value = "CONDO")]
    Condo,
    #[sea_orm(string_value = "TOWNHOUSE")]
    Townhouse,
    #[sea_orm(string_value = "ROOM")]
    Room,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InteractionKind {
    #[sea_orm(string_value = "VIEW")]
    View,
    #[sea_orm(string_value = "LIKE")]
    Like,
    #[sea_orm(string_value = "SAVE")]
    Save,
    #[sea_orm(string_value = "INQUIRY")]
    Inquiry,
    #[sea_orm(string_value = "DISMISS")]
    Dismiss,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Amenity {
    #[sea_orm(string_value = "PARKING")]
    Parking,
    #[sea_orm(string_value = "BALCONY")]
    Balcony,
    #[sea_orm(string_value = "ELEVATOR")]
    Elevator,
    #[sea_orm(string_value = "WASHER")]
    Washer,
    #[sea_orm(string_value = "DISHWASHER")]
    Dishwasher,
    #[sea_orm(string_value = "AIR_CONDITIONING")]
    AirConditioning,
    #[sea_orm(string_value = "FURNISHED")]
    Furnished,
    #[sea_orm(string_value = "PETS_ALLOWED")]
    PetsAllowed,
    #[sea_orm(string_value = "GARDEN")]
    Garden,
    #[sea_orm(string_value = "GYM")]
    Gym,
    #[sea_orm(string_value = "POOL")]
    Pool,
    #[sea_orm(string_value = "DOORMAN")]
    Doorman,
}
