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
    Seed(seed::Args),
    /// Print the GraphQL schema (SDL) to stdout.
    ExportSchema,
    /// Write the recommender's training and evaluation data (CSV) from the database.
    ExportTrainingData(export_training_data::Args),
    /// Replays serving at a past moment for users with later likes, saves and inquiries, and
    /// scores the model against popularity and random baselines (JSON on stdout).
    Evaluate(evaluate::Args),
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
    Token(token::Args),
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
        Command::Seed(args) => seed::run(&settings, args).await,
        Command::Evaluate(args) => evaluate::run(&settings, args).await,
        Command::ExportTrainingData(args) => export_training_data::run(&settings, args).await,
        Command::Persisted {
            command: PersistedCommand::Check,
        } => persisted::check(&settings).await,
        Command::Model {
            command: ModelCommand::Seal,
        } => model::seal(&settings),
        Command::CostTable => cost_table::run(),
        Command::ErrorCodes => error_codes::run(),
        Command::ExportSchema => export_schema::run(&settings),
        Command::Token(args) => token::run(&settings, args),
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
