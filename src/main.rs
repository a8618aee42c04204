//! The `rentgraph` binary: serve (the default), migrate, seed, export-schema, token.
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use rentgraph::app::{Server, shutdown_signal};
use rentgraph::auth::Authenticator;
use rentgraph::config::{Settings, Sources};
use rentgraph::datagen::SeedOptions;
use rentgraph::graphql::ids::{self, Kind};
use rentgraph::store::Store;
use rentgraph::telemetry::{Metrics, init_tracing};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc: the server allocates many small, short-lived objects per request (JSON, the parsed
/// document, response values) from several threads; under load the system allocator showed up
/// at about 13% of CPU in a profile (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(Sources {
        file: cli.config.clone(),
        ..Default::default()
    })?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let _tracing = init_tracing(&settings.telemetry);
            let store = connect(&settings).await?;
            store.migrate().await.context("migration failed")?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Seed {
            properties,
            users,
            interactions,
            seed,
            world,
            world_params,
        } => {
            let world = rentgraph::datagen::World::parse(&world, &world_params)
                .map_err(|e| anyhow::anyhow!(e))?;
            let _tracing = init_tracing(&settings.telemetry);
            let store = connect(&settings).await?;
            store.migrate().await.context("migration failed")?;
            let started = std::time::Instant::now();
            let report = store
                .seed(
                    SeedOptions {
                        properties,
                        users,
                        interactions,
                        seed,
                        world,
                    },
                    |msg| eprintln!("[{:>6.1}s] {msg}", started.elapsed().as_secs_f64()),
                )
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
        Command::Evaluate {
            users,
            cutoff,
            seed,
            first,
            held_out_share,
            held_out_seed,
        } => {
            let _tracing = init_tracing(&settings.telemetry);
            let store = connect(&settings).await?;
            let (_, files) = rentgraph::ml::model::ModelFiles::for_settings(&settings.ml)?;
            let mut scorer = rentgraph::ml::model::OrtScorer::load(&files)?;
            let report = rentgraph::evaluation::evaluate(
                &store,
                &mut scorer,
                &settings.ml,
                &rentgraph::evaluation::EvalOptions {
                    users: match held_out_share {
                        Some(share) => rentgraph::evaluation::Users::HeldOut {
                            seed: held_out_seed,
                            share,
                        },
                        None => rentgraph::evaluation::Users::All,
                    },
                    max_users: users,
                    cutoff_quantile: cutoff,
                    seed,
                    first,
                },
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::ExportTrainingData {
            out,
            eval_users,
            held_out_share,
            seed,
        } => {
            let _tracing = init_tracing(&settings.telemetry);
            let store = connect(&settings).await?;
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let report = rentgraph::training::export(
                &store,
                &out,
                &settings.ml,
                rentgraph::training::ExportOptions {
                    eval_users,
                    held_out_share,
                    seed,
                },
            )
            .await?;
            eprintln!(
                "wrote {}: {} training rows, {} evaluation rows for {} users",
                out.display(),
                report.train_rows,
                report.eval_rows,
                report.eval_users
            );
            Ok(())
        }
        Command::Persisted {
            command: PersistedCommand::Check,
        } => {
            let dir = &settings.persisted.manifest_dir;
            let registry = rentgraph::persisted::Registry::load(dir)?;
            let schema = rentgraph::graphql::build_schema(&settings.graphql, None);
            registry.validate(&schema).await?;
            println!(
                "{} trusted documents in {} validate against the schema",
                registry.len(),
                dir.display()
            );
            Ok(())
        }
        Command::Model {
            command: ModelCommand::Seal,
        } => {
            use rentgraph::ml::model::{
                GoldenRow, ModelFiles, OrtScorer, Scorer, file_sha256, golden_inputs,
            };
            let ml = &settings.ml;
            let text = std::fs::read_to_string(&ml.info_path)
                .with_context(|| format!("cannot read {}", ml.info_path.display()))?;
            let mut info: serde_json::Value = serde_json::from_str(&text)?;
            let (_, files) = ModelFiles::for_settings(ml)?;
            let mut scorer = OrtScorer::load(&files)?;
            let inputs = golden_inputs();
            let flat: Vec<f32> = inputs.iter().flatten().copied().collect();
            let scores = scorer.score(&flat, inputs.len())?;
            let golden: Vec<GoldenRow> = inputs
                .into_iter()
                .zip(scores)
                .map(|(features, score)| GoldenRow { features, score })
                .collect();
            info["sha256"] = serde_json::Value::String(file_sha256(&ml.model_path)?);
            info["golden"] = serde_json::to_value(golden)?;
            std::fs::write(&ml.info_path, serde_json::to_string_pretty(&info)? + "\n")
                .with_context(|| format!("cannot write {}", ml.info_path.display()))?;
            eprintln!(
                "sealed {} in {}",
                ml.model_path.display(),
                ml.info_path.display()
            );
            Ok(())
        }
        Command::CostTable => {
            print!("{}", rentgraph::graphql::cost::markdown_table());
            Ok(())
        }
        Command::ExportSchema => {
            print!("{}", rentgraph::graphql::sdl(&settings.graphql));
            Ok(())
        }
        Command::Token {
            user,
            users_file,
            role,
        } => {
            let role: entity::Role =
                serde_json::from_value(serde_json::Value::String(role.to_uppercase()))
                    .map_err(|_| anyhow::anyhow!("--role must be USER, OWNER, PARTNER or ADMIN"))?;
            let users: Vec<String> = match (user, users_file) {
                (Some(user), _) => vec![user],
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
                (None, None) => bail!("--user or --users-file"),
            };
            let auth = Authenticator::new(&settings.auth)?;
            let mut out = String::new();
            for user in users {
                let id = ids::decode(Kind::User, &user)
                    .map_err(|e| anyhow::anyhow!("user {user}: {}", e.message()))?;
                out.push_str(&auth.mint(id, role)?);
                out.push('\n');
            }
            print!("{out}");
            Ok(())
        }
    }
}

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

async fn serve(settings: Settings) -> Result<()> {
    let _tracing = init_tracing(&settings.telemetry);
    let grace = Duration::from_millis(settings.server.shutdown_timeout_ms);
    let graphiql = settings.server.graphiql;
    let server = match Server::start(settings).await {
        Ok(s) => s,
        Err(e) => bail!("cannot start: {e}"),
    };
    let url = format!("http://{}/graphql", server.addr);
    tracing::info!(%url, "rentgraph is serving");
    if graphiql {
        eprintln!("\n  rentgraph is up. GraphiQL: {url}");
        if let Ok(Some(admin)) = server
            .state
            .store
            .first_user_with_role(entity::Role::Admin)
            .await
        {
            eprintln!(
                "  Demo admin {} ({}): cargo run --release -- token --user {} --role ADMIN",
                admin.display_name,
                admin.email,
                ids::encode(Kind::User, admin.id).0
            );
        }
        eprintln!();
    }
    shutdown_signal().await;
    tracing::info!("shutting down; finishing in-flight requests");
    server.stop(grace).await;
    Ok(())
}
