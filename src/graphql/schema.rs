use super::mutation::Mutation;
use super::query::Query;
use crate::config::GraphqlSettings;
use crate::store::Store;
use async_graphql::{EmptySubscription, Schema};

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema with its limits; `store` is absent only when printing the SDL.
pub fn build_schema(settings: &GraphqlSettings, store: Option<Store>) -> AppSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_depth(settings.max_depth)
        .limit_complexity(settings.max_complexity)
        .data(settings.clone());
    if !settings.introspection {
        builder = builder.disable_introspection();
    }
    if let Some(store) = store {
        builder = builder.data(store);
    }
    builder.finish()
}

/// The schema in SDL, as committed in schema.graphql.
pub fn sdl(settings: &GraphqlSettings) -> String {
    build_schema(settings, None).sdl()
}
