//! `rentgraph evaluate`: replays serving at a past moment and scores the served top N against
//! the baselines (JSON on stdout).
use anyhow::Result;
use rentgraph::config::Settings;
use rentgraph::infra::telemetry::init_tracing;
use rentgraph_lab::evaluation::{self, EvalOptions, Users};
use rentgraph_model::model::OrtScorer;

/// `rentgraph evaluate`'s flags.
#[derive(clap::Args)]
pub(super) struct Args {
    /// Users evaluated at most (picked at random among those with targets).
    #[arg(long, default_value_t = 1000)]
    pub(super) users: usize,
    /// The cutoff, as a quantile of all interaction times.
    #[arg(long, default_value_t = 0.85)]
    pub(super) cutoff: f64,
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Recommendations per user.
    #[arg(long, default_value_t = 10)]
    pub(super) first: usize,
    /// Score only the renters `export-training-data --held-out-share` kept out of training
    /// with `--held-out-seed` (a model evaluated on the database it was trained on).
    #[arg(long)]
    pub(super) held_out_share: Option<f64>,
    #[arg(long, default_value_t = 42)]
    pub(super) held_out_seed: u64,
}

pub(super) async fn run(settings: &Settings, args: Args) -> Result<()> {
    let _tracing = init_tracing(&settings.telemetry);
    let store = super::connect(settings).await?;
    let (_, files) = settings.ml.model_files()?;
    let mut scorer = OrtScorer::load(&files)?;
    let users = match args.held_out_share {
        Some(share) => Users::HeldOut {
            seed: args.held_out_seed,
            share,
        },
        None => Users::All,
    };
    let options = EvalOptions {
        users,
        max_users: args.users,
        cutoff_quantile: args.cutoff,
        seed: args.seed,
        first: args.first,
    };
    let report = evaluation::evaluate(&store, &mut scorer, &settings.ml, &options).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
