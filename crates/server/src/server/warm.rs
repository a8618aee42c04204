//! Cache warming at start and on a timer: the most popular listings are read through the
//! store in batches and put into both cache levels. It lives with the server, not the cache,
//! because it reads the store, which the cache (below it) must not know.
use crate::infra::cache::Caches;
use crate::store::{Store, StoreError};
use entity::property;
use uuid::Uuid;

/// Loads the `n` most popular listings, their images, amenities and owners into the cache, in
/// batches of `chunk` (one statement per kind and batch), so the first requests after a deploy
/// find them warm. Returns how many listings were loaded.
pub(super) async fn warm(
    caches: &Caches,
    store: &Store,
    n: usize,
    chunk: usize,
) -> Result<usize, StoreError> {
    if !caches.enabled || n == 0 {
        return Ok(0);
    }
    let ids: Vec<Uuid> = store
        .popular_listing_ids(n as u64)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut loaded = 0;
    for part in ids.chunks(chunk.max(1)) {
        // Versions before the loads, as a read-through does, so a change made while warming
        // is not undone by the warm fill.
        let bases = (
            caches.properties.fill_base(part).await,
            caches.images.fill_base(part).await,
            caches.amenities.fill_base(part).await,
        );
        let listings = store.properties_by_ids(part).await?;
        let owners: Vec<Uuid> = listings.iter().map(|p| p.owner_id).collect();
        let owners_base = caches.users.fill_base(&owners).await;
        let images = store.images_for(part).await?;
        let amenities = store.amenities_for(part).await?;
        let users = store.users_by_ids(&owners).await?;
        loaded += listings.len();
        let listings: Vec<(Uuid, property::Model)> =
            listings.into_iter().map(|p| (p.id, p)).collect();
        caches.properties.put_many(&listings, &bases.0).await;
        caches
            .images
            .put_many(&images.into_iter().collect::<Vec<_>>(), &bases.1)
            .await;
        caches
            .amenities
            .put_many(&amenities.into_iter().collect::<Vec<_>>(), &bases.2)
            .await;
        caches
            .users
            .put_many(
                &users.into_iter().map(|u| (u.id, u)).collect::<Vec<_>>(),
                &owners_base,
            )
            .await;
    }
    Ok(loaded)
}
