//! `rentgraph cost-table`: the query-cost weights of the schema's fields (Markdown).
pub(super) fn run() -> anyhow::Result<()> {
    print!("{}", rentgraph::graphql::cost::markdown_table());
    Ok(())
}
