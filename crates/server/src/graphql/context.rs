//! Typed access to what every resolver needs from the request context.
use super::errors::{ApiError, ApiResult};
use super::loaders::Loaders;
use crate::auth::Principal;
use crate::graphql::GraphqlSettings;
use crate::store::Store;
use async_graphql::Context;

pub(crate) trait Ctx {
    fn store(&self) -> ApiResult<&Store>;
    fn loaders(&self) -> ApiResult<&Loaders>;
    fn principal(&self) -> Principal;
    fn limits(&self) -> ApiResult<&GraphqlSettings>;
    /// The signed-in caller, or UNAUTHENTICATED.
    fn require_user(&self) -> ApiResult<(uuid::Uuid, entity::Role)> {
        match self.principal() {
            Principal::User { id, role } => Ok((id, role)),
            Principal::Anonymous => Err(ApiError::Unauthenticated),
        }
    }
}

fn missing(what: &'static str) -> ApiError {
    ApiError::Internal(format!("{what} missing from the request context").into())
}

impl Ctx for Context<'_> {
    fn store(&self) -> ApiResult<&Store> {
        self.data::<Store>().map_err(|_| missing("store"))
    }
    fn loaders(&self) -> ApiResult<&Loaders> {
        self.data::<Loaders>().map_err(|_| missing("loaders"))
    }
    fn principal(&self) -> Principal {
        self.data::<Principal>()
            .copied()
            .unwrap_or(Principal::Anonymous)
    }
    fn limits(&self) -> ApiResult<&GraphqlSettings> {
        self.data::<GraphqlSettings>()
            .map_err(|_| missing("settings"))
    }
}
