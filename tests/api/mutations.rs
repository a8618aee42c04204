use crate::helpers::{Db, TestApp, code, gid};
use entity::Role;
use serde_json::{Value, json};

const CREATE: &str = "mutation($input: CreatePropertyInput!) { createProperty(input: $input) {
  id title monthlyPrice isActive amenities images { url position } owner { id } } }";
const UPDATE: &str =
    "mutation($id: ID!, $input: UpdatePropertyInput!) { updateProperty(id: $id, input: $input) {
  id title monthlyPrice amenities updatedAt } }";
const DEACTIVATE: &str = "mutation($id: ID!) { deactivateProperty(id: $id) { id isActive } }";
const GET: &str =
    "query($id: ID!) { property(id: $id) { id title isActive stats { likes saves } } }";
const RECORD: &str = "mutation($id: ID!, $type: InteractionType!) { recordInteraction(propertyId: $id, type: $type) {
  id type property { id } user { id } } }";

fn listing() -> Value {
    json!({
        "title": "Loft by the canal", "description": "Bright loft with a balcony over the canal.",
        "monthlyPrice": 1850, "city": "Amsterdam", "neighbourhood": "Jordaan",
        "latitude": 52.37, "longitude": 4.88, "bedrooms": 2, "bathrooms": 1, "area": 75,
        "propertyType": "APARTMENT", "amenities": ["BALCONY", "WASHER", "BALCONY"],
        "imageUrls": ["https://img.example/1.jpg", "https://img.example/2.jpg"]
    })
}

async fn listing_lifecycle(db: Db) {
    let app = TestApp::spawn(db).await;
    let u = app.seed(30, 30, 50).await;
    let owner = app.token(u.owner, Role::Owner);
    let other = app.token(u.other_owner, Role::Owner);
    let user = app.token(u.user, Role::User);
    let admin = app.token(u.admin, Role::Admin);

    // Who may list.
    let (_, body) = app.gql(CREATE, json!({ "input": listing() }), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let (_, body) = app
        .gql(CREATE, json!({ "input": listing() }), Some(&user))
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    let mut bad = listing();
    bad["monthlyPrice"] = json!(-5);
    let (_, body) = app.gql(CREATE, json!({ "input": bad }), Some(&owner)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let mut bad = listing();
    bad["imageUrls"] = json!(["javascript:alert(1)"]);
    let (_, body) = app.gql(CREATE, json!({ "input": bad }), Some(&owner)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");

    let created = app
        .data(CREATE, json!({ "input": listing() }), Some(&owner))
        .await["createProperty"]
        .clone();
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(created["owner"]["id"], json!(gid("User", u.owner)));
    assert_eq!(created["amenities"], json!(["BALCONY", "WASHER"]));
    assert_eq!(
        created["images"][1],
        json!({ "url": "https://img.example/2.jpg", "position": 1 })
    );
    assert_eq!(
        app.data(GET, json!({ "id": id }), None).await["property"]["title"],
        "Loft by the canal"
    );

    // Who may change it.
    let (_, body) = app
        .gql(
            UPDATE,
            json!({ "id": id, "input": { "monthlyPrice": 1 } }),
            Some(&other),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    let (_, body) = app
        .gql(
            UPDATE,
            json!({ "id": id, "input": { "title": "" } }),
            Some(&owner),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let updated = app
        .data(
            UPDATE,
            json!({ "id": id, "input": { "monthlyPrice": 1700, "amenities": ["GYM"] } }),
            Some(&owner),
        )
        .await;
    assert_eq!(updated["updateProperty"]["monthlyPrice"], 1700);
    assert_eq!(updated["updateProperty"]["amenities"], json!(["GYM"]));
    assert_eq!(
        updated["updateProperty"]["title"], "Loft by the canal",
        "unset fields stay"
    );
    let by_admin = app
        .data(
            UPDATE,
            json!({ "id": id, "input": { "title": "Canal loft" } }),
            Some(&admin),
        )
        .await;
    assert_eq!(by_admin["updateProperty"]["title"], "Canal loft");

    // Interactions count on the listing.
    let (_, body) = app
        .gql(RECORD, json!({ "id": id, "type": "LIKE" }), None)
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let rec = app
        .data(RECORD, json!({ "id": id, "type": "LIKE" }), Some(&user))
        .await;
    assert_eq!(rec["recordInteraction"]["type"], "LIKE");
    assert_eq!(
        rec["recordInteraction"]["user"]["id"],
        json!(gid("User", u.user))
    );
    app.data(RECORD, json!({ "id": id, "type": "SAVE" }), Some(&user))
        .await;
    let got = app.data(GET, json!({ "id": id }), None).await;
    assert_eq!(got["property"]["stats"], json!({ "likes": 1, "saves": 1 }));
    let mine = app.data("{ me { interactions(first: 1) { edges { node { type property { id } } } } savedProperties(first: 5) { totalCount edges { node { id } } } } }", json!({}), Some(&user)).await;
    assert_eq!(
        mine["me"]["interactions"]["edges"][0]["node"]["type"],
        "SAVE"
    );
    assert_eq!(
        mine["me"]["savedProperties"]["edges"][0]["node"]["id"],
        json!(id)
    );

    // Deactivation: gone for the public, kept for the owner.
    let (_, body) = app.gql(DEACTIVATE, json!({ "id": id }), Some(&user)).await;
    assert_eq!(code(&body), "FORBIDDEN");
    let off = app
        .data(DEACTIVATE, json!({ "id": id }), Some(&owner))
        .await;
    assert_eq!(off["deactivateProperty"]["isActive"], false);
    assert_eq!(
        app.data(GET, json!({ "id": id }), None).await["property"],
        Value::Null
    );
    assert_eq!(
        app.data(GET, json!({ "id": id }), Some(&other)).await["property"],
        Value::Null
    );
    assert_eq!(
        app.data(GET, json!({ "id": id }), Some(&owner)).await["property"]["isActive"],
        false
    );
    let q = "{ properties(first: 50, filter: { active: false }) { edges { node { id } } } }";
    let (_, body) = app.gql(q, json!({}), None).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let inactive = app.data(q, json!({}), Some(&owner)).await;
    let listed: Vec<&Value> = inactive["properties"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["node"]["id"])
        .collect();
    assert!(listed.contains(&&json!(id)));
    let (_, body) = app
        .gql(RECORD, json!({ "id": id, "type": "VIEW" }), Some(&user))
        .await;
    assert_eq!(
        code(&body),
        "NOT_FOUND",
        "no interactions with inactive listings"
    );
    let (_, body) = app
        .gql(
            UPDATE,
            json!({ "id": gid("Property", uuid::Uuid::new_v4()), "input": { "title": "x" } }),
            Some(&owner),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
    app.cleanup().await;
}

#[tokio::test]
async fn listing_lifecycle_postgres() {
    listing_lifecycle(Db::Postgres).await;
}

#[tokio::test]
async fn listing_lifecycle_sqlite() {
    listing_lifecycle(Db::Sqlite).await;
}

#[tokio::test]
async fn preferences_are_validated_and_private() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(10, 20, 10).await;
    let user = app.token(u.user, Role::User);
    let m = "mutation($p: PreferencesInput!) { updatePreferences(input: $p) { preferences { cities minPrice maxPrice minBedrooms propertyTypes amenities } } }";
    let (_, body) = app
        .gql(
            m,
            json!({ "p": { "minPrice": 2000, "maxPrice": 1000 } }),
            Some(&user),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let (_, body) = app
        .gql(m, json!({ "p": { "cities": [""] } }), Some(&user))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let (_, body) = app
        .gql(m, json!({ "p": { "cities": ["Lisbon"] } }), None)
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let p = json!({ "cities": ["Lisbon", "Porto"], "minPrice": 800, "maxPrice": 1600, "minBedrooms": 2,
        "propertyTypes": ["APARTMENT"], "amenities": ["BALCONY"] });
    let got = app.data(m, json!({ "p": p }), Some(&user)).await;
    assert_eq!(got["updatePreferences"]["preferences"], p);
    let again = app
        .data(
            "{ me { preferences { cities maxPrice } } }",
            json!({}),
            Some(&user),
        )
        .await;
    assert_eq!(
        again["me"]["preferences"],
        json!({ "cities": ["Lisbon", "Porto"], "maxPrice": 1600 })
    );
    app.cleanup().await;
}

/// Image URLs are https with a host and no user info, on `graphql.image_hosts` when set; an
/// owner creates at most `graphql.max_listings_per_owner_per_day` listings a day (admins are not
/// limited), beyond which `createProperty` is QUOTA_EXCEEDED and nothing is stored.
#[tokio::test]
async fn image_urls_are_https_on_allowed_hosts_and_owners_have_a_daily_quota() {
    let app = TestApp::spawn_with(
        Db::Postgres,
        &[
            ("graphql.max_listings_per_owner_per_day", "2"),
            ("graphql.image_hosts", "*.cdn.example, img.example"),
        ],
    )
    .await;
    let u = app.seed(5, 5, 5).await;
    let owner = app.token(u.other_owner, Role::Owner);
    let admin = app.token(u.admin, Role::Admin);
    let create = |images: &[&str]| {
        json!({ "input": {
            "title": "Quota test flat", "description": "A listing made by the quota test",
            "monthlyPrice": 900, "city": "Berlin", "neighbourhood": "Mitte", "latitude": 52.5,
            "longitude": 13.4, "bedrooms": 1, "bathrooms": 1, "area": 30,
            "propertyType": "APARTMENT", "amenities": [], "imageUrls": images } })
    };
    for bad in [
        "http://img.example/a.jpg",
        "https://u:p@img.example/a.jpg",
        "https://evil.test/a.jpg",
    ] {
        let (_, body) = app.gql(CREATE, create(&[bad]), Some(&owner)).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{bad}: {body}");
    }
    // Owners created listings in the seed long ago; the quota counts the last 24 hours.
    for _ in 0..2 {
        let (_, body) = app
            .gql(
                CREATE,
                create(&["https://eu.cdn.example/a.jpg"]),
                Some(&owner),
            )
            .await;
        assert!(body["data"]["createProperty"]["id"].is_string(), "{body}");
    }
    let (_, body) = app.gql(CREATE, create(&[]), Some(&owner)).await;
    assert_eq!(code(&body), "QUOTA_EXCEEDED", "{body}");
    let (_, body) = app
        .gql(CREATE, create(&["https://img.example/b.jpg"]), Some(&admin))
        .await;
    assert!(
        body["data"]["createProperty"]["id"].is_string(),
        "admins: {body}"
    );
    app.cleanup().await;
}

/// A listing an admin took down stays down until an admin puts it back (its owner may still
/// edit it, not reactivate it), and a user demoted from OWNER may no longer change the
/// listings they made.
#[tokio::test]
async fn takedowns_stick_and_demoted_owners_lose_edit_rights() {
    // Roles are read on every request, so the demotion below counts at once.
    let app = TestApp::spawn_with(Db::Postgres, &[("auth.principal_cache_secs", "0")]).await;
    let u = app.seed(10, 5, 5).await;
    let owner = app.token(u.owner, Role::Owner);
    let admin = app.token(u.admin, Role::Admin);
    let (_, body) = app
        .gql(
            CREATE,
            json!({ "input": {
            "title": "Takedown test flat", "description": "A listing for the takedown test",
            "monthlyPrice": 900, "city": "Berlin", "neighbourhood": "Mitte", "latitude": 52.5,
            "longitude": 13.4, "bedrooms": 1, "bathrooms": 1, "area": 30,
            "propertyType": "APARTMENT", "amenities": [], "imageUrls": [] } }),
            Some(&owner),
        )
        .await;
    let id = body["data"]["createProperty"]["id"].clone();
    assert!(id.is_string(), "{body}");
    let (_, body) = app.gql(DEACTIVATE, json!({ "id": id }), Some(&admin)).await;
    assert_eq!(
        body["data"]["deactivateProperty"]["isActive"], false,
        "{body}"
    );
    let reactivate = json!({ "id": id, "input": { "isActive": true } });
    let (_, body) = app.gql(UPDATE, reactivate.clone(), Some(&owner)).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let (_, body) = app
        .gql(
            UPDATE,
            json!({ "id": id, "input": { "title": "Fixed title" } }),
            Some(&owner),
        )
        .await;
    assert_eq!(
        body["data"]["updateProperty"]["title"], "Fixed title",
        "{body}"
    );
    let (_, body) = app.gql(UPDATE, reactivate.clone(), Some(&admin)).await;
    assert!(body.get("errors").is_none(), "{body}");
    // Lifted: the owner manages it again, off and on.
    let (_, body) = app.gql(DEACTIVATE, json!({ "id": id }), Some(&owner)).await;
    assert_eq!(
        body["data"]["deactivateProperty"]["isActive"], false,
        "{body}"
    );
    let (_, body) = app.gql(UPDATE, reactivate, Some(&owner)).await;
    assert!(body.get("errors").is_none(), "{body}");
    // Demoted to USER (a fresh token with the new role): no more edits.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    entity::user::Entity::update_many()
        .col_expr(entity::user::Column::Role, Expr::value(entity::Role::User))
        .filter(entity::user::Column::Id.eq(u.owner))
        .exec(&app.db_connection().await)
        .await
        .expect("demote");
    let demoted = app.token(u.owner, Role::User);
    let (_, body) = app
        .gql(
            UPDATE,
            json!({ "id": id, "input": { "title": "Still mine?" } }),
            Some(&demoted),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    app.cleanup().await;
}
