use super::{Property, PropertyFilterInput};
use crate::graphql::context::Ctx;
use crate::graphql::errors::{ApiError, ApiResult};
use crate::graphql::loaders::PropertyKey;
use crate::recommend::{Recommender, Source};
use async_graphql::{Context, Enum, SimpleObject};
use std::sync::Arc;

/// Where a recommendation's order came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RecommendationSource {
    /// Scored by the recommendation model for this user.
    Model,
    /// Ranked by popularity: for anonymous callers, or because the model could not answer.
    Popularity,
    /// The model is held back (its sealed evaluation does not beat the best baseline) and
    /// these baselines answer instead (docs/RECOMMENDER.md, "The gate"): retrieval's
    /// candidates by recent popularity, without the model.
    ModelOff,
    /// The most popular listings in the user's stated cities and budget.
    PopularityStatedArea,
    /// The most popular listings of the last 28 days in the user's stated cities and budget.
    RecentPopularityStatedArea,
    /// The most popular listings where the user looks, budget and size inferred from history
    /// when not stated.
    PopularityInferredArea,
    /// As `POPULARITY_INFERRED_AREA`, over the last 28 days.
    RecentPopularityInferredArea,
    /// As `POPULARITY_STATED_AREA`, each interaction weighed by its age (half-life 14 days).
    DecayedPopularityStatedArea,
    /// As `POPULARITY_INFERRED_AREA`, each interaction weighed by its age (half-life 14 days).
    DecayedPopularityInferredArea,
    /// Item-kNN: what renters who engaged with the same listings as the user went on to.
    ItemKnnCoEngagement,
}

impl From<Source> for RecommendationSource {
    fn from(s: Source) -> Self {
        use crate::recommend::baseline::{Area, Baseline, Window};
        match s {
            Source::Model => Self::Model,
            Source::Popularity => Self::Popularity,
            Source::Baseline(b) => match b {
                Baseline::ModelOff => Self::ModelOff,
                Baseline::Popularity {
                    window: Window::AllTime,
                    area: Area::Stated,
                } => Self::PopularityStatedArea,
                Baseline::Popularity {
                    window: Window::Recent,
                    area: Area::Stated,
                } => Self::RecentPopularityStatedArea,
                Baseline::Popularity {
                    window: Window::AllTime,
                    area: Area::Inferred,
                } => Self::PopularityInferredArea,
                Baseline::Popularity {
                    window: Window::Recent,
                    area: Area::Inferred,
                } => Self::RecentPopularityInferredArea,
                Baseline::Popularity {
                    window: Window::Decayed,
                    area: Area::Stated,
                } => Self::DecayedPopularityStatedArea,
                Baseline::Popularity {
                    window: Window::Decayed,
                    area: Area::Inferred,
                } => Self::DecayedPopularityInferredArea,
                Baseline::CoEngagement => Self::ItemKnnCoEngagement,
            },
        }
    }
}

/// A listing recommended to a user.
#[derive(SimpleObject, Clone)]
pub(crate) struct Recommendation {
    pub property: Property,
    /// The model's estimate that the user will like, save or ask about the listing (0 to 1);
    /// for popularity rankings, popularity relative to the most popular candidate.
    pub score: f64,
    /// 1 for the first recommendation.
    pub rank: i32,
    /// Short reasons a person can read.
    pub reasons: Vec<String>,
    pub source: RecommendationSource,
    /// The model that scored this list; null for popularity rankings.
    pub model_version: Option<String>,
}

/// Recommendations for `user` (anonymous: popularity), validated and converted.
pub(crate) async fn recommendations_for(
    ctx: &Context<'_>,
    user: Option<&entity::user::Model>,
    first: i32,
    filter: Option<PropertyFilterInput>,
) -> ApiResult<Vec<Recommendation>> {
    let max = ctx.limits()?.max_page_size;
    if first < 0 || first as usize > max {
        return Err(ApiError::bad_input(format!(
            "`first` must be between 0 and {max}"
        )));
    }
    let mut filter = filter.unwrap_or_default().to_store(ctx)?;
    // Recommendations are always of listings one can rent.
    filter.active = Some(true);
    filter.owner_id = None;
    let recommender = ctx
        .data::<Arc<Recommender>>()
        .map_err(|_| ApiError::Internal("recommender missing from the request context".into()))?;
    let (items, source) = recommender.recommend(user, first as usize, &filter).await?;
    let version = match source {
        Source::Model => recommender.model_version().map(str::to_owned),
        Source::Popularity | Source::Baseline(_) => None,
    };
    // Through the entity cache, and only what is still active: a listing deactivated since
    // the list was made (or cached) drops out.
    let found = ctx
        .loaders()?
        .load_many(items.iter().map(|r| PropertyKey(r.id)))
        .await
        .map_err(ApiError::from)?;
    Ok(items
        .into_iter()
        .filter_map(|r| {
            let p = found.get(&PropertyKey(r.id)).filter(|p| p.is_active)?;
            Some((r, p.clone()))
        })
        .enumerate()
        .map(|(rank, (r, p))| Recommendation {
            property: Property(p),
            score: r.score,
            rank: rank as i32 + 1,
            reasons: r.reasons,
            source: r.source.into(),
            model_version: version.clone(),
        })
        .collect())
}
