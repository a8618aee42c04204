//! `rentgraph export-schema`: the schema's SDL (schema.graphql is this output, checked by a
//! test).
use rentgraph::config::Settings;

pub(super) fn run(settings: &Settings) -> anyhow::Result<()> {
    print!("{}", rentgraph::graphql::sdl(&settings.graphql));
    Ok(())
}
