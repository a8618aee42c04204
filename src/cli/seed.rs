//! `rentgraph seed`: generates a data set in one of the worlds and loads it into an empty
//! database.
use anyhow::{Context, Result};
use rentgraph::config::Settings;
use rentgraph::infra::telemetry::init_tracing;
use rentgraph_lab::datagen::{self, SeedOptions, World};

/// `rentgraph seed`'s flags.
#[derive(clap::Args)]
pub(super) struct Args {
    #[arg(long, default_value_t = 3000)]
    pub(super) properties: usize,
    #[arg(long, default_value_t = 400)]
    pub(super) users: usize,
    #[arg(long, default_value_t = 40000)]
    pub(super) interactions: usize,
    #[arg(long, default_value_t = 42)]
    pub(super) seed: u64,
    /// The market simulator: `default` or `latent` (docs/RECOMMENDER.md).
    #[arg(long, default_value = "default")]
    pub(super) world: String,
    /// A parameter of the `latent` world, KEY=VALUE (repeatable; docs/RECOMMENDER.md lists
    /// them).
    #[arg(long = "world-param", value_name = "KEY=VALUE")]
    pub(super) world_params: Vec<String>,
}

pub(super) async fn run(settings: &Settings, args: Args) -> Result<()> {
    let world = World::parse(&args.world, &args.world_params).map_err(|e| anyhow::anyhow!(e))?;
    let _tracing = init_tracing(&settings.telemetry);
    let store = super::connect(settings).await?;
    store.migrate().await.context("migration failed")?;
    let started = std::time::Instant::now();
    let opts = SeedOptions {
        properties: args.properties,
        users: args.users,
        interactions: args.interactions,
        seed: args.seed,
        world,
    };
    let report = datagen::seed(&store, opts, |msg| {
        eprintln!("[{:>6.1}s] {msg}", started.elapsed().as_secs_f64());
    })
    .await
    .context("seeding failed")?;
    eprintln!(
        "seeded {} users, {} properties, {} images, {} amenities, {} interactions ({} simulated repeats a server does not store left out) in {:.1}s (generate {} ms, load {} ms)",
        report.users,
        report.properties,
        report.images,
        report.amenities,
        report.interactions,
        report.repeats_left_out,
        started.elapsed().as_secs_f64(),
        report.generate_ms,
        report.load_ms
    );
    Ok(())
}
