//! `rentgraph export-training-data`: the recommender's training and evaluation rows (CSV).
use anyhow::{Context, Result};
use rentgraph::config::Settings;
use rentgraph::infra::telemetry::init_tracing;
use rentgraph_lab::training::{self, ExportOptions};
use std::path::Path;

pub(super) async fn run(
    settings: &Settings,
    out: &Path,
    eval_users: usize,
    held_out_share: f64,
    seed: u64,
) -> Result<()> {
    let _tracing = init_tracing(&settings.telemetry);
    let store = super::connect(settings).await?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let options = ExportOptions {
        eval_users,
        held_out_share,
        seed,
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
