//! Read replicas on a real streaming replica: a PostgreSQL primary and a replica of it made
//! with pg_basebackup, both clusters of this test's own on free ports (the machine's cluster
//! is left alone). Reads that tolerate lag go to the replica, mutations and a writer's next
//! reads to the primary (read-your-writes), a lagging replica is taken out until it catches up,
//! and a replica killed under load costs no request.
use crate::helpers::{Db, TestApp, metric};
use entity::Role;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup): RENTGRAPH_TEST_PG_BIN, else
/// the newest /usr/lib/postgresql/N/bin (Debian's layout).
fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("RENTGRAPH_TEST_PG_BIN") {
        return dir.into();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server programs (/usr/lib/postgresql; or RENTGRAPH_TEST_PG_BIN)")
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().expect("initdb")
}

/// Runs a PostgreSQL program as the `postgres` user when the test runs as root (the server
/// refuses to run as root), else as the current user.
fn pg(program: &str, args: &[&str]) -> std::process::Output {
    let path = pg_bin().join(program);
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    let out = cmd.args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// A primary and its streaming replica, in a directory of their own.
struct OwnReplication {
    dir: PathBuf,
    primary_port: u16,
    replica_port: u16,
}

impl OwnReplication {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("rg-replication-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        // The clusters' owner must be able to write there.
        let _ = Command::new("chown").arg("postgres").arg(&dir).status();
        let (primary_port, replica_port) = (free_port(), free_port());
        let primary = dir.join("primary");
        let s = |p: &Path| p.display().to_string();
        pg(
            "initdb",
            &["-D", &s(&primary), "-U", "postgres", "--auth=trust", "-N"],
        );
        let conf = format!(
            "port = {primary_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\nwal_level = replica\nmax_wal_senders = 4\n",
            s(&dir)
        );
        append(&primary.join("postgresql.conf"), &conf);
        pg(
            "pg_ctl",
            &[
                "-D",
                &s(&primary),
                "-l",
                &s(&dir.join("primary.log")),
                "-w",
                "start",
            ],
        );
        let replica = dir.join("replica");
        let port = primary_port.to_string();
        pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &s(&replica),
                "-R",
                "-X",
                "stream",
            ],
        );
        append(
            &replica.join("postgresql.conf"),
            &format!("port = {replica_port}\n"),
        );
        pg(
            "pg_ctl",
            &[
                "-D",
                &s(&replica),
                "-l",
                &s(&dir.join("replica.log")),
                "-w",
                "start",
            ],
        );
        Self {
            dir,
            primary_port,
            replica_port,
        }
    }

    fn url(port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }

    fn stop_replica(&self) {
        let dir = self.dir.join("replica").display().to_string();
        pg("pg_ctl", &["-D", &dir, "-m", "immediate", "stop"]);
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("postgresql.conf");
    f.write_all(text.as_bytes()).expect("append");
}

impl Drop for OwnReplication {
    fn drop(&mut self) {
        for cluster in ["replica", "primary"] {
            let dir = self.dir.join(cluster).display().to_string();
            let path = pg_bin().join("pg_ctl");
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(["-D", &dir, "-m", "immediate", "stop"])
                .output()
                .or_else(|_| {
                    Command::new(&path)
                        .args(["-D", &dir, "-m", "immediate", "stop"])
                        .output()
                });
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Statements each pool of the instance ran, from its /metrics.
async fn by_pool(app: &TestApp, pool: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap_or_default();
    metric(&text, "rentgraph_db_queries_total", &[("pool", pool)])
}

const PAGE: &str = "{ properties(first: 10) { totalCount edges { node { id title } } } }";

#[tokio::test]
async fn reads_go_to_the_replica_writes_and_a_writers_reads_to_the_primary() {
    let pg = OwnReplication::start();
    let (primary, replica) = (
        OwnReplication::url(pg.primary_port),
        OwnReplication::url(pg.replica_port),
    );
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[
            ("database.url", primary.as_str()),
            ("database.replica_urls", replica.as_str()),
            ("database.replica_check_ms", "200"),
            ("database.max_replica_lag_ms", "500"),
            ("database.read_your_writes_secs", "30"),
        ],
    )
    .await;
    let u = app.seed(30, 10, 0).await;
    // The replica has replayed the seed once it is in use again (the check measures lag).
    let ready = || async {
        let r: Value = app.get("/ready").await.json().await.unwrap_or(Value::Null);
        r["replicas"][0]["in_use"] == true
    };
    for _ in 0..100 {
        if ready().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready().await, "the replica is in use");

    // A page anonymously, and signed in: the replica answers.
    let before = (
        by_pool(&app, "replica-0").await,
        by_pool(&app, "primary").await,
    );
    app.data(PAGE, json!({}), None).await;
    let user = app.token(u.user, Role::User);
    app.data(PAGE, json!({}), Some(&user)).await;
    let after = (
        by_pool(&app, "replica-0").await,
        by_pool(&app, "primary").await,
    );
    assert!(
        after.0 > before.0,
        "the replica read the pages: {before:?} -> {after:?}"
    );

    // A mutation writes to the primary, and the writer's next reads see it there at once
    // (read-your-writes), whatever the replica has replayed.
    let owner = app.token(u.owner, Role::Owner);
    let listing = crate::helpers::owners_listing(&app, u.owner).await;
    // (The owner's token is checked once now, outside the measurement: the role lookup is a
    // read that tolerates lag, on the replica.)
    app.data("{ __typename }", json!({}), Some(&owner)).await;
    let replica_before = by_pool(&app, "replica-0").await;
    app.data(
        "mutation($id: ID!) { updateProperty(id: $id, input: { title: \"Read your writes\" }) { id } }",
        json!({ "id": listing }),
        Some(&owner),
    )
    .await;
    let mine = app
        .data(
            "{ properties(first: 100) { totalCount edges { node { id title } } } }",
            json!({}),
            Some(&owner),
        )
        .await;
    assert!(mine.to_string().contains("Read your writes"), "{mine}");
    assert_eq!(
        by_pool(&app, "replica-0").await,
        replica_before,
        "the writer's reads went to the primary"
    );

    // A replica whose replay is paused falls behind once the primary writes, and is taken out.
    let replica_db = sea_orm::Database::connect(replica.as_str())
        .await
        .expect("replica");
    use sea_orm::ConnectionTrait;
    replica_db
        .execute_unprepared("SELECT pg_wal_replay_pause()")
        .await
        .expect("pause");
    for i in 0..3 {
        app.data(
            "mutation($id: ID!, $t: String!) { updateProperty(id: $id, input: { title: $t }) { id } }",
            json!({ "id": listing, "t": format!("Lagging {i}") }),
            Some(&owner),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let out = |v: &Value| v["replicas"][0]["in_use"] == false;
    let mut status = Value::Null;
    for _ in 0..50 {
        status = app.get("/ready").await.json().await.unwrap_or(Value::Null);
        if out(&status) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(out(&status), "a lagging replica is taken out: {status}");
    let replica_before = by_pool(&app, "replica-0").await;
    app.data(PAGE, json!({}), None).await;
    assert_eq!(by_pool(&app, "replica-0").await, replica_before);
    replica_db
        .execute_unprepared("SELECT pg_wal_replay_resume()")
        .await
        .expect("resume");
    for _ in 0..100 {
        if ready().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready().await, "back in use once it caught up");
    drop(replica_db);

    // Killed under load: no request fails; its reads are repeated on the primary.
    let base = app.base.clone();
    let load = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut failed = Vec::new();
        for _ in 0..200 {
            let r = client
                .post(format!("{base}/graphql"))
                .json(&json!({ "query": PAGE }))
                .send()
                .await;
            let ok = match r {
                Ok(r) if r.status() == 200 => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v.get("errors").is_none()),
                _ => false,
            };
            if !ok {
                failed.push(());
            }
        }
        failed.len()
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    pg.stop_replica();
    assert_eq!(
        load.await.expect("load"),
        0,
        "requests failed when the replica died"
    );
    app.cleanup().await;
}
