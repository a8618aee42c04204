mod interaction;
mod listing;
mod property;
mod user;

#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    property::PropertyMutation,
    interaction::InteractionMutation,
    user::UserMutation,
);

/// After a write: the entity cache forgets what changed, on every instance.
pub(super) async fn invalidate(
    ctx: &async_graphql::Context<'_>,
    changed: crate::infra::cache::Changed,
) {
    if let Ok(caches) = ctx.data::<std::sync::Arc<crate::infra::cache::Caches>>() {
        caches.invalidate(changed).await;
    }
}
