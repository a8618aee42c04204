//! `rentgraph cost-table`: the query-cost weights of the schema's fields (Markdown).
pub(super) fn run() -> anyhow::Result<()> {
    print!("{}", rentgraph::graphql::weights::markdown_table());
    Ok(())
}
