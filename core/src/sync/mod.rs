//! Services that move data between UPN and the store. Each one: read what it needs from the
//! store, talk to UPN through [`crate::upn::UpnApi`], commit the result in one transaction.

pub mod import;
pub mod outbox;
pub mod render;
pub mod tracking;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs blocking store work (a commit's fsync, parsing and applying a tracking batch) from async
/// code without stalling the runtime: on a multi-thread runtime (the core's) the worker hands
/// its other tasks to another thread while `f` runs (`block_in_place`: unlike `spawn_blocking`
/// it needs no `'static` data, so the services keep borrowing the store); on a current-thread
/// runtime (a unit test) or outside any runtime, `f` just runs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
