mod map;
mod node;
mod property;
mod rate_limit;
mod recommendation;
mod user;

#[derive(async_graphql::MergedObject, Default)]
pub struct Query(
    property::PropertyQuery,
    user::UserQuery,
    node::NodeQuery,
    recommendation::RecommendationQuery,
    rate_limit::RateLimitQuery,
    map::MapQuery,
);
