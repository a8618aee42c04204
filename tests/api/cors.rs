//! Browsers on other origins (`[server.cors]`): preflights and headers over HTTP, then a real
//! page on a second local origin calling the API with `fetch` in headless Chromium, once from
//! an allowed origin and once from one that is not.
use crate::helpers::{Db, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.base))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
        .await
        .expect("preflight")
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn allowed_origins_get_cors_headers_and_others_get_none() {
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[(
            "server.cors.allowed_origins",
            "https://app.example.com, https://*.preview.example.com",
        )],
    )
    .await;
    for origin in [
        "https://app.example.com",
        "https://pr-7.preview.example.com",
    ] {
        let r = preflight(&app, origin).await;
        assert_eq!(r.status(), 200, "{origin}");
        assert_eq!(header(&r, "access-control-allow-origin"), Some(origin));
        let allowed = header(&r, "access-control-allow-headers").unwrap_or("");
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
        assert_eq!(header(&r, "access-control-max-age"), Some("600"));
        assert!(header(&r, "access-control-allow-credentials").is_none());
    }
    for origin in [
        "https://evil.example.org",
        "https://preview.example.com",
        "http://app.example.com",
    ] {
        let r = preflight(&app, origin).await;
        assert!(
            header(&r, "access-control-allow-origin").is_none(),
            "{origin}"
        );
    }
    // The actual request: answered as usual, with the origin echoed and the request id exposed.
    let r = reqwest::Client::new()
        .post(format!("{}/graphql", app.base))
        .header("origin", "https://app.example.com")
        .header("content-type", "application/json")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        header(&r, "access-control-expose-headers").is_some_and(|h| h.contains("x-request-id"))
    );
    // Caches must key the answer by origin.
    let vary: Vec<String> = r
        .headers()
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .collect();
    assert!(vary.iter().any(|v| v.contains("origin")), "{vary:?}");
}

#[tokio::test]
async fn without_allowed_origins_there_are_no_cors_headers() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let r = preflight(&app, "https://app.example.com").await;
    assert!(header(&r, "access-control-allow-origin").is_none());
    assert_ne!(r.status(), 200);
}

/// A one-page HTTP server on its own port: a second origin for the browser. The page is set
/// after the port is known (the API must be told to allow that origin first).
struct Page {
    port: u16,
    html: std::sync::Arc<std::sync::Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Page {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let html = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let shared = html.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let html = shared.lock().map(|h| h.clone()).unwrap_or_default();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                        html.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        Self { port, html, task }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Serves `html` and returns the DOM headless Chromium ends with.
    fn open(&self, html: &str) -> String {
        if let Ok(mut h) = self.html.lock() {
            *h = html.to_owned();
        }
        crate::browser::dom(&format!("{}/", self.origin()), &[])
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the page's `fetch` saw: `ok:<name>` or `blocked:<error>`.
fn outcome(dom: &str) -> String {
    let start = dom.find("<pre id=\"out\">").map(|i| i + 14).unwrap_or(0);
    let end = dom[start..].find("</pre>").map_or(dom.len(), |e| start + e);
    dom[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_an_allowed_origin_calls_the_api_with_a_token_and_another_origin_cannot() {
    let allowed = Page::start().await;
    let other = Page::start().await;
    let app = TestApp::spawn_with(
        Db::Sqlite,
        &[("server.cors.allowed_origins", &allowed.origin())],
    )
    .await;
    let users = app.seed(5, 10, 5).await;
    let token = app.token(users.user, entity::Role::User);
    let html = format!(
        r#"<!doctype html><html><body><pre id="out">pending</pre><script>
fetch("{api}/graphql", {{ method: "POST",
  headers: {{ "content-type": "application/json", "authorization": "Bearer {token}" }},
  body: JSON.stringify({{ query: "{{ me {{ displayName }} }}" }}) }})
  .then(r => r.json())
  .then(j => {{ document.getElementById("out").textContent = "ok:" + j.data.me.displayName; }})
  .catch(e => {{ document.getElementById("out").textContent = "blocked:" + e; }});
</script></body></html>"#,
        api = app.base
    );
    // tokio's blocking pool: Chromium runs for a few seconds while the server keeps serving.
    let (a, o) = (
        tokio::task::block_in_place(|| outcome(&allowed.open(&html))),
        tokio::task::block_in_place(|| outcome(&other.open(&html))),
    );
    assert!(a.starts_with("ok:"), "allowed origin: {a}");
    assert!(o.starts_with("blocked:"), "other origin: {o}");
}
