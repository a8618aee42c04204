//! Limits on what one operation may ask for, checked before anything runs. `document` bounds
//! the text and the shape of a GraphQL document (size, tokens, depth, aliases, root fields,
//! directives, duplicated fields), and `input`
//! bounds every string and list argument so that parsing and validation themselves cannot be made
//! expensive; each limit has its own error code so a client knows which one it hit.
pub mod document;
pub mod input;

pub use document::{DocumentLimits, LimitExceeded};
pub use input::InputLimits;
