//! The entity cache: repeated reads stop reaching the database, two instances stay consistent
//! through Redis, and Redis going away (and coming back) costs no request.
use crate::helpers::{Db, Peer, TestApp, Users, redis_prefix, redis_url};
use entity::Role;
use serde_json::{Value, json};
use std::time::Duration;

const LISTING: &str = "query($id: ID!) { property(id: $id) { id title isActive images { url } amenities owner { displayName } } }";

/// The ids of the first `n` active listings, as anyone sees them.
async fn listing_ids(app: &TestApp, n: usize) -> Vec<String> {
    app.data(
        "query($n: Int!) { properties(first: $n) { edges { node { id } } } }",
        json!({ "n": n }),
        None,
    )
    .await["properties"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned))
        .collect()
}

async fn first_listing(app: &TestApp) -> (String, String) {
    let d = app
        .data(
            "{ properties(first: 1) { edges { node { id owner { id } } } } }",
            json!({}),
            None,
        )
        .await;
    let node = &d["properties"]["edges"][0]["node"];
    (
        node["id"].as_str().expect("id").to_owned(),
        node["owner"]["id"].as_str().expect("owner").to_owned(),
    )
}

#[tokio::test]
async fn warm_reads_skip_the_database_and_say_so_in_metrics() {
    let app = TestApp::spawn(Db::Postgres).await;
    app.seed(20, 10, 20).await;
    let (id, _) = first_listing(&app).await;
    let s0 = app.statements().await;
    app.data(LISTING, json!({ "id": id }), None).await;
    let s1 = app.statements().await;
    app.data(LISTING, json!({ "id": id }), None).await;
    let s2 = app.statements().await;
    let (cold, warm) = (s1 - s0, s2 - s1);
    assert!(
        cold >= 3,
        "listing, images, amenities (the owner was read before): {cold}"
    );
    assert_eq!(warm, 0, "a warm read runs no statement");
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rentgraph_cache_requests_total")
                && l.contains("kind=\"property\"")
                && l.contains("result=\"hit\"")),
        "{metrics}"
    );
    // Off, every read goes to the database.
    let off = TestApp::spawn_with(Db::Sqlite, &[("cache.enabled", "false")]).await;
    off.seed(20, 10, 20).await;
    let (id, _) = first_listing(&off).await;
    off.data(LISTING, json!({ "id": id }), None).await;
    let s1 = off.statements().await;
    off.data(LISTING, json!({ "id": id }), None).await;
    assert!(off.statements().await - s1 >= 4);
    off.cleanup().await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_instance_starts_with_the_popular_listings_warm() {
    let app = TestApp::spawn_with(Db::Postgres, &[("cache.warm_listings", "10")]).await;
    app.seed(40, 10, 400).await;
    // A new instance (a deploy) over the seeded database warms its cache before it serves.
    let fresh = app.peer(&[]).await;
    let popular = app
        .server()
        .state
        .store()
        .popular_listing_ids(1)
        .await
        .expect("popular")[0]
        .0;
    let before = fresh.statements().await;
    let resp = fresh
        .post(
            json!({ "query": LISTING, "variables": { "id": popular.to_string() } }),
            &[],
        )
        .await;
    let body: Value = resp.json().await.expect("json");
    assert!(body["data"]["property"]["title"].is_string(), "{body}");
    assert_eq!(
        fresh.statements().await,
        before,
        "the first read of a popular listing is warm"
    );
    fresh.stop().await;
    app.cleanup().await;
}

/// The listing ids of a `recommendations` response body, in order.
fn recommended(v: &Value) -> Vec<String> {
    v["data"]["recommendations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["property"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// Polls `read` until `done` says yes (invalidations travel by pub/sub: milliseconds).
async fn eventually(mut read: impl AsyncFnMut() -> Value, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = read().await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    last
}

/// Instance A on PostgreSQL and a Redis prefix of its own (plus `extra` settings), the data
/// set (`properties`, `users`, `interactions`) seeded through it, and instance B beside it on
/// the same database, Redis and settings.
async fn two_instances(
    extra: &[(&str, &str)],
    sizes: (usize, usize, usize),
) -> (TestApp, Peer, Users) {
    let prefix = redis_prefix();
    let url = redis_url();
    let mut settings = vec![
        ("redis.url", url.as_str()),
        ("redis.prefix", prefix.as_str()),
    ];
    settings.extend_from_slice(extra);
    let a = TestApp::spawn_with(Db::Postgres, &settings).await;
    let u = a.seed(sizes.0, sizes.1, sizes.2).await;
    let b = a.peer(&[]).await;
    (a, b, u)
}

#[tokio::test]
async fn a_change_through_one_instance_is_seen_through_another() {
    let (a, b, u) = two_instances(&[], (20, 10, 20)).await;
    let listing = crate::helpers::owners_listing(&a, u.owner).await;
    let read_b = || {
        b.json(
            json!({ "query": LISTING, "variables": { "id": listing } }),
            &[],
        )
    };
    // B has it cached (L1 and L2).
    let before = read_b().await;
    assert!(before["data"]["property"]["title"].is_string(), "{before}");
    // A changes it: B sees the new title and images.
    let owner = a.token(u.owner, Role::Owner);
    a.data(
        "mutation($id: ID!) { updateProperty(id: $id, input: { title: \"Renamed by A\", imageUrls: [\"https://img.example/new.jpg\"] }) { id } }",
        json!({ "id": listing }),
        Some(&owner),
    )
    .await;
    let after = eventually(read_b, |v| v["data"]["property"]["title"] == "Renamed by A").await;
    assert_eq!(
        after["data"]["property"]["title"], "Renamed by A",
        "{after}"
    );
    assert_eq!(
        after["data"]["property"]["images"],
        json!([{ "url": "https://img.example/new.jpg" }])
    );
    // A page through B shows it too, and a deactivation hides it from B's anonymous readers.
    a.data(
        "mutation($id: ID!) { deactivateProperty(id: $id) { id } }",
        json!({ "id": listing }),
        Some(&owner),
    )
    .await;
    let gone = eventually(read_b, |v| v["data"]["property"].is_null()).await;
    assert!(gone["data"]["property"].is_null(), "{gone}");
    let metrics = a.get("/metrics").await.text().await.unwrap_or_default();
    assert!(
        metrics.contains("rentgraph_cache_invalidations_total"),
        "{metrics}"
    );
    b.stop().await;
    a.cleanup().await;
}

/// A redis-server of this test's own on a free port, so it can be killed.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (installed with Redis)");
        Self { port, child }
    }

    async fn ready(&self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not start");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_and_coming_back_costs_no_request() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut redis = OwnRedis::start(port);
    redis.ready().await;
    let url = format!("redis://127.0.0.1:{port}");
    let app = TestApp::spawn_with(
        Db::Postgres,
        &[("redis.url", &url), ("redis.timeout_ms", "50")],
    )
    .await;
    // Listings leave the market in the generated data: enough for 40 active ones.
    app.seed(120, 10, 20).await;
    let mut ids = listing_ids(&app, 40).await;
    // Ten listings stay unread until Redis is back.
    let unread = ids.split_off(30);
    let failures = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = |rounds: usize| {
        let client = app.client.clone();
        let url = format!("{}/graphql", app.base);
        let ids = ids.clone();
        let failures = failures.clone();
        let sent = sent.clone();
        async move {
            for i in 0..rounds {
                let id = &ids[i % ids.len()];
                let body = json!({ "query": LISTING, "variables": { "id": id } }).to_string();
                let ok = match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => r.json::<Value>().await.is_ok_and(|v| {
                        v.get("errors").is_none() && v["data"]["property"]["id"] == *id
                    }),
                    _ => false,
                };
                if !ok {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    };
    // With Redis, then without it, then with it again, under load all along.
    let runner = tokio::spawn(load(600));
    while sent.load(std::sync::atomic::Ordering::Relaxed) < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    redis.kill();
    while sent.load(std::sync::atomic::Ordering::Relaxed) < 350 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let redis = OwnRedis::start(port);
    redis.ready().await;
    runner.await.expect("load");
    assert_eq!(
        failures.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "requests failed"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    assert!(
        metrics.contains("rentgraph_redis_errors_total"),
        "the outage was counted"
    );
    // Redis is back: listings read for the first time are written to L2 again (once the
    // server tries Redis again, at most redis.retry_after_ms later).
    let mut conn = redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut written = false;
    for id in &unread {
        app.data(LISTING, json!({ "id": id }), None).await;
        let pattern = format!(
            "rentgraph:*:{{property:{}}}",
            crate::helpers::decode_gid(id)
        );
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(written, "entries are written to Redis again");
    drop(redis);
    app.cleanup().await;
}

/// The listing index of every instance follows changes made through any of them.
#[tokio::test]
async fn recommendations_through_another_instance_follow_listing_changes() {
    let (a, b, u) = two_instances(&[("ml.results_ttl_secs", "0")], (20, 10, 20)).await;
    let recs =
        "query { recommendations(first: 5, filter: { city: \"Elsewhere\" }) { property { id } } }";
    let read_b = || b.json(json!({ "query": recs }), &[]);
    assert!(recommended(&read_b().await).is_empty());
    let owner = a.token(u.owner, Role::Owner);
    let id = a
        .data(
            "mutation { createProperty(input: { title: \"T\", description: \"d\", monthlyPrice: 900, city: \"Elsewhere\", neighbourhood: \"Centre\", latitude: 1.0, longitude: 1.0, bedrooms: 1, bathrooms: 1, area: 40, propertyType: APARTMENT }) { id } }",
            json!({}),
            Some(&owner),
        )
        .await["createProperty"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let seen = eventually(read_b, |v| recommended(v) == vec![id.clone()]).await;
    assert_eq!(recommended(&seen), vec![id.clone()], "{seen}");
    a.data(
        "mutation($id: ID!) { deactivateProperty(id: $id) { id } }",
        json!({ "id": id }),
        Some(&owner),
    )
    .await;
    let gone = eventually(read_b, |v| recommended(v).is_empty()).await;
    assert!(recommended(&gone).is_empty(), "{gone}");
    b.stop().await;
    a.cleanup().await;
}

/// Concurrent misses on one listing load it once: 24 anonymous requests for the same cold
/// listing run one statement per kind (listing, owner, images), whether they overlap (single
/// flight) or not (the first fills the cache).
#[tokio::test]
async fn concurrent_misses_on_one_listing_load_it_once() {
    let app = TestApp::spawn(Db::Postgres).await;
    app.seed(20, 10, 20).await;
    let (id, _) = first_listing(&app).await;
    // The listing itself was read by the page above; forget it as a write would.
    app.server()
        .state
        .caches()
        .invalidate(rentgraph::infra::cache::Changed::Property(
            crate::helpers::decode_gid(&id).parse().expect("uuid"),
        ))
        .await;
    let q = "query($id: ID!) { property(id: $id) { id title images { url } } }";
    let before = app.statements().await;
    let requests = (0..24).map(|_| app.data(q, json!({ "id": id }), None));
    let answers = futures_util::future::join_all(requests).await;
    let after = app.statements().await;
    assert!(answers.iter().all(|a| a["property"]["id"] == id.as_str()));
    assert_eq!(
        after - before,
        2,
        "one statement for the listing, one for its images"
    );
    app.cleanup().await;
}

/// A user's state follows them across instances: what they dismiss through one is never
/// recommended by another, which moves the copy of the state it holds in place (the
/// interaction comes on the bus) rather than loading the user's whole state again.
#[tokio::test]
async fn a_dismissal_through_one_instance_is_respected_by_another() {
    let (a, b, u) = two_instances(&[("ml.results_ttl_secs", "0")], (200, 20, 500)).await;
    let token = a.token(u.user, Role::User);
    let recs = "query { recommendations(first: 10) { property { id } } }";
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let read_b = || b.json(json!({ "query": recs }), &auth);
    // B holds the user's state now (L1, and Redis).
    let before = recommended(&read_b().await);
    let top = before.first().cloned().expect("recommendations");
    let statements = b.statements().await;
    a.data(
        "mutation($id: ID!) { recordInteraction(propertyId: $id, type: DISMISS) { id } }",
        json!({ "id": top }),
        Some(&token),
    )
    .await;
    let after = eventually(read_b, |v| {
        !recommended(v).is_empty() && !recommended(v).contains(&top)
    })
    .await;
    assert!(
        !recommended(&after).is_empty() && !recommended(&after).contains(&top),
        "B still recommends the dismissed listing: {after}"
    );
    assert_eq!(
        b.statements().await,
        statements,
        "B followed the dismissal without reading the database"
    );
    b.stop().await;
    a.cleanup().await;
}

/// A Redis Cluster of three masters on free ports, for one test, in a directory of its own.
struct OwnCluster {
    ports: Vec<u16>,
    nodes: Vec<std::process::Child>,
    dir: std::path::PathBuf,
}

impl OwnCluster {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("rentgraph-cluster-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ports: Vec<u16> = (0..3)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .expect("port")
            })
            .collect();
        let nodes = ports
            .iter()
            .map(|p| {
                std::process::Command::new("redis-server")
                    .args([
                        "--port",
                        &p.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &format!("nodes-{p}.conf"),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ])
                    .current_dir(&dir)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("redis-server (installed with Redis)")
            })
            .collect();
        let cluster = Self { ports, nodes, dir };
        for p in &cluster.ports {
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut create = std::process::Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for p in &cluster.ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        // Every node must know every slot before the test starts.
        for _ in 0..200 {
            let ok = cluster.ports.iter().all(|p| {
                std::process::Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
            });
            if ok {
                return cluster;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the cluster did not come up");
    }

    fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// With `redis.cluster`, the shared level and the invalidation bus run on a Redis Cluster:
/// rows cached by one instance (keys on every node) are read by another without SQL, and a
/// change through one is seen through the other.
#[tokio::test]
async fn two_instances_share_a_redis_cluster() {
    let cluster = OwnCluster::start().await;
    let url = cluster.url();
    let a = TestApp::spawn_with(
        Db::Postgres,
        &[("redis.url", &url), ("redis.cluster", "true")],
    )
    .await;
    let u = a.seed(60, 10, 20).await;
    let b = a.peer(&[]).await;
    let ids = listing_ids(&a, 20).await;
    assert!(ids.len() >= 15, "{} active listings", ids.len());
    // A reads every listing with its images and amenities: they go to L2, over all nodes.
    for id in &ids {
        a.data(LISTING, json!({ "id": id }), None).await;
    }
    let before = b.statements().await;
    for id in &ids {
        let resp = b
            .post(json!({ "query": LISTING, "variables": { "id": id } }), &[])
            .await;
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["data"]["property"]["id"], id.as_str(), "{body}");
    }
    let owners = b.statements().await - before;
    assert!(
        owners <= 1,
        "B read listings, images and amenities from the cluster; {owners} statements (owners)"
    );
    // A change through A reaches B through the cluster's pub/sub.
    let listing = crate::helpers::owners_listing(&a, u.owner).await;
    let read_b = || {
        b.json(
            json!({ "query": LISTING, "variables": { "id": listing } }),
            &[],
        )
    };
    assert!(read_b().await["data"]["property"]["title"].is_string());
    a.data(
        "mutation($id: ID!) { updateProperty(id: $id, input: { title: \"Renamed in the cluster\" }) { id } }",
        json!({ "id": listing }),
        Some(&a.token(u.owner, Role::Owner)),
    )
    .await;
    let after = eventually(read_b, |v| {
        v["data"]["property"]["title"] == "Renamed in the cluster"
    })
    .await;
    assert_eq!(
        after["data"]["property"]["title"], "Renamed in the cluster",
        "{after}"
    );
    let metrics = a.get("/metrics").await.text().await.unwrap_or_default();
    assert!(
        !metrics.contains("rentgraph_redis_errors_total"),
        "Redis calls failed: {metrics}"
    );
    b.stop().await;
    a.cleanup().await;
    drop(cluster);
}

/// A read that loaded a listing just before an owner changed it cannot put the old row back
/// into either level when it finishes after the change's invalidation: the fill carries the
/// version it started from (L2) and the time it started (L1), and is dropped. Without that, the
/// old row would be served by every instance until the entry expires (`cache.l2_ttl_secs`).
#[tokio::test]
async fn a_fill_that_started_before_a_change_cannot_undo_it() {
    let (a, b, u) = two_instances(&[], (20, 10, 0)).await;
    let listing = crate::helpers::owners_listing(&a, u.owner).await;
    let id = crate::helpers::decode_gid(&listing)
        .parse::<uuid::Uuid>()
        .expect("uuid");
    let caches = a.server().state.caches().clone();
    let store = a.server().state.store().clone();
    // Nobody holds it, then a slow read misses, reads the row, and is held up before it fills.
    caches
        .invalidate(rentgraph::infra::cache::Changed::Property(id))
        .await;
    let (_, missing, base) = caches.properties.get_many(&[id]).await;
    assert_eq!(missing, vec![id]);
    let old = store.properties_by_ids(&[id]).await.expect("row");
    let owner = a.token(u.owner, Role::Owner);
    a.data(
        "mutation($id: ID!) { updateProperty(id: $id, input: { title: \"Changed meanwhile\" }) { id } }",
        json!({ "id": listing }),
        Some(&owner),
    )
    .await;
    // Now the slow read fills with what it read.
    let old: Vec<_> = old.into_iter().map(|p| (p.id, p)).collect();
    caches.properties.put_many(&old, &base).await;
    let title = |v: Value| v["data"]["property"]["title"].clone();
    let query = json!({ "query": LISTING, "variables": { "id": listing } });
    let through_a =
        a.data(LISTING, json!({ "id": listing }), None).await["property"]["title"].clone();
    assert_eq!(through_a, "Changed meanwhile", "through A (L1)");
    assert_eq!(
        title(b.json(query, &[]).await),
        "Changed meanwhile",
        "through B (L2)"
    );
    b.stop().await;
    a.cleanup().await;
}
