//! Every `extensions.code` the API emits, in one list: the contract clients switch on.
//! Messages may change; a code, once shipped, may not. docs/ERROR_CODES.md is generated from
//! this list (`rentgraph error-codes`) and a test keeps the two equal.

/// Declares the enum, its wire names, meanings and the list of all codes from one table, so
/// a code cannot be added to one and forgotten in another.
macro_rules! error_codes {
    ($($variant:ident => $name:literal, $meaning:literal;)+) => {
        /// A stable, machine-readable error code (SCREAMING_SNAKE on the wire).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)+
        }

        impl ErrorCode {
            /// Every code, in the order the documentation lists them.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant,)+];

            /// The code as clients see it in `extensions.code`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// What the code means for a client, in one sentence.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(Self::$variant => $meaning,)+
                }
            }
        }
    };
}

error_codes! {
    BadUserInput => "BAD_USER_INPUT",
        "An argument is invalid (a value out of range, a string too long, a malformed id).";
    NotFound => "NOT_FOUND",
        "No such object (or endpoint), or not one the caller may see.";
    Unauthenticated => "UNAUTHENTICATED",
        "The field needs a signed-in caller, or the bearer token is invalid or expired (401).";
    Forbidden => "FORBIDDEN",
        "The caller is signed in but may not do this (not the owner, not an admin).";
    Internal => "INTERNAL_SERVER_ERROR",
        "A fault on our side; `extensions.requestId` finds it in the logs.";
    ParseFailed => "GRAPHQL_PARSE_FAILED",
        "The document is not valid GraphQL syntax.";
    ValidationFailed => "GRAPHQL_VALIDATION_FAILED",
        "The document does not validate against the schema.";
    BadRequest => "BAD_REQUEST",
        "The HTTP request is not a GraphQL request (body, `variables`, `documentId`, APQ extension).";
    UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
        "POST bodies must be `application/json` (415).";
    NotAcceptable => "NOT_ACCEPTABLE",
        "`Accept` allows neither `application/graphql-response+json` nor `application/json` (406).";
    MethodNotAllowed => "METHOD_NOT_ALLOWED",
        "Mutations must be sent with POST (405).";
    PayloadTooLarge => "PAYLOAD_TOO_LARGE",
        "The body is larger than `server.body_limit_bytes` (413).";
    RequestTimeout => "REQUEST_TIMEOUT",
        "The request took longer than `server.request_timeout_ms` (503).";
    StatementTimeout => "STATEMENT_TIMEOUT",
        "PostgreSQL stopped a statement of this operation at its time limit (`database.statement_timeout_ms`; for anonymous callers `database.anonymous_statement_timeout_ms`): narrow it (a filter, a smaller page) or sign in.";
    MaxDocumentSizeExceeded => "MAX_DOCUMENT_SIZE_EXCEEDED",
        "The document is longer than `graphql.max_document_bytes`.";
    MaxTokensExceeded => "MAX_TOKENS_EXCEEDED",
        "The document has more tokens than `graphql.max_tokens`.";
    MaxDepthExceeded => "MAX_DEPTH_EXCEEDED",
        "The operation nests deeper than `graphql.max_depth`.";
    MaxAliasesExceeded => "MAX_ALIASES_EXCEEDED",
        "The operation has more aliases than `graphql.max_aliases`.";
    MaxRootFieldsExceeded => "MAX_ROOT_FIELDS_EXCEEDED",
        "The operation selects more root fields than `graphql.max_root_fields`.";
    MaxDirectivesExceeded => "MAX_DIRECTIVES_EXCEEDED",
        "A field carries more directives than `graphql.max_directives_per_field`.";
    MaxDuplicateFieldsExceeded => "MAX_DUPLICATE_FIELDS_EXCEEDED",
        "A selection repeats a field more than `graphql.max_duplicate_fields` times.";
    MaxFieldsExceeded => "MAX_FIELDS_EXCEEDED",
        "The operation selects more fields than `graphql.max_selected_fields`.";
    MaxCostExceeded => "MAX_COST_EXCEEDED",
        "The operation's static cost is above `limits.max_cost`.";
    Throttled => "THROTTLED",
        "The caller's budget cannot pay for the operation now (429 with `Retry-After`).";
    QuotaExceeded => "QUOTA_EXCEEDED",
        "`createProperty`: the owner listed `graphql.max_listings_per_owner_per_day` in the last 24 hours.";
    MaxBatchOperationsExceeded => "MAX_BATCH_OPERATIONS_EXCEEDED",
        "A batched POST holds no operation or more than `server.max_batch_operations`.";
    PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
        "No registered or automatically persisted document has this hash; send the query.";
    PersistedQueryNotInList => "PERSISTED_QUERY_NOT_IN_LIST",
        "This client may run only registered (trusted) documents (403).";
    PersistedQueryNotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
        "Automatic persisted queries are off (`persisted.apq = false`).";
    ModelOverloaded => "MODEL_OVERLOADED",
        "`matchScore`: the model's queue is full; recommendations fall back to popularity.";
    ModelTimeout => "MODEL_TIMEOUT",
        "`matchScore`: the model did not answer within `ml.deadline_ms`.";
    ModelUnavailable => "MODEL_UNAVAILABLE",
        "`matchScore`: no model is loaded or it failed.";
}

impl ErrorCode {
    /// docs/ERROR_CODES.md's table.
    pub fn markdown_table() -> String {
        let mut out = String::from("| code | meaning |\n|---|---|\n");
        for code in Self::ALL {
            out.push_str(&format!("| `{}` | {} |\n", code.as_str(), code.meaning()));
        }
        out
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_is_listed_once_and_spelled_in_screaming_snake() {
        let names: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for name in names {
            assert!(
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{name}"
            );
        }
    }
}
