//! Recommendations and match scores over HTTP with the shipped model on the real ONNX Runtime.
use crate::helpers::{Db, TestApp, code, gid};
use entity::Role;
use serde_json::{Value, json};

const RECS: &str = "query($first: Int, $filter: PropertyFilter) { recommendations(first: $first, filter: $filter) {
  rank score source modelVersion reasons property { id city monthlyPrice neighbourhood matchScore } } }";

const RECS_PLAIN: &str = "query($first: Int) { recommendations(first: $first) { rank source modelVersion property { id } } }";

fn items(v: &Value) -> Vec<Value> {
    v["recommendations"].as_array().cloned().unwrap_or_default()
}

/// (batches run, rows scored) so far, from /metrics.
async fn batches(app: &TestApp) -> (u64, u64) {
    let text = app.get("/metrics").await.text().await.unwrap_or_default();
    let read = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    (
        read("rentgraph_batcher_batch_rows_count"),
        read("rentgraph_batcher_batch_rows_sum"),
    )
}

#[tokio::test]
async fn signed_in_users_get_model_ranked_recommendations() {
    let app = TestApp::spawn(Db::Postgres).await;
    // Listings leave the market in the generated data: about a third are on it at the end.
    let u = app.seed(1_200, 80, 12_000).await;
    let user = app.token(u.user, Role::User);
    let in_berlin = |v: &Value| {
        items(v)
            .iter()
            .filter(|r| r["property"]["city"] == "Berlin")
            .count()
    };
    let before = in_berlin(&app.data(RECS, json!({ "first": 10 }), Some(&user)).await);
    app.data(
        "mutation { updatePreferences(input: { cities: [\"Berlin\"], minPrice: 600, maxPrice: 2200, minBedrooms: 1 }) { id } }",
        json!({}),
        Some(&user),
    )
    .await;
    let data = app.data(RECS, json!({ "first": 10 }), Some(&user)).await;
    let recs = items(&data);
    assert_eq!(recs.len(), 10);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["rank"], json!(i + 1));
        assert_eq!(r["source"], "MODEL");
        assert!(
            r["modelVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("lgbm-"))
        );
        assert!(
            r["reasons"]
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.len() <= 3),
            "{r}"
        );
        let s = r["score"].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&s));
        // The match score of a listing is the same model's opinion.
        assert!(
            (r["property"]["matchScore"].as_f64().unwrap_or(-1.0) - s).abs() < 1e-6,
            "{r}"
        );
    }
    let after = in_berlin(&data);
    assert!(
        after >= 8 && after > before,
        "stated preferences steer the ranking: {before} -> {after} of 10 in Berlin"
    );
    // Diversity: no neighbourhood more than twice in the list.
    let mut hoods = std::collections::HashMap::new();
    for r in &recs {
        *hoods
            .entry(
                r["property"]["neighbourhood"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
            .or_insert(0) += 1;
    }
    assert!(hoods.values().all(|&n| n <= 2), "{hoods:?}");

    // A filter narrows the candidates.
    let paris = app
        .data(
            RECS,
            json!({ "first": 5, "filter": { "city": "Paris" } }),
            Some(&user),
        )
        .await;
    assert!(
        items(&paris)
            .iter()
            .all(|r| r["property"]["city"] == "Paris")
    );

    // A dismissed listing is never recommended again.
    let top = recs[0]["property"]["id"].clone();
    app.data(
        "mutation($id: ID!) { recordInteraction(propertyId: $id, type: DISMISS) { id } }",
        json!({ "id": top }),
        Some(&user),
    )
    .await;
    let again = app.data(RECS, json!({ "first": 10 }), Some(&user)).await;
    assert!(items(&again).iter().all(|r| r["property"]["id"] != top));

    // Anonymous callers get popular listings and no match score.
    let anon = app.data(RECS, json!({ "first": 5 }), None).await;
    let anon = items(&anon);
    assert_eq!(anon.len(), 5);
    assert!(anon.iter().all(|r| r["source"] == "POPULARITY"
        && r["modelVersion"].is_null()
        && r["property"]["matchScore"].is_null()));

    // User.recommendations: the user themself or an admin.
    let q = "query($id: ID!) { user(id: $id) { recommendations(first: 3) { source } } }";
    let other = app.token(u.other_owner, Role::Owner);
    let (_, body) = app
        .gql(q, json!({ "id": gid("User", u.user) }), Some(&other))
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    let admin = app.token(u.admin, Role::Admin);
    let by_admin = app
        .data(q, json!({ "id": gid("User", u.user) }), Some(&admin))
        .await;
    assert_eq!(by_admin["user"]["recommendations"][0]["source"], "MODEL");
    let (_, body) = app.gql(RECS, json!({ "first": 1000 }), Some(&user)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    app.cleanup().await;
}

#[tokio::test]
async fn a_page_of_match_scores_is_one_model_submission() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(300, 40, 4_000).await;
    let user = app.token(u.user, Role::User);
    let q = "query($n: Int!) { properties(first: $n) { edges { node { id matchScore } } } }";
    // The token's user and their recommendation state are loaded once and then cached:
    // measure warm requests.
    app.data(q, json!({ "n": 1 }), Some(&user)).await;
    let (b0, r0) = batches(&app).await;
    let s0 = app.statements().await;
    let page = app.data(q, json!({ "n": 50 }), Some(&user)).await;
    let (b1, r1) = batches(&app).await;
    let s1 = app.statements().await;
    let scores: Vec<f64> = page["properties"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["node"]["matchScore"].as_f64())
        .collect();
    assert_eq!(scores.len(), 50, "every listing has a score");
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    assert_eq!((b1 - b0, r1 - r0), (1, 50), "one model run for the page");
    // And the same shape with 10 rows runs as many statements.
    let s2 = app.statements().await;
    app.data(q, json!({ "n": 10 }), Some(&user)).await;
    let s3 = app.statements().await;
    assert_eq!(s1 - s0, s3 - s2);
    app.cleanup().await;
}

#[tokio::test]
async fn when_the_model_cannot_answer_recommendations_fall_back_to_popularity() {
    // A queue smaller than one request: every submission is refused as overloaded.
    let app = TestApp::spawn_with(Db::Postgres, &[("ml.batcher.queue_capacity", "1")]).await;
    let u = app.seed(200, 30, 3_000).await;
    let user = app.token(u.user, Role::User);
    let data = app
        .data(RECS_PLAIN, json!({ "first": 5 }), Some(&user))
        .await;
    let recs = items(&data);
    assert_eq!(recs.len(), 5, "still an answer");
    assert!(
        recs.iter()
            .all(|r| r["source"] == "POPULARITY" && r["modelVersion"].is_null())
    );
    // matchScore is null with an error on that field, the rest of the page is intact.
    let (status, body) = app
        .gql(
            "{ properties(first: 3) { edges { node { title matchScore } } } }",
            json!({}),
            Some(&user),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "MODEL_OVERLOADED", "{body}");
    // A fixed message: queue sizes and ONNX Runtime's text are for the logs.
    assert_eq!(
        body["errors"][0]["message"],
        "the recommendation model is overloaded; try again shortly"
    );
    let edges = body["data"]["properties"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(edges.len(), 3);
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["title"].is_string() && e["node"]["matchScore"].is_null())
    );
    app.cleanup().await;

    // A deadline that has always passed behaves the same.
    let app = TestApp::spawn_with(Db::Sqlite, &[("ml.deadline_ms", "0")]).await;
    let u = app.seed(100, 20, 1_000).await;
    let user = app.token(u.user, Role::User);
    let recs = items(
        &app.data(RECS_PLAIN, json!({ "first": 3 }), Some(&user))
            .await,
    );
    assert!(!recs.is_empty() && recs.iter().all(|r| r["source"] == "POPULARITY"));
    let (_, body) = app
        .gql(
            "{ properties(first: 2) { edges { node { matchScore } } } }",
            json!({}),
            Some(&user),
        )
        .await;
    assert_eq!(code(&body), "MODEL_TIMEOUT", "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn similar_properties_share_city_and_type() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(400, 20, 500).await;
    let q =
        "query($n: Int!) { properties(first: $n) { edges { node { id city propertyType monthlyPrice
        similarProperties(first: 3) { id city propertyType monthlyPrice isActive } } } } }";
    let before = app.statements().await;
    let data = app.data(q, json!({ "n": 20 }), None).await;
    let small = app.statements().await - before;
    let mut seen = 0;
    for e in data["properties"]["edges"].as_array().into_iter().flatten() {
        let n = &e["node"];
        let price = n["monthlyPrice"].as_f64().unwrap_or(0.0);
        for s in n["similarProperties"].as_array().into_iter().flatten() {
            seen += 1;
            assert_ne!(s["id"], n["id"]);
            assert_eq!(
                (&s["city"], &s["propertyType"], &s["isActive"]),
                (&n["city"], &n["propertyType"], &json!(true))
            );
            let p = s["monthlyPrice"].as_f64().unwrap_or(0.0);
            assert!(
                p >= price * 0.7 - 1.0 && p <= price * 1.3 + 1.0,
                "{p} vs {price}"
            );
        }
    }
    assert!(seen > 20, "most listings have similar ones ({seen})");
    let before = app.statements().await;
    app.data(q, json!({ "n": 60 }), None).await;
    assert_eq!(
        app.statements().await - before,
        small,
        "batched: statements do not grow with rows"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_missing_runtime_or_model_stops_the_start_with_a_clear_error() {
    use rentgraph::config::{Settings, Sources};
    use rentgraph::server::Server;
    let dir = std::env::temp_dir().join(format!("rg_test_{}", uuid::Uuid::new_v4().simple()));
    let db = format!("sqlite://{}/x.db?mode=rwc", dir.display());
    let start = |key: &str, value: &str| {
        Settings::load(Sources {
            env: Some("test".into()),
            file: None,
            overrides: vec![
                ("server.port".into(), "0".into()),
                ("database.url".into(), db.clone()),
                (key.into(), value.into()),
            ],
        })
        .expect("settings")
    };
    let missing = "/nonexistent/libonnxruntime.so.1.31.1";
    let err = match Server::start(start("ml.ort_library", missing)).await {
        Ok(_) => panic!("started without ONNX Runtime"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(missing) && err.contains("scripts/fetch-ort"),
        "{err}"
    );
    let err = match Server::start(start("ml.model_path", "models/nope.onnx")).await {
        Ok(_) => panic!("started without a model"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("models/nope.onnx"), "{err}");
    let err = match Server::start(start("ml.info_path", "models/nope.json")).await {
        Ok(_) => panic!("started without the model's metadata"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("models/nope.json"), "{err}");
    // Turned off, it starts and ranks by popularity.
    let server = Server::start(start("ml.enabled", "false"))
        .await
        .expect("starts without the model");
    server.stop(std::time::Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn training_data_is_exported_with_the_serving_features() {
    use rentgraph_lab::training::{ExportOptions, export};
    use rentgraph_model::features::FEATURE_NAMES;
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(300, 60, 6_000).await;
    let out = std::env::temp_dir().join(format!("rg_export_{}.csv", uuid::Uuid::new_v4().simple()));
    let report = export(
        app.server().state.store(),
        &out,
        &app.server().state.settings().ml,
        ExportOptions {
            eval_users: 20,
            held_out_share: 0.2,
            seed: 1,
        },
    )
    .await
    .expect("export");
    let text = std::fs::read_to_string(&out).expect("csv");
    let _ = std::fs::remove_file(&out);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    assert_eq!(
        &header[..5],
        ["split", "group", "listing", "label", "popularity"]
    );
    assert_eq!(
        &header[5..],
        FEATURE_NAMES,
        "the columns are the serving features, in order"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), report.train_rows + report.eval_rows);
    assert!(
        report.train_rows > 100 && report.eval_users > 0,
        "{report:?}"
    );
    assert!(rows.iter().all(|r| r.len() == header.len()));
    assert!(rows.iter().all(|r| r[3] == "0" || r[3] == "1"));
    for split in ["train", "eval"] {
        let labels: Vec<&str> = rows
            .iter()
            .filter(|r| r[0] == split)
            .map(|r| r[3])
            .collect();
        assert!(
            labels.contains(&"1") && labels.contains(&"0"),
            "{split} has both labels"
        );
    }
    assert!(rows.iter().all(|r| {
        r[5..]
            .iter()
            .all(|v| v.parse::<f32>().is_ok_and(f32::is_finite))
    }));
    app.cleanup().await;
}

/// Training/serving parity: the offline replay (training data, `rentgraph evaluate`) and the
/// live server give one user the same candidates with the same feature rows: the same history
/// window, the same all-time and recent counters and their normalisation, the same listing
/// ages. On PostgreSQL, as in production, after interactions recorded through the API.
#[tokio::test]
async fn the_replay_and_serving_compute_the_same_feature_rows() {
    use rentgraph_model::features::FEATURE_NAMES;
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(400, 60, 8_000).await;
    // A few interactions through the API, so the live index's counters move in place.
    let token = app.token(u.user, entity::Role::User);
    let q = "{ properties(first: 3, filter: { active: true }) { edges { node { id } } } }";
    let listed = app.data(q, json!({}), Some(&token)).await;
    for edge in listed["properties"]["edges"].as_array().expect("edges") {
        let id = edge["node"]["id"].as_str().expect("id");
        let m = "mutation($id: ID!) { recordInteraction(propertyId: $id, type: SAVE) { id } }";
        app.data(m, json!({ "id": id }), Some(&token)).await;
    }
    let state = &app.server().state;
    // The recent-popularity window moves at the index's periodic reload; the interactions
    // above are a month newer than the seeded ones, so let it move now.
    state.recommender().index().reload().await.expect("reload");
    let users: Vec<uuid::Uuid> = state
        .store()
        .all_users()
        .await
        .expect("users")
        .into_iter()
        .filter(|x| x.role == entity::Role::User)
        .map(|x| x.id)
        .take(8)
        .chain([u.user])
        .collect();
    // A moment after everything stored: the newest interaction and the last listing change.
    let at = chrono::Utc::now() + chrono::Duration::seconds(1);
    let mut compared = 0;
    let mut with_co_engagement = 0;
    for id in users {
        let user = state
            .store()
            .users_by_ids(&[id])
            .await
            .expect("user")
            .pop()
            .expect("exists");
        let served = state
            .recommender()
            .feature_rows(&user, at)
            .await
            .expect("serving rows");
        let replayed =
            rentgraph_lab::replay::feature_rows(state.store(), &state.settings().ml, id, at)
                .await
                .expect("replayed rows");
        assert!(!served.is_empty(), "user {id} has candidates");
        assert_eq!(served.len(), replayed.len(), "user {id}: candidate count");
        for ((a, ra), (b, rb)) in served.iter().zip(&replayed) {
            assert_eq!(a, b, "user {id}: the same candidates in the same order");
            assert_eq!(ra, rb, "user {id}, listing {a}: the same feature row");
        }
        compared += served.len();
        let co = FEATURE_NAMES
            .iter()
            .position(|n| *n == "co_engagement_log")
            .expect("the co-engagement feature");
        with_co_engagement += served.iter().filter(|(_, r)| r[co] > 0.0).count();
    }
    assert!(compared > 100, "{compared} rows compared");
    // The co-engagement tables (built from the database live, from the corpus in the replay)
    // took part in the comparison.
    assert!(with_co_engagement > 0, "no row had co-engagement");
    app.cleanup().await;
}

/// A user's exclusions are bounded (`ml.max_exclusions`): a script that dismisses most of the
/// market leaves a state of the newest dismissals, none of which is recommended, and still
/// gets recommendations.
#[tokio::test]
async fn dismissals_beyond_the_bound_keep_the_newest_excluded() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn_with(Db::Postgres, &[("ml.max_exclusions", "100")]).await;
    let u = app.seed(600, 20, 500).await;
    let user = app.token(u.user, Role::User);
    let db = app.db_connection().await;
    // 150 listings dismissed, one second apart: the newest 100 are the first 100 by id.
    db.execute_unprepared(&format!(
        "INSERT INTO interactions (id, user_id, property_id, kind, created_at)
         SELECT gen_random_uuid(), '{user}', id, 'DISMISS', now() - (n || ' seconds')::interval
         FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM properties
               WHERE is_active ORDER BY id LIMIT 150) p
         ON CONFLICT DO NOTHING",
        user = u.user
    ))
    .await
    .expect("dismissals");
    let newest: Vec<String> = db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT id::text AS id FROM properties WHERE is_active ORDER BY id LIMIT 100",
        ))
        .await
        .expect("listings")
        .iter()
        .filter_map(|r| r.try_get::<String>("", "id").ok())
        .collect();
    let recs = items(
        &app.data(RECS_PLAIN, json!({ "first": 10 }), Some(&user))
            .await,
    );
    assert!(!recs.is_empty(), "recommendations despite 150 dismissals");
    for r in &recs {
        let id = r["property"]["id"].as_str().unwrap_or_default();
        let raw = crate::helpers::decode_gid(id);
        assert!(
            !newest.contains(&raw),
            "one of the newest dismissals was recommended"
        );
    }
    app.cleanup().await;
}

/// The server refuses a model that is not the one recommender.json describes: other bytes, or
/// bytes that no longer score the golden rows as recorded.
#[tokio::test]
async fn a_model_that_is_not_the_described_one_stops_start_up() {
    use rentgraph::config::{Settings, Sources};
    let dir = std::env::temp_dir().join(format!("rg_model_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::copy(
        format!("{root}/models/recommender.onnx"),
        dir.join("m.onnx"),
    )
    .expect("copy");
    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/models/recommender.json")).expect("info"),
    )
    .expect("json");
    let start = |info: Value| {
        let dir = dir.clone();
        async move {
            std::fs::write(dir.join("m.json"), info.to_string()).expect("write");
            let settings = Settings::load(Sources {
                env: Some("test".into()),
                file: None,
                overrides: vec![
                    ("database.url".into(), "sqlite::memory:".into()),
                    ("server.port".into(), "0".into()),
                    (
                        "ml.model_path".into(),
                        dir.join("m.onnx").display().to_string(),
                    ),
                    (
                        "ml.info_path".into(),
                        dir.join("m.json").display().to_string(),
                    ),
                ],
            })
            .expect("settings");
            match rentgraph::server::Server::start(settings).await {
                Ok(server) => {
                    server.stop(std::time::Duration::from_secs(1)).await;
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
    };
    assert_eq!(start(info.clone()).await, Ok(()), "the shipped pair starts");
    let mut other_bytes = info.clone();
    other_bytes["sha256"] = json!("0".repeat(64));
    let err = start(other_bytes).await.expect_err("refused");
    assert!(err.contains("sha256") && err.contains("m.onnx"), "{err}");
    let mut drifted = info.clone();
    drifted["golden"][3]["score"] = json!(0.999);
    let err = start(drifted).await.expect_err("refused");
    assert!(err.contains("golden row 3"), "{err}");
    let mut unsealed = info;
    unsealed.as_object_mut().expect("object").remove("golden");
    let err = start(unsealed).await.expect_err("refused");
    assert!(err.contains("no golden rows"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A user's recommendations are reused until they do something: the second identical request
/// runs no model submission; after a dismissal, the dismissed listing is gone at once.
#[tokio::test]
async fn results_are_reused_until_the_user_acts() {
    let app = TestApp::spawn(Db::Postgres).await;
    let u = app.seed(300, 40, 4_000).await;
    let user = app.token(u.user, Role::User);
    let first = items(
        &app.data(RECS_PLAIN, json!({ "first": 5 }), Some(&user))
            .await,
    );
    assert!(first.iter().all(|r| r["source"] == "MODEL"), "{first:?}");
    let (b0, _) = batches(&app).await;
    let again = items(
        &app.data(RECS_PLAIN, json!({ "first": 5 }), Some(&user))
            .await,
    );
    let (b1, _) = batches(&app).await;
    assert_eq!(again, first);
    assert_eq!(
        b1, b0,
        "the same request again is answered without the model"
    );
    // Other arguments are other results.
    let more = items(
        &app.data(RECS_PLAIN, json!({ "first": 7 }), Some(&user))
            .await,
    );
    assert_eq!(more.len(), 7);
    // The user dismisses the top listing: it is gone from the next answer.
    let top = first[0]["property"]["id"].as_str().expect("id").to_owned();
    app.data(
        "mutation($id: ID!) { recordInteraction(propertyId: $id, type: DISMISS) { id } }",
        json!({ "id": top }),
        Some(&user),
    )
    .await;
    let after = items(
        &app.data(RECS_PLAIN, json!({ "first": 5 }), Some(&user))
            .await,
    );
    assert!(
        after.iter().all(|r| r["property"]["id"] != top.as_str()),
        "{after:?}"
    );
    app.cleanup().await;
}

const CREATE_IN: &str = "mutation($city: String!) { createProperty(input: { title: \"New\", description: \"d\", monthlyPrice: 900, city: $city, neighbourhood: \"Centre\", latitude: 1.0, longitude: 1.0, bedrooms: 1, bathrooms: 1, area: 40, propertyType: APARTMENT }) { id } }";

const RECS_IN: &str = "query($city: String!) { recommendations(first: 5, filter: { city: $city }) { property { id } } }";

fn ids_of(v: &Value) -> Vec<String> {
    items(v)
        .iter()
        .filter_map(|r| r["property"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// Candidates, features and the user's state come from memory: once warm, a recommendation
/// runs no statement (results caching off, so every request ranks afresh), and after the
/// user acts at most one (their user row, which the interaction invalidated).
#[tokio::test]
async fn a_warm_recommendation_runs_at_most_one_statement() {
    let app = TestApp::spawn_with(Db::Postgres, &[("ml.results_ttl_secs", "0")]).await;
    let u = app.seed(300, 40, 4_000).await;
    let user = app.token(u.user, Role::User);
    // Loads the user's state, and (through the entity cache) the listings a list can show.
    app.data(RECS_PLAIN, json!({ "first": 30 }), Some(&user))
        .await;
    let first = items(
        &app.data(RECS_PLAIN, json!({ "first": 10 }), Some(&user))
            .await,
    );
    assert!(first.iter().all(|r| r["source"] == "MODEL"), "{first:?}");
    let (b0, _) = batches(&app).await;
    let s0 = app.statements().await;
    let again = items(
        &app.data(RECS_PLAIN, json!({ "first": 10 }), Some(&user))
            .await,
    );
    let s1 = app.statements().await;
    let (b1, _) = batches(&app).await;
    assert_eq!(again, first);
    assert_eq!(b1 - b0, 1, "ranked afresh by the model");
    assert_eq!(s1 - s0, 0, "a warm recommendation runs no SQL");
    // The user asks about the top listing: it is never recommended to them again, and their
    // state moved in place.
    let top = first[0]["property"]["id"].as_str().expect("id").to_owned();
    app.data(
        "mutation($id: ID!) { recordInteraction(propertyId: $id, type: INQUIRY) { id } }",
        json!({ "id": top }),
        Some(&user),
    )
    .await;
    let s2 = app.statements().await;
    let after = items(
        &app.data(RECS_PLAIN, json!({ "first": 10 }), Some(&user))
            .await,
    );
    let s3 = app.statements().await;
    assert!(s3 - s2 <= 1, "{} statements after an interaction", s3 - s2);
    assert!(
        after.iter().all(|r| r["property"]["id"] != top.as_str()),
        "an already-contacted listing was recommended: {after:?}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    let gauge = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    assert_eq!(
        gauge("rentgraph_listing_index_listings"),
        300.0,
        "{metrics}"
    );
    assert!(gauge("rentgraph_listing_index_bytes") > 0.0);
    assert!(gauge("rentgraph_listing_index_age_seconds") >= 0.0);
    app.cleanup().await;
}

/// A listing created, then taken off the market, is a candidate at once and then never again.
#[tokio::test]
async fn new_and_deactivated_listings_reach_recommendations_at_once() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let u = app.seed(100, 20, 500).await;
    let user = app.token(u.user, Role::User);
    let owner = app.token(u.owner, Role::Owner);
    let vars = json!({ "city": "Nowhereville" });
    assert!(ids_of(&app.data(RECS_IN, vars.clone(), Some(&user)).await).is_empty());
    let id = app.data(CREATE_IN, vars.clone(), Some(&owner)).await["createProperty"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        ids_of(&app.data(RECS_IN, vars.clone(), Some(&user)).await),
        vec![id.clone()]
    );
    app.data(
        "mutation($id: ID!) { deactivateProperty(id: $id) { id } }",
        json!({ "id": id }),
        Some(&owner),
    )
    .await;
    assert!(ids_of(&app.data(RECS_IN, vars, Some(&user)).await).is_empty());
    app.cleanup().await;
}

/// A change to a listing drops only the cached lists that show it (and every list when a
/// listing comes onto the market): one owner editing a listing in a loop cannot make every
/// instance recompute everyone's recommendations.
#[tokio::test]
async fn a_listing_change_drops_only_the_lists_that_show_it() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let u = app.seed(100, 20, 500).await;
    let user = app.token(u.user, Role::User);
    let owner = app.token(u.owner, Role::Owner);
    let admin = app.token(u.admin, Role::Admin);
    let hits = || async {
        let text = app.get("/metrics").await.text().await.unwrap_or_default();
        crate::helpers::metric(
            &text,
            "rentgraph_cache_requests_total",
            &[("level", "results"), ("result", "hit")],
        )
    };
    let recs = || app.data(RECS_PLAIN, json!({ "first": 10 }), Some(&user));
    // A listing far from anything the user is shown, created (a new listing drops every list).
    let far = app
        .data(CREATE_IN, json!({ "city": "Nowhereville" }), Some(&owner))
        .await["createProperty"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let shown = ids_of(&recs().await);
    assert!(!shown.is_empty() && !shown.contains(&far));
    let edit =
        "mutation($id: ID!, $t: String!) { updateProperty(id: $id, input: { title: $t }) { id } }";
    let before = hits().await;
    for i in 0..15 {
        let t = format!("Renamed {i}");
        app.data(edit, json!({ "id": far, "t": t }), Some(&owner))
            .await;
    }
    assert_eq!(ids_of(&recs().await), shown);
    assert_eq!(hits().await - before, 1.0, "the list was kept");
    // A change to a listing the list shows drops it.
    app.data(
        edit,
        json!({ "id": shown[0], "t": "Renamed by an admin" }),
        Some(&admin),
    )
    .await;
    let before = hits().await;
    recs().await;
    assert_eq!(hits().await - before, 0.0, "the list was recomputed");
    app.cleanup().await;
}

/// A full reload of the listing index does not hold recommendations up while it reads, and a
/// listing created meanwhile survives the swap of a snapshot read before it existed.
#[tokio::test]
async fn a_listing_created_during_an_index_reload_survives_the_swap() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let u = app.seed(100, 20, 500).await;
    let user = app.token(u.user, Role::User);
    let owner = app.token(u.owner, Role::Owner);
    let state = &app.server().state;
    let index = state.recommender().index().clone();
    let vars = json!({ "city": "Nowhereville" });
    // The reload reads everything before the listing exists, and has not swapped yet.
    let loaded = index.load().await.expect("load");
    let id = app.data(CREATE_IN, vars.clone(), Some(&owner)).await["createProperty"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let during = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        app.data(RECS_IN, vars.clone(), Some(&user)),
    )
    .await
    .expect("recommendations are not held up by the reload");
    assert_eq!(ids_of(&during), vec![id.clone()]);
    index.install(loaded).await;
    // No cached list may hide what the index holds now.
    state.recommender().forget(None);
    assert_eq!(
        ids_of(&app.data(RECS_IN, vars, Some(&user)).await),
        vec![id.clone()],
        "the listing is still a candidate after the swap"
    );
    let raw: uuid::Uuid = crate::helpers::decode_gid(&id).parse().expect("uuid");
    assert!(
        index
            .fresh()
            .await
            .expect("fresh")
            .get(&raw)
            .is_some_and(|e| e.active)
    );
    app.cleanup().await;
}

/// Scores every row alike: what a model that learned nothing would do.
struct Constant;

impl rentgraph_model::model::Scorer for Constant {
    fn score(
        &mut self,
        _rows: &[f32],
        n: usize,
    ) -> Result<Vec<f32>, rentgraph_model::model::ModelError> {
        Ok(vec![0.5; n])
    }
}

/// The replayed evaluation tells a model from one that learned nothing: through the same
/// serving path, a constant scorer (ranking by id among the candidates) earns no more than
/// popularity within the user's cities and budget, and the shipped model earns more than it.
#[tokio::test]
async fn the_replayed_evaluation_tells_a_model_from_a_constant() {
    use rentgraph_lab::evaluation::{EvalOptions, evaluate};
    let app = TestApp::spawn(Db::Sqlite).await;
    app.seed(3_000, 600, 60_000).await;
    let store = &app.server().state.store();
    let ml = &app.settings.ml;
    let opts = EvalOptions {
        users: rentgraph_lab::evaluation::Users::All,
        max_users: 300,
        cutoff_quantile: 0.85,
        seed: 1,
        first: 10,
    };
    let constant = evaluate(store, &mut Constant, ml, &opts)
        .await
        .expect("evaluate");
    let (_, files) = ml.model_files().expect("model files");
    let mut ort = rentgraph_model::model::OrtScorer::load(&files).expect("model");
    let model = evaluate(store, &mut ort, ml, &opts)
        .await
        .expect("evaluate");
    let ndcg = |r: &rentgraph_lab::evaluation::EvalReport, m: &str| r.methods[m].all.ndcg.mean;
    assert!(model.users > 100, "{} users", model.users);
    let local = ndcg(&model, "popularity_stated_area");
    assert!(
        ndcg(&constant, "model") <= local,
        "constant {} vs local popularity {local}",
        ndcg(&constant, "model")
    );
    assert!(
        ndcg(&model, "model") > ndcg(&constant, "model"),
        "model {} vs constant {}",
        ndcg(&model, "model"),
        ndcg(&constant, "model")
    );
    assert!(ndcg(&model, "random") < ndcg(&model, "popularity_global"));
    app.cleanup().await;
}

/// A copy of the shipped model whose sealed gate says `passed`, serving `baseline` when not.
fn model_with_gate(passed: bool, baseline: &str) -> (std::path::PathBuf, String, String) {
    let dir = std::env::temp_dir().join(format!("rg_gate_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let onnx = dir.join("recommender.onnx");
    std::fs::copy("models/recommender.onnx", &onnx).expect("copy the model");
    let text = std::fs::read_to_string("models/recommender.json").expect("the model's info");
    let mut info: Value = serde_json::from_str(&text).expect("json");
    info["gate"] = json!({
        "metric": "ndcg@10, listings new to the user",
        "users": 300,
        "model": if passed { 0.12 } else { 0.05 },
        "best_baseline": baseline,
        "best_baseline_ndcg": 0.08,
        "vs_best_baseline": { "ratio": if passed { 1.5 } else { 0.62 },
                              "ci95": if passed { [1.3, 1.7] } else { [0.5, 0.75] } },
        "serve_baseline": baseline,
        "passed": passed,
    });
    let json_path = dir.join("recommender.json");
    std::fs::write(&json_path, info.to_string()).expect("write info");
    let s = |p: &std::path::Path| p.display().to_string();
    (dir.clone(), s(&onnx), s(&json_path))
}

/// The gate: a model whose sealed evaluation loses to a baseline is not served; that baseline
/// answers (and `source` says which), /ready and a metric say so, `ml.serve_unproven` serves
/// the model anyway, and a model that won is served.
#[tokio::test]
async fn a_model_that_loses_to_a_baseline_is_not_served_and_one_that_wins_is() {
    let gauge = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("rentgraph_recommender_gated"))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    for (passed, serve_unproven, baseline, want) in [
        (
            false,
            false,
            "item_knn_co_engagement",
            "ITEM_KNN_CO_ENGAGEMENT",
        ),
        (
            false,
            false,
            "recent_popularity_inferred_area",
            "RECENT_POPULARITY_INFERRED_AREA",
        ),
        (false, false, "model_off", "MODEL_OFF"),
        (
            false,
            false,
            "decayed_popularity_inferred_area",
            "DECAYED_POPULARITY_INFERRED_AREA",
        ),
        (false, true, "item_knn_co_engagement", "MODEL"),
        (true, false, "item_knn_co_engagement", "MODEL"),
    ] {
        let (dir, onnx, info) = model_with_gate(passed, baseline);
        let unproven = serve_unproven.to_string();
        let app = TestApp::spawn_with(
            Db::Postgres,
            &[
                ("ml.model_path", &onnx),
                ("ml.info_path", &info),
                ("ml.serve_unproven", &unproven),
            ],
        )
        .await;
        let u = app.seed(1_200, 80, 12_000).await;
        let user = app.token(u.user, Role::User);
        let recs = items(&app.data(RECS, json!({ "first": 10 }), Some(&user)).await);
        assert_eq!(recs.len(), 10, "{baseline}: {recs:?}");
        let served_model = want == "MODEL";
        for r in &recs {
            assert_eq!(
                r["source"], want,
                "{passed} {serve_unproven} {baseline}: {r}"
            );
            assert_eq!(r["modelVersion"].is_null(), !served_model, "{r}");
            let s = r["score"].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&s), "{r}");
        }
        // No listing twice, none the user dismissed.
        let ids: std::collections::HashSet<String> = recs
            .iter()
            .map(|r| r["property"]["id"].to_string())
            .collect();
        assert_eq!(ids.len(), recs.len());
        let top = recs[0]["property"]["id"].clone();
        app.data(
            "mutation($id: ID!) { recordInteraction(propertyId: $id, type: DISMISS) { id } }",
            json!({ "id": top }),
            Some(&user),
        )
        .await;
        let again = items(&app.data(RECS, json!({ "first": 10 }), Some(&user)).await);
        assert!(
            again.iter().all(|r| r["property"]["id"] != top),
            "{baseline}"
        );

        let ready: Value = app.get("/ready").await.json().await.expect("ready json");
        let serving = ready["recommender"]["serving"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
        if served_model {
            assert_eq!(serving, "model", "{ready}");
            assert!(gauge(&metrics).ends_with(" 0"), "{}", gauge(&metrics));
        } else {
            assert_eq!(serving, format!("baseline {baseline}"), "{ready}");
            assert_eq!(ready["recommender"]["gate"]["passed"], false, "{ready}");
            assert!(gauge(&metrics).ends_with(" 1"), "{}", gauge(&metrics));
            assert!(gauge(&metrics).contains(baseline), "{}", gauge(&metrics));
        }
        assert_eq!(
            ready["recommender"]["gate"]["overridden_by_serve_unproven"],
            json!(!passed && serve_unproven),
            "{ready}"
        );
        app.cleanup().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
