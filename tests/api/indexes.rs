//! The main queries use the indexes made for them (PostgreSQL, with planner statistics from a
//! realistically sized data set). docs/ARCHITECTURE.md shows the same plans.
use crate::helpers::{Db, TestApp};
use rentgraph::store::{
    OrderDirection, PageRequest, PropertyFilter, PropertyOrder, PropertyOrderField,
};

#[tokio::test]
async fn main_queries_use_their_indexes() {
    let app = TestApp::spawn(Db::Postgres).await;
    app.seed(20_000, 2_000, 60_000).await;
    let store = &app.server().state.store();
    let first = PageRequest::Forward {
        limit: 20,
        after: None,
    };
    let active = PropertyFilter {
        active: Some(true),
        ..Default::default()
    };

    let by_city = PropertyFilter {
        city: Some("Berlin".into()),
        min_price: Some(900),
        max_price: Some(1200),
        ..active.clone()
    };
    let cheapest = PropertyOrder {
        field: PropertyOrderField::Price,
        direction: OrderDirection::Asc,
    };
    let plan = store
        .explain(
            &store
                .page_properties_statement(&by_city, cheapest, first)
                .expect("stmt"),
        )
        .await
        .expect("explain");
    assert!(plan.contains("properties_active_city_price"), "{plan}");

    let by_type = PropertyFilter {
        property_types: vec![entity::PropertyType::Townhouse],
        min_price: Some(3000),
        max_price: Some(3300),
        min_bedrooms: Some(3),
        ..active.clone()
    };
    let plan = store
        .explain(
            &store
                .page_properties_statement(&by_type, cheapest, first)
                .expect("stmt"),
        )
        .await
        .expect("explain");
    assert!(
        plan.contains("properties_active_type_price_bedrooms")
            || plan.contains("properties_active_price"),
        "{plan}"
    );

    let plan = store
        .explain(
            &store
                .page_properties_statement(&active, PropertyOrder::default(), first)
                .expect("stmt"),
        )
        .await
        .expect("explain");
    assert!(plan.contains("properties_active_created"), "{plan}");

    let plan = store
        .explain(
            &store
                .search_statement("Kreuzberg pool", &active, 2000)
                .expect("stmt"),
        )
        .await
        .expect("explain");
    assert!(plan.contains("properties_search"), "{plan}");

    let users = store.users_by_ids(&[]).await.expect("no users");
    assert!(users.is_empty());
    let some_users: Vec<uuid::Uuid> =
        rentgraph_lab::datagen::generate(rentgraph_lab::datagen::SeedOptions {
            properties: 0,
            users: 2_000,
            interactions: 0,
            seed: 7,
            world: Default::default(),
        })
        .users
        .iter()
        .take(20)
        .map(|u| u.id)
        .collect();
    let plan = store
        .explain(
            &store
                .interactions_statement(&some_users, 6, None)
                .expect("stmt"),
        )
        .await
        .expect("explain");
    assert!(plan.contains("interactions_user_time"), "{plan}");
    app.cleanup().await;
}

/// The popularity score exists twice: as the `property_stats.score` generated column the
/// popularity index walks, and as `Popularity::score` in the features and baselines. They
/// must agree on every backend, or the fallback ranking and the model's feature disagree.
#[tokio::test]
async fn the_stored_popularity_score_is_the_one_the_code_computes() {
    use rentgraph_model::features::Popularity;
    use std::collections::HashMap;
    for db in [Db::Postgres, Db::Sqlite] {
        let app = TestApp::spawn(db).await;
        app.seed(80, 30, 1500).await;
        let store = app.server().state.store();
        let mut counted: HashMap<uuid::Uuid, Popularity> = HashMap::new();
        for i in store.all_interactions().await.expect("interactions") {
            counted.entry(i.property_id).or_default().add(i.kind);
        }
        let stored = store.popular_listing_ids(10_000).await.expect("stats");
        assert!(
            stored.len() > 10,
            "{db:?}: {} active listings",
            stored.len()
        );
        for (id, score) in stored {
            let computed = counted.get(&id).copied().unwrap_or_default().score();
            assert_eq!(score, computed, "{db:?}: listing {id}");
        }
    }
}
