//! The market's dynamics: how long listings live, how renters search. Documented, with the
//! reasons for each value, in docs/RECOMMENDER.md ("The data").
/// Listings appear uniformly over this many days before the data set's epoch.
pub(crate) const LISTING_DAYS: f64 = 400.0;
/// Interactions happen over the last this-many days of that span.
pub(crate) const SEARCH_DAYS: f64 = 365.0;
/// A listing nobody rents is withdrawn after an exponentially distributed lifetime.
pub(crate) const MEAN_LISTING_LIFETIME_DAYS: f64 = 150.0;
/// A listing is rented (and leaves the market 1-7 days later) after this many inquiries,
/// drawn uniformly in the range.
pub(crate) const RENTED_AFTER_INQUIRIES: (usize, usize) = (3, 8);
/// A renter searches during one period of an exponentially distributed length (at least
/// a week).
pub(crate) const MEAN_SEARCH_DAYS: f64 = 60.0;
/// A session is one sitting: 1 + a geometric number of interactions, 30 s to 5 min apart,
/// all in one city.
pub(crate) const MEAN_SESSION_INTERACTIONS: f64 = 6.0;
/// Share of renters who change their mind halfway through their search (another city,
/// another budget or size); half of them update their stated preferences.
pub(crate) const CHANGE_OF_MIND: f64 = 0.2;
/// Share of interactions that follow popularity alone (the front page), not taste.
pub(crate) const POPULARITY_DRIVEN: f64 = 0.2;
/// Listings a renter looks at before picking one by affinity (softmax sampling).
pub(crate) const LOOKED_AT: usize = 16;
/// Weight of a listing's age (ln(1 + days/7)) against it: new listings draw attention.
pub(crate) const FRESHNESS: f64 = 0.2;
