//! The background work: one task per kind of work, so a long photo upload never delays a
//! tracking pull. Each task waits until the app says the device is online, runs its job, then
//! sleeps until its interval passes or something wakes it (going online, `sync_now`).
//! Cancelling a task at any await point is safe: every job commits in whole transactions.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::{tracking, Shared};

/// The background tasks, stopped before the runtime is: a task still polled while the runtime
/// shuts down (a worker coming back from a blocking commit) would meet a stopped timer and
/// panic on the core's thread.
#[derive(Default)]
pub(crate) struct Engine {
    tasks: Vec<JoinHandle<()>>,
}

/// How long dropping the core waits for its background tasks to stop.
const STOP_WAIT: Duration = Duration::from_secs(2);

impl Engine {
    /// Aborts every task and waits, at most `wait`, until each has stopped: a task inside a
    /// blocking commit ends that commit first (an abort takes effect at the next await).
    pub(crate) fn stop(&mut self, wait: Duration) {
        for task in &self.tasks {
            task.abort();
        }
        super::wait_until(wait, || self.tasks.iter().all(JoinHandle::is_finished));
        self.tasks.clear();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop(STOP_WAIT);
    }
}

pub(crate) fn spawn(runtime: &Handle, shared: Arc<Shared>) -> Engine {
    let intervals = shared.config.intervals;
    let mut tasks = Vec::with_capacity(4);
    tasks.push(periodic(
        runtime,
        shared.clone(),
        "import",
        intervals.import,
        |s| async move { s.import().await.map(|_| ()) },
    ));
    tasks.push(periodic(
        runtime,
        shared.clone(),
        "tracking",
        intervals.tracking,
        |s| async move { tracking::scheduled_pull(&s).await },
    ));
    if shared.config.background_renditions {
        tasks.push(runtime.spawn(super::render::run(shared.clone())));
    }
    tasks.push(runtime.spawn(outbox_loop(shared)));
    Engine { tasks }
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
) -> JoinHandle<()>
where
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
    })
}
