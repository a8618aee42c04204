//! `rentgraph serve` (the default): runs the server until SIGTERM or ctrl-c, seeding an empty
//! database with the demo data set when `database.seed_if_empty` is set.
use anyhow::{Result, bail};
use rentgraph::config::Settings;
use rentgraph::graphql::ids::{self, Kind};
use rentgraph::infra::telemetry::init_tracing;
use rentgraph::server::{Server, shutdown_signal};
use rentgraph_lab::datagen::DemoGenerator;
use std::time::Duration;

pub(super) async fn run(settings: Settings) -> Result<()> {
    if let Err(why) = settings.check_implicit_development() {
        bail!("{why}");
    }
    let _tracing = init_tracing(&settings.telemetry);
    let grace = Duration::from_millis(settings.server.shutdown_timeout_ms);
    let graphiql = settings.server.graphiql;
    let server = match Server::start_with(settings, Some(&DemoGenerator)).await {
        Ok(s) => s,
        Err(e) => bail!("cannot start: {e}"),
    };
    let url = format!("http://{}/graphql", server.addr);
    tracing::info!(%url, "rentgraph is serving");
    if graphiql {
        eprintln!("\n  rentgraph is up. GraphiQL: {url}");
        if let Ok(Some(admin)) = server
            .state
            .store()
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
    tracing::info!("shutting down");
    server.shutdown(grace).await;
    Ok(())
}
