//! The edge where library errors become GraphQL errors. Every error a client sees carries a
//! stable SCREAMING_SNAKE `extensions.code`; messages may change, codes may not. Internal causes
//! are logged here once and never sent to the client.
use crate::store::StoreError;
use async_graphql::ErrorExtensions;

pub mod code {
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const INTERNAL: &str = "INTERNAL_SERVER_ERROR";
    pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    pub const NOT_ACCEPTABLE: &str = "NOT_ACCEPTABLE";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    pub const MODEL_OVERLOADED: &str = "MODEL_OVERLOADED";
    pub const MODEL_TIMEOUT: &str = "MODEL_TIMEOUT";
    pub const MODEL_UNAVAILABLE: &str = "MODEL_UNAVAILABLE";
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    pub const PERSISTED_QUERY_NOT_IN_LIST: &str = "PERSISTED_QUERY_NOT_IN_LIST";
    pub const PERSISTED_QUERY_NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";
}

/// Deliberately not `Display`: async-graphql converts any `Display` error with `?`, which would
/// bypass the mapping below and send a client an error without a code.
#[derive(Debug)]
pub enum ApiError {
    BadInput(String),
    NotFound(&'static str),
    Unauthenticated,
    Forbidden(&'static str),
    /// The model could not answer; `code` says why.
    Model {
        code: &'static str,
        message: String,
    },
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
            Self::Model { message, .. } => message.clone(),
            Self::Internal(_) | Self::Logged => "internal error".to_owned(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput(_) => code::BAD_USER_INPUT,
            Self::NotFound(_) => code::NOT_FOUND,
            Self::Unauthenticated => code::UNAUTHENTICATED,
            Self::Forbidden(_) => code::FORBIDDEN,
            Self::Model { code, .. } => code,
            Self::Internal(_) | Self::Logged => code::INTERNAL,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Invalid(msg) => Self::BadInput(msg),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<std::sync::Arc<StoreError>> for ApiError {
    fn from(e: std::sync::Arc<StoreError>) -> Self {
        match &*e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Invalid(msg) => Self::BadInput(msg.clone()),
            _ => Self::Logged,
        }
    }
}

impl From<std::sync::Arc<crate::recommend::RecommendError>> for ApiError {
    fn from(e: std::sync::Arc<crate::recommend::RecommendError>) -> Self {
        use crate::ml::batcher::ScoreError;
        use crate::recommend::RecommendError;
        // Fixed messages: the cause (ONNX Runtime's text, queue sizes) is for the logs and
        // metrics, not for clients.
        let model = |code, message: &str| Self::Model {
            code,
            message: message.to_owned(),
        };
        match &*e {
            RecommendError::Store(_) => Self::Logged,
            RecommendError::Score(ScoreError::Overloaded) => model(
                code::MODEL_OVERLOADED,
                "the recommendation model is overloaded; try again shortly",
            ),
            RecommendError::Score(ScoreError::DeadlineExceeded) => model(
                code::MODEL_TIMEOUT,
                "the recommendation model did not answer in time",
            ),
            RecommendError::Score(_) | RecommendError::Disabled => model(
                code::MODEL_UNAVAILABLE,
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
        async_graphql::Error::new(e.message()).extend_with(|_, ext| ext.set("code", code))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
