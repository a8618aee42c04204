//! Interactions are state where they are state: one account repeating a like, a save, an
//! inquiry or a dismissal, or viewing a listing again the same day, moves no counter (so
//! popularity counts people); likes and saves can be taken back; the migration that made it so
//! keeps what it folds away.
use crate::helpers::{Db, TestApp};
use entity::Role;
use serde_json::{Value, json};

const RECORD: &str = "mutation($id: ID!, $t: InteractionType!) { recordInteraction(propertyId: $id, type: $t) { id } }";
const STATS: &str = "query($id: ID!) { property(id: $id) { stats { views likes saves } } }";

async fn stats(app: &TestApp, id: &str) -> Value {
    app.data(STATS, json!({ "id": id }), None).await["property"]["stats"].clone()
}

async fn record(app: &TestApp, id: &str, kind: &str, token: &str) -> Value {
    app.data(RECORD, json!({ "id": id, "t": kind }), Some(token))
        .await["recordInteraction"]["id"]
        .clone()
}

#[tokio::test]
async fn one_account_repeating_itself_counts_once() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(10, 10, 0).await;
    let id = app.first_listing().await;
    let before = stats(&app, &id).await;
    let (one, two) = (
        app.token(u.user, Role::User),
        app.token(u.owner, Role::Owner),
    );
    let first_like = record(&app, &id, "LIKE", &one).await;
    for _ in 0..3 {
        assert_eq!(record(&app, &id, "LIKE", &one).await, first_like);
    }
    let first_view = record(&app, &id, "VIEW", &one).await;
    assert_eq!(record(&app, &id, "VIEW", &one).await, first_view);
    record(&app, &id, "LIKE", &two).await;
    record(&app, &id, "VIEW", &two).await;
    let after = stats(&app, &id).await;
    let moved = |k: &str| after[k].as_i64().unwrap_or(0) - before[k].as_i64().unwrap_or(0);
    assert_eq!(
        (moved("likes"), moved("views")),
        (2, 2),
        "{before} -> {after}"
    );
    // Concurrent repeats cannot both write one: the unique index holds, not a read first.
    let tries = (0..8).map(|_| record(&app, &id, "SAVE", &one));
    let ids = futures_util::future::join_all(tries).await;
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(moved_saves(&app, &id, &before).await, 1);
    app.cleanup().await;
}

async fn moved_saves(app: &TestApp, id: &str, before: &Value) -> i64 {
    stats(app, id).await["saves"].as_i64().unwrap_or(0) - before["saves"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn likes_and_saves_can_be_taken_back() {
    for db in [Db::Sqlite, Db::Postgres] {
        let app = TestApp::spawn(db).await;
        let u = app.seed(10, 10, 0).await;
        let id = app.first_listing().await;
        let token = app.token(u.user, Role::User);
        let before = stats(&app, &id).await;
        record(&app, &id, "SAVE", &token).await;
        record(&app, &id, "LIKE", &token).await;
        let saved = "{ me { savedProperties(first: 10) { totalCount edges { node { id } } } } }";
        let listed = app.data(saved, json!({}), Some(&token)).await;
        assert_eq!(listed["me"]["savedProperties"]["totalCount"], 1, "{listed}");
        // A listing that left the market can still be unsaved.
        let admin = app.token(u.admin, Role::Admin);
        app.data(
            "mutation($id: ID!) { deactivateProperty(id: $id) { id } }",
            json!({ "id": id }),
            Some(&admin),
        )
        .await;
        let unsave = "mutation($id: ID!) { unsaveProperty(propertyId: $id) }";
        let unlike = "mutation($id: ID!) { unlikeProperty(propertyId: $id) }";
        let took = app.data(unsave, json!({ "id": id }), Some(&token)).await;
        assert_eq!(took["unsaveProperty"], true);
        let again = app.data(unsave, json!({ "id": id }), Some(&token)).await;
        assert_eq!(again["unsaveProperty"], false, "nothing left to take back");
        assert_eq!(
            app.data(unlike, json!({ "id": id }), Some(&token)).await["unlikeProperty"],
            true
        );
        let listed = app.data(saved, json!({}), Some(&token)).await;
        assert_eq!(listed["me"]["savedProperties"]["totalCount"], 0, "{listed}");
        let history = app
            .data(
                "{ me { interactions(first: 10) { edges { node { type } } } } }",
                json!({}),
                Some(&token),
            )
            .await;
        assert_eq!(
            history["me"]["interactions"]["edges"],
            json!([]),
            "{history}"
        );
        let after =
            app.data(STATS, json!({ "id": id }), Some(&admin)).await["property"]["stats"].clone();
        assert_eq!(
            (after["likes"].clone(), after["saves"].clone()),
            (before["likes"].clone(), before["saves"].clone())
        );
        // Anonymous callers hold nothing to take back.
        let (_, body) = app.gql(unlike, json!({ "id": id }), None).await;
        assert_eq!(crate::helpers::code(&body), "UNAUTHENTICATED", "{body}");
        app.cleanup().await;
    }
}

/// The migration folds repeats away into `interactions_collapsed` (nothing is lost) and
/// recounts the counters from what is left, on both databases.
#[tokio::test]
async fn the_migration_keeps_what_it_folds_away() {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;
    for db in [Db::Sqlite, Db::Postgres] {
        let app = TestApp::spawn(db).await;
        let u = app.seed(5, 10, 0).await;
        let id = app.first_listing().await;
        let listing = rentgraph::graphql::ids::decode(rentgraph::graphql::ids::Kind::Property, &id)
            .expect("id");
        let store = app.server().state.store().clone();
        // Back to before migration 7 (and the ones after it).
        let after_seven = migration::Migrator::migrations().len() as u32 - 6;
        migration::Migrator::down(store.conn(), Some(after_seven))
            .await
            .expect("down");
        let backend = store.backend();
        let now = chrono::Utc::now();
        for (kind, minutes) in [
            ("LIKE", 0),
            ("LIKE", 1),
            ("LIKE", 2),
            ("VIEW", 0),
            ("VIEW", 5),
        ] {
            let at = now - chrono::Duration::minutes(minutes);
            store
                .conn()
                .execute_raw(sea_orm::Statement::from_sql_and_values(
                    backend,
                    if backend == sea_orm::DbBackend::Postgres {
                        "INSERT INTO interactions (id, user_id, property_id, kind, created_at) VALUES ($1, $2, $3, $4, $5)"
                    } else {
                        "INSERT INTO interactions (id, user_id, property_id, kind, created_at) VALUES (?, ?, ?, ?, ?)"
                    },
                    [
                        uuid::Uuid::new_v4().into(),
                        u.user.into(),
                        listing.into(),
                        kind.into(),
                        at.into(),
                    ],
                ))
                .await
                .expect("insert");
        }
        migration::Migrator::up(store.conn(), None)
            .await
            .expect("up");
        let count = |sql: &'static str| {
            let store = store.clone();
            async move {
                store
                    .conn()
                    .query_one_raw(sea_orm::Statement::from_string(backend, sql))
                    .await
                    .expect("count")
                    .expect("row")
                    .try_get_by_index::<i64>(0)
                    .expect("n")
            }
        };
        assert_eq!(count("SELECT COUNT(*) FROM interactions").await, 2);
        assert_eq!(
            count("SELECT COUNT(*) FROM interactions_collapsed").await,
            3
        );
        assert_eq!(
            count("SELECT CAST(SUM(likes) + SUM(views) AS BIGINT) FROM property_stats").await,
            2
        );
        app.cleanup().await;
    }
}
