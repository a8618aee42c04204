//! Model and executor benchmarks (numbers in docs/PERFORMANCE.md):
//! - `ort/batch/N`: one ONNX Runtime run of N rows, the ceiling the executor is measured against;
//! - `executor/concurrency/C`: C concurrent callers, each submitting `ROWS_PER_CALL` rows at a
//!   time through the batching executor; `direct/concurrency/C` runs the same rows as one
//!   session call of C x ROWS_PER_CALL rows, i.e. perfect batching with no overhead;
//! - `latency/*`: one caller, one row: the executor's added latency at concurrency 1.
//!
//! Run with `scripts/fetch-ort && cargo bench -p rentgraph-model --bench recommender`.
mod common;
use common::files;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rentgraph_model::batcher::{Batcher, BatcherSettings};
use rentgraph_model::features::N_FEATURES;
use rentgraph_model::model::{OrtScorer, Scorer};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS_PER_CALL: usize = 8;

/// Deterministic, varied feature rows.
fn rows(n: usize) -> Vec<f32> {
    (0..n * N_FEATURES)
        .map(|i| ((i * 7919) % 1000) as f32 / 250.0)
        .collect()
}

fn ort(c: &mut Criterion) {
    let mut scorer = OrtScorer::load(&files()).expect("model");
    let mut group = c.benchmark_group("ort/batch");
    for n in [1, 32, 256] {
        let input = rows(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| scorer.score(&input, n).expect("score"))
        });
    }
    group.finish();
}

fn executor(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let files = files();
    let meter = opentelemetry::global::meter("bench");
    let settings = BatcherSettings {
        max_batch_size: 512,
        max_wait_us: 0,
        queue_capacity: 1 << 16,
        workers: 1,
    };
    let batcher = Arc::new(
        Batcher::start(settings, &meter, || {
            OrtScorer::load(&files).map(|s| Box::new(s) as Box<dyn Scorer>)
        })
        .expect("batcher"),
    );
    let mut direct = OrtScorer::load(&files).expect("model");

    let mut group = c.benchmark_group("executor/concurrency");
    for callers in [1usize, 16, 64] {
        group.throughput(Throughput::Elements((callers * ROWS_PER_CALL) as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(callers),
            &callers,
            |b, &callers| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let batcher = batcher.clone();
                    async move {
                        // Each caller makes `iters` calls one after another, all callers at once.
                        let start = Instant::now();
                        let mut tasks = Vec::with_capacity(callers);
                        for _ in 0..callers {
                            let b = batcher.clone();
                            tasks.push(tokio::spawn(async move {
                                for _ in 0..iters {
                                    let deadline = Instant::now() + Duration::from_secs(5);
                                    b.score(rows(ROWS_PER_CALL), deadline).await.expect("score");
                                }
                            }));
                        }
                        for t in tasks {
                            t.await.expect("task");
                        }
                        start.elapsed()
                    }
                })
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("direct/concurrency");
    for callers in [1usize, 16, 64] {
        let n = callers * ROWS_PER_CALL;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(callers), &n, |b, &n| {
            b.iter(|| direct.score(&rows(n), n).expect("score"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("latency");
    group.bench_function("direct_1_row", |b| {
        b.iter(|| direct.score(&rows(1), 1).expect("score"))
    });
    group.bench_function("executor_1_row", |b| {
        b.to_async(&runtime).iter(|| {
            let batcher = batcher.clone();
            async move {
                batcher
                    .score(rows(1), Instant::now() + Duration::from_secs(5))
                    .await
                    .expect("score")
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = ort, executor
}
criterion_main!(benches);
