//! Sign-out through the FFI: `DriverCore.wipe(force)`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use upn_core::Driver;

use crate::{on_own_thread, CoreError, DriverCore};

/// How long a wipe waits for calls still running on the core to finish.
const CALLS_WAIT: Duration = Duration::from_secs(10);

/// What `wipe` removed.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct WipeSummary {
    /// Captures UPN had not acknowledged that were deleted (only with `force`).
    pub unsent_deleted: u32,
}

/// A driver handed back by a wipe that did not happen, with the reason.
type Refusal = (Option<Arc<Driver>>, CoreError);

#[uniffi::export]
impl DriverCore {
    /// Sign-out: removes everything the core made in its data folder (database, photos and
    /// signatures, tracking spill, logs, quarantine) and closes this core (later calls fail
    /// with `ShutDown`); a new `open` of the folder starts empty, for any depot. While
    /// captures are unsent it refuses with `UnsentCaptures` (the count) and this core stays
    /// open and unchanged, unless `force` is true.
    pub async fn wipe(&self, force: bool) -> Result<WipeSummary, CoreError> {
        let taken = self
            .driver
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(driver) = taken else {
            return Err(CoreError::ShutDown);
        };
        // The wipe stops the core's runtime, so it cannot run on it.
        let outcome = on_own_thread("wipe", move || Ok(wipe_owned(driver, force))).await?;
        match outcome {
            Ok(summary) => Ok(summary),
            Err((driver, error)) => {
                if let Some(driver) = driver {
                    *self.driver.write().unwrap_or_else(|p| p.into_inner()) = Some(driver);
                }
                Err(error)
            }
        }
    }
}

/// Waits for calls still holding the driver, then wipes it.
fn wipe_owned(mut driver: Arc<Driver>, force: bool) -> Result<WipeSummary, Refusal> {
    let deadline = Instant::now() + CALLS_WAIT;
    let owned = loop {
        match Arc::try_unwrap(driver) {
            Ok(owned) => break owned,
            Err(shared) if Instant::now() >= deadline => {
                // Not wiped: the core goes back to the app, which may try again.
                let error = CoreError::InFlight {
                    id: "wipe (another call is still running on the core)".into(),
                };
                return Err((Some(shared), error));
            }
            Err(shared) => {
                driver = shared;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    owned
        .wipe(force)
        .map(|r| WipeSummary {
            unsent_deleted: r.unsent_deleted,
        })
        .map_err(|refused| (refused.driver.map(Arc::new), refused.error.into()))
}
