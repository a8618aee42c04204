use crate::helpers::{Db, TestApp, code, gid};
use entity::Role;
use serde_json::{Value, json};

const USER: &str = "query($id: ID!) { user(id: $id) { id displayName email role
  interactions(first: 2) { totalCount } } }";
const PUBLIC: &str = "query($id: ID!) { user(id: $id) { id displayName email } }";

#[tokio::test]
async fn private_fields_are_for_the_user_and_admins() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(40, 30, 2000).await;
    let user = app.token(u.user, Role::User);
    let other = app.token(u.other_owner, Role::Owner);
    let admin = app.token(u.admin, Role::Admin);
    let id = gid("User", u.user);

    let own = app.data(USER, json!({ "id": id }), Some(&user)).await;
    assert!(
        own["user"]["email"]
            .as_str()
            .is_some_and(|e| e.contains('@'))
    );
    assert!(own["user"]["interactions"]["totalCount"].as_i64().is_some());
    let by_admin = app.data(USER, json!({ "id": id }), Some(&admin)).await;
    assert_eq!(by_admin["user"]["email"], own["user"]["email"]);

    let seen = app.data(PUBLIC, json!({ "id": id }), Some(&other)).await;
    assert_eq!(
        seen["user"]["email"],
        Value::Null,
        "others do not see the email"
    );
    assert!(seen["user"]["displayName"].as_str().is_some());
    let (_, body) = app.gql(USER, json!({ "id": id }), Some(&other)).await;
    assert_eq!(code(&body), "FORBIDDEN", "others do not see the history");

    let (_, body) = app.gql(PUBLIC, json!({ "id": id }), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert_eq!(
        app.data("{ me { id } }", json!({}), None).await["me"],
        Value::Null
    );
    assert_eq!(
        app.data("{ me { id } }", json!({}), Some(&user)).await["me"]["id"],
        json!(id)
    );
    // A raw UUID works where the type is known.
    let raw = app
        .data(PUBLIC, json!({ "id": u.user.to_string() }), Some(&user))
        .await;
    assert_eq!(raw["user"]["id"], json!(id));
    app.cleanup().await;
}

#[tokio::test]
async fn node_finds_every_kind_of_object() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let u = app.seed(20, 20, 300).await;
    let user = app.token(u.user, Role::User);
    let hist = app
        .data(
            "{ me { interactions(first: 1) { edges { node { id } } } } }",
            json!({}),
            Some(&user),
        )
        .await;
    let page = app
        .data(
            "{ properties(first: 1) { edges { node { id title } } } }",
            json!({}),
            None,
        )
        .await;
    let property_id = page["properties"]["edges"][0]["node"]["id"].clone();
    let q = "query($id: ID!) { node(id: $id) { __typename id ... on Property { title } ... on User { displayName } ... on Interaction { type } } }";
    let p = app.data(q, json!({ "id": property_id }), None).await;
    assert_eq!(p["node"]["__typename"], "Property");
    assert_eq!(
        p["node"]["title"],
        page["properties"]["edges"][0]["node"]["title"]
    );
    let me = app
        .data(q, json!({ "id": gid("User", u.user) }), Some(&user))
        .await;
    assert_eq!(me["node"]["__typename"], "User");
    if let Some(iid) = hist["me"]["interactions"]["edges"][0]["node"]["id"].as_str() {
        let i = app.data(q, json!({ "id": iid }), Some(&user)).await;
        assert_eq!(i["node"]["__typename"], "Interaction");
        let other = app.token(u.other_owner, Role::Owner);
        assert_eq!(
            app.data(q, json!({ "id": iid }), Some(&other)).await["node"],
            Value::Null
        );
    }
    assert_eq!(
        app.data(
            q,
            json!({ "id": gid("Property", uuid::Uuid::new_v4()) }),
            None
        )
        .await["node"],
        Value::Null
    );
    let (_, body) = app.gql(q, json!({ "id": "bm9wZQ" }), None).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    app.cleanup().await;
}
