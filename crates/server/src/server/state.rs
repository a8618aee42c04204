//! The state every request handler shares, built whole by `AppState::new`: settings, the
//! schema, the store, identity, the recommender, the caches, and the gateway's parts.
use crate::auth::{Authenticator, Principals};
use crate::config::{DemoSettings, Settings};
use crate::gateway::{Gateway, GatewayParts};
use crate::graphql::build_schema;
use crate::infra::telemetry::{Metrics, MetricsError};
use crate::recommend::Recommender;
use crate::store::{Store, StoreError};
use rentgraph_model::batcher::Batcher;
use rentgraph_model::model::{ModelError, OrtScorer, Scorer};
use std::sync::Arc;
use std::time::Duration;

/// What fills an empty database on first start (`database.seed_if_empty`). The generator is
/// offline code (the `rentgraph-lab` crate, which depends on this one), so the binary passes
/// it in rather than the server knowing it.
#[async_trait::async_trait]
pub trait DemoData: Send + Sync {
    async fn seed(&self, store: &Store, demo: &DemoSettings) -> Result<(), StoreError>;
}

/// When the readiness checks last ran, and the database's and Redis's outcomes.
pub(super) type LastChecks = (std::time::Instant, &'static str, &'static str);

/// Shared by every handler; cheap to clone. Fields are the server's own: handlers reach the
/// GraphQL pipeline through `gateway()`, and tests read through the accessors.
#[derive(Clone)]
pub struct AppState {
    pub(super) settings: Arc<Settings>,
    pub(super) gateway: Arc<Gateway>,
    pub(super) store: Store,
    pub(super) metrics: Arc<Metrics>,
    pub(super) redis: Option<crate::infra::redis::RedisStore>,
    pub(super) recommender: Arc<Recommender>,
    pub(super) caches: Arc<crate::infra::cache::Caches>,
    /// The last readiness checks and when they ran (`server::probes`).
    pub(super) ready: Arc<tokio::sync::Mutex<Option<LastChecks>>>,
    /// Set when the server was told to stop: `/ready` fails so balancers stop sending, while
    /// requests are still served for `server.drain_secs`.
    pub(super) draining: Arc<std::sync::atomic::AtomicBool>,
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
    Persisted(#[from] crate::gateway::persisted::PersistedError),
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
        let redis = crate::infra::redis::RedisStore::connect(&settings.redis, &metrics.meter())?;
        // User state shares Redis with the entity cache, and is off with it.
        let shared = redis.clone().filter(|_| settings.cache.enabled);
        let recommender = Arc::new(recommender(&settings, store.clone(), &metrics, shared)?);
        metrics.register_process_and_build_info(recommender.model_version());
        let schema = build_schema(&settings.graphql, Some(store.clone()));
        let cost = crate::limits::cost::CostModel::new(
            &schema.sdl(),
            crate::graphql::weights::WEIGHTS,
            settings.graphql.default_page_size as u64,
        )
        .map_err(StartError::Cost)?
        .with_search_bound(settings.graphql.max_search_ranked);
        let trusted = crate::gateway::persisted::Registry::load(&settings.persisted.manifest_dir)?;
        trusted.validate(&schema).await?;
        if !trusted.is_empty() {
            tracing::info!(documents = trusted.len(), "trusted documents loaded");
        }
        // Recommendations (results, listing index, user state) follow the entity cache's
        // invalidation bus.
        let rec = recommender.clone();
        let follow_bus: crate::infra::cache::Hook =
            Arc::new(move |changed, origin| rec.changed(changed, origin));
        // A user who wrote through another instance reads from the primary here too.
        let writes = store.clone();
        let writers: crate::infra::cache::Hook = Arc::new(move |changed, _| {
            if let Some(
                crate::infra::cache::Changed::User(user)
                | crate::infra::cache::Changed::Interaction { user, .. },
            ) = changed
            {
                writes.wrote(user);
            }
        });
        let caches = Arc::new(crate::infra::cache::Caches::new(
            &settings.cache,
            redis.clone(),
            metrics.clone(),
            vec![follow_bus, writers],
        ));
        caches.spawn_listener();
        let auth = Arc::new(Authenticator::new(&settings.auth)?);
        // Key sets are fetched before the first request, so the first tokens are not refused.
        auth.start().await;
        let principals = Principals::new(store.clone(), caches.clone(), &settings.auth);
        let throttle = crate::limits::throttle::Throttle::new(redis.clone(), &metrics.meter());
        let apq = crate::gateway::persisted::ApqStore::new(
            &settings.persisted,
            redis.clone(),
            metrics.clone(),
        );
        let gateway = Gateway::new(GatewayParts {
            graphql: settings.graphql.clone(),
            http_cache: settings.server.http_cache.clone(),
            limits: settings.limits.clone(),
            persisted: settings.persisted.clone(),
            schema,
            store: store.clone(),
            auth,
            principals,
            recommender: recommender.clone(),
            metrics: metrics.clone(),
            caches: caches.clone(),
            cost,
            throttle,
            trusted,
            apq,
        });
        Ok(Self {
            settings: Arc::new(settings),
            gateway: Arc::new(gateway),
            store,
            metrics,
            redis,
            recommender,
            caches,
            ready: Arc::default(),
            draining: Arc::default(),
        })
    }

    /// From now on `/ready` answers 503 `draining` and HTTP/1.1 answers carry `Connection:
    /// close`; requests are still served.
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn recommender(&self) -> &Arc<Recommender> {
        &self.recommender
    }

    pub fn caches(&self) -> &Arc<crate::infra::cache::Caches> {
        &self.caches
    }

    pub(super) fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Loads the most popular listings into the cache now, and keeps doing so in the
    /// background every `cache.warm_interval_secs`. A failure only costs warmth: it is logged.
    pub async fn warm_cache(&self) {
        let c = &self.settings.cache;
        if !c.enabled || c.warm_listings == 0 {
            return;
        }
        let started = std::time::Instant::now();
        match super::warm::warm(&self.caches, &self.store, c.warm_listings, 1000).await {
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
                if let Err(e) = super::warm::warm(&caches, &store, n, 1000).await {
                    tracing::warn!(error = %e, "warming the cache failed");
                }
            }
        });
    }

    /// Migrations, and the demo data set into an empty database (`database.seed_if_empty`)
    /// when a generator is given.
    pub async fn prepare_database(&self, demo: Option<&dyn DemoData>) -> Result<(), StoreError> {
        let db = &self.settings.database;
        if db.migrate_on_start {
            self.store.migrate().await?;
        }
        if !db.seed_if_empty || self.store.any_property().await? {
            return Ok(());
        }
        match demo {
            Some(demo) => {
                tracing::info!("empty database: seeding the demo data set");
                demo.seed(&self.store, &self.settings.demo).await?;
            }
            None => tracing::warn!(
                "database.seed_if_empty is set but this server was started without a demo data \
                 generator; the database stays empty"
            ),
        }
        Ok(())
    }
}

/// The model and its batching executor, or popularity only when `ml.enabled = false`. A model
/// that cannot load stops the start-up with an error that names the file and the fix.
fn recommender(
    settings: &Settings,
    store: Store,
    metrics: &Arc<Metrics>,
    redis: Option<crate::infra::redis::RedisStore>,
) -> Result<Recommender, ModelError> {
    let ml = &settings.ml;
    if !ml.enabled {
        tracing::warn!("ml.enabled = false: recommendations rank by popularity");
        return Ok(Recommender::new(
            store,
            None,
            None,
            ml.clone(),
            redis,
            metrics.clone(),
        ));
    }
    let (info, files) = ml.model_files()?;
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
        metrics.clone(),
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
