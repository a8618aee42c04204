use crate::graphql::context::Ctx;
use crate::graphql::errors::{ApiError, ApiResult};
use crate::graphql::types::{Amenity, PropertyType, User};
use async_graphql::{Context, InputObject, Object};

#[derive(Default)]
pub(super) struct UserMutation;

/// Replaces the caller's preferences as a whole.
#[derive(InputObject)]
pub(super) struct PreferencesInput {
    #[graphql(default)]
    pub cities: Vec<String>,
    pub min_price: Option<i32>,
    pub max_price: Option<i32>,
    pub min_bedrooms: Option<i32>,
    #[graphql(default)]
    pub property_types: Vec<PropertyType>,
    #[graphql(default)]
    pub amenities: Vec<Amenity>,
}

impl PreferencesInput {
    fn validate(self) -> ApiResult<entity::Preferences> {
        if self.cities.len() > 20 {
            return Err(ApiError::bad_input("at most 20 cities"));
        }
        let mut cities = Vec::with_capacity(self.cities.len());
        for c in self.cities {
            let c = c.trim().to_owned();
            if c.is_empty() || c.chars().count() > 100 {
                return Err(ApiError::bad_input("a city must have 1 to 100 characters"));
            }
            if !cities.contains(&c) {
                cities.push(c);
            }
        }
        for (name, v) in [("minPrice", self.min_price), ("maxPrice", self.max_price)] {
            if v.is_some_and(|v| !(0..=1_000_000).contains(&v)) {
                return Err(ApiError::bad_input(format!(
                    "`{name}` must be between 0 and 1000000"
                )));
            }
        }
        if let (Some(a), Some(b)) = (self.min_price, self.max_price)
            && a > b
        {
            return Err(ApiError::bad_input("`minPrice` is greater than `maxPrice`"));
        }
        if self.min_bedrooms.is_some_and(|b| !(0..=50).contains(&b)) {
            return Err(ApiError::bad_input(
                "`minBedrooms` must be between 0 and 50",
            ));
        }
        // Every duplicate goes, not only adjacent ones (`dedup` alone would keep [A, B, A]).
        let mut types: Vec<entity::PropertyType> = Vec::new();
        for t in self.property_types.into_iter().map(Into::into) {
            if !types.contains(&t) {
                types.push(t);
            }
        }
        let mut amenities: Vec<entity::Amenity> =
            self.amenities.into_iter().map(Into::into).collect();
        amenities.sort();
        amenities.dedup();
        Ok(entity::Preferences {
            cities,
            min_price: self.min_price,
            max_price: self.max_price,
            min_bedrooms: self.min_bedrooms,
            property_types: types,
            amenities,
        })
    }
}

#[Object]
impl UserMutation {
    /// Sets what the signed-in user is looking for.
    async fn update_preferences(
        &self,
        ctx: &Context<'_>,
        input: PreferencesInput,
    ) -> async_graphql::Result<User> {
        let (user, _) = ctx.require_user()?;
        let prefs = input.validate()?;
        let updated = ctx
            .store()?
            .update_preferences(user, prefs)
            .await
            .map_err(ApiError::from)?;
        super::invalidate(ctx, crate::infra::cache::Changed::User(user)).await;
        Ok(User(updated))
    }
}
