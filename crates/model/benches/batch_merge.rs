//! Do concurrent recommendation requests share model runs? Each caller submits 300 rows (what
//! one `recommendations` request scores), C callers at once, through the batching executor
//! with the real model; prints rows per ONNX Runtime run (mean) and rows per second for each
//! `max_batch_size`. With 256, a 300-row job never has company; with room for several jobs,
//! concurrent requests merge.
//!
//! Run with `scripts/fetch-ort && cargo bench -p rentgraph-model --bench batch_merge` (numbers in
//! docs/PERFORMANCE.md).
mod common;
use common::files;
use rentgraph_model::batcher::{Batcher, BatcherSettings};
use rentgraph_model::features::N_FEATURES;
use rentgraph_model::model::{ModelError, OrtScorer, Scorer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ROWS_PER_REQUEST: usize = 300;
const REQUESTS_PER_CALLER: usize = 100;

/// The real model, counting runs and rows.
struct Counting {
    inner: OrtScorer,
    runs: Arc<AtomicU64>,
    rows: Arc<AtomicU64>,
}

impl Scorer for Counting {
    fn score(&mut self, rows: &[f32], n: usize) -> Result<Vec<f32>, ModelError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.rows.fetch_add(n as u64, Ordering::Relaxed);
        self.inner.score(rows, n)
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let files = files();
    let input: Vec<f32> = (0..ROWS_PER_REQUEST * N_FEATURES)
        .map(|i| ((i * 7919) % 1000) as f32 / 250.0)
        .collect();
    println!("| max_batch_size | callers | rows per run (mean) | runs | rows/s |");
    println!("|---|---|---|---|---|");
    for max_batch_size in [256, 1024, 2048] {
        for callers in [1, 4, 16] {
            let runs = Arc::new(AtomicU64::new(0));
            let rows = Arc::new(AtomicU64::new(0));
            let (r, w) = (runs.clone(), rows.clone());
            let settings = BatcherSettings {
                max_batch_size,
                max_wait_us: 0,
                queue_capacity: 1 << 20,
                workers: 1,
            };
            let batcher = Arc::new(
                Batcher::start(settings, &opentelemetry::global::meter("bench"), || {
                    Ok(Box::new(Counting {
                        inner: OrtScorer::load(&files)?,
                        runs: r.clone(),
                        rows: w.clone(),
                    }) as Box<dyn Scorer>)
                })
                .expect("batcher"),
            );
            let started = Instant::now();
            runtime.block_on(async {
                let mut tasks = Vec::new();
                for _ in 0..callers {
                    let b = batcher.clone();
                    let input = input.clone();
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..REQUESTS_PER_CALLER {
                            let deadline = Instant::now() + Duration::from_secs(10);
                            b.score(input.clone(), deadline).await.expect("scores");
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("caller");
                }
            });
            let elapsed = started.elapsed().as_secs_f64();
            let (runs, rows) = (runs.load(Ordering::Relaxed), rows.load(Ordering::Relaxed));
            println!(
                "| {max_batch_size} | {callers} | {:.0} | {runs} | {:.0} |",
                rows as f64 / runs.max(1) as f64,
                rows as f64 / elapsed
            );
        }
    }
}
