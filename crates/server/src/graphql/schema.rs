use super::mutation::Mutation;
use super::query::Query;
use crate::graphql::GraphqlSettings;
use crate::store::Store;
use async_graphql::{EmptySubscription, Schema};

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema with its limits; `store` is absent only when printing the SDL. Depth, aliases
/// and the other shape limits are checked before execution by `limits::document` (which exempts
/// introspection from the depth limit) and cost by `limits::cost`; the directive limit here is
/// a second line behind them.
pub fn build_schema(settings: &GraphqlSettings, store: Option<Store>) -> AppSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_directives(settings.max_directives_per_field)
        .data(settings.clone());
    if !settings.introspection {
        builder = builder.disable_introspection();
    }
    if !settings.suggestions {
        builder = builder.disable_suggestions();
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
