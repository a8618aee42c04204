//! Real browsers: headless Chromium (Debian's `chromium`; scripts/test installs it when absent,
//! `RENTGRAPH_TEST_CHROMIUM` names another binary) loads a page and reports the DOM its scripts
//! left. Used by the CORS tests and by GraphiQL's offline test below.
use crate::helpers::{Db, TestApp};
use std::process::Command;

/// The DOM of `url` once its scripts ran (virtual time: up to 15 s of timers and fetches).
pub(crate) fn dom(url: &str, extra: &[&str]) -> String {
    let bin = std::env::var("RENTGRAPH_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = std::env::temp_dir().join(format!("rg-chromium-{}", uuid::Uuid::new_v4()));
    let out = Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=15000",
        ])
        .args(extra)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin} (install Debian's chromium): {e}"));
    let _ = std::fs::remove_dir_all(profile);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every host name but the server's address fails to resolve: the browser is offline except
/// for the API, so a page that needed a CDN would not render.
const OFFLINE: &str = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_renders_with_no_network_but_the_server() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let url = format!("{}/graphql", app.base);
    let page = tokio::task::block_in_place(|| dom(&url, &[OFFLINE]));
    assert!(
        page.contains("graphiql-container"),
        "GraphiQL did not render:\n{page}"
    );
    assert!(page.contains("CodeMirror"), "no editor:\n{page}");
    assert!(
        page.contains("Bearer"),
        "the headers editor is not prefilled:\n{page}"
    );
    assert!(!page.contains("Loading GraphiQL..."));
}

#[tokio::test]
async fn graphiql_assets_are_immutable_and_the_page_allows_nothing_external() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/graphql", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap_or_default();
    let src = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_owned();
    assert!(
        src.starts_with("/graphql/assets/react.production.min.js?v="),
        "{src}"
    );
    let asset = client
        .get(format!("{}{src}", app.base))
        .send()
        .await
        .expect("asset");
    assert_eq!(asset.status(), 200);
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let missing = client
        .get(format!("{}/graphql/assets/nothing.js", app.base))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status(), 404);
}
