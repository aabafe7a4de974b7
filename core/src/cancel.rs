//! [`CancelToken`]: how the app (WorkManager stopping a worker, a BGTask expiring, a coroutine
//! cancelled) tells a running `drain` to stop. Cheap to clone; every clone cancels the same work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

#[derive(Clone, Default)]
pub struct CancelToken(Arc<Inner>);

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CancelToken(cancelled: {})", self.is_cancelled())
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the work holding this token (now, or at its start if it has not begun).
    /// Idempotent; never blocks.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once [`CancelToken::cancel`] was called (at once if it already was).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a cancel between the two is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_cancels_the_waiter_and_a_late_waiter_returns_at_once() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let token = CancelToken::new();
        let other = token.clone();
        rt.block_on(async move {
            let waiter = tokio::spawn({
                let token = token.clone();
                async move { token.cancelled().await }
            });
            tokio::task::yield_now().await;
            assert!(!token.is_cancelled());
            other.cancel();
            waiter.await.expect("waiter");
            token.cancelled().await;
            assert!(token.is_cancelled());
        });
    }
}
