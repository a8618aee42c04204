mod connection;
mod enums;
mod interaction;
mod property;
mod recommendation;
mod user;

pub use connection::page_size as connection_page_size;
pub use connection::{
    InteractionConnection, InteractionEdge, PageInfo, PropertyConnection, PropertyEdge,
    PropertyTotal, history_cursor, property_cursor, property_page_request, search_cursor,
    search_offset,
};
pub use enums::{Amenity, InteractionType, PropertyType, Role};
pub use interaction::Interaction;
pub use property::{
    Property, PropertyFilterInput, PropertyOrderBy, PropertyStats, visible as property_visible,
};
pub use recommendation::{Recommendation, RecommendationSource, recommendations_for};
pub use user::{Preferences, User};
