mod node;
mod property;
mod user;

#[derive(async_graphql::MergedObject, Default)]
pub struct Query(property::PropertyQuery, user::UserQuery, node::NodeQuery);
