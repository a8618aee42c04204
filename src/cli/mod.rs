//! The command line: the commands and their flags (the contract scripts and operators rely
//! on), each run by its own file.
mod cost_table;
mod error_codes;
mod evaluate;
mod export_schema;
mod export_training_data;
mod migrate;
mod model;
mod persisted;
mod seed;
mod serve;
mod token;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rentgraph::config::{Settings, Sources};
use rentgraph::infra::telemetry::Metrics;
use rentgraph::store::Store;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "rentgraph",
    version,
    about = "GraphQL API for rental properties"
)]
struct Cli {
    /// A settings file applied over config/default.toml and config/{RENTGRAPH_ENV}.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Load a generated data set into an empty database.
    Seed {
        #[arg(long, default_value_t = 3000)]
        properties: usize,
        #[arg(long, default_value_t = 400)]
        users: usize,
        #[arg(long, default_value_t = 40000)]
        interactions: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The market simulator: `default` or `latent` (docs/RECOMMENDER.md).
        #[arg(long, default_value = "default")]
        world: String,
        /// A parameter of the `latent` world, KEY=VALUE (repeatable; docs/RECOMMENDER.md lists
        /// them).
        #[arg(long = "world-param", value_name = "KEY=VALUE")]
        world_params: Vec<String>,
    },
    /// Print the GraphQL schema (SDL) to stdout.
    ExportSchema,
    /// Write the recommender's training and evaluation data (CSV) from the database.
    ExportTrainingData {
        /// Output file.
        #[arg(long, default_value = "ml/data/training.csv")]
        out: PathBuf,
        /// Users in the evaluation set at most.
        #[arg(long, default_value_t = 3000)]
        eval_users: usize,
        /// The share of renters with later likes, saves or inquiries kept out of training for
        /// evaluation (chosen by a hash of their id and --seed; `evaluate --held-out-share`
        /// with the same seed scores them).
        #[arg(long, default_value_t = 0.3)]
        held_out_share: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Replays serving at a past moment for users with later likes, saves and inquiries, and
    /// scores the model against popularity and random baselines (JSON on stdout).
    Evaluate {
        /// Users evaluated at most (picked at random among those with targets).
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// The cutoff, as a quantile of all interaction times.
        #[arg(long, default_value_t = 0.85)]
        cutoff: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Recommendations per user.
        #[arg(long, default_value_t = 10)]
        first: usize,
        /// Score only the renters `export-training-data --held-out-share` kept out of training
        /// with `--held-out-seed` (a model evaluated on the database it was trained on).
        #[arg(long)]
        held_out_share: Option<f64>,
        #[arg(long, default_value_t = 42)]
        held_out_seed: u64,
    },
    /// Trusted documents (persisted query manifests).
    Persisted {
        #[command(subcommand)]
        command: PersistedCommand,
    },
    /// Print the query-cost weights of the schema's fields.
    CostTable,
    /// Print every error code the API emits, with its meaning (Markdown).
    ErrorCodes,
    /// The shipped model's integrity record.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Print a bearer token for a user (development).
    Token {
        /// The user's id as `User.id` shows it (a raw UUID works too).
        #[arg(long, required_unless_present = "users_file")]
        user: Option<String>,
        /// A file of user ids, one a line: prints one token a line, in the same order (load
        /// tests sign in as thousands of users).
        #[arg(long, conflicts_with = "user")]
        users_file: Option<PathBuf>,
        /// USER, OWNER, PARTNER or ADMIN.
        #[arg(long, default_value = "USER")]
        role: String,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Record the ONNX file's sha256 and golden scores in ml.info_path (ml/train.sh runs it).
    Seal,
}

#[derive(Subcommand)]
enum PersistedCommand {
    /// Validate every manifest in persisted.manifest_dir against the schema, as start-up does.
    Check,
}

/// Reads the settings and runs the command (`serve` when none is given).
pub(crate) async fn run() -> Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(Sources {
        file: cli.config.clone(),
        ..Default::default()
    })?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(settings).await,
        Command::Migrate => migrate::run(&settings).await,
        Command::Seed {
            properties,
            users,
            interactions,
            seed,
            world,
            world_params,
        } => {
            let sizes = seed::Sizes {
                properties,
                users,
                interactions,
                seed,
            };
            seed::run(&settings, sizes, &world, &world_params).await
        }
        Command::Evaluate {
            users,
            cutoff,
            seed,
            first,
            held_out_share,
            held_out_seed,
        } => {
            let args = evaluate::Args {
                users,
                cutoff,
                seed,
                first,
                held_out_share,
                held_out_seed,
            };
            evaluate::run(&settings, args).await
        }
        Command::ExportTrainingData {
            out,
            eval_users,
            held_out_share,
            seed,
        } => export_training_data::run(&settings, &out, eval_users, held_out_share, seed).await,
        Command::Persisted {
            command: PersistedCommand::Check,
        } => persisted::check(&settings).await,
        Command::Model {
            command: ModelCommand::Seal,
        } => model::seal(&settings),
        Command::CostTable => cost_table::run(),
        Command::ErrorCodes => error_codes::run(),
        Command::ExportSchema => export_schema::run(&settings),
        Command::Token {
            user,
            users_file,
            role,
        } => token::run(&settings, user, users_file, &role),
    }
}

/// The database of `database.url`, or an error naming it (without its password).
async fn connect(settings: &Settings) -> Result<Store> {
    let metrics = Arc::new(Metrics::new()?);
    Store::connect(&settings.database, metrics)
        .await
        .with_context(|| {
            format!(
                "cannot connect to the database at {}",
                redact(&settings.database.url)
            )
        })
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}
