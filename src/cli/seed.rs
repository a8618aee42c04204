//! `rentgraph seed`: generates a data set in one of the worlds and loads it into an empty
//! database.
use anyhow::{Context, Result};
use rentgraph::config::Settings;
use rentgraph::infra::telemetry::init_tracing;
use rentgraph_lab::datagen::{self, SeedOptions, World};

/// How much to generate, and from which seed.
pub(super) struct Sizes {
    pub(super) properties: usize,
    pub(super) users: usize,
    pub(super) interactions: usize,
    pub(super) seed: u64,
}

pub(super) async fn run(
    settings: &Settings,
    sizes: Sizes,
    world: &str,
    world_params: &[String],
) -> Result<()> {
    let world = World::parse(world, world_params).map_err(|e| anyhow::anyhow!(e))?;
    let _tracing = init_tracing(&settings.telemetry);
    let store = super::connect(settings).await?;
    store.migrate().await.context("migration failed")?;
    let started = std::time::Instant::now();
    let opts = SeedOptions {
        properties: sizes.properties,
        users: sizes.users,
        interactions: sizes.interactions,
        seed: sizes.seed,
        world,
    };
    let report = datagen::seed(&store, opts, |msg| {
        eprintln!("[{:>6.1}s] {msg}", started.elapsed().as_secs_f64());
    })
    .await
    .context("seeding failed")?;
    eprintln!(
        "seeded {} users, {} properties, {} images, {} amenities, {} interactions in {:.1}s (generate {} ms, load {} ms)",
        report.users,
        report.properties,
        report.images,
        report.amenities,
        report.interactions,
        started.elapsed().as_secs_f64(),
        report.generate_ms,
        report.load_ms
    );
    Ok(())
}
