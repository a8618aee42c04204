//! The in-process listing index: what recommendations need of every listing (city,
//! neighbourhood, type, price, bedrooms, area, amenities as a bit mask, age, counters), in an
//! immutable snapshot with per-city candidate pools, swapped whole when something changed.
//! Recommendations read candidates and features from it and run no SQL for them.
//!
//! Kept current three ways:
//! - a listing changed through any instance (the cache's invalidation bus) is marked pending,
//!   and the next read applies pending changes first (one chunk of statements for all of
//!   them), so a change is visible to the next recommendation everywhere it was announced;
//! - interactions recorded through this instance bump the listing's counters in place;
//! - every `ml.index_refresh_secs` the whole index is reloaded, which reconciles counters with
//!   `property_stats` (interactions recorded by other instances) and covers lost messages.
//!
//! Inactive listings stay in the index (a user's history still describes their taste) but are
//! never in a pool, so never a candidate.
use super::co_engagement::{self, CoEngagement};
use crate::store::{IndexRow, PropertyFilter, PropertyStats, Store, StoreError};
use entity::{Amenity, InteractionKind};
use rentgraph_model::features::{ListingFacts, MarketScale, Popularity, RECENT_DAYS};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use uuid::Uuid;

/// Listings loaded per round trip (one statement each for rows, amenities and counters).
const CHUNK: u64 = 5_000;

/// What features need of a listing row (the one construction, for serving and the offline
/// replays); the market scale is the snapshot's to fill in.
pub fn facts_of(
    row: IndexRow,
    amenities: &[Amenity],
    popularity: Popularity,
    recent: Popularity,
) -> ListingFacts {
    ListingFacts {
        id: row.id,
        city: row.city,
        neighbourhood: row.neighbourhood,
        property_type: row.property_type,
        monthly_price: row.monthly_price,
        bedrooms: row.bedrooms,
        area: row.area,
        amenities: ListingFacts::amenity_mask(amenities),
        created_at: row.created_at,
        popularity,
        recent,
        market: MarketScale::default(),
        decayed: 0.0,
    }
}

/// One listing as the index keeps it.
pub struct Entry {
    pub id: Uuid,
    pub active: bool,
    /// Counters (all-time and recent) as of the last load.
    facts: ListingFacts,
    /// Interactions recorded through this instance since: shared by every snapshot that holds
    /// this entry, so a swap does not lose them.
    /// Interactions recorded (or taken back) since the load, per counter.
    bumps: [AtomicI32; 5],
    /// Where it is, for `near` and `within` filters.
    latitude: f64,
    longitude: f64,
}

impl Entry {
    /// `popularity` counts every interaction with the listing, `recent` those of the last
    /// `RECENT_DAYS`.
    pub fn new(
        row: IndexRow,
        amenities: &[Amenity],
        popularity: Popularity,
        recent: Popularity,
    ) -> Self {
        Self {
            id: row.id,
            active: row.is_active,
            latitude: row.latitude,
            longitude: row.longitude,
            facts: facts_of(row, amenities, popularity, recent),
            bumps: Default::default(),
        }
    }

    fn bumped(&self, p: Popularity) -> Popularity {
        let loaded = p.counts();
        Popularity::from_counts(std::array::from_fn(|i| {
            let n = i64::from(loaded[i]) + i64::from(self.bumps[i].load(Ordering::Relaxed));
            u32::try_from(n.max(0)).unwrap_or(u32::MAX)
        }))
    }

    /// All-time counters.
    pub fn popularity(&self) -> Popularity {
        self.bumped(self.facts.popularity)
    }

    /// Counters of the last `RECENT_DAYS` (as of the last load, plus what was recorded here
    /// since).
    pub fn recent(&self) -> Popularity {
        self.bumped(self.facts.recent)
    }

    /// The engagement prior candidates are ranked by: recent popularity, all-time popularity
    /// breaking ties. A listing that drew attention months ago and none since ranks low.
    pub fn prior(&self) -> f64 {
        self.recent().score() + self.popularity().score() / 1_000.0
    }

    /// Latitude and longitude.
    pub fn location(&self) -> (f64, f64) {
        (self.latitude, self.longitude)
    }

    /// The facts as loaded, counters aside (cities, prices, amenities never change in place).
    pub fn static_facts(&self) -> &ListingFacts {
        &self.facts
    }

    fn bump(&self, kind: InteractionKind, by: i32) {
        self.bumps[Popularity::slot(kind)].fetch_add(by, Ordering::Relaxed);
    }

    /// Whether the listing passes a request's filter (the same tests `store` runs in SQL;
    /// `owner_id`, `ids` and dismissals are not used for recommendations' candidates).
    pub fn matches(&self, f: &PropertyFilter) -> bool {
        if let Some(active) = f.active
            && active != self.active
        {
            return false;
        }
        self.in_area(f) && failed_restrictions(f, &self.facts) == 0
    }

    /// Whether the listing is inside the filter's `near` radius and `within` box.
    pub fn in_area(&self, f: &PropertyFilter) -> bool {
        !(f.near
            .is_some_and(|n| !n.contains(self.latitude, self.longitude))
            || f.within
                .is_some_and(|b| !b.contains(self.latitude, self.longitude)))
    }

    /// Rough heap and inline bytes, for the size metric.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.facts.city.capacity()
            + self.facts.neighbourhood.capacity()
    }
}

/// The restrictions of a filter on a listing's own facts, as bits of `failed_restrictions`
/// (facets drop one at a time, `recommend::facets`).
pub mod restriction {
    pub const CITY: u8 = 1;
    pub const NEIGHBOURHOOD: u8 = 2;
    pub const TYPE: u8 = 4;
    pub const BEDROOMS: u8 = 8;
    pub const AMENITIES: u8 = 16;
    pub const PRICE: u8 = 32;
}

/// Which of the filter's restrictions on the listing's facts it fails (none: it passes them).
pub fn failed_restrictions(f: &PropertyFilter, l: &ListingFacts) -> u8 {
    use restriction::*;
    let mut out = 0;
    if f.city.as_ref().is_some_and(|c| *c != l.city)
        || (!f.cities.is_empty() && !f.cities.contains(&l.city))
    {
        out |= CITY;
    }
    if !f.neighbourhoods.is_empty() && !f.neighbourhoods.contains(&l.neighbourhood) {
        out |= NEIGHBOURHOOD;
    }
    if !f.property_types.is_empty() && !f.property_types.contains(&l.property_type) {
        out |= TYPE;
    }
    if f.min_bedrooms.is_some_and(|m| l.bedrooms < m)
        || f.max_bedrooms.is_some_and(|m| l.bedrooms > m)
    {
        out |= BEDROOMS;
    }
    let wanted = ListingFacts::amenity_mask(&f.amenities);
    if l.amenities & wanted != wanted {
        out |= AMENITIES;
    }
    if f.min_price.is_some_and(|m| l.monthly_price < m)
        || f.max_price.is_some_and(|m| l.monthly_price > m)
    {
        out |= PRICE;
    }
    out
}

/// More changes than this in one application, and the snapshot is rebuilt rather than its
/// pools updated in place.
const INCREMENTAL_CHANGES: usize = 64;

/// The popularity pools' order: by the engagement prior, ties by id (so two instances, and two
/// runs, rank alike).
fn popular_order(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    b.prior().total_cmp(&a.prior()).then(a.id.cmp(&b.id))
}

/// The newest pools' order.
fn newest_order(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    b.facts
        .created_at
        .cmp(&a.facts.created_at)
        .then(a.id.cmp(&b.id))
}

/// A city's scale: the mean recent counters of its pool of active listings.
fn market_of(entries: &[Arc<Entry>], pool: &[u32], co: &CoEngagement) -> MarketScale {
    let mut scale = MarketScale::of(pool.iter().map(|i| entries[*i as usize].recent()));
    if !pool.is_empty() {
        let sum: f64 = pool
            .iter()
            .map(|i| f64::from(co.decayed(&entries[*i as usize].id)))
            .sum();
        scale.decayed = (sum / pool.len() as f64) as f32;
    }
    scale
}

/// Puts `i` where `order` places it in an (otherwise) sorted pool.
fn insert_sorted(pool: &mut Vec<u32>, i: u32, order: impl Fn(&u32, &u32) -> std::cmp::Ordering) {
    let at = pool.partition_point(|x| order(x, &i) == std::cmp::Ordering::Less);
    pool.insert(at, i);
}

/// One consistent view of every listing.
pub struct Snapshot {
    entries: Vec<Arc<Entry>>,
    /// Each city's average recent counters over its active listings.
    market: HashMap<String, MarketScale>,
    by_id: HashMap<Uuid, u32>,
    /// Active listings of each city, most popular first (at build time).
    popular_in: HashMap<String, Vec<u32>>,
    /// Active listings of each city, newest first.
    newest_in: HashMap<String, Vec<u32>>,
    /// Active listings everywhere, most popular first.
    popular: Vec<u32>,
    /// Active listings by latitude, so a map viewport or a radius reads its band only.
    by_latitude: Vec<u32>,
    /// Listings engaged with by the same renters (built at a full load, kept through
    /// changes).
    co: Arc<CoEngagement>,
    /// How far the data's present (its newest interaction at the last full load) lags the
    /// wall clock: zero on a live system, months on a data set loaded from the past.
    lag: chrono::Duration,
    built: Instant,
    bytes: usize,
}

impl Snapshot {
    /// Every listing the snapshot holds, active or not.
    pub fn entries(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.entries.iter()
    }

    /// The active listings a filter can match, narrowed to the latitude band of its `within`
    /// box or `near` radius when it has one (two binary searches), else all of them. The
    /// caller still tests each with `Entry::matches`.
    pub fn active_candidates<'a>(
        &'a self,
        f: &PropertyFilter,
    ) -> Box<dyn Iterator<Item = &'a Arc<Entry>> + 'a> {
        let band = match (f.within, f.near) {
            (Some(b), _) => Some((b.edges().0, b.edges().1)),
            (None, Some(n)) => Some(n.latitude_band()),
            (None, None) => None,
        };
        let all = || Box::new(self.entries.iter().filter(|e| e.active));
        let Some((south, north)) = band else {
            return all();
        };
        let lat = |i: &u32| self.entries[*i as usize].latitude;
        let from = self.by_latitude.partition_point(|i| lat(i) < south);
        let to = self
            .by_latitude
            .partition_point(|i| lat(i) <= north)
            .max(from);
        // A band of most listings reads faster in storage order than hopping by latitude.
        if (to - from) * 2 > self.by_latitude.len() {
            return all();
        }
        Box::new(
            self.by_latitude[from..to]
                .iter()
                .map(|i| &self.entries[*i as usize]),
        )
    }
}

/// By latitude, ties by id.
fn latitude_order(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    a.latitude.total_cmp(&b.latitude).then(a.id.cmp(&b.id))
}

impl Snapshot {
    fn build(entries: Vec<Arc<Entry>>) -> Self {
        let by_id = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id, i as u32))
            .collect();
        let mut popular: Vec<u32> = (0..entries.len() as u32)
            .filter(|i| entries[*i as usize].active)
            .collect();
        // Ties by id, so two instances (and two runs) rank alike.
        popular.sort_by(|a, b| popular_order(&entries[*a as usize], &entries[*b as usize]));
        let mut popular_in: HashMap<String, Vec<u32>> = HashMap::new();
        for i in &popular {
            popular_in
                .entry(entries[*i as usize].facts.city.clone())
                .or_default()
                .push(*i);
        }
        let market = popular_in
            .iter()
            .map(|(city, pool)| {
                (
                    city.clone(),
                    market_of(&entries, pool, &CoEngagement::default()),
                )
            })
            .collect();
        let mut newest_in = popular_in.clone();
        for pool in newest_in.values_mut() {
            pool.sort_by(|a, b| newest_order(&entries[*a as usize], &entries[*b as usize]));
        }
        let mut by_latitude = popular.clone();
        by_latitude.sort_by(|a, b| latitude_order(&entries[*a as usize], &entries[*b as usize]));
        let mut s = Self {
            entries,
            market,
            by_id,
            popular_in,
            newest_in,
            popular,
            by_latitude,
            co: Arc::default(),
            lag: chrono::Duration::zero(),
            built: Instant::now(),
            bytes: 0,
        };
        s.bytes = s.measure();
        s
    }

    /// This snapshot with `fresh` entries replacing those with their ids or added. A few
    /// changes move through the pools in place (O(pool) each), where rebuilding would sort
    /// every pool again on the read path; many are rebuilt.
    fn with_changes(&self, fresh: Vec<Arc<Entry>>) -> Self {
        if fresh.len() > INCREMENTAL_CHANGES {
            let mut entries = self.entries.clone();
            for e in fresh {
                match self.by_id.get(&e.id) {
                    Some(&i) => entries[i as usize] = e,
                    None => entries.push(e),
                }
            }
            let mut next = Self::build(entries).with_co_engagement(self.co.clone());
            next.lag = self.lag;
            return next;
        }
        let mut next = Self {
            entries: self.entries.clone(),
            market: self.market.clone(),
            by_id: self.by_id.clone(),
            popular_in: self.popular_in.clone(),
            newest_in: self.newest_in.clone(),
            popular: self.popular.clone(),
            by_latitude: self.by_latitude.clone(),
            co: self.co.clone(),
            lag: self.lag,
            built: Instant::now(),
            bytes: 0,
        };
        let mut cities: HashSet<String> = HashSet::new();
        for e in fresh {
            let i = match next.by_id.get(&e.id) {
                Some(&i) => {
                    let old = &next.entries[i as usize];
                    if old.active {
                        next.popular.retain(|x| *x != i);
                        next.by_latitude.retain(|x| *x != i);
                        for pools in [&mut next.popular_in, &mut next.newest_in] {
                            if let Some(pool) = pools.get_mut(&old.facts.city) {
                                pool.retain(|x| *x != i);
                            }
                        }
                        cities.insert(old.facts.city.clone());
                    }
                    next.entries[i as usize] = e;
                    i
                }
                None => {
                    let i = next.entries.len() as u32;
                    next.by_id.insert(e.id, i);
                    next.entries.push(e);
                    i
                }
            };
            let entries = &next.entries;
            let e = &entries[i as usize];
            if !e.active {
                continue;
            }
            let by_prior =
                |a: &u32, b: &u32| popular_order(&entries[*a as usize], &entries[*b as usize]);
            let by_age =
                |a: &u32, b: &u32| newest_order(&entries[*a as usize], &entries[*b as usize]);
            insert_sorted(&mut next.popular, i, by_prior);
            insert_sorted(&mut next.by_latitude, i, |a: &u32, b: &u32| {
                latitude_order(&entries[*a as usize], &entries[*b as usize])
            });
            insert_sorted(
                next.popular_in.entry(e.facts.city.clone()).or_default(),
                i,
                by_prior,
            );
            insert_sorted(
                next.newest_in.entry(e.facts.city.clone()).or_default(),
                i,
                by_age,
            );
            cities.insert(e.facts.city.clone());
        }
        for city in cities {
            let pool = next.popular_in.get(&city).map(Vec::as_slice).unwrap_or(&[]);
            let scale = market_of(&next.entries, pool, &next.co);
            next.market.insert(city, scale);
        }
        next.bytes = next.measure();
        next
    }

    /// A snapshot of these entries (the offline evaluation builds one as of a past moment).
    pub fn from_entries(entries: Vec<Arc<Entry>>) -> Self {
        Self::build(entries)
    }

    /// This snapshot with a co-engagement table.
    pub fn with_co_engagement(mut self, co: Arc<CoEngagement>) -> Self {
        self.co = co;
        // The cities' mean decayed popularity comes from the table.
        for (city, pool) in &self.popular_in {
            self.market
                .insert(city.clone(), market_of(&self.entries, pool, &self.co));
        }
        self.bytes = self.measure();
        self
    }

    /// Listings engaged with by the same renters.
    pub fn co_engagement(&self) -> &CoEngagement {
        &self.co
    }

    /// The instant features are computed at (listing ages): now, less how far the data's
    /// newest interaction lagged the wall clock at the last load. On a live system that is
    /// now; a data set loaded from the past is served as of its own present, as its recent
    /// counters are, and as the replays that trained the model saw it.
    pub fn clock(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() - self.lag
    }

    /// The listing's facts with current counters and its city's scale: the features' input.
    pub fn facts(&self, e: &Entry) -> ListingFacts {
        let mut f = e.facts.clone();
        f.popularity = e.popularity();
        f.recent = e.recent();
        f.market = self.market.get(&f.city).copied().unwrap_or_default();
        f.decayed = self.co.decayed(&e.id);
        f
    }

    pub fn get(&self, id: &Uuid) -> Option<&Entry> {
        self.by_id.get(id).map(|i| &*self.entries[*i as usize])
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn active(&self) -> usize {
        self.popular.len()
    }

    pub fn age(&self) -> std::time::Duration {
        self.built.elapsed()
    }

    /// Approximate memory held by the snapshot (entries are shared with older snapshots while
    /// those are still read).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn measure(&self) -> usize {
        let pools: usize = self
            .popular_in
            .values()
            .chain(self.newest_in.values())
            .map(|v| v.capacity() * 4 + 48)
            .sum();
        self.entries.iter().map(|e| e.bytes() + 8).sum::<usize>()
            + self.by_id.capacity() * (16 + 4 + 8)
            + self.popular.capacity() * 4
            + pools
            + self.co.bytes()
    }

    /// Up to `n` entries from `pool` passing `keep`, in pool order.
    fn take<'a>(
        &'a self,
        pool: &'a [u32],
        n: usize,
        mut keep: impl FnMut(&Entry) -> bool,
    ) -> impl Iterator<Item = &'a Entry> {
        pool.iter()
            .map(|i| &*self.entries[*i as usize])
            .filter(move |e| keep(e))
            .take(n)
    }

    /// Up to `n` entries passing `keep` from the pools of `cities`, each pool in `order`; from
    /// several pools, merged by it.
    fn merged<'a>(
        &'a self,
        pools: &'a HashMap<String, Vec<u32>>,
        cities: &[String],
        n: usize,
        keep: &dyn Fn(&Entry) -> bool,
        order: impl Fn(&Entry, &Entry) -> std::cmp::Ordering,
    ) -> Vec<&'a Entry> {
        let mut out: Vec<&Entry> = cities
            .iter()
            .filter_map(|c| pools.get(c))
            .flat_map(|pool| self.take(pool, n, keep))
            .collect();
        if cities.len() > 1 {
            out.sort_by(|a, b| order(a, b));
            out.truncate(n);
        }
        out
    }

    /// Up to `n` of the most popular entries in any of `cities` (everywhere when empty)
    /// passing `keep`, most popular first.
    pub fn popular_in<'a>(
        &'a self,
        cities: &[String],
        n: usize,
        keep: &dyn Fn(&Entry) -> bool,
    ) -> Vec<&'a Entry> {
        if cities.is_empty() {
            return self.take(&self.popular, n, keep).collect();
        }
        self.merged(&self.popular_in, cities, n, keep, popular_order)
    }

    /// Up to `n` of the newest entries in any of `cities` passing `keep`.
    pub fn newest_in<'a>(
        &'a self,
        cities: &[String],
        n: usize,
        keep: &dyn Fn(&Entry) -> bool,
    ) -> Vec<&'a Entry> {
        self.merged(&self.newest_in, cities, n, keep, newest_order)
    }
}

/// The index: the current snapshot, and what changed since it was built.
pub struct ListingIndex {
    store: Store,
    /// The snapshot requests read: replaced whole, never changed in place (counters aside).
    /// An `ArcSwap`: every request loads it, and a load never waits for a writer.
    current: arc_swap::ArcSwap<Snapshot>,
    /// What changed since `current` was built, and what the running full load must replay:
    /// one lock, so a change is never recorded in one place and missed in the other.
    changes: Mutex<Changes>,
    /// Whether `changes.pending` holds anything, so a read finds out without the lock.
    /// Written only while `changes` is held.
    has_pending: AtomicBool,
    /// One application of pending changes at a time: concurrent readers that find changes
    /// pending wait for it rather than each loading the same rows. A full reload takes it only
    /// to swap its snapshot in, not while it reads.
    refreshing: tokio::sync::Mutex<()>,
    /// One full load at a time.
    loading: tokio::sync::Mutex<()>,
}

/// `ListingIndex::changes`.
struct Changes {
    /// Listings changed since the snapshot was built (any instance).
    pending: HashSet<Uuid>,
    /// Listings changed since the running full load began (`None`: no load is running).
    during_load: Option<HashSet<Uuid>>,
    /// Where the recent-popularity window of the snapshot in use starts (changes applied to
    /// it count the same window).
    recent_since: chrono::DateTime<chrono::Utc>,
}

/// A snapshot read by `ListingIndex::load`, for `ListingIndex::install`, with where its
/// recent-popularity window starts.
pub struct Loaded {
    snapshot: Snapshot,
    recent_since: chrono::DateTime<chrono::Utc>,
}

impl ListingIndex {
    /// An empty index; `reload` fills it.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            current: arc_swap::ArcSwap::from_pointee(Snapshot::build(Vec::new())),
            changes: Mutex::new(Changes {
                pending: HashSet::new(),
                during_load: None,
                recent_since: chrono::Utc::now() - chrono::Duration::days(RECENT_DAYS),
            }),
            has_pending: AtomicBool::new(false),
            refreshing: tokio::sync::Mutex::new(()),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    fn changes(&self) -> std::sync::MutexGuard<'_, Changes> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Size, memory and age of the index in /metrics.
    pub fn register_metrics(self: &Arc<Self>, meter: &opentelemetry::metrics::Meter) {
        let (a, b, c) = (
            Arc::downgrade(self),
            Arc::downgrade(self),
            Arc::downgrade(self),
        );
        meter
            .u64_observable_gauge("rentgraph_listing_index_listings")
            .with_description("Listings in the listing index (active or not)")
            .with_callback(move |o| {
                if let Some(i) = a.upgrade() {
                    o.observe(i.snapshot().len() as u64, &[]);
                }
            })
            .build();
        meter
            .u64_observable_gauge("rentgraph_listing_index")
            .with_unit("By")
            .with_description("Approximate memory the listing index holds")
            .with_callback(move |o| {
                if let Some(i) = b.upgrade() {
                    o.observe(i.snapshot().bytes() as u64, &[]);
                }
            })
            .build();
        meter
            .f64_observable_gauge("rentgraph_listing_index_age")
            .with_unit("s")
            .with_description("Time since the listing index snapshot was built")
            .with_callback(move |o| {
                if let Some(i) = c.upgrade() {
                    o.observe(i.snapshot().age().as_secs_f64(), &[]);
                }
            })
            .build();
    }

    /// The current snapshot, without looking for changes.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The current snapshot with every announced change applied.
    pub async fn fresh(&self) -> Result<Arc<Snapshot>, StoreError> {
        if self.has_pending.load(Ordering::Acquire) {
            let _one = self.refreshing.lock().await;
            let ids: Vec<Uuid> = {
                let mut changes = self.changes();
                self.has_pending.store(false, Ordering::Release);
                changes.pending.drain().collect()
            };
            if !ids.is_empty()
                && let Err(e) = self.apply(&ids).await
            {
                // Not lost: tried again on the next read.
                self.changed_many(&ids);
                return Err(e);
            }
        }
        Ok(self.snapshot())
    }

    /// A listing was created, changed or deactivated (here or on another instance).
    pub fn changed(&self, id: Uuid) {
        self.changed_many(&[id]);
    }

    fn changed_many(&self, ids: &[Uuid]) {
        let mut changes = self.changes();
        if let Some(during) = changes.during_load.as_mut() {
            during.extend(ids.iter().copied());
        }
        changes.pending.extend(ids.iter().copied());
        self.has_pending.store(true, Ordering::Release);
    }

    /// An interaction recorded, or a like or save taken back (here or on another instance):
    /// the listing's counters move until the next load counts them from the database.
    pub fn record(&self, listing: Uuid, kind: InteractionKind, removed: bool) {
        if let Some(e) = self.snapshot().get(&listing) {
            e.bump(kind, if removed { -1 } else { 1 });
        }
    }

    /// Loads every listing again (`CHUNK` at a time) and swaps the new snapshot in. Reads go
    /// on meanwhile, and changes announced meanwhile are applied as usual; they are applied
    /// again on top of the new snapshot, whose rows may predate them.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _one = self.loading.lock().await;
        let loaded = self.load().await?;
        self.install(loaded).await;
        Ok(())
    }

    /// The first half of `reload`: reads every listing into a snapshot that is not in use yet.
    /// Changes announced from now until `install` are remembered. One load at a time:
    /// `reload` serialises them.
    pub async fn load(&self) -> Result<Loaded, StoreError> {
        self.changes().during_load.get_or_insert_with(HashSet::new);
        let loaded = self.read_all().await;
        if loaded.is_err() {
            self.changes().during_load.take();
        }
        loaded
    }

    /// The second half of `reload`: swaps the loaded snapshot in and marks the changes
    /// announced during the load pending again, so the next read applies them on top of it.
    pub async fn install(&self, loaded: Loaded) {
        // Not in the middle of applying changes to the snapshot being replaced.
        let _one = self.refreshing.lock().await;
        let during = {
            let mut changes = self.changes();
            changes.recent_since = loaded.recent_since;
            changes.during_load.take().unwrap_or_default()
        };
        self.current.store(Arc::new(loaded.snapshot));
        if !during.is_empty() {
            let ids: Vec<Uuid> = during.into_iter().collect();
            self.changed_many(&ids);
        }
    }

    async fn read_all(&self) -> Result<Loaded, StoreError> {
        let started = Instant::now();
        // The window ends at the newest interaction: now, on a live system; a data set from
        // the past keeps the recent popularity it had.
        let newest = self.store.newest_interaction().await?;
        let since = newest
            .unwrap_or_else(chrono::Utc::now)
            .min(chrono::Utc::now())
            - chrono::Duration::days(RECENT_DAYS);
        let recent = self.store.recent_counts(since, None).await?;
        let mut entries = Vec::new();
        let mut after = None;
        loop {
            let rows = self.store.index_rows(after, CHUNK).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            let n = rows.len() as u64;
            entries.extend(self.entries(rows, &recent).await?);
            if n < CHUNK {
                break;
            }
        }
        let mut snapshot = Snapshot::build(entries);
        let co_since = newest
            .unwrap_or_else(chrono::Utc::now)
            .min(chrono::Utc::now())
            - chrono::Duration::days(co_engagement::WINDOW_DAYS);
        let events = self.store.interactions_since(co_since).await?;
        let co = CoEngagement::build(events, &|id| snapshot.get(id).is_some_and(|e| e.active));
        snapshot = snapshot.with_co_engagement(Arc::new(co));
        if let Some(newest) = newest {
            snapshot.lag = (chrono::Utc::now() - newest).max(chrono::Duration::zero());
        }
        tracing::info!(
            listings = snapshot.len(),
            active = snapshot.active(),
            bytes = snapshot.bytes(),
            ms = started.elapsed().as_millis() as u64,
            "listing index loaded"
        );
        Ok(Loaded {
            snapshot,
            recent_since: since,
        })
    }

    async fn entries(
        &self,
        rows: Vec<IndexRow>,
        recent: &HashMap<Uuid, PropertyStats>,
    ) -> Result<Vec<Arc<Entry>>, StoreError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let amenities = self.store.amenities_for(&ids).await?;
        let stats = self.store.stats_for(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let a = amenities.get(&r.id).map(Vec::as_slice).unwrap_or(&[]);
                let s = stats.get(&r.id).copied().unwrap_or_default();
                let recent = recent.get(&r.id).copied().unwrap_or_default();
                Arc::new(Entry::new(r, a, s.into(), recent.into()))
            })
            .collect())
    }

    /// Reloads these listings and swaps in a snapshot with them (four statements).
    async fn apply(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        let rows = self.store.index_rows_for(ids).await?;
        let since = self.changes().recent_since;
        let recent = self.store.recent_counts(since, Some(ids)).await?;
        let mut fresh = self.entries(rows, &recent).await?;
        fresh.sort_by_key(|e| e.id);
        let next = self.snapshot().with_changes(fresh);
        self.current.store(Arc::new(next));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn entry(city: &str, price: i32, views: i64, active: bool, day: u32) -> Arc<Entry> {
        Arc::new(Entry::new(
            IndexRow {
                monthly_price: price,
                is_active: active,
                created_at: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap(),
                ..IndexRow::sample(Uuid::new_v4(), city)
            },
            &[Amenity::Parking],
            PropertyStats {
                views,
                ..Default::default()
            }
            .into(),
            PropertyStats {
                views,
                ..Default::default()
            }
            .into(),
        ))
    }

    #[test]
    fn pools_hold_active_listings_by_popularity_and_age() {
        let a = entry("Lisbon", 1000, 5, true, 1);
        let b = entry("Lisbon", 1200, 50, true, 2);
        let gone = entry("Lisbon", 900, 500, false, 3);
        let c = entry("Porto", 800, 20, true, 4);
        let snap = Snapshot::build(vec![a.clone(), b.clone(), gone.clone(), c.clone()]);
        let all = |_: &Entry| true;
        let ids = |v: Vec<&Entry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(snap.popular_in(&[], 10, &all)), vec![b.id, c.id, a.id]);
        assert_eq!(
            ids(snap.popular_in(&["Lisbon".into()], 10, &all)),
            vec![b.id, a.id]
        );
        assert_eq!(
            ids(snap.newest_in(&["Lisbon".into(), "Porto".into()], 2, &all)),
            vec![c.id, b.id]
        );
        let cheap = |e: &Entry| e.static_facts().monthly_price < 1100;
        assert_eq!(ids(snap.popular_in(&[], 10, &cheap)), vec![c.id, a.id]);
        // The inactive listing is known (history) but never a candidate.
        assert!(snap.get(&gone.id).is_some_and(|e| !e.active));
        assert_eq!(snap.active(), 3);
    }

    #[test]
    fn recent_popularity_ranks_before_all_time_popularity() {
        let old_hit = Arc::new(Entry::new(
            IndexRow::sample(Uuid::new_v4(), "Lisbon"),
            &[],
            Popularity {
                views: 500,
                ..Default::default()
            },
            Popularity::default(),
        ));
        let rising = entry("Lisbon", 1000, 20, true, 2);
        let snap = Snapshot::build(vec![old_hit.clone(), rising.clone()]);
        let ids: Vec<Uuid> = snap
            .popular_in(&["Lisbon".into()], 2, &|_: &Entry| true)
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, vec![rising.id, old_hit.id]);
        // The features' scale is the city's mean recent counters.
        let f = snap.facts(&rising);
        assert_eq!((f.recent.views, f.market.views), (20, 10.0));
    }

    #[test]
    fn changes_move_through_the_pools_as_a_rebuild_would_place_them() {
        let make = |id: u128, city: &str, views: u32, active: bool, day: u32| {
            let p = Popularity {
                views,
                ..Default::default()
            };
            Arc::new(Entry::new(
                IndexRow {
                    is_active: active,
                    created_at: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap(),
                    ..IndexRow::sample(Uuid::from_u128(id), city)
                },
                &[],
                p,
                p,
            ))
        };
        let cities = ["A", "B", "C"];
        let base: Vec<Arc<Entry>> = (0..40u32)
            .map(|i| {
                make(
                    u128::from(i),
                    cities[i as usize % 3],
                    i * 7 % 13,
                    i % 5 != 0,
                    1 + i % 28,
                )
            })
            .collect();
        let changes = vec![
            make(3, "A", 100, true, 2),  // more popular
            make(4, "B", 1, false, 5),   // deactivated
            make(7, "C", 50, true, 9),   // moved from B to C
            make(10, "B", 3, true, 4),   // reactivated
            make(100, "A", 6, true, 28), // new
            make(101, "D", 2, true, 1),  // new, in a new city
        ];
        let incremental = Snapshot::build(base.clone()).with_changes(changes.clone());
        let mut all = base;
        for c in changes {
            match all.iter().position(|e| e.id == c.id) {
                Some(i) => all[i] = c,
                None => all.push(c),
            }
        }
        let rebuilt = Snapshot::build(all);
        let every = |_: &Entry| true;
        let ids = |v: Vec<&Entry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        for cities in [
            vec![],
            vec!["A"],
            vec!["B"],
            vec!["C"],
            vec!["D"],
            vec!["A", "C"],
        ] {
            let cities: Vec<String> = cities.into_iter().map(String::from).collect();
            assert_eq!(
                ids(incremental.popular_in(&cities, 100, &every)),
                ids(rebuilt.popular_in(&cities, 100, &every)),
                "popular in {cities:?}"
            );
            assert_eq!(
                ids(incremental.newest_in(&cities, 100, &every)),
                ids(rebuilt.newest_in(&cities, 100, &every)),
                "newest in {cities:?}"
            );
        }
        assert_eq!(incremental.market, rebuilt.market);
        assert_eq!(
            (incremental.len(), incremental.active()),
            (rebuilt.len(), rebuilt.active())
        );
    }

    #[test]
    fn bumps_add_to_the_loaded_counters_and_survive_a_swap() {
        let a = entry("Lisbon", 1000, 5, true, 1);
        a.bump(InteractionKind::View, 1);
        a.bump(InteractionKind::Save, 1);
        a.bump(InteractionKind::Like, -1);
        let snap = Snapshot::build(vec![a.clone()]);
        let p = snap.get(&a.id).map(Entry::popularity).unwrap_or_default();
        assert_eq!((p.views, p.saves), (6, 1));
    }

    #[test]
    fn filters_match_like_the_sql() {
        let a = entry("Lisbon", 1000, 5, true, 1);
        let mut f = PropertyFilter {
            active: Some(true),
            min_price: Some(900),
            max_price: Some(1000),
            amenities: vec![Amenity::Parking],
            ..Default::default()
        };
        assert!(a.matches(&f));
        f.amenities.push(Amenity::Pool);
        assert!(!a.matches(&f));
        f.amenities.clear();
        f.cities = vec!["Porto".into()];
        assert!(!a.matches(&f));
        f.cities.clear();
        f.max_price = Some(999);
        assert!(!a.matches(&f));
    }
}
