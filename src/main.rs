//! The `rentgraph` binary: serve (the default), migrate, seed, export-schema, token and the
//! offline commands; one file per command in `cli/`.
mod cli;

/// mimalloc: the server allocates many small, short-lived objects per request (JSON, the parsed
/// document, response values) from several threads; under load the system allocator showed up
/// at about 13% of CPU in a profile (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::run().await
}
