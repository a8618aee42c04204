mod connection;
mod enums;
mod interaction;
mod property;
mod user;

pub use connection::{
    InteractionEdge, PropertyEdge, property_cursor, search_cursor,
    InteractionConnection, PageInfo, PropertyConnection, PropertyTotal, history_cursor,
    property_page_request, search_offset,
};
pub use enums::{Amenity, InteractionType, PropertyType, Role};
pub use interaction::Interaction;
pub use connection::page_size as connection_page_size;
pub use property::{visible as property_visible, Property, PropertyFilterInput, PropertyOrderBy, PropertyStats};
pub use user::{Preferences, User};
