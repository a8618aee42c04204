//! `rentgraph migrate`: applies pending migrations.
use anyhow::{Context, Result};
use rentgraph::config::Settings;
use rentgraph::infra::telemetry::init_tracing;

pub(super) async fn run(settings: &Settings) -> Result<()> {
    let _tracing = init_tracing(&settings.telemetry);
    let store = super::connect(settings).await?;
    store.migrate().await.context("migration failed")?;
    eprintln!("migrations applied");
    Ok(())
}
