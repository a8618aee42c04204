//! A dynamic batching executor in the spirit of Triton's: callers from all concurrent requests
//! submit rows of features and await their scores; rows are merged into one model run of up to
//! `max_batch_size` rows. A batch starts when it is full or when `max_wait` has passed since its
//! first row; with `max_wait = 0` it takes whatever is queued the moment a worker is free, so
//! batches grow exactly as fast as load does and a lone caller never waits.
//!
//! Inference runs on dedicated OS threads that each own a `Scorer` (an ONNX Runtime session):
//! never on the async runtime's workers. The queue is bounded in rows; a full queue answers
//! `Overloaded` at once. Every call carries a deadline; rows whose deadline passed or whose
//! caller went away are dropped before inference. A failing (or panicking) batch fails only its
//! own callers.
use super::features::N_FEATURES;
use super::model::{ModelError, Scorer};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatcherSettings {
    /// Rows per model run at most.
    pub max_batch_size: usize,
    /// How long a batch may wait for more rows after its first, in microseconds.
    pub max_wait_us: u64,
    /// Rows waiting at most; beyond it callers get MODEL_OVERLOADED at once.
    pub queue_capacity: usize,
    /// Inference threads, each with its own session.
    pub workers: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreError {
    #[error("the model is overloaded; try again shortly")]
    Overloaded,
    #[error("the model did not answer before the deadline")]
    DeadlineExceeded,
    #[error("the model failed: {0}")]
    Failed(String),
    #[error("the model is shutting down")]
    ShuttingDown,
}

struct Job {
    rows: Vec<f32>,
    n: usize,
    enqueued: Instant,
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<f32>, ScoreError>>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    queued_rows: usize,
    /// A worker is gathering a batch; others wait so that batches are not split between them.
    forming: bool,
    shutdown: bool,
}

struct BatcherMetrics {
    batch_rows: Histogram<u64>,
    queue_wait: Histogram<f64>,
    inference: Histogram<f64>,
    queue_depth: UpDownCounter<i64>,
    rejected: Counter<u64>,
}

impl BatcherMetrics {
    fn new(meter: &Meter) -> Self {
        Self {
            batch_rows: meter
                .u64_histogram("rentgraph_batcher_batch_rows")
                .with_description("Rows per model run")
                .with_boundaries(vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                ])
                .build(),
            queue_wait: meter
                .f64_histogram("rentgraph_batcher_queue_wait")
                .with_unit("s")
                .with_description("Time rows waited before their batch started")
                .with_boundaries(vec![
                    1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2,
                ])
                .build(),
            inference: meter
                .f64_histogram("rentgraph_batcher_inference")
                .with_unit("s")
                .with_description("Model run time per batch")
                .with_boundaries(vec![
                    1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2,
                ])
                .build(),
            queue_depth: meter
                .i64_up_down_counter("rentgraph_batcher_queue_rows")
                .with_description("Rows waiting for a batch")
                .build(),
            rejected: meter
                .u64_counter("rentgraph_batcher_rejected")
                .with_description("Calls refused or dropped, by reason")
                .build(),
        }
    }
    fn reject(&self, reason: &'static str, rows: usize) {
        self.rejected
            .add(rows as u64, &[KeyValue::new("reason", reason)]);
    }
}

/// What the callers and the worker threads share: the queue and its condition variable.
struct WorkerShared {
    settings: BatcherSettings,
    state: Mutex<State>,
    wake: Condvar,
    metrics: BatcherMetrics,
}

impl WorkerShared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks until a batch is ready; `None` at shutdown.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let max = self.settings.max_batch_size.max(1);
        let max_wait = Duration::from_micros(self.settings.max_wait_us);
        let mut st = self.lock();
        loop {
            if st.shutdown {
                return None;
            }
            if !st.forming && !st.queue.is_empty() {
                break;
            }
            st = self.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st.forming = true;
        let mut batch = Vec::new();
        let mut rows = 0;
        let mut full = self.take(&mut st, &mut batch, &mut rows, max);
        let close_at = batch.first().map(|j| j.enqueued + max_wait);
        if let Some(close_at) = close_at {
            // Waiting is for rows that may still come; once the next job does not fit, the
            // batch is as full as it gets.
            while rows < max && !full && !st.shutdown {
                let now = Instant::now();
                if now >= close_at {
                    break;
                }
                st = self
                    .wake
                    .wait_timeout(st, close_at - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                full = self.take(&mut st, &mut batch, &mut rows, max);
            }
        }
        st.forming = false;
        drop(st);
        self.wake.notify_all();
        Some(batch)
    }

    /// Moves whole jobs from the queue into the batch while they fit; a job larger than a
    /// whole batch runs alone rather than never. Jobs whose caller left or whose deadline
    /// passed are dropped on the way (they would only take room). True when the next job does
    /// not fit, so waiting for more is pointless.
    fn take(&self, st: &mut State, batch: &mut Vec<Job>, rows: &mut usize, max: usize) -> bool {
        let now = Instant::now();
        while let Some(front) = st.queue.front() {
            let stale = front.reply.is_closed() || front.deadline <= now;
            if !stale && *rows > 0 && *rows + front.n > max {
                return true;
            }
            let Some(job) = st.queue.pop_front() else {
                break;
            };
            st.queued_rows -= job.n;
            self.metrics.queue_depth.add(-(job.n as i64), &[]);
            if stale {
                self.drop_stale(job, now);
                continue;
            }
            *rows += job.n;
            batch.push(job);
            if *rows >= max {
                return true;
            }
        }
        false
    }

    /// Answers (or forgets) a job that will not run: its caller left, or its deadline passed.
    fn drop_stale(&self, job: Job, now: Instant) {
        if job.reply.is_closed() {
            self.metrics.reject("cancelled", job.n);
        } else if job.deadline <= now {
            self.metrics.reject("deadline", job.n);
            let _ = job.reply.send(Err(ScoreError::DeadlineExceeded));
        }
    }

    /// Removes stale jobs anywhere in the queue, so they stop counting against its capacity.
    fn purge(&self, st: &mut State) {
        let now = Instant::now();
        let queue = std::mem::take(&mut st.queue);
        for job in queue {
            if job.reply.is_closed() || job.deadline <= now {
                st.queued_rows -= job.n;
                self.metrics.queue_depth.add(-(job.n as i64), &[]);
                self.drop_stale(job, now);
            } else {
                st.queue.push_back(job);
            }
        }
    }
}

/// The process-wide executor. Cheap to share behind an `Arc`.
pub struct Batcher {
    shared: Arc<WorkerShared>,
    workers: Vec<JoinHandle<()>>,
}

impl Batcher {
    /// Starts `settings.workers` inference threads, each with a scorer from `make`. Fails if
    /// any scorer cannot be made, so a broken model is a start-up error, not a runtime one.
    pub fn start<F>(settings: BatcherSettings, meter: &Meter, make: F) -> Result<Self, ModelError>
    where
        F: Fn() -> Result<Box<dyn Scorer>, ModelError>,
    {
        let shared = Arc::new(WorkerShared {
            settings: settings.clone(),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            metrics: BatcherMetrics::new(meter),
        });
        let mut workers = Vec::new();
        for i in 0..settings.workers.max(1) {
            let scorer = make()?;
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("rentgraph-infer-{i}"))
                .spawn(move || worker(shared, scorer))
                .map_err(|e| ModelError::Inference(format!("cannot start a worker thread: {e}")))?;
            workers.push(handle);
        }
        Ok(Self { shared, workers })
    }

    /// Scores `rows` (row-major, `N_FEATURES` per row), waiting at most until `deadline`.
    pub async fn score(&self, rows: Vec<f32>, deadline: Instant) -> Result<Vec<f32>, ScoreError> {
        let n = rows.len() / N_FEATURES;
        if n == 0 {
            return Ok(Vec::new());
        }
        if rows.len() != n * N_FEATURES {
            return Err(ScoreError::Failed(format!(
                "rows must have {N_FEATURES} features"
            )));
        }
        let (reply, answer) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if st.shutdown {
                return Err(ScoreError::ShuttingDown);
            }
            if st.queued_rows + n > self.shared.settings.queue_capacity {
                // Rows of callers that left or gave up still count until taken: drop them
                // before refusing anyone.
                self.shared.purge(&mut st);
            }
            if st.queued_rows + n > self.shared.settings.queue_capacity {
                drop(st);
                self.shared.metrics.reject("overloaded", n);
                return Err(ScoreError::Overloaded);
            }
            st.queued_rows += n;
            st.queue.push_back(Job {
                rows,
                n,
                enqueued: Instant::now(),
                deadline,
                reply,
            });
        }
        self.shared.metrics.queue_depth.add(n as i64, &[]);
        self.shared.wake.notify_all();
        match tokio::time::timeout_at(deadline.into(), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ScoreError::ShuttingDown),
            Err(_) => Err(ScoreError::DeadlineExceeded),
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(shared: Arc<WorkerShared>, mut scorer: Box<dyn Scorer>) {
    while let Some(batch) = shared.next_batch() {
        let started = Instant::now();
        let mut live = Vec::with_capacity(batch.len());
        for job in batch {
            if job.reply.is_closed() {
                shared.metrics.reject("cancelled", job.n);
            } else if job.deadline <= started {
                shared.metrics.reject("deadline", job.n);
                let _ = job.reply.send(Err(ScoreError::DeadlineExceeded));
            } else {
                shared
                    .metrics
                    .queue_wait
                    .record((started - job.enqueued).as_secs_f64(), &[]);
                live.push(job);
            }
        }
        if live.is_empty() {
            continue;
        }
        let n: usize = live.iter().map(|j| j.n).sum();
        let mut input = Vec::with_capacity(n * N_FEATURES);
        for job in &live {
            input.extend_from_slice(&job.rows);
        }
        let result = catch_unwind(AssertUnwindSafe(|| scorer.score(&input, n)));
        shared
            .metrics
            .inference
            .record(started.elapsed().as_secs_f64(), &[]);
        shared.metrics.batch_rows.record(n as u64, &[]);
        match result {
            Ok(Ok(scores)) if scores.len() == n => {
                let mut offset = 0;
                for job in live {
                    let part = scores[offset..offset + job.n].to_vec();
                    offset += job.n;
                    let _ = job.reply.send(Ok(part));
                }
            }
            outcome => {
                let message = match outcome {
                    Ok(Ok(scores)) => {
                        format!("the model returned {} scores for {n} rows", scores.len())
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "the model panicked".to_owned(),
                };
                tracing::error!(error = %message, rows = n, "a model batch failed");
                for job in live {
                    let _ = job.reply.send(Err(ScoreError::Failed(message.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The executor's behaviour with simple scorers standing in for the model, so each
    //! property is tested exactly; the real ONNX model is exercised by the integration tests.
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Scores a row as the sum of its features and records each batch's size.
    struct Sum {
        batches: Arc<Mutex<Vec<usize>>>,
        delay: Duration,
    }

    impl Scorer for Sum {
        fn score(&mut self, rows: &[f32], n: usize) -> Result<Vec<f32>, ModelError> {
            std::thread::sleep(self.delay);
            if rows.chunks(N_FEATURES).any(|r| r[0] < 0.0) {
                return Err(ModelError::Inference("negative input".into()));
            }
            if rows.chunks(N_FEATURES).any(|r| r[0] == 666.0) {
                panic!("the model panicked");
            }
            self.batches
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(n);
            Ok(rows.chunks(N_FEATURES).map(|r| r.iter().sum()).collect())
        }
    }

    fn settings(max_batch_size: usize, max_wait_us: u64, queue_capacity: usize) -> BatcherSettings {
        BatcherSettings {
            max_batch_size,
            max_wait_us,
            queue_capacity,
            workers: 1,
        }
    }

    fn start(s: BatcherSettings, delay: Duration) -> (Arc<Batcher>, Arc<Mutex<Vec<usize>>>) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let b = batches.clone();
        let meter = opentelemetry::global::meter("test");
        let batcher = Batcher::start(s, &meter, move || {
            Ok(Box::new(Sum {
                batches: b.clone(),
                delay,
            }) as Box<dyn Scorer>)
        })
        .expect("start");
        (Arc::new(batcher), batches)
    }

    fn rows(values: &[f32]) -> Vec<f32> {
        values
            .iter()
            .flat_map(|v| std::iter::repeat_n(*v, N_FEATURES))
            .collect()
    }

    fn later(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn results_go_back_to_the_right_caller_in_order() {
        let (batcher, batches) = start(settings(64, 20_000, 10_000), Duration::ZERO);
        let mut calls = Vec::new();
        for c in 0..40 {
            let b = batcher.clone();
            calls.push(tokio::spawn(async move {
                let values: Vec<f32> = (0..(c % 5 + 1)).map(|i| (c * 10 + i) as f32).collect();
                let got = b.score(rows(&values), later(5_000)).await;
                (values, got)
            }));
        }
        for call in calls {
            let (values, got) = call.await.expect("task");
            let expected: Vec<f32> = values.iter().map(|v| v * N_FEATURES as f32).collect();
            assert_eq!(got, Ok(expected));
        }
        let sizes = batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert!(sizes.iter().all(|&n| n <= 64), "{sizes:?}");
        assert!(sizes.len() < 40, "concurrent calls were merged: {sizes:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_waits_for_max_wait_then_runs_partial() {
        let (batcher, batches) = start(settings(1_000, 30_000, 10_000), Duration::ZERO);
        let started = Instant::now();
        let got = batcher.score(rows(&[1.0]), later(5_000)).await;
        let waited = started.elapsed();
        assert_eq!(got, Ok(vec![N_FEATURES as f32]));
        assert!(
            waited >= Duration::from_millis(30),
            "ran after {waited:?}, before max_wait"
        );
        assert_eq!(
            *batches.lock().unwrap_or_else(PoisonError::into_inner),
            vec![1]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_batch_does_not_wait() {
        let (batcher, _) = start(settings(4, 10_000_000, 10_000), Duration::ZERO);
        let got = batcher
            .score(rows(&[1.0, 2.0, 3.0, 4.0]), later(5_000))
            .await;
        assert_eq!(
            got.map(|v| v.len()),
            Ok(4),
            "a full batch starts at once, not after 10 s"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_cannot_fit_ends_the_wait() {
        let (batcher, batches) = start(settings(4, 10_000_000, 10_000), Duration::ZERO);
        let first = {
            let b = batcher.clone();
            tokio::spawn(async move { b.score(rows(&[1.0; 3]), later(60_000)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = {
            let b = batcher.clone();
            tokio::spawn(async move { b.score(rows(&[1.0; 3]), later(60_000)).await })
        };
        // Three rows wait for a fourth; three more cannot join them, so the first three run
        // now instead of after max_wait (10 s). (The second job then waits for company.)
        let done = tokio::time::timeout(Duration::from_secs(5), first).await;
        assert!(done.is_ok(), "the batch waited for rows that could not fit");
        let sizes = batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(sizes, vec![3]);
        second.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_of_callers_that_left_stop_counting_against_the_queue() {
        let (batcher, _) = start(settings(2, 0, 4), Duration::from_millis(300));
        let busy = {
            let b = batcher.clone();
            tokio::spawn(async move { b.score(rows(&[1.0, 1.0]), later(5_000)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A caller fills the queue, then goes away (its request was cancelled).
        let gone = {
            let b = batcher.clone();
            tokio::spawn(async move { b.score(rows(&[1.0; 4]), later(5_000)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        gone.abort();
        let _ = gone.await;
        // The queue holds only rows nobody waits for: a new caller is served, not refused.
        assert_eq!(
            batcher.score(rows(&[1.0]), later(5_000)).await,
            Ok(vec![N_FEATURES as f32])
        );
        assert!(busy.await.expect("task").is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_is_refused_at_once() {
        let (batcher, _) = start(settings(2, 0, 4), Duration::from_millis(300));
        // Occupy the worker, then fill the queue.
        let busy = {
            let b = batcher.clone();
            tokio::spawn(async move { b.score(rows(&[1.0, 1.0]), later(5_000)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let queued = {
            let b = batcher.clone();
            tokio::spawn(async move { b.score(rows(&[1.0; 4]), later(5_000)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = Instant::now();
        assert_eq!(
            batcher.score(rows(&[1.0]), later(5_000)).await,
            Err(ScoreError::Overloaded)
        );
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "refused without waiting"
        );
        assert!(busy.await.expect("task").is_ok());
        assert!(queued.await.expect("task").is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_rows_are_dropped_before_inference() {
        let (batcher, batches) = start(settings(1, 0, 100), Duration::from_millis(200));
        let busy = {
            let b = batcher.clone();
            tokio::spawn(async move { b.score(rows(&[1.0]), later(5_000)).await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Queued behind a 200 ms batch with a 50 ms deadline: it must expire unscored.
        assert_eq!(
            batcher.score(rows(&[2.0]), later(50)).await,
            Err(ScoreError::DeadlineExceeded)
        );
        assert!(busy.await.expect("task").is_ok());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            *batches.lock().unwrap_or_else(PoisonError::into_inner),
            vec![1],
            "the expired row never ran"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_of_callers_that_left_are_dropped() {
        let (batcher, batches) = start(settings(1, 0, 100), Duration::from_millis(150));
        let busy = {
            let b = batcher.clone();
            tokio::spawn(async move { b.score(rows(&[1.0]), later(5_000)).await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let gone = {
            let b = batcher.clone();
            tokio::spawn(async move { b.score(rows(&[2.0]), later(5_000)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        gone.abort();
        assert!(busy.await.expect("task").is_ok());
        // The next call is served, and the abandoned row was never scored.
        assert!(batcher.score(rows(&[3.0]), later(5_000)).await.is_ok());
        assert_eq!(
            *batches.lock().unwrap_or_else(PoisonError::into_inner),
            vec![1, 1]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failing_batch_fails_only_its_callers() {
        let (batcher, _) = start(settings(1, 0, 100), Duration::ZERO);
        assert!(matches!(
            batcher.score(rows(&[-1.0]), later(5_000)).await,
            Err(ScoreError::Failed(_))
        ));
        assert!(matches!(
            batcher.score(rows(&[666.0]), later(5_000)).await,
            Err(ScoreError::Failed(_))
        ));
        // The executor keeps serving after an error and after a panic.
        assert_eq!(
            batcher.score(rows(&[1.0]), later(5_000)).await,
            Ok(vec![N_FEATURES as f32])
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn startup_fails_when_the_model_cannot_be_made() {
        let made = Arc::new(AtomicUsize::new(0));
        let m = made.clone();
        let meter = opentelemetry::global::meter("test");
        let result = Batcher::start(settings(8, 0, 8), &meter, move || {
            m.fetch_add(1, Ordering::SeqCst);
            Err(ModelError::Load {
                path: "x.onnx".into(),
                reason: "missing".into(),
            })
        });
        assert!(result.is_err());
        assert_eq!(made.load(Ordering::SeqCst), 1);
    }
}
