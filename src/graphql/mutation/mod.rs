mod interaction;
mod property;
mod user;

#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    property::PropertyMutation,
    interaction::InteractionMutation,
    user::UserMutation,
);
