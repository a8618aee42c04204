//! Before the stages: who is calling. The bearer token is verified, then its user is checked
//! against the database (through a short-lived cache, `auth.principal_cache_secs`), so a
//! deleted user or a changed role takes effect without waiting for the token to expire. An
//! identity provider's token is mapped to its local user (created on first sight when enabled).
use super::rejection::Rejection;
use crate::auth::{AuthError, Authenticator, Principal, Principals};
use crate::error_code::ErrorCode;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use std::sync::Arc;

pub(crate) struct Identity {
    auth: Arc<Authenticator>,
    principals: Principals,
}

impl Identity {
    pub(crate) fn new(auth: Arc<Authenticator>, principals: Principals) -> Self {
        Self { auth, principals }
    }

    pub(crate) async fn identify(&self, headers: &HeaderMap) -> Result<Principal, Rejection> {
        let header = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        let claimed = self.auth.authenticate(header).await.map_err(unauthorized)?;
        self.principals.check(claimed).await.map_err(unauthorized)
    }
}

/// 401 with `WWW-Authenticate: Bearer`; 503 when the user cannot be checked now.
fn unauthorized(e: AuthError) -> Rejection {
    if let AuthError::Lookup(cause) = &e {
        tracing::error!(error = %cause, "cannot check a token's user");
        return Rejection::http(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal,
            "cannot check the bearer token now; try again",
        );
    }
    let msg = match &e {
        AuthError::InvalidToken(_) => "the bearer token is invalid or expired".to_owned(),
        other => other.to_string(),
    };
    tracing::debug!(error = %e, "authentication failed");
    Rejection::http(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, msg)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}
