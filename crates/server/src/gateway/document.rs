//! Stage 1, the document: what text to run. A trusted document by `documentId`, an automatic
//! persisted query (APQ) by hash, or the query text; and for restricted callers (partners, or
//! everyone with `persisted.only`) nothing but a registered document.
use super::Incoming;
use super::persisted::{
    ApqStore, PartnerManifests, Registry, TrustedDocument, parse_hash, sha256_hex,
};
use super::rejection::Rejection;
use crate::auth::Principal;
use crate::error_code::ErrorCode;
use axum::http::StatusCode;
use std::sync::Arc;

/// The document sources and the rules that choose between them.
pub(crate) struct Documents {
    trusted: Arc<Registry>,
    apq: Arc<ApqStore>,
    /// `persisted.apq`
    apq_enabled: bool,
    /// `persisted.only`
    only: bool,
    /// `graphql.max_document_bytes`: APQ keeps only documents within it.
    max_document_bytes: usize,
    /// `persisted.partners`: the manifest each partner may run.
    partners: PartnerManifests,
}

/// The text to run, and the trusted document it is, if any.
pub(crate) struct Resolved {
    pub(crate) query: String,
    pub(crate) trusted: Option<TrustedDocument>,
    /// An APQ hash sent with its text: registered by `register` only once the document has
    /// passed every check, been charged and validated, so refused documents take no memory.
    pub(crate) registers: Option<String>,
}

impl Resolved {
    fn text(query: String) -> Self {
        Self {
            query,
            trusted: None,
            registers: None,
        }
    }

    fn trusted(doc: &TrustedDocument) -> Self {
        Self {
            query: doc.body.to_string(),
            trusted: Some(doc.clone()),
            registers: None,
        }
    }
}

fn not_in_list() -> Rejection {
    Rejection::refused(
        StatusCode::FORBIDDEN,
        ErrorCode::PersistedQueryNotInList,
        "this client may run only the registered (persisted) operations",
    )
}

fn bad_request(message: &str) -> Rejection {
    Rejection::http(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
}

impl Documents {
    pub(crate) fn new(
        trusted: Arc<Registry>,
        apq: Arc<ApqStore>,
        settings: &super::persisted::PersistedSettings,
        max_document_bytes: usize,
    ) -> Self {
        let partners = PartnerManifests::new(settings, &trusted);
        Self {
            trusted,
            apq,
            apq_enabled: settings.apq,
            only: settings.only,
            max_document_bytes,
            partners,
        }
    }

    /// A partner runs its own manifest's documents only (`persisted.partners`), not another
    /// partner's.
    pub(crate) fn bind_partner(
        &self,
        principal: &Principal,
        resolved: &Resolved,
    ) -> Result<(), Rejection> {
        let Principal::User {
            id,
            role: entity::Role::Partner,
        } = principal
        else {
            return Ok(());
        };
        let theirs = self.partners.of(*id);
        match (&resolved.trusted, theirs) {
            (Some(doc), Some(manifest)) if doc.manifest == manifest => Ok(()),
            _ => Err(not_in_list()),
        }
    }

    /// Whether the caller may run registered documents only.
    pub(crate) fn restricted(&self, principal: &Principal) -> bool {
        self.only
            || matches!(
                principal,
                Principal::User {
                    role: entity::Role::Partner,
                    ..
                }
            )
    }

    pub(crate) async fn resolve(
        &self,
        incoming: &mut Incoming,
        restricted: bool,
    ) -> Result<Resolved, Rejection> {
        let query = incoming.query.take().filter(|q| !q.trim().is_empty());
        if let Some(id) = incoming.document_id.take() {
            if query.is_some() {
                return Err(bad_request("send either `documentId` or `query`, not both"));
            }
            return self.by_id(&id);
        }
        let apq = incoming
            .extensions
            .as_ref()
            .and_then(|e| e.get("persistedQuery"))
            .cloned();
        if let Some(pq) = apq {
            return self.by_apq(&pq, query, restricted).await;
        }
        let Some(q) = query else {
            return Err(bad_request(
                "`query` is required (or `documentId`, or `extensions.persistedQuery`)",
            ));
        };
        if restricted {
            // The full text of a registered document is that document.
            return match self.trusted.get(&sha256_hex(&q)) {
                Some(doc) => Ok(Resolved {
                    query: q,
                    trusted: Some(doc.clone()),
                    registers: None,
                }),
                None => Err(not_in_list()),
            };
        }
        Ok(Resolved::text(q))
    }

    /// GraphQL over HTTP's persisted documents: `documentId: "sha256:<hex>"`.
    fn by_id(&self, id: &str) -> Result<Resolved, Rejection> {
        let Some(hash) = parse_hash(id) else {
            return Err(bad_request(
                "`documentId` must be `sha256:` followed by 64 hex digits",
            ));
        };
        match self.trusted.get(&hash) {
            Some(doc) => Ok(Resolved::trusted(doc)),
            None => Err(Rejection::refused(
                StatusCode::NOT_FOUND,
                ErrorCode::PersistedQueryNotFound,
                format!("no registered document has the id {id}"),
            )),
        }
    }

    /// Keeps an APQ registration (`Resolved::registers`) of a document that ran.
    pub(crate) async fn register(&self, hash: &str, query: &str) {
        self.apq.put(hash, query).await;
    }

    /// Apollo's automatic persisted queries: a hash, with the text the first time.
    async fn by_apq(
        &self,
        pq: &serde_json::Value,
        query: Option<String>,
        restricted: bool,
    ) -> Result<Resolved, Rejection> {
        let version = pq.get("version").and_then(serde_json::Value::as_i64);
        let hash = pq
            .get("sha256Hash")
            .and_then(serde_json::Value::as_str)
            .and_then(parse_hash);
        let (Some(1), Some(hash)) = (version, hash) else {
            return Err(bad_request(
                "`extensions.persistedQuery` needs `version: 1` and a 64-hex-digit `sha256Hash`",
            ));
        };
        if let Some(doc) = self.trusted.get(&hash) {
            return Ok(Resolved::trusted(doc));
        }
        if restricted {
            return Err(not_in_list());
        }
        if !self.apq_enabled {
            return Err(Rejection::request(
                ErrorCode::PersistedQueryNotSupported,
                "PersistedQueryNotSupported",
            ));
        }
        match query {
            Some(q) => {
                if sha256_hex(&q) != hash {
                    return Err(bad_request("provided sha256Hash does not match the query"));
                }
                // Only documents within the size limit are worth keeping.
                let registers = (q.len() <= self.max_document_bytes).then_some(hash);
                Ok(Resolved {
                    registers,
                    ..Resolved::text(q)
                })
            }
            None => match self.apq.get(&hash).await {
                Some(q) => Ok(Resolved::text(q.to_string())),
                None => Err(Rejection::request(
                    ErrorCode::PersistedQueryNotFound,
                    "PersistedQueryNotFound",
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::persisted::PersistedSettings;
    use crate::gateway::rejection::Kind;

    fn documents(apq: bool, only: bool, manifest_dir: &std::path::Path) -> Documents {
        let settings = PersistedSettings {
            apq,
            apq_cache_bytes: 100_000,
            apq_registration_cost: 10,
            apq_ttl_secs: 60,
            manifest_dir: manifest_dir.to_path_buf(),
            only,
            budgets: Default::default(),
            partners: Default::default(),
        };
        let metrics = Arc::new(crate::infra::telemetry::Metrics::new().expect("metrics"));
        let trusted = Registry::load(manifest_dir).expect("manifests");
        let apq_store = ApqStore::new(&settings, None, metrics);
        Documents::new(Arc::new(trusted), Arc::new(apq_store), &settings, 1000)
    }

    fn incoming(
        query: Option<&str>,
        document_id: Option<&str>,
        ext: Option<serde_json::Value>,
    ) -> Incoming {
        Incoming {
            query: query.map(str::to_owned),
            document_id: document_id.map(str::to_owned),
            extensions: ext,
            operation_name: None,
            variables: Default::default(),
            via_get: false,
        }
    }

    fn apq(hash: &str) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } }))
    }

    fn none() -> std::path::PathBuf {
        std::path::PathBuf::from("/nonexistent/rentgraph-manifests")
    }

    #[tokio::test]
    async fn the_query_text_runs_as_sent_and_an_empty_request_is_refused() {
        let d = documents(true, false, &none());
        let r = d
            .resolve(&mut incoming(Some("{ a }"), None, None), false)
            .await;
        assert_eq!(r.map(|r| r.query).ok().as_deref(), Some("{ a }"));
        let r = d
            .resolve(&mut incoming(Some("  "), None, None), false)
            .await;
        let e = r.err().expect("refused");
        assert_eq!(
            (e.kind(), e.code()),
            (Kind::Http(StatusCode::BAD_REQUEST), ErrorCode::BadRequest)
        );
    }

    #[tokio::test]
    async fn a_document_id_and_a_query_together_or_an_unknown_id_are_refused() {
        let d = documents(true, false, &none());
        let id = format!("sha256:{}", sha256_hex("{ a }"));
        let both = d
            .resolve(&mut incoming(Some("{ a }"), Some(&id), None), false)
            .await;
        assert_eq!(both.err().map(|e| e.code()), Some(ErrorCode::BadRequest));
        let unknown = d.resolve(&mut incoming(None, Some(&id), None), false).await;
        let e = unknown.err().expect("refused");
        assert_eq!(
            (e.kind(), e.code()),
            (
                Kind::Refused(StatusCode::NOT_FOUND),
                ErrorCode::PersistedQueryNotFound
            )
        );
        let malformed = d
            .resolve(&mut incoming(None, Some("sha256:xyz"), None), false)
            .await;
        assert_eq!(
            malformed.err().map(|e| e.code()),
            Some(ErrorCode::BadRequest)
        );
    }

    #[tokio::test]
    async fn apq_registers_a_text_once_and_then_runs_it_by_hash() {
        let d = documents(true, false, &none());
        let text = "{ properties(first: 1) { totalCount } }";
        let hash = sha256_hex(text);
        let unknown = d
            .resolve(&mut incoming(None, None, apq(&hash)), false)
            .await;
        let e = unknown.err().expect("not registered yet");
        assert_eq!(
            (e.kind(), e.code()),
            (Kind::Request, ErrorCode::PersistedQueryNotFound)
        );
        let wrong = d
            .resolve(&mut incoming(Some("{ b }"), None, apq(&hash)), false)
            .await;
        assert_eq!(wrong.err().map(|e| e.code()), Some(ErrorCode::BadRequest));
        let first = d
            .resolve(&mut incoming(Some(text), None, apq(&hash)), false)
            .await
            .expect("resolved");
        assert_eq!(first.query, text);
        assert_eq!(first.registers.as_deref(), Some(hash.as_str()));
        // Not stored until the gateway says the document ran.
        let early = d
            .resolve(&mut incoming(None, None, apq(&hash)), false)
            .await;
        assert!(early.is_err());
        d.register(&hash, text).await;
        let again = d
            .resolve(&mut incoming(None, None, apq(&hash)), false)
            .await;
        assert_eq!(again.map(|r| r.query).ok().as_deref(), Some(text));
    }

    #[tokio::test]
    async fn restricted_callers_and_disabled_apq_get_their_own_codes() {
        let d = documents(false, true, &none());
        assert!(d.restricted(&Principal::Anonymous));
        let text = d
            .resolve(&mut incoming(Some("{ a }"), None, None), true)
            .await;
        let e = text.err().expect("not in the list");
        assert_eq!(
            (e.kind(), e.code()),
            (
                Kind::Refused(StatusCode::FORBIDDEN),
                ErrorCode::PersistedQueryNotInList
            )
        );
        let open = documents(false, false, &none());
        assert!(!open.restricted(&Principal::Anonymous));
        let off = open
            .resolve(&mut incoming(None, None, apq(&sha256_hex("{ a }"))), false)
            .await;
        assert_eq!(
            off.err().map(|e| e.code()),
            Some(ErrorCode::PersistedQueryNotSupported)
        );
    }
}
