//! Persisted queries: Apollo's APQ protocol over POST and GET and across instances, and trusted
//! documents (config/persisted) that partners, and everyone with `persisted.only`, are held to.
use crate::helpers::{Db, TestApp, code, redis_prefix, redis_url};
use entity::Role;
use rentgraph::gateway::persisted::sha256_hex;
use serde_json::{Value, json};

const Q: &str = "query Cheap($n: Int) { properties(first: $n) { edges { node { title } } } }";

async fn post(app: &TestApp, body: Value, token: Option<&str>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let resp = app.post_raw(body.to_string(), &headers).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn apq(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

#[tokio::test]
async fn apq_round_trip_over_post_and_get_and_across_instances() {
    let prefix = redis_prefix();
    let url = redis_url();
    let app = TestApp::spawn_with(
        Db::Postgres,
        &[("redis.url", &url), ("redis.prefix", &prefix)],
    )
    .await;
    app.seed(10, 5, 5).await;
    let other = app.peer(&[]).await;
    let hash = sha256_hex(Q);
    let vars = json!({ "n": 2 });

    // Unknown hash: PersistedQueryNotFound, as Apollo clients expect.
    let (status, body) = post(
        &app,
        json!({ "extensions": apq(&hash), "variables": vars }),
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (200, "PERSISTED_QUERY_NOT_FOUND"),
        "{body}"
    );
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    // A query that does not hash to the hash is refused and not stored.
    let wrong = json!({ "query": "{ __typename }", "extensions": apq(&hash) });
    let (status, body) = post(&app, wrong, None).await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"), "{body}");
    let (_, body) = post(&app, json!({ "extensions": apq(&hash) }), None).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND");
    // Registered with its query once...
    let (status, body) = post(
        &app,
        json!({ "query": Q, "variables": vars, "extensions": apq(&hash) }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["properties"]["edges"].as_array().map(Vec::len),
        Some(2)
    );
    // ...then the hash alone runs it, over GET, on the other instance too.
    let resp = reqwest::Client::new()
        .get(format!("{}/graphql", other.base))
        .query(&[
            ("extensions", apq(&hash).to_string()),
            ("variables", json!({ "n": 3 }).to_string()),
            ("operationName", "Cheap".to_owned()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["data"]["properties"]["edges"].as_array().map(Vec::len),
        Some(3),
        "{body}"
    );
    // Mutations stay POST-only, hashed or not.
    let m = "mutation { recordInteraction(propertyId: \"x\", type: LIKE) { id } }";
    let mhash = sha256_hex(m);
    post(&app, json!({ "query": m, "extensions": apq(&mhash) }), None).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/graphql", app.base))
        .query(&[("extensions", apq(&mhash).to_string())])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 405);
    other.stop().await;
    app.cleanup().await;
}

/// The shipped manifest's documents.
fn manifest() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/persisted/partner-listings.json"
    ))
    .expect("manifest");
    let m: Value = serde_json::from_str(&text).expect("json");
    m["operations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["name"].as_str().unwrap_or_default().to_owned(),
                o["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn partners_run_exactly_their_manifest() {
    let app = TestApp::spawn_with(
        Db::Postgres,
        &[
            ("persisted.budgets.partner-listings.capacity", "777"),
            ("persisted.budgets.partner-listings.restore_rate", "7"),
        ],
    )
    .await;
    let u = app.seed(30, 10, 10).await;
    let partner = app.token(u.partner, Role::Partner);
    let user = app.token(u.user, Role::User);
    let ops = manifest();
    let listings = &ops
        .iter()
        .find(|(n, _)| n == "PartnerListings")
        .expect("op")
        .1;

    let (status, body) = post(
        &app,
        json!({ "documentId": format!("sha256:{listings}"), "variables": { "city": "Berlin", "first": 3 } }),
        Some(&partner),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["properties"]["totalCount"].is_number());
    // The partner's budget is the manifest's own.
    assert_eq!(
        body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"],
        777.0
    );
    // The same document by APQ hash works too.
    let (status, body) = post(
        &app,
        json!({ "extensions": apq(listings), "variables": { "city": "Berlin" } }),
        Some(&partner),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Anything else is refused: an ad-hoc query, an APQ registration, an unknown id.
    let (status, body) = post(
        &app,
        json!({ "query": "{ properties(first: 1) { totalCount } }" }),
        Some(&partner),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "PERSISTED_QUERY_NOT_IN_LIST"));
    let (status, body) = post(
        &app,
        json!({ "query": Q, "extensions": apq(&sha256_hex(Q)) }),
        Some(&partner),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "PERSISTED_QUERY_NOT_IN_LIST"));
    let (status, body) = post(
        &app,
        json!({ "documentId": format!("sha256:{}", "0".repeat(64)) }),
        Some(&partner),
    )
    .await;
    assert_eq!((status, code(&body)), (404, "PERSISTED_QUERY_NOT_FOUND"));
    let (status, body) = post(
        &app,
        json!({ "documentId": "sha256:nothex" }),
        Some(&partner),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"));
    // Other clients are not restricted, and may use documents too.
    let (status, _) = post(
        &app,
        json!({ "query": "{ properties(first: 1) { totalCount } }" }),
        Some(&user),
    )
    .await;
    assert_eq!(status, 200);
    app.cleanup().await;

    // persisted.only: everyone is held to the manifest.
    let app = TestApp::spawn_with(Db::Sqlite, &[("persisted.only", "true")]).await;
    app.seed(10, 5, 5).await;
    let (status, body) = post(&app, json!({ "query": "{ __typename }" }), None).await;
    assert_eq!((status, code(&body)), (403, "PERSISTED_QUERY_NOT_IN_LIST"));
    let (status, body) = post(
        &app,
        json!({ "documentId": format!("sha256:{listings}"), "variables": { "city": "Lisbon" } }),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.cleanup().await;
}

fn write_manifest(dir: &std::path::Path, name: &str, body: &str, id: Option<String>) {
    std::fs::create_dir_all(dir).expect("dir");
    let m = json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": [
        { "id": id.unwrap_or_else(|| sha256_hex(body)), "name": name, "type": "query", "body": body } ] });
    std::fs::write(dir.join("acme.json"), m.to_string()).expect("write");
}

#[tokio::test]
async fn a_broken_manifest_stops_start_up_and_the_check_command() {
    use rentgraph::config::{Settings, Sources};
    let dir = std::env::temp_dir().join(format!("rg_manifest_{}", uuid::Uuid::new_v4().simple()));
    write_manifest(
        &dir,
        "Stale",
        "query Stale { properties(first: 1) { edges { node { rent } } } }",
        None,
    );
    let settings = Settings::load(Sources {
        env: Some("test".into()),
        file: None,
        overrides: vec![
            ("database.url".into(), "sqlite::memory:".into()),
            ("persisted.manifest_dir".into(), dir.display().to_string()),
        ],
    })
    .expect("settings");
    let err = rentgraph::server::Server::start(settings)
        .await
        .err()
        .expect("start-up must fail")
        .to_string();
    assert!(
        err.contains("Stale") && err.contains("acme.json") && err.contains("rent"),
        "{err}"
    );
    // The CLI runs the same check.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rentgraph"))
        .args(["persisted", "check"])
        .env("RENTGRAPH__PERSISTED__MANIFEST_DIR", &dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Stale"));
    // An id that is not the body's hash is refused too.
    write_manifest(&dir, "Lying", "{ __typename }", Some("0".repeat(64)));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rentgraph"))
        .args(["persisted", "check"])
        .env("RENTGRAPH__PERSISTED__MANIFEST_DIR", &dir)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hashes to"));
    // The shipped manifests validate.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rentgraph"))
        .args(["persisted", "check"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Apollo Client's persisted-query link (tests/apollo, installed by scripts/test) as the
/// client: hash over GET, PersistedQueryNotFound, retry with the text over POST, then hash only.
#[tokio::test]
async fn apollo_clients_persisted_query_link_works() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(10, 5, 5).await;
    let report = crate::helpers::apollo_script("apq.mjs", format!("{}/graphql", app.base)).await;
    let wire = |which: &str| -> Vec<(String, bool, bool)> {
        report[which]["wire"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                (
                    w["method"].as_str().unwrap_or_default().to_owned(),
                    w["withQuery"].as_bool().unwrap_or(false),
                    w["withHash"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    assert_eq!(
        wire("first"),
        vec![("GET".into(), false, true), ("POST".into(), true, true)],
        "{report}"
    );
    assert_eq!(
        wire("second"),
        vec![("GET".into(), false, true)],
        "{report}"
    );
    assert_eq!(report["first"]["edges"], 2);
    assert_eq!(report["second"]["edges"], 3);
    app.cleanup().await;
}

/// A registration is kept only for a document that passed every check, was charged and
/// validated: unparseable, invalid, over-the-limit and throttled registrations leave nothing
/// behind (they cannot fill Redis or memory), and a registration costs its sender extra.
#[tokio::test]
async fn apq_keeps_only_documents_that_ran_and_registration_is_charged() {
    let prefix = redis_prefix();
    let url = redis_url();
    let app = TestApp::spawn_with(
        Db::Postgres,
        &[
            ("redis.url", &url),
            ("redis.prefix", &prefix),
            ("persisted.apq_registration_cost", "25"),
        ],
    )
    .await;
    app.seed(10, 5, 5).await;
    let refused = [
        "{ properties(first: 1) { edges { node { title } }",
        "{ noSuchField }",
        "{ a: __typename b: __typename c: __typename }"
            .repeat(40)
            .as_str()
            .to_owned()
            .leak(),
    ];
    for text in refused {
        let hash = sha256_hex(text);
        let (status, body) = post(
            &app,
            json!({ "query": text, "extensions": apq(&hash) }),
            None,
        )
        .await;
        assert_ne!(status, 500, "{body}");
        assert!(
            body.get("data").is_none_or(Value::is_null),
            "{text}: {body}"
        );
        let (_, body) = post(&app, json!({ "extensions": apq(&hash) }), None).await;
        assert_eq!(
            code(&body),
            "PERSISTED_QUERY_NOT_FOUND",
            "{text} was kept: {body}"
        );
    }
    // A document that runs is kept, and its registration cost the surcharge once.
    let plain = post(&app, json!({ "query": Q, "variables": { "n": 1 } }), None)
        .await
        .1;
    let base = plain["extensions"]["cost"]["requestedQueryCost"]
        .as_u64()
        .expect("cost");
    let hash = sha256_hex(Q);
    let (_, first) = post(
        &app,
        json!({ "query": Q, "variables": { "n": 1 }, "extensions": apq(&hash) }),
        None,
    )
    .await;
    assert_eq!(
        first["extensions"]["cost"]["requestedQueryCost"].as_u64(),
        Some(base + 25)
    );
    let (_, again) = post(
        &app,
        json!({ "extensions": apq(&hash), "variables": { "n": 1 } }),
        None,
    )
    .await;
    assert_eq!(
        again["extensions"]["cost"]["requestedQueryCost"].as_u64(),
        Some(base),
        "{again}"
    );
    app.cleanup().await;
}

/// A partner runs its own manifest only (`persisted.partners`), on its own budget: with two
/// manifests loaded, a partner bound to one is refused the other's documents (and its budget
/// cannot be picked by sending the other's), and a partner bound to none runs nothing.
#[tokio::test]
async fn partners_are_bound_to_their_own_manifest() {
    let dir = std::env::temp_dir().join(format!("rg-manifests-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/persisted/partner-listings.json"
        ),
        dir.join("partner-listings.json"),
    )
    .expect("copy");
    let other = "query OtherCount { properties(first: 1) { totalCount } }";
    let manifest = json!({ "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{ "id": sha256_hex(other), "name": "OtherCount", "type": "query", "body": other }] });
    std::fs::write(dir.join("other.json"), manifest.to_string()).expect("write");
    let dir_text = dir.display().to_string();
    // The seeded partner's id is known only after seeding: a first server seeds, a second
    // (same database) binds it.
    let seeder = TestApp::spawn_with(Db::Postgres, &[("persisted.manifest_dir", &dir_text)]).await;
    let u = seeder.seed(10, 5, 5).await;
    let key = format!("persisted.partners.{}", u.partner);
    let app = seeder
        .peer(&[
            ("persisted.manifest_dir", &dir_text),
            (key.as_str(), "other"),
            ("persisted.budgets.other.capacity", "555"),
            ("persisted.budgets.other.restore_rate", "5"),
            ("persisted.budgets.partner-listings.capacity", "99999"),
            ("persisted.budgets.partner-listings.restore_rate", "999"),
        ])
        .await;
    let partner = format!("Bearer {}", seeder.token(u.partner, Role::Partner));
    let headers = [("authorization", partner.as_str())];
    let body = app
        .json(
            json!({ "documentId": format!("sha256:{}", sha256_hex(other)) }),
            &headers,
        )
        .await;
    assert!(
        body["data"]["properties"]["totalCount"].is_number(),
        "{body}"
    );
    assert_eq!(
        body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"],
        555.0
    );
    let listings = manifest_id("PartnerListings");
    let body = app
        .json(json!({ "documentId": format!("sha256:{listings}"), "variables": { "city": "Berlin" } }), &headers)
        .await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_IN_LIST", "{body}");
    // Unbound, with two manifests loaded: nothing.
    let token = seeder.token(u.partner, Role::Partner);
    let (_, body) = post(
        &seeder,
        json!({ "documentId": format!("sha256:{}", sha256_hex(other)) }),
        Some(&token),
    )
    .await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_IN_LIST", "{body}");
    app.stop().await;
    seeder.cleanup().await;
    let _ = std::fs::remove_dir_all(dir);
}

fn manifest_id(name: &str) -> String {
    manifest()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, id)| id)
        .expect("in the manifest")
}
