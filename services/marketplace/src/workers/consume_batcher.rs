//! Group commit for token consumption: handlers hand their validated calls to a queue, and a
//! writer task takes everything that queued up while its previous batch was being written
//! (up to `CONSUME_BATCH_MAX`) and applies it in one transaction (`ops::consume`). Under load
//! one commit, one WAL flush, serves many calls; alone a call is written at once (no timer,
//! no added wait). Every call is answered only after its batch committed.
//!
//! `CONSUME_WRITERS` tasks (default 2) take turns on the queue, so one batch is being
//! decided while the other waits for its commit; batches that share a balance serialise on
//! its row lock. A batch the database refuses as a whole (a connection lost, a statement
//! timeout) is retried call by call, so one call cannot fail the others.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use zimmer_db::{DbConn, DbPool};
use zimmer_http::ApiError;

use crate::{
    ops::consume::{BatchError, Call, CallResult, consume_batch},
    workers::TaskHandle,
};

/// Calls waiting for a writer; beyond this, handlers wait to enqueue (backpressure).
const QUEUE: usize = 4096;
/// Attempts of a batch that met another instance's commit of one of its keys.
const KEY_RACE_ATTEMPTS: usize = 3;

struct Job {
    call: Call,
    answer: oneshot::Sender<CallResult>,
}

/// The handlers' side: `submit` a call, get its answer after the commit.
#[derive(Clone)]
pub struct ConsumeBatcher {
    queue: mpsc::Sender<Job>,
    handle: TaskHandle,
}

impl ConsumeBatcher {
    pub fn spawn(pool: DbPool, writers: usize, batch_max: usize, low_threshold: i64) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let handle = TaskHandle::new("consume-writer");
        for _ in 0..writers.max(1) {
            let writer = Writer {
                pool: pool.clone(),
                conn: None,
                batch_max: batch_max.max(1),
                low_threshold,
            };
            tokio::spawn(writer.run(rx.clone(), handle.clone()));
        }
        Self { queue, handle }
    }

    /// Applies `call` with the next batch; answers once that batch has committed.
    pub async fn submit(&self, call: Call) -> CallResult {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Job { call, answer })
            .await
            .map_err(|_| ApiError::unavailable("Token consumption is unavailable"))?;
        answered
            .await
            .map_err(|_| ApiError::internal(anyhow::anyhow!("the consume writer dropped a call")))?
    }

    pub fn liveness_check(&self) -> zimmer_http::Check {
        self.handle.liveness_check()
    }
}

struct Writer {
    pool: DbPool,
    /// Kept while calls keep coming (no pool check-out per batch), handed back when idle.
    conn: Option<DbConn>,
    batch_max: usize,
    low_threshold: i64,
}

impl Writer {
    async fn run(mut self, rx: Arc<Mutex<mpsc::Receiver<Job>>>, handle: TaskHandle) {
        let _running = handle.guard();
        let mut batch = Vec::with_capacity(self.batch_max);
        loop {
            {
                let mut rx = rx.lock().await;
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.conn = None;
                        match rx.recv().await {
                            Some(job) => batch.push(job),
                            None => return,
                        }
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
                while batch.len() < self.batch_max {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
            }
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    /// Applies `jobs` and answers each.
    async fn write(&mut self, jobs: Vec<Job>) {
        let (calls, answers): (Vec<Call>, Vec<_>) =
            jobs.into_iter().map(|j| (j.call, j.answer)).unzip();
        // A caller that went away still had its call applied, as it would have without the
        // batch; its retry with the same key replays the answer. Hence the ignored sends.
        match self.apply(&calls).await {
            Ok(results) => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            Err(Failed::NoConnection(e)) => {
                tracing::warn!(error = %e, calls = calls.len(), "consume batch: no database connection");
                for answer in answers {
                    let _ = answer.send(Err(ApiError::unavailable("Database unavailable")));
                }
            }
            Err(Failed::Batch(e)) if calls.len() == 1 => {
                let _ = answers.into_iter().next().map(|a| a.send(Err(e)));
            }
            Err(Failed::Batch(e)) => {
                tracing::warn!(error = %e, calls = calls.len(), "consume batch failed; its calls again one by one");
                let mut reachable = true;
                for (call, answer) in calls.into_iter().zip(answers) {
                    let result = if reachable {
                        match self.apply(std::slice::from_ref(&call)).await {
                            Ok(mut results) => results.pop().unwrap_or_else(|| {
                                Err(ApiError::internal(anyhow::anyhow!("empty consume batch")))
                            }),
                            Err(Failed::Batch(e)) => Err(e),
                            Err(Failed::NoConnection(e)) => {
                                reachable = false;
                                Err(e)
                            }
                        }
                    } else {
                        Err(ApiError::unavailable("Database unavailable"))
                    };
                    let _ = answer.send(result);
                }
            }
        }
    }

    /// One batch in one transaction, again when another instance committed one of its keys
    /// meanwhile. On `Err` nothing of it was applied.
    async fn apply(&mut self, calls: &[Call]) -> Result<Vec<CallResult>, Failed> {
        for _ in 0..KEY_RACE_ATTEMPTS {
            let conn = match &mut self.conn {
                Some(conn) => conn,
                None => self.conn.insert(
                    self.pool
                        .get()
                        .await
                        .map_err(|e| Failed::NoConnection(e.into()))?,
                ),
            };
            match consume_batch(conn, calls, self.low_threshold).await {
                Ok(results) => return Ok(results),
                Err(BatchError::KeyRace) => continue,
                Err(BatchError::Db(e)) => {
                    // The connection may be broken: the next batch takes a fresh one.
                    self.conn = None;
                    return Err(Failed::Batch(e.into()));
                }
            }
        }
        Err(Failed::Batch(
            ApiError::unavailable("Busy; please retry").with_cause(anyhow::anyhow!(
                "consume batch kept meeting concurrent keys"
            )),
        ))
    }
}

enum Failed {
    /// No connection from the pool: the database is unreachable or saturated.
    NoConnection(ApiError),
    /// The database refused the batch; nothing of it was applied.
    Batch(ApiError),
}
