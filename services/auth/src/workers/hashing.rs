//! The password hashing pool: argon2id (`domain/password.rs`) costs tens of milliseconds of
//! CPU a hash, so it runs on a dedicated pool of hashing threads (one
//! fewer than the cores by default, at least one: [`default_threads`]; `PASSWORD_HASH_THREADS`
//! to change) fed by one job queue: the async workers keep serving, and a login flood queues
//! instead of spawning threads.
//!
//! Each hashing thread owns ONE argon2 memory block and hashes into it. Letting argon2
//! allocate 19 MiB per call on tokio's blocking threads left every thread that ever hashed
//! holding its block in the allocator's per-thread arena (hundreds of MB after a login
//! burst); here memory is bounded to threads × 19 MiB, and a thread idle for
//! `PASSWORD_HASH_IDLE_RELEASE_MS` (default 2000) hands its block back.
//!
//! The hashing threads run at nice `PASSWORD_HASH_NICE` (default 10) under the policy
//! `PASSWORD_HASH_SCHED` names (default `normal`; `idle` is Linux's SCHED_IDLE): with `idle`,
//! every core hashing during a login flood, a request thread that wakes up takes the core at
//! once and the scheduler treats a core that only hashes as free, so the other routes keep
//! their rate; an idle machine gives the hashing threads all of it anyway. Under nice alone a
//! woken request thread may still wait for the running hash's time slice, and `/api/me` kept
//! only about half its rate during a login flood (docs: README, "Performance").

use std::{
    collections::VecDeque,
    panic::AssertUnwindSafe,
    sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError},
    time::Duration,
};

use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
use tokio::sync::oneshot;
use zimmer_http::ApiError;

use crate::domain::password::{Block, hash_with, verify_with};

/// Work for a hashing thread; it gets the thread's reusable argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// One queue of jobs that every hashing thread takes from: a thread that finishes a hash
/// starts the next queued one at once, without waiting for the caller's actix worker to be
/// scheduled and hand it over (that hand-over left the threads idle between hashes while
/// the workers were busy; docs: README, "Performance").
struct Pool {
    queue: Mutex<Queue>,
    ready: Condvar,
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Every `PasswordHasher` handle is gone: the threads end.
    closed: bool,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The handles' share of the pool: dropping the last one ends the threads.
struct Handle {
    pool: Arc<Pool>,
    /// Threads that started (0 only if none could be spawned: callers get an error).
    threads: usize,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.pool.lock().closed = true;
        self.pool.ready.notify_all();
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    pool: Arc<Handle>,
    /// A real hash of a random password, verified against when the email is unknown so that
    /// "no such user" takes as long as "wrong password".
    dummy_hash: Arc<OnceLock<String>>,
}
fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}
/// Lowers the calling thread's scheduling priority: SCHED_OTHER unless `PASSWORD_HASH_SCHED`
/// says `batch` or `idle`, and nice `PASSWORD_HASH_NICE` (default 10; 0 leaves it; under
/// SCHED_IDLE it only matters if the policy cannot be set). Called by every hashing thread
/// when it starts (and by `bench/tools` on its threads, so argon2id's own rate is measured as
/// auth runs it).
pub fn lower_this_thread_priority() {
    let policy = match std::env::var("PASSWORD_HASH_SCHED")
        .as_deref()
        .map(str::trim)
    {
        // Default normal (+ nice): it met both login targets in the one quiet run; SCHED_IDLE
        // is unmeasured and can starve logins on a saturated machine.
        Ok("normal") | Err(_) => None,
        Ok("batch") => Some(NormalThreadSchedulePolicy::Batch),
        Ok("idle") => Some(NormalThreadSchedulePolicy::Idle),
        Ok(other) => {
            tracing::warn!(
                value = other,
                "PASSWORD_HASH_SCHED is not idle, batch or normal: normal"
            );
            None
        }
    };
    if let Some(policy) = policy {
        // Static priority 0, the only one these policies take (the crate also sets nice 0,
        // which the nice below replaces).
        if let Err(e) = thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(policy),
        ) {
            tracing::warn!(error = ?e, ?policy, "could not set a hashing thread's scheduling policy");
        }
    }
    let nice = env_number("PASSWORD_HASH_NICE")
        .and_then(|n| i32::try_from(n.min(19)).ok())
        .unwrap_or(DEFAULT_NICE);
    if nice == 0 {
        return;
    }
    // On Linux a thread id names that one thread here (PRIO_PROCESS on a tid).
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice) {
        tracing::warn!(error = %e, nice, "could not lower a hashing thread's priority");
    }
}

const DEFAULT_NICE: i32 = 10;

fn worker_loop(pool: &Pool, idle_release: Duration) {
    lower_this_thread_priority();
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let job = {
            let mut queue = pool.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                if queue.closed {
                    return;
                }
                if blocks.is_empty() {
                    queue = pool
                        .ready
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                } else {
                    let (q, waited) = pool
                        .ready
                        .wait_timeout(queue, idle_release)
                        .unwrap_or_else(PoisonError::into_inner);
                    queue = q;
                    if waited.timed_out() && queue.jobs.is_empty() {
                        blocks = Vec::new();
                    }
                }
            }
        };
        // A panicking job drops its reply sender (the caller sees an error); the thread and
        // its block stay in service.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut blocks))).is_err() {
            blocks = Vec::new();
        }
    }
}
/// The hashing pool's default size: one thread fewer than the cores, at least one, so that a
/// login flood always leaves the request threads a core. Measured on 2 cores (one thread
/// against two, alternating, docs/performance.md): `/api/me` kept 85 % of its solo rate during
/// a login flood instead of 70 %, and logins ran at 93–98 % of argon2's own one-thread rate,
/// i.e. about 70 logins/s instead of about 110 at the flood's peak.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    /// [`default_threads`] hashing threads unless `PASSWORD_HASH_THREADS` says otherwise; a
    /// thread frees its block after `PASSWORD_HASH_IDLE_RELEASE_MS` (default 2000) without work.
    pub fn new() -> Self {
        let threads = env_number("PASSWORD_HASH_THREADS")
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(default_threads);
        let idle_release =
            Duration::from_millis(env_number("PASSWORD_HASH_IDLE_RELEASE_MS").unwrap_or(2000));
        Self::with_pool(threads, idle_release)
    }

    pub fn with_pool(threads: usize, idle_release: Duration) -> Self {
        let pool = Arc::new(Pool {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        let mut started = 0;
        for i in 0..threads {
            let shared = Arc::clone(&pool);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker_loop(&shared, idle_release));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "could not start a password hashing thread"),
            }
        }
        Self {
            pool: Arc::new(Handle {
                pool,
                threads: started,
            }),
            dummy_hash: Arc::new(OnceLock::new()),
        }
    }

    /// Runs `work` on a hashing thread, after the jobs queued before it. A caller that stops
    /// waiting (its request dropped) costs no hash: its job is skipped when its turn comes.
    async fn blocking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Vec<Block>) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let closed = |e: &dyn std::fmt::Display| ApiError::internal(anyhow::anyhow!("hasher: {e}"));
        if self.pool.threads == 0 {
            return Err(closed(&"no hashing thread"));
        }
        let (reply, answer) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |blocks: &mut Vec<Block>| {
            if reply.is_closed() {
                return;
            }
            let _ = reply.send(span.in_scope(|| work(blocks)));
        });
        let pool = &self.pool.pool;
        pool.lock().jobs.push_back(job);
        pool.ready.notify_one();
        answer.await.map_err(|e| closed(&e))?
    }

    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_owned();
        self.blocking(move |blocks| hash_with(password.as_bytes(), blocks))
            .await
    }

    /// True when `password` matches `hash` (a PHC string; its own parameters are used).
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, ApiError> {
        let password = password.to_owned();
        let hash = hash.to_owned();
        self.blocking(move |blocks| Ok(verify_with(password.as_bytes(), &hash, blocks)))
            .await
    }

    /// Burns the same time as a real verify, for unknown accounts.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), ApiError> {
        let hash = match self.dummy_hash.get() {
            Some(h) => h.clone(),
            None => {
                let h = self.hash(&crate::domain::tokens::random_token(24)).await?;
                self.dummy_hash.get_or_init(|| h).clone()
            }
        };
        self.verify(password, &hash).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::password::{LANES, MEMORY_KIB, PASSES};
    use argon2::{Algorithm, Argon2, Params, Version};

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new();
        let hash = h.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify("correct horse battery", &hash).await.unwrap());
        assert!(!h.verify("wrong horse battery", &hash).await.unwrap());
        assert!(!h.verify("x", "not a phc string").await.unwrap());
        h.verify_dummy("anything").await.unwrap();
    }
    /// Hashes made before this pool (argon2's own `hash_password`) still verify, and ours
    /// verify with argon2's own verifier: stored PHC strings stay compatible both ways.
    #[tokio::test]
    async fn phc_strings_compatible_with_argon2_crate() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let h = PasswordHasher::with_pool(1, Duration::from_secs(5));
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap(),
        )
        .hash_password(b"correct horse battery")
        .unwrap()
        .to_string();
        assert!(h.verify("correct horse battery", &theirs).await.unwrap());
        assert!(!h.verify("correct horse batterY", &theirs).await.unwrap());
        let ours = h.hash("correct horse battery").await.unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", ours.as_str())
                .is_ok()
        );
        // Other parameters in a stored hash are honoured (the block grows for them).
        let small = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(4096, 3, 1, Some(16)).unwrap(),
        )
        .hash_password(b"correct horse battery")
        .unwrap()
        .to_string();
        assert!(h.verify("correct horse battery", &small).await.unwrap());
        assert!(!h.verify("wrong horse battery", &small).await.unwrap());
    }

    /// A job whose caller stopped waiting (its request dropped) is skipped when its turn
    /// comes: it costs no hash.
    #[tokio::test]
    async fn a_dropped_callers_job_is_skipped() {
        use futures_util::FutureExt as _;
        use std::sync::atomic::{AtomicBool, Ordering};
        let h = PasswordHasher::with_pool(1, Duration::from_secs(5));
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = {
            let h = h.clone();
            tokio::spawn(async move {
                h.blocking(move |_| {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    Ok(())
                })
                .await
            })
        };
        started_rx.await.unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        // Polled once (queued behind the busy job), then dropped.
        assert!(
            h.blocking(move |_| {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            })
            .now_or_never()
            .is_none()
        );
        release_tx.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // One thread, first in first out: once this one ran, the dropped one had its turn.
        h.blocking(|_| Ok(())).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst), "a dropped caller's job ran");
    }

    /// The hashing threads run under SCHED_IDLE and at nice `PASSWORD_HASH_NICE` (10 unless
    /// set), or under the policy `PASSWORD_HASH_SCHED` names.
    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority() {
        let expected = env_number("PASSWORD_HASH_NICE").map_or(10, |n| n.min(19));
        // Linux's numbers: SCHED_OTHER 0, SCHED_BATCH 3, SCHED_IDLE 5.
        let expected_policy = match std::env::var("PASSWORD_HASH_SCHED").as_deref() {
            Ok("idle") => 5,
            Ok("batch") => 3,
            _ => 0,
        };
        let h = PasswordHasher::with_pool(1, Duration::from_secs(5));
        let stat = h
            .blocking(|_| Ok(std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default()))
            .await
            .unwrap();
        // The thread's name `(argon2-0)` has no spaces, so fields split on white space.
        let field = |n: usize| -> u64 {
            stat.split_whitespace()
                .nth(n - 1)
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        // Field 19 is the nice value, field 41 the scheduling policy.
        assert_eq!(field(19), expected);
        assert_eq!(field(41), expected_policy);
    }

    /// A burst of 32 concurrent verifications runs on the pool's own threads only (not on
    /// tokio's blocking threads, which grow with the burst), each reusing one block, and an
    /// idle thread gives its block back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashing_stays_on_the_bounded_pool_and_reuses_one_block() {
        let h = PasswordHasher::with_pool(2, Duration::from_millis(300));
        let hash = h.hash("correct horse battery").await.unwrap();
        let runs = (0..32).map(|_| {
            let h = h.clone();
            let hash = hash.clone();
            tokio::spawn(async move {
                h.blocking(move |blocks| {
                    let ok = verify_with(b"correct horse battery", &hash, blocks);
                    let name = std::thread::current().name().map(str::to_owned);
                    Ok((ok, std::thread::current().id(), name, blocks.len()))
                })
                .await
                .unwrap()
            })
        });
        let mut threads = std::collections::HashSet::new();
        for run in runs {
            let (ok, id, name, len) = run.await.unwrap();
            assert!(ok);
            assert!(name.unwrap_or_default().starts_with("argon2-"));
            assert_eq!(len, MEMORY_KIB as usize);
            threads.insert(id);
        }
        assert!(threads.len() <= 2, "{} hashing threads", threads.len());

        // One thread: the next job finds the block the previous hash filled, until the
        // thread has been idle longer than the release delay.
        let one = PasswordHasher::with_pool(1, Duration::from_millis(300));
        one.hash("correct horse battery").await.unwrap();
        let kept = one.blocking(|blocks| Ok(blocks.len())).await.unwrap();
        assert_eq!(kept, MEMORY_KIB as usize);
        tokio::time::sleep(Duration::from_millis(900)).await;
        let after_idle = one.blocking(|blocks| Ok(blocks.len())).await.unwrap();
        assert_eq!(
            after_idle, 0,
            "an idle hashing thread keeps its 19 MiB block"
        );
    }
}
