mod connection;
mod enums;
mod interaction;
mod property;
mod recommendation;
mod user;

pub(crate) use connection::page_size as connection_page_size;
pub(crate) use connection::{
    InteractionConnection, PageInfo, PropertyConnection, PropertyEdge, PropertyTotal,
    history_cursor, property_cursor, property_page_request, search_cursor, search_offset,
};
pub(crate) use enums::{Amenity, InteractionType, PropertyType, Role};
pub(crate) use interaction::Interaction;
pub(crate) use property::{
    BoundsInput, Property, PropertyFilterInput, PropertyOrderBy, visible as property_visible,
};
pub(crate) use recommendation::{Recommendation, recommendations_for};
pub(crate) use user::User;
