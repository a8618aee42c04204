//! The edge where library errors become GraphQL errors. Every error a client sees carries a
//! stable SCREAMING_SNAKE `extensions.code`; messages may change, codes may not. Internal causes
//! are logged here once and never sent to the client.
use crate::store::StoreError;
use async_graphql::ErrorExtensions;

pub(crate) use crate::error_code::ErrorCode;

/// Deliberately not `Display`: async-graphql converts any `Display` error with `?`, which would
/// bypass the mapping below and send a client an error without a code.
#[derive(Debug)]
pub enum ApiError {
    BadInput(String),
    NotFound(&'static str),
    Unauthenticated,
    Forbidden(&'static str),
    /// A per-account quota is used up (`QUOTA_EXCEEDED`).
    Quota(String),
    /// The model could not answer; `code` says why.
    Model {
        code: ErrorCode,
        message: String,
    },
    /// PostgreSQL stopped a statement at its timeout (`STATEMENT_TIMEOUT`).
    StatementTimeout,
    Internal(Box<dyn std::error::Error + Send + Sync>),
    /// Internal, and already logged where it happened (a failed dataloader batch is logged
    /// once there, not once per field waiting on it).
    Logged,
}

impl ApiError {
    pub fn bad_input(msg: impl Into<String>) -> Self {
        Self::BadInput(msg.into())
    }

    pub fn message(&self) -> String {
        match self {
            Self::BadInput(m) => m.clone(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::Unauthenticated => "sign in to do this".to_owned(),
            Self::Forbidden(m) => (*m).to_owned(),
            Self::Quota(m) => m.clone(),
            Self::Model { message, .. } => message.clone(),
            Self::StatementTimeout => {
                "a database statement ran past its time limit; narrow the query or sign in"
                    .to_owned()
            }
            Self::Internal(_) | Self::Logged => "internal error".to_owned(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadInput(_) => ErrorCode::BadUserInput,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Quota(_) => ErrorCode::QuotaExceeded,
            Self::Model { code, .. } => *code,
            Self::StatementTimeout => ErrorCode::StatementTimeout,
            Self::Internal(_) | Self::Logged => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Invalid(msg) => Self::BadInput(msg),
            other if other.is_statement_timeout() => Self::StatementTimeout,
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<std::sync::Arc<StoreError>> for ApiError {
    fn from(e: std::sync::Arc<StoreError>) -> Self {
        match &*e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Invalid(msg) => Self::BadInput(msg.clone()),
            e if e.is_statement_timeout() => Self::StatementTimeout,
            _ => Self::Logged,
        }
    }
}

impl From<std::sync::Arc<crate::recommend::RecommendError>> for ApiError {
    fn from(e: std::sync::Arc<crate::recommend::RecommendError>) -> Self {
        use crate::recommend::RecommendError;
        use rentgraph_model::batcher::ScoreError;
        // Fixed messages: the cause (ONNX Runtime's text, queue sizes) is for the logs and
        // metrics, not for clients.
        let model = |code, message: &str| Self::Model {
            code,
            message: message.to_owned(),
        };
        match &*e {
            RecommendError::Store(_) => Self::Logged,
            RecommendError::Score(ScoreError::Overloaded) => model(
                ErrorCode::ModelOverloaded,
                "the recommendation model is overloaded; try again shortly",
            ),
            RecommendError::Score(ScoreError::DeadlineExceeded) => model(
                ErrorCode::ModelTimeout,
                "the recommendation model did not answer in time",
            ),
            RecommendError::Score(_) | RecommendError::Disabled => model(
                ErrorCode::ModelUnavailable,
                "the recommendation model is unavailable",
            ),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        if let ApiError::Internal(cause) = &e {
            let mut chain = cause.to_string();
            let mut source = std::error::Error::source(cause.as_ref());
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!(error = %chain, "request failed");
        }
        let code = e.code();
        async_graphql::Error::new(e.message()).extend_with(|_, ext| ext.set("code", code.as_str()))
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
