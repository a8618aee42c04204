//! HTTP caching: what a browser or a CDN in front of `GET /graphql` sees. Public listing pages by
//! persisted id are `public, max-age` with a strong ETag and 304s, with the caller's cost in
//! headers; signed-in answers are private; per-viewer fields, errors and mutations are never
//! stored.
use crate::helpers::{Db, TestApp, gid};
use entity::Role;
use reqwest::header::{CACHE_CONTROL, ETAG, VARY};
use serde_json::{Value, json};

/// The shipped trusted document `PartnerListings` (config/persisted/partner-listings.json).
const LISTINGS: &str = "sha256:dbb8bc50024386e4f7e069304203c74472aec3f766c8ebf9c7c14e179c58e823";

fn header(resp: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn get(app: &TestApp, params: &[(&str, &str)], extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app
        .client
        .get(format!("{}/graphql", app.base))
        .query(params);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.expect("get")
}

#[tokio::test]
async fn a_cdn_can_serve_public_listing_pages_by_persisted_id_with_304s() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(30, 10, 10).await;
    let city: String = app
        .data(
            "{ properties(first: 1) { edges { node { city } } } }",
            json!({}),
            None,
        )
        .await["properties"]["edges"][0]["node"]["city"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let vars = json!({ "city": city, "first": 5 }).to_string();
    let page = [("documentId", LISTINGS), ("variables", vars.as_str())];

    let first = get(&app, &page, &[]).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, CACHE_CONTROL), "public, max-age=60");
    let vary = header(&first, VARY).to_lowercase();
    assert!(
        vary.contains("authorization") && vary.contains("accept"),
        "{vary}"
    );
    let tag = header(&first, ETAG);
    assert!(
        tag.starts_with('"') && tag.len() == 34,
        "a strong ETag: {tag}"
    );
    // The caller's budget is in headers, not in the body every caller of the page shares.
    assert!(header(&first, "x-query-cost").starts_with("requested="));
    assert!(header(&first, "ratelimit-policy").starts_with("\"cost\";q="));
    assert!(header(&first, "ratelimit").starts_with("\"cost\";r="));
    let body: Value = first.json().await.expect("json");
    assert!(
        body["data"]["properties"]["totalCount"].is_number(),
        "{body}"
    );
    assert!(body.get("extensions").is_none(), "{body}");

    // Asked again: the same tag, and with If-None-Match a 304 without a body.
    let again = get(&app, &page, &[]).await;
    assert_eq!(header(&again, ETAG), tag);
    let revalidated = get(&app, &page, &[("if-none-match", tag.as_str())]).await;
    assert_eq!(revalidated.status(), 304);
    assert_eq!(header(&revalidated, ETAG), tag);
    assert_eq!(header(&revalidated, CACHE_CONTROL), "public, max-age=60");
    assert!(revalidated.bytes().await.unwrap_or_default().is_empty());
    let other = get(&app, &page, &[("if-none-match", "\"0000\"")]).await;
    assert_eq!(other.status(), 200);

    // The listing changes: the old tag no longer matches and the new answer has a new one.
    let listing = app
        .data(
            "query($c: String!) { properties(first: 1, filter: { city: $c }, orderBy: { field: PRICE, direction: ASC }) { edges { node { id owner { id } } } } }",
            json!({ "c": city }),
            None,
        )
        .await["properties"]["edges"][0]["node"]
        .clone();
    let owner_id = crate::helpers::decode_gid(listing["owner"]["id"].as_str().unwrap_or_default());
    let owner = app.token(owner_id.parse().expect("uuid"), Role::Owner);
    app.data(
        "mutation($id: ID!) { updateProperty(id: $id, input: { title: \"Renamed for the cache test\" }) { id } }",
        json!({ "id": listing["id"] }),
        Some(&owner),
    )
    .await;
    let changed = get(&app, &page, &[("if-none-match", tag.as_str())]).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(header(&changed, ETAG), tag);

    // Signed in, the same page is private: it may hold what only this caller sees.
    let token = app.token(u.user, Role::User);
    let bearer = format!("Bearer {token}");
    let private = get(&app, &page, &[("authorization", bearer.as_str())]).await;
    assert_eq!(private.status(), 200);
    assert_eq!(header(&private, CACHE_CONTROL), "private, max-age=60");
    app.cleanup().await;
}

#[tokio::test]
async fn per_viewer_fields_errors_mutations_and_refusals_are_never_stored() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let u = app.seed(10, 5, 5).await;
    let token = app.token(u.user, Role::User);
    let bearer = format!("Bearer {token}");
    let signed_in = [("authorization", bearer.as_str())];
    let cases: [(&str, &[(&str, &str)]); 4] = [
        // A public field beside a per-viewer one: the answer is the viewer's.
        (
            "{ properties(first: 1) { totalCount } me { id } }",
            &signed_in,
        ),
        (
            "{ properties(first: 2) { edges { node { id matchScore } } } }",
            &signed_in,
        ),
        // An error (a malformed id) is not kept.
        ("{ property(id: \"not-an-id\") { id } }", &[]),
        // Refused before execution (a syntax error).
        ("{ properties(first: 1) {", &[]),
    ];
    for (query, headers) in cases {
        let resp = get(&app, &[("query", query)], headers).await;
        assert_eq!(header(&resp, CACHE_CONTROL), "no-store", "{query}");
        assert!(resp.headers().get(ETAG).is_none(), "{query}");
    }
    // An uncacheable GET keeps its cost block in the body.
    let resp = get(&app, &[("query", "{ rateLimit { remaining } }")], &[]).await;
    assert_eq!(header(&resp, CACHE_CONTROL), "no-store");
    let body: Value = resp.json().await.expect("json");
    assert!(body["extensions"]["cost"].is_object(), "{body}");
    // A mutation (over POST) that succeeds.
    let listing = app.first_listing().await;
    let mutation = json!({
        "query": "mutation($p: ID!) { recordInteraction(propertyId: $p, type: VIEW) { id } }",
        "variables": { "p": listing },
    });
    let resp = app
        .post_raw(
            mutation.to_string(),
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
        )
        .await;
    assert_eq!(header(&resp, CACHE_CONTROL), "no-store");
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["data"]["recordInteraction"]["id"].is_string(),
        "{body}"
    );
    // An anonymous query over POST gets the same policy as over GET (as Apollo Server does);
    // shared caches do not keep POST answers, so its cost stays in the body.
    let resp = app
        .post_raw(
            json!({ "query": "{ properties(first: 1) { totalCount } }" }).to_string(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(header(&resp, CACHE_CONTROL), "public, max-age=60");
    assert!(resp.headers().get(ETAG).is_none());
    let body: Value = resp.json().await.expect("json");
    assert!(body["extensions"]["cost"].is_object(), "{body}");
    // Off: nothing is cacheable.
    let off = TestApp::spawn_with(Db::Sqlite, &[("server.http_cache.enabled", "false")]).await;
    let resp = get(
        &off,
        &[("query", "{ properties(first: 1) { totalCount } }")],
        &[],
    )
    .await;
    assert_eq!(header(&resp, CACHE_CONTROL), "no-store");
    off.cleanup().await;
    app.cleanup().await;
}

/// Every root query field has a declared policy for an anonymous and a signed-in caller: a new
/// root field without a `cacheControl` hint, which async-graphql's merge would let inherit its
/// neighbours' maxAge, fails here until it is given one.
#[tokio::test]
async fn every_root_field_has_the_policy_it_declares() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let u = app.seed(10, 5, 5).await;
    let token = app.token(u.user, Role::User);
    let bearer = format!("Bearer {token}");
    let user = gid("User", u.user);
    let listing = app.first_listing().await;
    // (root field, query, anonymous policy, signed-in policy)
    let table = [
        (
            "property",
            format!("{{ property(id: \"{listing}\") {{ id title }} }}"),
            "public, max-age=60",
            "private, max-age=60",
        ),
        (
            "properties",
            "{ properties(first: 2) { totalCount edges { node { title } } } }".to_owned(),
            "public, max-age=60",
            "private, max-age=60",
        ),
        (
            "searchProperties",
            "{ searchProperties(query: \"flat\", first: 2) { edges { node { id } } } }".to_owned(),
            "public, max-age=60",
            "private, max-age=60",
        ),
        // Anonymous callers may not read users: an error, never stored.
        (
            "user",
            format!("{{ user(id: \"{user}\") {{ displayName }} }}"),
            "no-store",
            "private, max-age=60",
        ),
        ("me", "{ me { id } }".to_owned(), "no-store", "no-store"),
        (
            "node",
            format!("{{ node(id: \"{listing}\") {{ id }} }}"),
            "public, max-age=60",
            "private, max-age=60",
        ),
        (
            "recommendations",
            "{ recommendations(first: 2) { score } }".to_owned(),
            "no-store",
            "no-store",
        ),
        (
            "rateLimit",
            "{ rateLimit { remaining } }".to_owned(),
            "no-store",
            "no-store",
        ),
        (
            "mapClusters",
            "{ mapClusters(within: { north: 90, south: -90, east: 180, west: -180 }, zoom: 2) { count } }"
                .to_owned(),
            "public, max-age=30",
            "private, max-age=30",
        ),
    ];
    let schema = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    let roots = root_fields(&schema);
    let declared: Vec<&str> = table.iter().map(|row| row.0).collect();
    assert_eq!(roots, declared, "every root field needs a row here");
    for (field, query, anonymous, signed_in) in &table {
        let resp = get(&app, &[("query", query)], &[]).await;
        assert_eq!(
            &header(&resp, CACHE_CONTROL),
            anonymous,
            "{field}, anonymous"
        );
        let resp = get(
            &app,
            &[("query", query)],
            &[("authorization", bearer.as_str())],
        )
        .await;
        assert_eq!(
            &header(&resp, CACHE_CONTROL),
            signed_in,
            "{field}, signed in"
        );
    }
    app.cleanup().await;
}

/// The field names of `type Query` in an SDL text, in order.
fn root_fields(schema: &str) -> Vec<&str> {
    let body = schema
        .split("type Query {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .unwrap_or_default();
    let mut in_doc = false;
    let mut fields = Vec::new();
    for line in body.lines().map(str::trim) {
        if line.starts_with("\"\"\"") {
            in_doc = !in_doc;
            continue;
        }
        if in_doc || line.is_empty() {
            continue;
        }
        let name = line.split(['(', ':']).next().unwrap_or_default().trim();
        fields.push(name);
    }
    fields
}
