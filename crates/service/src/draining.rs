//! The instance's "I am going away" flag. Set when SIGTERM arrives (see
//! `Application::run_until_stopped`): `/readyz` fails from then on so the gateway and the
//! orchestrator stop sending new work, and long-lived responses (the notification stream)
//! end themselves so their clients reconnect to another instance.

use tokio::sync::watch;

/// Cheap to clone; every clone sees the same flag. Registered as `web::Data<Draining>`.
#[derive(Clone)]
pub struct Draining {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for Draining {
    fn default() -> Self {
        Self::new()
    }
}

impl Draining {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(false);
        Self {
            tx: std::sync::Arc::new(tx),
        }
    }

    /// Marks the instance as draining (idempotent).
    pub fn start(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the instance is draining (at once if it already is).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // Err only when the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|draining| *draining).await;
    }
}
