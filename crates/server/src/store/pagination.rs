//! Keyset pagination shared by every list: rows are ordered by (sort key, id) and a cursor is
//! the last row's pair, so page N costs the same as page 1 and concurrent inserts never shift
//! or repeat rows the client has already seen.
use uuid::Uuid;

/// The position of one row in an ordering: its sort value (price, area or a timestamp in
/// microseconds) and its id as the tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortKey {
    pub value: i64,
    pub id: Uuid,
}

/// A validated page request: at most one direction, a positive limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageRequest {
    /// `first` rows after `after`.
    Forward { limit: u64, after: Option<SortKey> },
    /// `last` rows before `before`.
    Backward { limit: u64, before: Option<SortKey> },
}

impl PageRequest {
    pub fn limit(&self) -> u64 {
        match self {
            Self::Forward { limit, .. } | Self::Backward { limit, .. } => *limit,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched with `limit + 1` in query order: the extra row only
    /// tells whether there is more in that direction.
    pub fn from_overfetch(mut rows: Vec<T>, request: PageRequest) -> Self {
        let limit = request.limit() as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        match request {
            PageRequest::Forward { after, .. } => Page {
                rows,
                has_next_page: more,
                has_previous_page: after.is_some(),
            },
            PageRequest::Backward { before, .. } => {
                rows.reverse();
                Page {
                    rows,
                    has_next_page: before.is_some(),
                    has_previous_page: more,
                }
            }
        }
    }
}
