use rentgraph::auth::Authenticator;
use rentgraph::config::{Settings, Sources};
use rentgraph::server::Server;
use rentgraph_lab::datagen::SeedOptions;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Db {
    Postgres,
    Sqlite,
}

/// The PostgreSQL server tests create their databases on.
fn pg_admin_url() -> String {
    std::env::var("RENTGRAPH_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub(crate) fn redis_url() -> String {
    std::env::var("RENTGRAPH_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn pg_exec(sql: &str) {
    use sea_orm::{ConnectionTrait, Database};
    let db = Database::connect(pg_admin_url())
        .await
        .expect("PostgreSQL must be running for the tests (see README)");
    db.execute_unprepared(sql).await.expect(sql);
    let _ = db.close().await;
}

pub(crate) struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    server: Option<Server>,
    pg_database: Option<String>,
    sqlite_dir: Option<PathBuf>,
}

pub(crate) struct Users {
    pub admin: Uuid,
    pub partner: Uuid,
    pub owner: Uuid,
    pub other_owner: Uuid,
    pub user: Uuid,
}

impl TestApp {
    pub(crate) async fn spawn(db: Db) -> Self {
        Self::spawn_with(db, &[]).await
    }

    pub(crate) async fn spawn_with(db: Db, overrides: &[(&str, &str)]) -> Self {
        let name = format!("rg_test_{}", Uuid::new_v4().simple());
        let (url, pg_database, sqlite_dir) = match db {
            Db::Postgres => {
                pg_exec(&format!("CREATE DATABASE {name}")).await;
                let base = pg_admin_url();
                let server = base
                    .rsplit_once('/')
                    .map(|(s, _)| s)
                    .unwrap_or(&base)
                    .to_owned();
                (format!("{server}/{name}"), Some(name), None)
            }
            Db::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).expect("temp dir");
                (
                    format!("sqlite://{}/rentgraph.db?mode=rwc", dir.display()),
                    None,
                    Some(dir),
                )
            }
        };
        let mut all: Vec<(String, String)> = vec![
            ("server.port".into(), "0".into()),
            ("database.url".into(), url),
            ("database.max_connections".into(), "4".into()),
            ("database.seed_if_empty".into(), "false".into()),
            ("database.migrate_on_start".into(), "true".into()),
            ("redis.url".into(), "".into()),
        ];
        all.extend(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let settings = Settings::load(Sources {
            env: Some("test".into()),
            file: None,
            overrides: all,
        })
        .expect("test settings");
        let server = Server::start(settings.clone())
            .await
            .expect("server starts");
        let base = format!("http://{}", server.addr);
        Self {
            base,
            client: reqwest::Client::new(),
            settings,
            server: Some(server),
            pg_database,
            sqlite_dir,
        }
    }

    /// A separate connection to this test's database (PostgreSQL or SQLite), as another
    /// client of the database would have.
    pub(crate) async fn db_connection(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(self.settings.database.url.clone())
            .await
            .expect("connect to the test database")
    }

    /// A second instance on its own port, over the same database and settings (plus
    /// `overrides`), as a load balancer's second backend would be.
    pub(crate) async fn peer(&self, overrides: &[(&str, &str)]) -> Peer {
        let mut settings = self.settings.clone();
        if !overrides.is_empty() {
            let mut all: Vec<(String, String)> = vec![
                ("server.port".into(), "0".into()),
                ("database.url".into(), settings.database.url.clone()),
                ("database.max_connections".into(), "4".into()),
                ("database.seed_if_empty".into(), "false".into()),
                ("redis.url".into(), settings.redis.url.clone()),
                ("redis.prefix".into(), settings.redis.prefix.clone()),
            ];
            all.extend(
                overrides
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            );
            settings = Settings::load(Sources {
                env: Some("test".into()),
                file: None,
                overrides: all,
            })
            .expect("peer settings");
        }
        let server = Server::start(settings).await.expect("peer starts");
        Peer {
            base: format!("http://{}", server.addr),
            server,
        }
    }

    pub(crate) fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    /// Loads a small generated data set and returns users of each role.
    pub(crate) async fn seed(&self, properties: usize, users: usize, interactions: usize) -> Users {
        let store = &self.server().state.store();
        let opts = SeedOptions {
            properties,
            users,
            interactions,
            seed: 7,
            world: Default::default(),
        };
        rentgraph_lab::datagen::seed(store, opts, |_| {})
            .await
            .expect("seed");
        // Rows written behind the server's back, as `rentgraph seed` writes them: the listing
        // index learns of them as it would at its next periodic reload.
        self.server()
            .state
            .recommender()
            .index()
            .reload()
            .await
            .expect("index");
        let data = rentgraph_lab::datagen::generate(SeedOptions {
            properties: 0,
            users,
            interactions: 0,
            seed: 7,
            world: Default::default(),
        });
        let owners: Vec<Uuid> = data
            .users
            .iter()
            .filter(|u| u.role == entity::Role::Owner)
            .map(|u| u.id)
            .collect();
        let user = data
            .users
            .iter()
            .find(|u| u.role == entity::Role::User)
            .map(|u| u.id)
            .expect("a USER");
        Users {
            admin: data.users[0].id,
            partner: data
                .users
                .iter()
                .find(|u| u.role == entity::Role::Partner)
                .map(|u| u.id)
                .expect("a PARTNER"),
            owner: owners[0],
            other_owner: owners[1],
            user,
        }
    }

    /// A USER of the seeded data (call after `seed`).
    pub(crate) async fn seed_user(&self) -> Uuid {
        self.server()
            .state
            .store()
            .first_user_with_role(entity::Role::User)
            .await
            .expect("query")
            .expect("a USER")
            .id
    }

    pub(crate) fn token(&self, user: Uuid, role: entity::Role) -> String {
        Authenticator::new(&self.settings.auth)
            .expect("auth")
            .mint(user, role)
            .expect("token")
    }

    pub(crate) async fn post_raw(
        &self,
        body: String,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.base))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    /// Runs a GraphQL operation; returns the HTTP status and the JSON body.
    pub(crate) async fn gql(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut headers = vec![("content-type", "application/json")];
        let auth;
        if let Some(t) = token {
            auth = format!("Bearer {t}");
            headers.push(("authorization", auth.as_str()));
        }
        let resp = self
            .post_raw(
                json!({ "query": query, "variables": variables }).to_string(),
                &headers,
            )
            .await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.expect("JSON body");
        (status, body)
    }

    /// `data` of a successful operation; panics with the errors otherwise.
    pub(crate) async fn data(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let (status, body) = self.gql(query, variables, token).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// The id of the first listing a page shows (a listing to point mutations and lookups at).
    pub(crate) async fn first_listing(&self) -> String {
        self.data(
            "{ properties(first: 1) { edges { node { id } } } }",
            json!({}),
            None,
        )
        .await["properties"]["edges"][0]["node"]["id"]
            .as_str()
            .expect("a listing")
            .to_owned()
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    /// SQL statements run so far, read from /metrics as an operator would.
    pub(crate) async fn statements(&self) -> u64 {
        let text = self.get("/metrics").await.text().await.expect("metrics");
        text.lines()
            .filter(|l| l.starts_with("rentgraph_db_queries_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    pub(crate) async fn cleanup(mut self) {
        if let Some(server) = self.server.take() {
            let store = server.state.store().clone();
            server.stop(Duration::from_secs(5)).await;
            let _ = store.conn().clone().close().await;
        }
        if let Some(name) = self.pg_database.take() {
            pg_exec(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
        if let Some(dir) = self.sqlite_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The `extensions.code` of the first error.
pub(crate) fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

pub(crate) fn gid(kind: &str, id: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{id}"))
}

/// The uuid inside a Relay global id.
pub(crate) fn decode_gid(id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(_, u)| u.to_owned()))
        .unwrap_or_default()
}

/// Another instance of the server (see `TestApp::peer`).
pub(crate) struct Peer {
    pub base: String,
    server: Server,
}

impl Peer {
    pub(crate) async fn post(&self, body: Value, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    /// The body of `post`'s response (null when it is not JSON).
    pub(crate) async fn json(&self, body: Value, headers: &[(&str, &str)]) -> Value {
        self.post(body, headers)
            .await
            .json::<Value>()
            .await
            .unwrap_or(Value::Null)
    }

    /// SQL statements this instance ran so far, from its /metrics.
    pub(crate) async fn statements(&self) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|l| l.starts_with("rentgraph_db_queries_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    pub(crate) async fn stop(self) {
        self.server.stop(Duration::from_secs(5)).await;
    }

    /// Stops as `rentgraph serve` does on SIGTERM: draining first (`server.drain_secs`).
    pub(crate) async fn shutdown(self) {
        self.server.shutdown(Duration::from_secs(5)).await;
    }
}

/// A Redis key prefix of this test's own, so tests sharing one Redis never see each other's keys.
pub(crate) fn redis_prefix() -> String {
    format!("rg_test_{}:", Uuid::new_v4().simple())
}

/// A Redis URL where nothing listens (a port that was free a moment ago).
pub(crate) fn absent_redis_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    format!("redis://127.0.0.1:{port}")
}

/// Runs one of the Apollo Client scripts in tests/apollo (installed by scripts/test) against
/// `url` and returns the JSON it prints. On a blocking thread: the server under test runs on
/// the test's runtime.
pub(crate) async fn apollo_script(script: &'static str, url: String) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/apollo");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/@apollo/client")
            .exists(),
        "run scripts/test (it installs tests/apollo with npm ci)"
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(url)
            .current_dir(dir)
            .output()
    })
    .await
    .expect("join")
    .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script's JSON")
}

/// The sum of a metric's samples whose labels include all of `labels`.
pub(crate) fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let n = l.split(['{', ' ']).next().unwrap_or("");
            n == name
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One of `owner`'s listings.
pub(crate) async fn owners_listing(app: &TestApp, owner: uuid::Uuid) -> String {
    app.data(
        "{ properties(first: 100) { edges { node { id owner { id } } } } }",
        serde_json::json!({}),
        None,
    )
    .await["properties"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["node"]["owner"]["id"] == crate::helpers::gid("User", owner))
        .map(|e| e["node"]["id"].as_str().unwrap_or_default().to_owned())
        .expect("the owner has a listing")
}
