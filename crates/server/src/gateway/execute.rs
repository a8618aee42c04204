//! Stage 4, execution: the request gets its per-request dataloaders (batched on this
//! request's own spawner, see `graphql::loaders`) and the data resolvers read (the caller, the
//! recommender, the caches), then runs on the schema.
use crate::auth::Principal;
use crate::graphql::AppSchema;
use crate::graphql::loaders::{self, Batches};
use crate::infra::cache::Caches;
use crate::infra::telemetry::Metrics;
use crate::recommend::Recommender;
use crate::store::Store;
use async_graphql::Variables;
use std::sync::Arc;
use std::time::Duration;

/// The schema and what its resolvers read.
pub(crate) struct Executor {
    schema: AppSchema,
    store: Store,
    recommender: Arc<Recommender>,
    metrics: Arc<Metrics>,
    caches: Arc<Caches>,
    /// `graphql.dataloader_delay_us` and `graphql.dataloader_max_batch_size`.
    delay: Duration,
    max_batch_size: usize,
}

/// The parts an `Executor` is made of.
pub(crate) struct ExecutorParts {
    pub(crate) schema: AppSchema,
    pub(crate) store: Store,
    pub(crate) recommender: Arc<Recommender>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) caches: Arc<Caches>,
    pub(crate) delay: Duration,
    pub(crate) max_batch_size: usize,
}

impl Executor {
    pub(crate) fn new(p: ExecutorParts) -> Self {
        Self {
            schema: p.schema,
            store: p.store,
            recommender: p.recommender,
            metrics: p.metrics,
            caches: p.caches,
            delay: p.delay,
            max_batch_size: p.max_batch_size,
        }
    }

    /// The request to run, with its loaders, and the spawner their batches run on.
    pub(crate) fn request(
        &self,
        query: String,
        variables: Variables,
        operation_name: Option<String>,
        principal: Principal,
    ) -> (async_graphql::Request, Batches) {
        let (loaders, batches) = loaders::loaders(
            self.store.clone(),
            principal,
            self.recommender.clone(),
            self.metrics.clone(),
            self.caches.clone(),
            self.delay,
            self.max_batch_size,
        );
        let mut request = async_graphql::Request::new(query)
            .variables(variables)
            .data(principal)
            .data(self.recommender.clone())
            .data(self.caches.clone())
            .data(loaders);
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        (request, batches)
    }

    pub(crate) async fn execute(
        &self,
        batches: &Batches,
        request: async_graphql::Request,
    ) -> async_graphql::Response {
        batches.run(self.schema.execute(request)).await
    }
}
