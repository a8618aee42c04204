//! `rentgraph error-codes`: every `extensions.code` the API emits and what it means
//! (Markdown; docs/ERROR_CODES.md is this output under its heading, checked by a test).
pub(super) fn run() -> anyhow::Result<()> {
    print!("{}", rentgraph::error_code::ErrorCode::markdown_table());
    Ok(())
}
