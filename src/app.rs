//! Application state, the router, and a running server with graceful shutdown. `Server::start`
//! is what `rentgraph serve` and the integration tests both run, so tests exercise the real
//! start-up path (migrations, seeding, listeners) on a random port.
use crate::auth::{Authenticator, Principals};
use crate::config::Settings;
use crate::datagen::SeedOptions;
use crate::graphql::{AppSchema, build_schema};
use crate::ml::batcher::Batcher;
use crate::ml::model::{ModelError, ModelFiles, OrtScorer, Scorer};
use crate::recommend::Recommender;
use crate::store::{Store, StoreError};
use crate::telemetry::{Metrics, MetricsError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub schema: AppSchema,
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub principals: Principals,
    pub metrics: Arc<Metrics>,
    pub redis: Option<crate::redis_store::RedisStore>,
    pub recommender: Arc<Recommender>,
    pub cost: Arc<crate::limits::cost::CostModel>,
    pub throttle: Arc<crate::limits::throttle::Throttle>,
    pub trusted: Arc<crate::persisted::Registry>,
    pub apq: Arc<crate::persisted::ApqStore>,
    pub caches: Arc<crate::cache::Caches>,
    /// Parsed documents that passed the document limits, by their text
    /// (`graphql.document_cache_entries`).
    pub documents:
        moka::sync::Cache<Arc<str>, Arc<async_graphql::parser::types::ExecutableDocument>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("invalid redis.url: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Persisted(#[from] crate::persisted::PersistedError),
    #[error("cannot build the cost model from the schema: {0}")]
    Cost(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl AppState {
    pub async fn new(settings: Settings) -> Result<Self, StartError> {
        let metrics = Arc::new(Metrics::new()?);
        let store = Store::connect(&settings.database, metrics.clone()).await?;
        let redis = crate::redis_store::RedisStore::connect(&settings.redis, &metrics.meter())?;
        // User state shares Redis with the entity cache, and is off with it.
        let shared = redis.clone().filter(|_| settings.cache.enabled);
        let recommender = Arc::new(
            recommender(&settings, store.clone(), &metrics, shared)?.with_metrics(metrics.clone()),
        );
        metrics.register_process_and_build_info(recommender.model_version());
        let schema = build_schema(&settings.graphql, Some(store.clone()));
        let cost = crate::limits::cost::CostModel::new(
            &schema.sdl(),
            crate::graphql::cost::WEIGHTS,
            settings.graphql.default_page_size as u64,
        )
        .map_err(StartError::Cost)?;
        let trusted = crate::persisted::Registry::load(&settings.persisted.manifest_dir)?;
        trusted.validate(&schema).await?;
        if !trusted.is_empty() {
            tracing::info!(documents = trusted.len(), "trusted documents loaded");
        }
        // Recommendations (results, listing index, user state) follow the entity cache's
        // invalidation bus.
        let rec = recommender.clone();
        let follow_bus: crate::cache::Hook =
            Arc::new(move |changed, origin| rec.changed(changed, origin));
        let caches = Arc::new(crate::cache::Caches::new(
            &settings.cache,
            redis.clone(),
            metrics.clone(),
            vec![follow_bus],
        ));
        caches.spawn_listener();
        Ok(Self {
            documents: moka::sync::Cache::builder()
                .max_capacity(settings.graphql.document_cache_entries)
                .build(),
            caches,
            schema,
            recommender,
            auth: Arc::new(Authenticator::new(&settings.auth)?),
            principals: Principals::new(store.clone(), &settings.auth),
            cost: Arc::new(cost),
            throttle: Arc::new(crate::limits::throttle::Throttle::new(
                redis.clone(),
                &metrics.meter(),
            )),
            trusted: Arc::new(trusted),
            apq: Arc::new(crate::persisted::ApqStore::new(
                &settings.persisted,
                redis.clone(),
                metrics.clone(),
            )),
            settings: Arc::new(settings),
            store,
            metrics,
            redis,
        })
    }

    /// Loads the most popular listings into the cache now, and keeps doing so in the
    /// background every `cache.warm_interval_secs`. A failure only costs warmth: it is logged.
    pub async fn warm_cache(&self) {
        let c = &self.settings.cache;
        if !c.enabled || c.warm_listings == 0 {
            return;
        }
        let started = std::time::Instant::now();
        match crate::cache::warm(&self.caches, &self.store, c.warm_listings, 1000).await {
            Ok(n) => tracing::info!(
                listings = n,
                ms = started.elapsed().as_millis() as u64,
                "cache warmed"
            ),
            Err(e) => tracing::warn!(error = %e, "warming the cache failed"),
        }
        if c.warm_interval_secs == 0 {
            return;
        }
        let (caches, store) = (Arc::downgrade(&self.caches), self.store.clone());
        let (n, every) = (c.warm_listings, Duration::from_secs(c.warm_interval_secs));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(caches) = caches.upgrade() else {
                    return;
                };
                if let Err(e) = crate::cache::warm(&caches, &store, n, 1000).await {
                    tracing::warn!(error = %e, "warming the cache failed");
                }
            }
        });
    }

    /// Migrations and the demo data set, as configured.
    pub async fn prepare_database(&self) -> Result<(), StoreError> {
        let db = &self.settings.database;
        if db.migrate_on_start {
            self.store.migrate().await?;
        }
        if db.seed_if_empty && !self.store.any_property().await? {
            let demo = &self.settings.demo;
            tracing::info!("empty database: seeding the demo data set");
            let report = self
                .store
                .seed(
                    SeedOptions {
                        properties: demo.properties,
                        users: demo.users,
                        interactions: demo.interactions,
                        seed: demo.seed,
                        world: Default::default(),
                    },
                    |msg| tracing::info!("seed: {msg}"),
                )
                .await?;
            tracing::info!(?report, "demo data seeded");
        }
        Ok(())
    }
}

/// The model and its batching executor, or popularity only when `ml.enabled = false`. A model
/// that cannot load stops the start-up with an error that names the file and the fix.
fn recommender(
    settings: &Settings,
    store: Store,
    metrics: &Metrics,
    redis: Option<crate::redis_store::RedisStore>,
) -> Result<Recommender, ModelError> {
    let ml = &settings.ml;
    if !ml.enabled {
        tracing::warn!("ml.enabled = false: recommendations rank by popularity");
        return Ok(Recommender::new(store, None, None, ml.clone(), redis));
    }
    let (info, files) = ModelFiles::for_settings(ml)?;
    info.verify_file(&ml.model_path)?;
    // The golden rows, on this ONNX Runtime, before anything is served.
    info.verify_golden(&ml.model_path, &mut OrtScorer::load(&files)?)?;
    let batcher = Batcher::start(ml.batcher.clone(), &metrics.meter(), || {
        OrtScorer::load(&files).map(|s| Box::new(s) as Box<dyn Scorer>)
    })?;
    tracing::info!(version = %info.version, "recommendation model loaded");
    let version = info.version.clone();
    let recommender = Recommender::new(
        store,
        Some(Arc::new(batcher)),
        Some(info),
        ml.clone(),
        redis,
    );
    if let Some(decision) = recommender.gate() {
        log_gate(&version, decision);
    }
    Ok(recommender)
}

/// The gate's verdict in the start-up log, with its numbers.
fn log_gate(version: &str, decision: &crate::recommend::GateDecision) {
    match (&decision.sealed, decision.serve_baseline) {
        (None, Some(b)) => tracing::warn!(
            version = %version,
            serving = b.name(),
            "the model has no sealed evaluation (ml.info_path \"gate\"): a baseline is served \
             instead; retrain with scripts/retrain, or set ml.serve_unproven = true"
        ),
        (Some(g), Some(b)) => tracing::warn!(
            version = %version,
            model_ndcg = g.model,
            best_baseline = %g.best_baseline,
            best_baseline_ndcg = g.best_baseline_ndcg,
            ratio = g.vs_best_baseline.ratio,
            ci95_low = g.vs_best_baseline.ci95[0],
            ci95_high = g.vs_best_baseline.ci95[1],
            serving = b.name(),
            "the model does not beat the best baseline in its sealed evaluation: the baseline \
             is served instead (ml.serve_unproven = true overrides)"
        ),
        (Some(g), None) => tracing::info!(
            model_ndcg = g.model,
            best_baseline = %g.best_baseline,
            best_baseline_ndcg = g.best_baseline_ndcg,
            ratio = g.vs_best_baseline.ratio,
            ci95_low = g.vs_best_baseline.ci95[0],
            ci95_high = g.vs_best_baseline.ci95[1],
            passed = g.passed,
            overridden = decision.overridden,
            "the model is served"
        ),
        (None, None) => tracing::warn!(
            "the model has no sealed evaluation; served because ml.serve_unproven = true"
        ),
    }
}

pub struct Server {
    pub addr: SocketAddr,
    /// Where /metrics is served when `telemetry.metrics_address` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        let state = AppState::new(settings).await?;
        state.prepare_database().await?;
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
        let router = crate::http::router(state.clone());
        let header_timeout = Duration::from_millis(state.settings.server.header_read_timeout_ms);
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
                let router = crate::http::metrics_router(state.clone());
                tokio::spawn(serve(listener, router, header_timeout, rx.clone()));
                Some(bound)
            }
        };
        let task = tokio::spawn(serve(listener, router, header_timeout, rx));
        Ok(Self {
            addr,
            metrics_addr,
            state,
            shutdown: tx,
            task,
        })
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

/// The accept loop. axum's `serve` cannot bound how long a client may take to send its
/// headers, so a slow client could hold connections open for ever; hyper can, given a timer.
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // The peer address, for the throttling key of anonymous callers.
                let router = router.clone();
                let service = hyper_util::service::TowerToHyperService::new(tower::service_fn(
                    move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                        req.extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                        tower::ServiceExt::oneshot(router.clone(), req)
                    },
                ));
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
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
