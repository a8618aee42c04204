//! `rentgraph persisted check`: validates every trusted-document manifest against the schema,
//! as start-up does.
use anyhow::Result;
use rentgraph::config::Settings;
use rentgraph::gateway::persisted::Registry;

pub(super) async fn check(settings: &Settings) -> Result<()> {
    let dir = &settings.persisted.manifest_dir;
    let registry = Registry::load(dir)?;
    let schema = rentgraph::graphql::build_schema(&settings.graphql, None);
    registry.validate(&schema).await?;
    println!(
        "{} trusted documents in {} validate against the schema",
        registry.len(),
        dir.display()
    );
    Ok(())
}
