//! sea-orm entities, one module per table. Enums are stored as short strings so the same
//! schema works on PostgreSQL and SQLite without native enum types.
pub mod enums;
pub mod interaction;
pub mod property;
pub mod property_amenity;
pub mod property_image;
pub mod property_stat;
pub mod user;

pub use enums::{Amenity, InteractionKind, PropertyType, Role};
pub use user::Preferences;
