//! The background work: one task per kind of work, so a long photo upload never delays a
//! tracking pull. Each task waits until the app says the device is online, runs its job, then
//! sleeps until its interval passes or something wakes it (going online, `sync_now`).
//! Cancelling a task at any await point is safe: every job commits in whole transactions.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use super::{tracking, Shared};

pub(crate) fn spawn(runtime: &Handle, shared: Arc<Shared>) {
    let intervals = shared.config.intervals;
    periodic(
        runtime,
        shared.clone(),
        "import",
        intervals.import,
        |s| async move { s.import().await.map(|_| ()) },
    );
    periodic(
        runtime,
        shared.clone(),
        "tracking",
        intervals.tracking,
        |s| async move { tracking::scheduled_pull(&s).await },
    );
    if shared.config.background_renditions {
        runtime.spawn(super::render::run(shared.clone()));
    }
    runtime.spawn(outbox_loop(shared));
}

/// Longest sleep of the outbox task between passes while online.
const OUTBOX_IDLE: Duration = Duration::from_secs(60);

/// Flushes whenever woken (a capture, going online, a retry) or when the earliest backoff ends.
async fn outbox_loop(shared: Arc<Shared>) {
    let mut online = shared.online.subscribe();
    loop {
        if online.wait_for(|up| *up).await.is_err() {
            return;
        }
        if let Err(e) = shared.flush(None).await {
            tracing::warn!(error = %e, "outbox flush failed; retrying later");
        }
        let now = shared.clock.now();
        let next = shared
            .store()
            .and_then(|s| s.next_due_at(now, shared.is_metered()))
            .ok()
            .flatten();
        let sleep = next
            .map(|at| crate::sync::outbox::until(at, shared.clock.now()))
            .unwrap_or(OUTBOX_IDLE)
            .min(OUTBOX_IDLE);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = shared.outbox_wake.notified() => {}
        }
    }
}

fn periodic<F, Fut>(
    runtime: &Handle,
    shared: Arc<Shared>,
    name: &'static str,
    every: Duration,
    job: F,
) where
    F: Fn(Arc<Shared>) -> Fut + Send + 'static,
    Fut: Future<Output = crate::Result<()>> + Send,
{
    runtime.spawn(async move {
        let mut online = shared.online.subscribe();
        loop {
            // Wait for connectivity; `wait_for` returns at once when already online.
            if online.wait_for(|up| *up).await.is_err() {
                return;
            }
            if let Err(e) = job(shared.clone()).await {
                tracing::warn!(job = name, error = %e, "background job failed; retrying later");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shared.wake.notified() => {}
            }
        }
    });
}
