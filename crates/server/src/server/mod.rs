//! A running server with graceful shutdown. `Server::start` is what `rentgraph serve` and the
//! integration tests both run, so tests exercise the real start-up path (migrations, seeding,
//! listeners) on a random port. Transport only: the GraphQL request's stages are `gateway`'s.
mod cors;
mod graphiql;
mod graphql;
mod probes;
mod router;
mod state;
mod warm;

pub use router::{metrics_router, router};
pub use state::{AppState, DemoData, StartError};

use crate::config::Settings;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Server {
    pub addr: SocketAddr,
    /// Where /metrics is served when `telemetry.metrics_address` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Starts without a demo data generator (an empty database stays empty).
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        Self::start_with(settings, None).await
    }

    /// Starts, seeding an empty database with `demo` when `database.seed_if_empty` is set.
    pub async fn start_with(
        settings: Settings,
        demo: Option<&dyn DemoData>,
    ) -> Result<Self, StartError> {
        let state = AppState::new(settings).await?;
        state.prepare_database(demo).await?;
        state.recommender.start_index().await?;
        state.warm_cache().await;
        let addr = format!(
            "{}:{}",
            state.settings.server.host, state.settings.server.port
        );
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let (tx, rx) = watch::channel(false);
        let router = router(state.clone());
        let conns = Connections::new(&state.settings.server);
        let metrics_addr = match state.settings.telemetry.metrics_address.trim() {
            "" => None,
            metrics_at => {
                let listener =
                    tokio::net::TcpListener::bind(metrics_at)
                        .await
                        .map_err(|source| StartError::Bind {
                            addr: metrics_at.to_owned(),
                            source,
                        })?;
                let bound = listener.local_addr().map_err(|source| StartError::Bind {
                    addr: metrics_at.to_owned(),
                    source,
                })?;
                let router = metrics_router(state.clone());
                tokio::spawn(serve(listener, router, conns.clone(), rx.clone()));
                Some(bound)
            }
        };
        let task = tokio::spawn(serve(listener, router, conns, rx));
        Ok(Self {
            addr,
            metrics_addr,
            state,
            shutdown: tx,
            task,
        })
    }

    /// A rolling restart's stop: `/ready` fails at once (balancers and Kubernetes stop sending
    /// new requests), requests are still served for `server.drain_secs` while they notice,
    /// then `stop`.
    pub async fn shutdown(self, grace: Duration) {
        let drain = Duration::from_secs(self.state.settings.server.drain_secs);
        self.state.start_draining();
        if !drain.is_zero() {
            tracing::info!(
                drain_secs = drain.as_secs(),
                "draining: /ready fails, requests are still served"
            );
            tokio::time::sleep(drain).await;
        }
        self.stop(grace).await;
    }

    /// Stops accepting connections and waits for in-flight requests, at most `grace`.
    pub async fn stop(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        match tokio::time::timeout(grace, self.task).await {
            Ok(Ok(Ok(()))) => tracing::info!("server stopped"),
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "server failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
            Err(_) => tracing::warn!("in-flight requests did not finish in time; exiting"),
        }
    }
}

/// What one client connection may hold: `server.header_read_timeout_ms` to send its headers,
/// `server.idle_timeout_ms` without sending anything (between requests on a kept-alive
/// connection; longer than a request may run), `server.write_timeout_ms` without reading any of
/// its answer (a client that stops reading would otherwise keep the socket and the buffered
/// response for ever), at most `server.max_connections` open at once (beyond, a new
/// connection is closed at once and counted), each for `server.max_connection_age_secs`.
#[derive(Clone)]
struct Connections {
    header: Duration,
    idle: Duration,
    write: Duration,
    open: Arc<tokio::sync::Semaphore>,
    max: usize,
    age: Duration,
}

impl Connections {
    fn new(s: &crate::config::ServerSettings) -> Self {
        Self {
            header: Duration::from_millis(s.header_read_timeout_ms),
            idle: Duration::from_millis(s.idle_timeout_ms),
            write: Duration::from_millis(s.write_timeout_ms),
            open: Arc::new(tokio::sync::Semaphore::new(s.max_connections)),
            max: s.max_connections,
            age: Duration::from_secs(s.max_connection_age_secs),
        }
    }

    /// This connection's age limit, spread over ±10% so connections opened together (after a
    /// deploy, say) do not all reconnect at once; `None`: no limit.
    fn age_limit(&self) -> Option<Duration> {
        if self.age.is_zero() {
            return None;
        }
        let spread = (uuid::Uuid::new_v4().as_u128() % 2001) as f64 / 10_000.0 - 0.1;
        Some(self.age.mul_f64(1.0 + spread))
    }

    /// The stream with its idle and write timeouts (0: none).
    fn wrap(
        &self,
        stream: tokio::net::TcpStream,
    ) -> std::pin::Pin<Box<tokio_io_timeout::TimeoutStream<tokio::net::TcpStream>>> {
        let some = |d: Duration| (!d.is_zero()).then_some(d);
        let mut timed = tokio_io_timeout::TimeoutStream::new(stream);
        timed.set_read_timeout(some(self.idle));
        timed.set_write_timeout(some(self.write));
        Box::pin(timed)
    }
}

/// The accept loop: HTTP/1.1 and HTTP/2 over cleartext (h2c, prior knowledge), each connection
/// detected from its first bytes by hyper-util's auto builder. axum's `serve` cannot bound how
/// long a client may take to send its headers, so a slow client could hold connections open
/// for ever; hyper can, given a timer. (h2 over TLS is the TLS-terminating proxy's job: it
/// negotiates h2 by ALPN with clients and may speak h2c or HTTP/1.1 to this server.)
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    conns: Connections,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(conns.header)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let accept = Accept {
        builder: Arc::new(builder),
        router,
        conns,
        stop: stop.clone(),
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => accept.serve(stream, peer),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    // Connections the kernel completed but nobody accepted yet would be reset when the listener
    // closes, with the request a balancer already sent on them: serve them first (they get
    // `Connection: close`, the server is draining).
    use futures_util::FutureExt;
    while let Some(Ok((stream, peer))) = listener.accept().now_or_never() {
        accept.serve(stream, peer);
    }
    drop(listener);
    // Every connection holds a permit until it is closed: all of them back means all closed.
    let _all = accept
        .conns
        .open
        .acquire_many(accept.conns.max as u32)
        .await;
    Ok(())
}

/// How long a connection may still bring its request once the server stops (drained
/// answers carry `Connection: close`, so no connection is reused past its current request).
const STOP_BEAT: Duration = Duration::from_millis(250);

/// What serving one accepted connection needs.
struct Accept {
    builder: Arc<hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>>,
    router: axum::Router,
    conns: Connections,
    stop: watch::Receiver<bool>,
}

impl Accept {
    /// Serves the connection on a task of its own, within `server.max_connections`, until it
    /// ends, is too old, or the server stops.
    fn serve(&self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        use hyper_util::rt::TokioIo;
        let Ok(permit) = self.conns.open.clone().try_acquire_owned() else {
            // Over server.max_connections: closed before anything is read.
            static REFUSED: crate::infra::telemetry::LogGate =
                crate::infra::telemetry::LogGate::new(10);
            if let Some(held) = REFUSED.admit() {
                tracing::warn!(%peer, more_since_last_line = held, "connection refused: server.max_connections are open");
            }
            drop(stream);
            return;
        };
        let _ = stream.set_nodelay(true);
        // The peer address, for the throttling key of anonymous callers.
        let router = self.router.clone();
        let service = hyper_util::service::TowerToHyperService::new(tower::service_fn(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                tower::ServiceExt::oneshot(router.clone(), req)
            },
        ));
        let (builder, mut stop) = (self.builder.clone(), self.stop.clone());
        let age = self.conns.age_limit();
        let stream = self.conns.wrap(stream);
        tokio::spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let old = async {
                match age {
                    Some(age) => tokio::time::sleep(age).await,
                    None => std::future::pending().await,
                }
            };
            let stopping = async move {
                // The guard wait_for returns is dropped here, not held across awaits.
                let _ = stop.wait_for(|stop| *stop).await.is_ok();
            };
            // Too old, or the server stops: finish what is in flight, then close.
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = old => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
                () = stopping => {
                    // A request whose bytes are arriving right now (or wait in a connection
                    // taken from the backlog) is still read and answered: a graceful shutdown
                    // closes a connection that looks idle at once, request or not.
                    tokio::select! {
                        ended = conn.as_mut() => ended,
                        () = tokio::time::sleep(STOP_BEAT) => {
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The router without a socket (`oneshot`): what every request passes through before and
/// around the gateway. The integration tests run the same router on a real port.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Sources;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    async fn app() -> (axum::Router, std::path::PathBuf) {
        let db = std::env::temp_dir().join(format!("rentgraph-router-{}.db", uuid::Uuid::new_v4()));
        let settings = Settings::load(Sources {
            env: Some("test".into()),
            overrides: vec![
                (
                    "database.url".into(),
                    format!("sqlite://{}?mode=rwc", db.display()),
                ),
                ("ml.enabled".into(), "false".into()),
                ("redis.url".into(), String::new()),
            ],
            ..Default::default()
        })
        .expect("settings");
        (router(AppState::new(settings).await.expect("state")), db)
    }

    async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let resp = app.clone().oneshot(req).await.expect("a response");
        let status = resp.status();
        assert!(resp.headers().contains_key("x-request-id"));
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_query_runs_and_refusals_are_graphql_shaped_with_their_codes() {
        let (app, db) = app().await;
        let post = |body: &'static str| {
            Request::post("/graphql")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .expect("request")
        };
        let (status, body) = send(&app, post(r#"{"query":"{ __typename }"}"#)).await;
        assert_eq!(
            (status, &body["data"]["__typename"]),
            (StatusCode::OK, &"Query".into())
        );
        assert!(body["extensions"]["cost"]["requestedQueryCost"].is_u64());

        let get = Request::get("/graphql?query=mutation%7B__typename%7D")
            .body(Body::empty())
            .expect("request");
        let (status, body) = send(&app, get).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "METHOD_NOT_ALLOWED"
        );

        let form = Request::post("/graphql")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("{}"))
            .expect("request");
        let (status, body) = send(&app, form).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "UNSUPPORTED_MEDIA_TYPE"
        );

        let nowhere = Request::get("/nowhere")
            .body(Body::empty())
            .expect("request");
        let (status, body) = send(&app, nowhere).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
        let _ = std::fs::remove_file(db);
    }
}
