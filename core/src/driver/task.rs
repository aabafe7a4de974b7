//! [`Task`]: work started on the core's own runtime, awaited from any executor.
//!
//! The FFI's `async` exports are polled by the app's executor (Kotlin coroutines, Swift
//! tasks), not by tokio. They start their work here, on the core's runtime (network work as a
//! task on its worker threads, blocking store and file work on its bounded blocking pool), and
//! await the [`Task`]: a tokio `JoinHandle` needs no particular executor to be polled. Dropping
//! the `Task` (a cancelled coroutine drops its future) aborts the work at its next await;
//! every job commits in whole transactions, so an aborted one leaves the store consistent and
//! rows it left `sending` are queued again by the next flush. Blocking work that has started
//! runs to its end (a capture is either committed or not: it is never half-written).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

/// Threads of the core's blocking pool: captures, store commits and image work from the FFI's
/// `async` exports, and the flush's renditions. Calls beyond it wait their turn, so fifty
/// concurrent calls from an app never make fifty threads.
pub const BLOCKING_THREADS: usize = 8;

/// The core's tokio runtime: two workers for the background and network work, and a bounded
/// blocking pool. Used through its [`Handle`] (spawn, block_on); the runtime itself is only
/// there to be stopped.
pub(crate) struct CoreRuntime {
    handle: Handle,
    runtime: Option<Runtime>,
}

impl CoreRuntime {
    pub(crate) fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_name("upn-core")
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Stops the runtime, waiting at most `timeout` for work in flight.
    pub(crate) fn shutdown(mut self, timeout: std::time::Duration) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(timeout);
        }
    }
}

impl std::ops::Deref for CoreRuntime {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for CoreRuntime {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        // The last owner of the core may let go on a thread of some runtime (a listener
        // callback, the end of a blocking task, an app's own tokio): waiting there for the
        // workers would panic or wait on itself. Stop without waiting; every job commits in
        // whole transactions, so work cut short resumes on the next open.
        if tokio::runtime::Handle::try_current().is_ok() {
            runtime.shutdown_background();
        }
    }
}

/// Work running on the core's runtime. Resolves to its result; dropping it aborts the work.
#[must_use = "dropping a Task aborts its work"]
#[derive(Debug)]
pub struct Task<T> {
    handle: JoinHandle<T>,
}

/// Why a [`Task`] ended without its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// A bug: the work panicked. The panic's message is not kept (it could quote anything).
    #[error("the work panicked and was not completed")]
    Panicked,
    /// The core shut down (or the work was aborted) before the work finished.
    #[error("the driver core shut down before the work finished")]
    ShutDown,
}

impl<T> Task<T> {
    pub(crate) fn new(handle: JoinHandle<T>) -> Self {
        Self { handle }
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.handle).poll(cx).map(|done| {
            done.map_err(|e| {
                if e.is_panic() {
                    TaskError::Panicked
                } else {
                    TaskError::ShutDown
                }
            })
        })
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        // A no-op once the work is done; otherwise the caller gave up on it.
        self.handle.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Signals when dropped: the aborted future's state is dropped on the runtime.
    struct Dropped(mpsc::Sender<()>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime")
    }

    #[test]
    fn a_task_resolves_to_its_result_from_another_executor() {
        let rt = runtime();
        let task = Task::new(rt.spawn(async { 7 }));
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        assert_eq!(other.block_on(task), Ok(7));
    }

    #[test]
    fn dropping_a_task_aborts_its_work() {
        let rt = runtime();
        let (tx, rx) = mpsc::channel();
        let (started_tx, started_rx) = mpsc::channel();
        let task = Task::new(rt.spawn(async move {
            let _guard = Dropped(tx);
            let _ = started_tx.send(());
            std::future::pending::<()>().await;
        }));
        started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the work started");
        drop(task);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the aborted work was dropped");
    }

    #[test]
    fn a_panic_is_a_typed_error_without_its_message() {
        let rt = runtime();
        let task: Task<()> = Task::new(rt.spawn(async { panic!("secret") }));
        let out = rt.block_on(task);
        assert_eq!(out, Err(TaskError::Panicked));
        assert!(!TaskError::Panicked.to_string().contains("secret"));
    }
}
