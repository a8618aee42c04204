use rentgraph::config::{Settings, Sources};

#[test]
fn schema_graphql_matches_the_code() {
    let settings = Settings::load(Sources {
        env: Some("test".into()),
        ..Default::default()
    })
    .expect("settings");
    let sdl = rentgraph::graphql::sdl(&settings.graphql);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql differs from the code: run `cargo run -- export-schema > schema.graphql`"
    );
}

#[test]
fn the_cost_table_in_the_docs_matches_the_code() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/OPERATIONS.md"))
        .expect("docs");
    let table = rentgraph::graphql::weights::markdown_table();
    assert!(
        docs.contains(&table),
        "docs/OPERATIONS.md must carry the output of `rentgraph cost-table`:\n{table}"
    );
}

#[test]
fn the_error_code_list_in_the_docs_matches_the_code() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ERROR_CODES.md"))
        .expect("docs");
    let table = rentgraph::error_code::ErrorCode::markdown_table();
    assert!(
        docs.contains(&table),
        "docs/ERROR_CODES.md must carry the output of `rentgraph error-codes`:\n{table}"
    );
}
