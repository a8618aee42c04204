//! GraphQL mirrors of the entity enums; `remote` derives the conversions both ways so the two
//! cannot drift apart silently (a new variant fails to compile here).
use async_graphql::Enum;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::Role")]
pub enum Role {
    User,
    Owner,
    Partner,
    Admin,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::PropertyType")]
pub enum PropertyType {
    Apartment,
    House,
    Studio,
    Condo,
    Townhouse,
    Room,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::InteractionKind")]
pub enum InteractionType {
    View,
    Like,
    Save,
    Inquiry,
    Dismiss,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::Amenity")]
pub enum Amenity {
    Parking,
    Balcony,
    Elevator,
    Washer,
    Dishwasher,
    AirConditioning,
    Furnished,
    PetsAllowed,
    Garden,
    Gym,
    Pool,
    Doorman,
}
