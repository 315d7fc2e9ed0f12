//! Background work of the marketplace, run as tokio tasks inside the service process: the
//! `payment.verified` consumer, the provisioning worker, the health checker, and the one-off
//! re-sealing of bot tokens stored before sealing. Each reports
//! to `/healthz` through a [`TaskHandle`], so a loop that dies makes the instance unhealthy
//! instead of silently doing nothing.

pub mod consume_batcher;
pub mod health;
pub mod payments;
pub mod provisioning;
pub mod reseal;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::sync::Notify;
use zimmer_http::Check;

/// Liveness and wake-up of one background loop.
#[derive(Clone)]
pub struct TaskHandle {
    name: &'static str,
    running: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

impl TaskHandle {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            running: Arc::new(AtomicBool::new(true)),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Asks the loop to look for work now (e.g. right after a commit that made some).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Held by the loop: flags it as ended however it ends (a panic included).
    pub fn guard(&self) -> RunningGuard {
        RunningGuard(self.clone())
    }

    pub fn liveness_check(&self) -> Check {
        let handle = self.clone();
        Check::new(self.name, move || {
            let running = handle.is_running();
            async move {
                if running {
                    Ok(())
                } else {
                    Err("stopped".to_owned())
                }
            }
        })
    }
}

pub struct RunningGuard(TaskHandle);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
        if std::thread::panicking() {
            tracing::error!(task = self.0.name, "background task panicked");
        }
    }
}
