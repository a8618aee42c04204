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

    proptest::proptest! {
        #[test]
        fn any_id_round_trips_and_keeps_its_kind(bytes in proptest::prelude::any::<u128>(), k in 0usize..3) {
            let kinds = [Kind::Property, Kind::User, Kind::Interaction];
            let u = Uuid::from_u128(bytes);
            let id = encode(kinds[k], u);
            proptest::prop_assert_eq!(decode_any(&id).ok(), Some((kinds[k], u)));
            let other = kinds[(k + 1) % 3];
            proptest::prop_assert!(decode(other, &id).is_err());
        }

        #[test]
        fn arbitrary_text_is_an_error_never_a_panic(text in ".{0,200}") {
            let _ = decode_any(&text);
            let _ = decode(Kind::Property, &text);
        }

        #[test]
        fn arbitrary_base64_payloads_are_errors(payload in ".{0,100}") {
            let id = URL_SAFE_NO_PAD.encode(payload.as_bytes());
            if let Ok((_, _)) = decode_any(&id) {
                // Only well-formed `Type:uuid` payloads decode.
                proptest::prop_assert!(payload.contains(':'));
            }
        }
    }
}
