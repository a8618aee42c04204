//! `rentgraph export-training-data`: the recommender's training and evaluation rows (CSV).
use anyhow::{Context, Result};
use rentgraph::config::Settings;
use rentgraph::infra::telemetry::init_tracing;
use rentgraph_lab::training::{self, ExportOptions};
use std::path::PathBuf;

/// `rentgraph export-training-data`'s flags.
#[derive(clap::Args)]
pub(super) struct Args {
    /// Output file.
    #[arg(long, default_value = "ml/data/training.csv")]
    pub(super) out: PathBuf,
    /// Users in the evaluation set at most.
    #[arg(long, default_value_t = 3000)]
    pub(super) eval_users: usize,
    /// The share of renters with later likes, saves or inquiries kept out of training for
    /// evaluation (chosen by a hash of their id and --seed; `evaluate --held-out-share`
    /// with the same seed scores them).
    #[arg(long, default_value_t = 0.3)]
    pub(super) held_out_share: f64,
    #[arg(long, default_value_t = 42)]
    pub(super) seed: u64,
}

pub(super) async fn run(settings: &Settings, args: Args) -> Result<()> {
    let out = args.out.as_path();
    let _tracing = init_tracing(&settings.telemetry);
    let store = super::connect(settings).await?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let options = ExportOptions {
        eval_users: args.eval_users,
        held_out_share: args.held_out_share,
        seed: args.seed,
    };
    let report = training::export(&store, out, &settings.ml, options).await?;
    eprintln!(
        "wrote {}: {} training rows, {} evaluation rows for {} users",
        out.display(),
        report.train_rows,
        report.eval_rows,
        report.eval_users
    );
    Ok(())
}
