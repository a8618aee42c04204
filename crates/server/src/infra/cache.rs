//! The two-level entity cache: listings, their images and amenities, and users by id, read
//! through an in-process L1 (moka, size-bounded, short TTL) and a shared L2 (Redis, one MGET
//! per batch), then the database through the dataloaders, which fill both levels.
//!
//! Caching never changes who sees what: entries are rows, not answers; visibility (inactive
//! listings) and private fields are still decided per request on what the cache returns.
//!
//! Mutations invalidate what they changed: they delete it from L2 and publish its key on Redis
//! pub/sub, and every instance (this one included) drops it from L1. A message lost while Redis
//! is away is covered by the L1 TTL, and by clearing L1 whenever the subscription (re)starts.
//! Without Redis, invalidation is local and L1 is the only level.
use crate::infra::redis::RedisStore;
use crate::infra::telemetry::Metrics;
use entity::{Amenity, property, property_image, user};
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Bumped when a cached form changes, so old entries are never read as new ones.
const FORMAT: &str = "e2";

/// An entity's L2 key: the deployment's prefix, the cached form's version and the build's, so
/// a new release never reads an old release's entries. The braces are a Redis Cluster hash
/// tag: the entry and its version (`version_key`) live in one slot, so one script sees both.
fn entity_key(redis: &RedisStore, kind: &str, id: Uuid) -> String {
    redis.key(&format!(
        "{FORMAT}-{}:{{{kind}:{id}}}",
        env!("CARGO_PKG_VERSION")
    ))
}

/// How many times an entity was invalidated lately (absent: not within `TOMBSTONE`). A fill
/// carries the version it saw before its load and is dropped if the version moved meanwhile.
fn version_key(redis: &RedisStore, kind: &str, id: Uuid) -> String {
    format!("{}:v", entity_key(redis, kind, id))
}

/// How long an invalidation is remembered against fills that started before it: longer than
/// any load (statements time out well before).
const TOMBSTONE: Duration = Duration::from_secs(60);

/// Fills an entry only if its version is still the one the load started from.
const FILL_IF_UNCHANGED: &str = "if (redis.call('GET', KEYS[2]) or '') == ARGV[1] then \
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";

/// What a load started from, so its fill cannot put back a row older than an invalidation
/// that came while it ran: the time (for L1) and the L2 versions of its ids (`None`: unknown,
/// because Redis did not answer, so L2 is not filled).
pub struct FillBase {
    started: std::time::Instant,
    versions: Option<HashMap<Uuid, String>>,
}

/// One kind of entity at both levels.
pub struct Tier<V> {
    kind: &'static str,
    l1: moka::sync::Cache<Uuid, V>,
    /// Ids being loaded from the database right now, each with the channel its waiters watch
    /// (closed when the load is over).
    inflight: std::sync::Mutex<HashMap<Uuid, tokio::sync::watch::Receiver<()>>>,
    redis: Option<RedisStore>,
    l2_ttl: Duration,
    metrics: Arc<Metrics>,
    /// When each id was last invalidated here (for `TOMBSTONE`), and when all of L1 was.
    forgotten: moka::sync::Cache<Uuid, std::time::Instant>,
    cleared: std::sync::Mutex<Option<std::time::Instant>>,
}

impl<V> Tier<V>
where
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn new(
        kind: &'static str,
        settings: &CacheSettings,
        redis: Option<RedisStore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            kind,
            l1: moka::sync::Cache::builder()
                .max_capacity(settings.l1_max_entries)
                .time_to_live(Duration::from_secs(settings.l1_ttl_secs))
                .build(),
            inflight: Default::default(),
            redis,
            l2_ttl: Duration::from_secs(settings.l2_ttl_secs),
            metrics,
            forgotten: moka::sync::Cache::builder()
                .max_capacity(settings.l1_max_entries)
                .time_to_live(TOMBSTONE)
                .build(),
            cleared: std::sync::Mutex::new(None),
        }
    }

    /// What the cache holds for `ids`, the ids it does not hold, and what a load of those
    /// starts from (for `put_many`).
    pub async fn get_many(&self, ids: &[Uuid]) -> (HashMap<Uuid, V>, Vec<Uuid>, FillBase) {
        let started = std::time::Instant::now();
        let (mut found, missing) = self.get_local(ids);
        self.count("l1", found.len(), missing.len());
        let Some(redis) = &self.redis else {
            let base = FillBase {
                started,
                versions: None,
            };
            return (found, missing, base);
        };
        if missing.is_empty() {
            let base = FillBase {
                started,
                versions: Some(HashMap::new()),
            };
            return (found, missing, base);
        }
        // The entries and their versions in one MGET: a version read after the entry could
        // miss an invalidation between the two.
        let mut keys: Vec<String> = missing
            .iter()
            .map(|id| entity_key(redis, self.kind, *id))
            .collect();
        keys.extend(missing.iter().map(|id| version_key(redis, self.kind, *id)));
        let mut conn = redis.connection();
        let Some(values) = redis
            .run::<Vec<Option<Vec<u8>>>, _>(
                "cache_get",
                redis::cmd("MGET").arg(&keys).query_async(&mut conn),
            )
            .await
        else {
            self.metrics
                .record_cache("l2", self.kind, "error", missing.len() as u64);
            let base = FillBase {
                started,
                versions: None,
            };
            return (found, missing, base);
        };
        let (entries, versions) = values.split_at(missing.len().min(values.len()));
        let mut still = Vec::new();
        let mut base = FillBase {
            started,
            versions: Some(HashMap::new()),
        };
        for (i, id) in missing.into_iter().enumerate() {
            let entry = entries.get(i).cloned().flatten();
            match entry.and_then(|bytes| serde_json::from_slice::<V>(&bytes).ok()) {
                Some(v) => {
                    self.l1.insert(id, v.clone());
                    found.insert(id, v);
                }
                None => {
                    let version = versions.get(i).cloned().flatten().unwrap_or_default();
                    if let Some(map) = base.versions.as_mut() {
                        map.insert(id, String::from_utf8_lossy(&version).into_owned());
                    }
                    still.push(id);
                }
            }
        }
        let hits = keys.len() / 2 - still.len();
        self.count("l2", hits, still.len());
        (found, still, base)
    }

    /// What a load of `ids` that starts now starts from, for a load that does not read
    /// through `get_many` first (warming).
    pub async fn fill_base(&self, ids: &[Uuid]) -> FillBase {
        let started = std::time::Instant::now();
        let Some(redis) = &self.redis else {
            return FillBase {
                started,
                versions: None,
            };
        };
        let keys: Vec<String> = ids
            .iter()
            .map(|id| version_key(redis, self.kind, *id))
            .collect();
        let mut conn = redis.connection();
        let versions = if keys.is_empty() {
            Some(Vec::new())
        } else {
            redis
                .run::<Vec<Option<Vec<u8>>>, _>(
                    "cache_get",
                    redis::cmd("MGET").arg(&keys).query_async(&mut conn),
                )
                .await
        };
        FillBase {
            started,
            versions: versions.map(|vs| {
                ids.iter()
                    .zip(vs)
                    .map(|(id, v)| {
                        (
                            *id,
                            String::from_utf8_lossy(&v.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            }),
        }
    }

    /// Stores freshly loaded rows at both levels, except those invalidated since their load
    /// started (`base`): such a row may predate the write, and putting it back would serve it
    /// until the entry expires (`l2_ttl_secs`) on every instance.
    pub async fn put_many(&self, items: &[(Uuid, V)], base: &FillBase) {
        let cleared = *self
            .cleared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cleared.is_some_and(|at| at >= base.started) {
            self.metrics
                .record_cache("l1", self.kind, "stale_fill", items.len() as u64);
        } else {
            for (id, v) in items {
                if self.forgotten.get(id).is_some_and(|at| at >= base.started) {
                    self.metrics.record_cache("l1", self.kind, "stale_fill", 1);
                    continue;
                }
                self.l1.insert(*id, v.clone());
            }
        }
        let (Some(redis), Some(versions)) = (&self.redis, &base.versions) else {
            return;
        };
        let mut pipe = redis::pipe();
        let mut any = false;
        for (id, v) in items {
            let (Some(seen), Ok(json)) = (versions.get(id), serde_json::to_vec(v)) else {
                continue;
            };
            pipe.cmd("EVAL")
                .arg(FILL_IF_UNCHANGED)
                .arg(2)
                .arg(entity_key(redis, self.kind, *id))
                .arg(version_key(redis, self.kind, *id))
                .arg(seen)
                .arg(json)
                .arg(self.l2_ttl.as_millis() as u64)
                .ignore();
            any = true;
        }
        if any {
            let _ = redis.run_pipeline("cache_put", pipe).await;
        }
    }

    fn forget_local(&self, id: Uuid) {
        self.forgotten.insert(id, std::time::Instant::now());
        self.l1.invalidate(&id);
    }

    /// Claims the ids no other request is loading (this caller loads them, then drops the
    /// claim); returns the others, with what to wait on.
    pub fn claim(
        &self,
        ids: &[Uuid],
    ) -> (Claim<'_, V>, Vec<(Uuid, tokio::sync::watch::Receiver<()>)>) {
        let mut inflight = self
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tx, rx) = tokio::sync::watch::channel(());
        let mut mine = Vec::new();
        let mut theirs = Vec::new();
        for id in ids {
            match inflight.get(id) {
                Some(waiting) => theirs.push((*id, waiting.clone())),
                None => {
                    inflight.insert(*id, rx.clone());
                    mine.push(*id);
                }
            }
        }
        if !theirs.is_empty() {
            self.metrics
                .record_cache("l1", self.kind, "coalesced", theirs.len() as u64);
        }
        (
            Claim {
                tier: self,
                ids: mine,
                _done: tx,
            },
            theirs,
        )
    }

    /// Waits until the loads of these ids are over (finished or failed); returns the ids.
    pub async fn wait(&self, theirs: Vec<(Uuid, tokio::sync::watch::Receiver<()>)>) -> Vec<Uuid> {
        let mut ids = Vec::with_capacity(theirs.len());
        for (id, mut rx) in theirs {
            // Err: the sender is gone, i.e. the load is over.
            while rx.changed().await.is_ok() {}
            ids.push(id);
        }
        ids
    }

    /// What L1 holds of these ids, and the rest.
    pub fn get_local(&self, ids: &[Uuid]) -> (HashMap<Uuid, V>, Vec<Uuid>) {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.l1.get(id) {
                Some(v) => {
                    found.insert(*id, v);
                }
                None => missing.push(*id),
            }
        }
        (found, missing)
    }

    fn clear_local(&self) {
        *self
            .cleared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
        self.l1.invalidate_all();
    }

    fn count(&self, level: &'static str, hits: usize, misses: usize) {
        self.metrics
            .record_cache(level, self.kind, "hit", hits as u64);
        self.metrics
            .record_cache(level, self.kind, "miss", misses as u64);
    }
}

/// Ids a request is loading; dropping it (after the load, or when the request is cancelled)
/// releases them and wakes whoever waits for them.
pub struct Claim<'a, V> {
    tier: &'a Tier<V>,
    ids: Vec<Uuid>,
    _done: tokio::sync::watch::Sender<()>,
}

impl<V> Claim<'_, V> {
    pub fn ids(&self) -> &[Uuid] {
        &self.ids
    }
}

impl<V> Drop for Claim<'_, V> {
    fn drop(&mut self) {
        let mut inflight = self
            .tier
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in &self.ids {
            inflight.remove(id);
        }
    }
}

/// Every cached kind, and the invalidation bus.
/// Attempts after the first for one invalidation (100 ms, 400 ms, 1.6 s, 6.4 s, 25.6 s apart:
/// about half a minute, past a Redis failover).
const INVALIDATION_RETRIES: u32 = 5;

pub struct Caches {
    /// `cache.enabled`: off, the loaders go straight to the database.
    pub enabled: bool,
    pub properties: Tier<property::Model>,
    pub images: Tier<Vec<property_image::Model>>,
    pub amenities: Tier<Vec<Amenity>>,
    pub users: Tier<user::Model>,
    /// The invalidation bus (with or without the entity cache).
    redis: Option<RedisStore>,
    metrics: Arc<Metrics>,
    hooks: Vec<Hook>,
    /// Tags this instance's messages, so it does not apply its own changes twice.
    instance: Uuid,
}

/// Told of every invalidation this instance applies (`None`: everything, after messages may
/// have been lost), and whether the change was made here, so state kept elsewhere
/// (recommendation results, the listing index, user state) follows the same bus.
pub type Hook = Arc<dyn Fn(Option<Changed>, Origin) + Send + Sync>;

/// Where an invalidated change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Here,
    Elsewhere,
}

/// What an invalidation message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// A listing, with its images and amenities.
    Property(Uuid),
    User(Uuid),
    /// A user's interaction with a listing, recorded (or taken back, `removed`): no entity
    /// changed, but every instance moves the user's state and the listing's counters in place
    /// instead of reloading them, and drops the user's recommendation results.
    Interaction {
        user: Uuid,
        listing: Uuid,
        kind: entity::InteractionKind,
        removed: bool,
    },
}

impl Changed {
    fn encode(self) -> String {
        match self {
            Changed::Property(id) => format!("property:{id}"),
            Changed::User(id) => format!("user:{id}"),
            Changed::Interaction {
                user,
                listing,
                kind,
                removed,
            } => {
                let kind = sea_orm::ActiveEnum::to_value(&kind);
                let sign = if removed { '-' } else { '+' };
                format!("interaction:{user}:{listing}:{kind}:{sign}")
            }
        }
    }

    fn decode(text: &str) -> Option<Self> {
        let (kind, rest) = text.split_once(':')?;
        match kind {
            "property" => Some(Changed::Property(Uuid::parse_str(rest).ok()?)),
            "user" => Some(Changed::User(Uuid::parse_str(rest).ok()?)),
            "interaction" => {
                let mut parts = rest.split(':');
                let user = Uuid::parse_str(parts.next()?).ok()?;
                let listing = Uuid::parse_str(parts.next()?).ok()?;
                let kind = <entity::InteractionKind as sea_orm::ActiveEnum>::try_from_value(
                    &parts.next()?.to_owned(),
                )
                .ok()?;
                let removed = match parts.next()? {
                    "+" => false,
                    "-" => true,
                    _ => return None,
                };
                Some(Changed::Interaction {
                    user,
                    listing,
                    kind,
                    removed,
                })
            }
            _ => None,
        }
    }
}

impl Caches {
    pub fn new(
        settings: &CacheSettings,
        redis: Option<RedisStore>,
        metrics: Arc<Metrics>,
        hooks: Vec<Hook>,
    ) -> Self {
        // The bus runs whenever Redis is configured: listing indexes and user state follow it
        // even with the entity cache off.
        let l2 = if settings.enabled {
            redis.clone()
        } else {
            None
        };
        Self {
            enabled: settings.enabled,
            properties: Tier::new("property", settings, l2.clone(), metrics.clone()),
            images: Tier::new("images", settings, l2.clone(), metrics.clone()),
            amenities: Tier::new("amenities", settings, l2.clone(), metrics.clone()),
            users: Tier::new("user", settings, l2, metrics.clone()),
            redis,
            metrics,
            hooks,
            instance: Uuid::new_v4(),
        }
    }

    fn channel(redis: &RedisStore) -> String {
        redis.key("invalidate")
    }

    /// After a write: gone from this instance's L1, from L2, and announced to the others.
    ///
    /// The Redis part runs on a task of its own, so a client that disconnects (dropping the
    /// request) cannot drop it, and it is retried (`INVALIDATION_RETRIES`, with backoff, past
    /// the breaker, which would otherwise skip it during the very blip that failed it) until
    /// Redis takes it: a lost invalidation leaves a deactivated listing visible on other
    /// instances until their L1 expires. The caller waits for the first attempt only.
    pub async fn invalidate(&self, changed: Changed) {
        self.forget_local(changed, Origin::Here);
        let Some(redis) = self.redis.clone() else {
            return;
        };
        let pipe = self.invalidation(&redis, changed);
        let metrics = self.metrics.clone();
        let (first, done) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut first = Some(first);
            let mut wait = Duration::from_millis(100);
            for attempt in 0..=INVALIDATION_RETRIES {
                let sent = if attempt == 0 {
                    redis.run_pipeline("cache_invalidate", pipe.clone()).await
                } else {
                    redis
                        .run_pipeline_unguarded("cache_invalidate_retry", pipe.clone())
                        .await
                };
                if let Some(tx) = first.take() {
                    let _ = tx.send(());
                }
                if sent.is_some() {
                    metrics.record_invalidation(if attempt == 0 { "sent" } else { "retried" });
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(4);
            }
            metrics.record_invalidation("lost");
            tracing::error!(
                ?changed,
                "an invalidation could not reach Redis; other instances keep their copy until their L1 expires"
            );
        });
        let _ = done.await;
    }

    /// The DELs and the PUBLISH of one change.
    fn invalidation(&self, redis: &RedisStore, changed: Changed) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        // The entry goes, and its version moves, so a fill that read before this cannot put
        // the old row back (`Tier::put_many`).
        let mut forget = |kind: &str, id: Uuid| {
            let version = version_key(redis, kind, id);
            pipe.cmd("DEL").arg(entity_key(redis, kind, id)).ignore();
            pipe.cmd("INCR").arg(&version).ignore();
            pipe.cmd("PEXPIRE")
                .arg(&version)
                .arg(TOMBSTONE.as_millis() as u64)
                .ignore();
        };
        match changed {
            Changed::Property(id) if self.enabled => {
                for kind in ["property", "images", "amenities"] {
                    forget(kind, id);
                }
            }
            Changed::User(id) if self.enabled => forget("user", id),
            _ => {}
        }
        pipe.cmd("PUBLISH")
            .arg(Self::channel(redis))
            .arg(format!("{}@{}", changed.encode(), self.instance))
            .ignore();
        pipe
    }

    fn forget_local(&self, changed: Changed, origin: Origin) {
        match changed {
            Changed::Property(id) => {
                self.properties.forget_local(id);
                self.images.forget_local(id);
                self.amenities.forget_local(id);
            }
            Changed::User(id) => self.users.forget_local(id),
            Changed::Interaction { .. } => {}
        }
        for hook in &self.hooks {
            hook(Some(changed), origin);
        }
    }

    fn clear_local(&self) {
        self.properties.clear_local();
        self.images.clear_local();
        self.amenities.clear_local();
        self.users.clear_local();
        for hook in &self.hooks {
            hook(None, Origin::Elsewhere);
        }
    }

    /// Listens for other instances' invalidations for as long as the process runs,
    /// resubscribing after Redis outages. Nothing to listen to without Redis; with the entity
    /// cache off it still runs, because the listing index and user state follow the bus.
    pub fn spawn_listener(self: &Arc<Self>) {
        let Some(redis) = &self.redis else { return };
        let channel = Self::channel(redis);
        let client = redis.client();
        let caches = Arc::downgrade(self);
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut backoff = Duration::from_millis(100);
            loop {
                let Some(caches_now) = caches.upgrade() else {
                    return;
                };
                drop(caches_now);
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(&channel).await.is_ok() {
                            backoff = Duration::from_millis(100);
                            // Whatever was announced while we were not listening is lost:
                            // start from an empty L1.
                            if let Some(c) = caches.upgrade() {
                                c.clear_local();
                            }
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                let Some(c) = caches.upgrade() else { return };
                                let text: String = msg.get_payload().unwrap_or_default();
                                let (text, from) =
                                    text.split_once('@').unwrap_or((text.as_str(), ""));
                                if from == c.instance.to_string() {
                                    continue;
                                }
                                if let Some(changed) = Changed::decode(text) {
                                    c.forget_local(changed, Origin::Elsewhere);
                                    c.metrics.record_invalidation("received");
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "cache invalidation: cannot subscribe"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
    }
}

/// `[cache]`: the two-level entity cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Off: every read goes to the database.
    pub enabled: bool,
    /// Entries per kind (listings, images, amenities, users) kept in process.
    pub l1_max_entries: u64,
    /// How long an entry stays in process at most (bounds staleness if an invalidation is lost).
    pub l1_ttl_secs: u64,
    /// How long Redis keeps an entry.
    pub l2_ttl_secs: u64,
    /// The most popular listings (with images, amenities, owners) loaded at start, before the
    /// server accepts requests, and again every `warm_interval_secs` (0: no warming).
    pub warm_listings: usize,
    pub warm_interval_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_survives_the_bus() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for changed in [
            Changed::Property(a),
            Changed::User(a),
            Changed::Interaction {
                user: a,
                listing: b,
                kind: entity::InteractionKind::Save,
                removed: true,
            },
            Changed::Interaction {
                user: b,
                listing: a,
                kind: entity::InteractionKind::View,
                removed: false,
            },
        ] {
            assert_eq!(Changed::decode(&changed.encode()), Some(changed));
        }
        assert_eq!(
            Changed::decode(&format!("interaction:{a}:{b}:VIEW:?")),
            None
        );
        assert_eq!(
            Changed::decode(&format!("interaction:{a}:{b}:POKE:+")),
            None
        );
    }
}
