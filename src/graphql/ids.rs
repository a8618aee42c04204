//! Relay global ids: base64 of `Type:uuid`, opaque to clients, so `node(id:)` can find any
//! object and ids of different types can never be confused. Raw UUIDs are accepted too where
//! the type is known from the argument, which helps operators with ids from logs or SQL.
use super::errors::ApiError;
use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Property,
    User,
    Interaction,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Property => "Property",
            Kind::User => "User",
            Kind::Interaction => "Interaction",
        }
    }
}

pub fn encode(kind: Kind, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{}", kind.name(), id)))
}

/// Any global id: its type and uuid.
pub fn decode_any(id: &str) -> Result<(Kind, Uuid), ApiError> {
    let bad = || ApiError::bad_input(format!("`{id}` is not a valid id"));
    let raw = URL_SAFE_NO_PAD
        .decode(id.trim_end_matches('='))
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (kind, uuid) = text.split_once(':').ok_or_else(bad)?;
    let kind = match kind {
        "Property" => Kind::Property,
        "User" => Kind::User,
        "Interaction" => Kind::Interaction,
        _ => return Err(bad()),
    };
    Ok((kind, Uuid::parse_str(uuid).map_err(|_| bad())?))
}

/// A global id (or raw uuid) that must be of `kind`.
pub fn decode(kind: Kind, id: &str) -> Result<Uuid, ApiError> {
    if let Ok(uuid) = Uuid::parse_str(id) {
        return Ok(uuid);
    }
    match decode_any(id)? {
        (k, uuid) if k == kind => Ok(uuid),
        _ => Err(ApiError::bad_input(format!(
            "`{id}` is not the id of a {}",
            kind.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_kinds() {
        let u = Uuid::new_v4();
        let id = encode(Kind::Property, u);
        assert_eq!(decode(Kind::Property, &id).ok(), Some(u));
        assert!(decode(Kind::User, &id).is_err());
        assert_eq!(decode(Kind::User, &u.to_string()).ok(), Some(u));
        assert!(decode_any("not base64!").is_err());
        assert!(decode_any(&URL_SAFE_NO_PAD.encode("Property:nope")).is_err());
    }
}
