//! The UniFFI surface of UPN Driver Core: thin records and one object over [`upn_core::Driver`].
//! No logic lives here: every method converts, calls the core, converts back, and never lets a
//! panic cross into Kotlin or Swift.
//!
//! Threading: quick reads and writes of local state (`stops`, `consignment`, `outbox`, `retry`,
//! `timeline`, ...) are synchronous. Work that talks to UPN or processes images (`import_now`,
//! `sync_now`, `pull_tracking_now`, `add_photo`, `sign`, `drain`, `shutdown`) is `async`: the
//! blocking core call runs on a thread of its own and the foreign future (a Kotlin `suspend fun`, a Swift `async func`) completes
//! when it is done, so the caller's thread is never blocked. The futures need no particular
//! executor. Cancelling one (a coroutine cancelled, a Swift task cancelled) abandons the
//! result, not the work: a started import or flush finishes and commits as usual.

mod config;
mod documents;
mod error;
mod invoice;
mod listener;
mod reason;
mod records;
mod support;
mod wipe;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use upn_core::Driver;

pub use config::{ApiKey, CoreConfig};
pub use documents::CaptureImageRecord;
pub use error::CoreError;
pub use invoice::{
    InvoiceLineRecord, InvoiceMatchRecord, InvoiceNearMissReason, InvoiceNearMissRecord,
};
pub use listener::{DriverListener, ListenerHandle};
pub use reason::{OutboxReason, UpnFeature};
pub use records::{
    CaptureKind, CaptureRecord, ConsignmentRecord, DiagnosticsRecord, DrainSummary, FlushEnd,
    FlushSummary, GpsFixRecord, ImportSummary, OutboxItemRecord, OutboxState, OutboxStatsRecord,
    PalletRecord, PalletTimelineRecord, PhotoKind, SignResult, StopRecord, SyncBadge, SyncSummary,
    TimelineEntryRecord, TimelineRecord, TrackingHealthRecord, TrackingSummary,
    UploadProgressRecord,
};
pub use wipe::WipeSummary;

uniffi::setup_scaffolding!();

/// Runs `f`, turning a panic into [`CoreError::Internal`] so it never unwinds across the FFI.
/// The panic's message is not passed on: it could quote anything.
fn guard<T>(op: &'static str, f: impl FnOnce() -> Result<T, CoreError>) -> Result<T, CoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(CoreError::Internal {
            reason: format!("{op} failed unexpectedly and was not completed"),
        })
    })
}

/// Runs the blocking `f` on a thread of its own (inside [`guard`]) and completes when it is done.
/// Runtime-agnostic: `tokio::sync::oneshot` needs no tokio runtime, so the foreign side's
/// executor (UniFFI's future polling) drives it.
async fn off_thread<T: Send + 'static>(
    op: &'static str,
    f: impl FnOnce() -> Result<T, CoreError> + Send + 'static,
) -> Result<T, CoreError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("upn-ffi-{op}"))
        .spawn(move || {
            // The receiver may be gone (the caller cancelled): the result is dropped.
            let _ = tx.send(guard(op, f));
        })
        .map_err(|_| CoreError::Internal {
            reason: format!("{op} could not start a thread"),
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(CoreError::Internal {
            reason: format!("{op} stopped without a result"),
        })
    })
}

/// The version of the core library, for support screens and bug reports.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The driver app's core: one per signed-in depot, opened on the app's private data folder.
/// It starts offline: report connectivity with `set_online`.
#[derive(uniffi::Object)]
pub struct DriverCore {
    /// `None` once shut down. Calls clone the `Arc` and release the lock at once, so a long call
    /// never holds it.
    driver: RwLock<Option<Arc<Driver>>>,
    depot_code: String,
    endpoint: String,
}

impl std::fmt::Debug for DriverCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverCore")
            .field("depot_code", &self.depot_code)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl DriverCore {
    fn driver(&self) -> Result<Arc<Driver>, CoreError> {
        self.driver
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(CoreError::ShutDown)
    }
}

impl Drop for DriverCore {
    fn drop(&mut self) {
        let driver = self
            .driver
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        // Dropping the core's runtime from inside a runtime (e.g. the app released the core in
        // a listener callback, which runs on a core thread) would panic: drop it elsewhere.
        if let Some(driver) = driver {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::Builder::new()
                    .name("upn-ffi-drop".into())
                    .spawn(move || drop(driver));
            }
        }
    }
}

#[uniffi::export]
impl DriverCore {
    /// Opens (or creates) the core's database in `data_dir`, the app's private data folder.
    /// Work left unfinished by a previous run resumes from here.
    #[uniffi::constructor]
    pub fn open(data_dir: String, config: CoreConfig) -> Result<Arc<Self>, CoreError> {
        guard("open", || {
            let depot_code = config.depot_code.clone();
            let endpoint = config.endpoint.clone();
            let config = config.into_driver_config(data_dir)?;
            upn_core::logbook::install_if_none();
            let driver = Driver::open(config)?;
            Ok(Arc::new(Self {
                driver: RwLock::new(Some(Arc::new(driver))),
                depot_code,
                endpoint,
            }))
        })
    }

    /// The app reports connectivity. Going online starts the background work (import,
    /// tracking, outbox) at once; offline, it waits. Ignored after `shutdown`.
    pub fn set_online(&self, online: bool) {
        let _ = guard("set_online", || {
            self.driver()?.set_online(online);
            Ok(())
        });
    }

    /// What the app last said about connectivity (false after `shutdown`).
    pub fn is_online(&self) -> bool {
        guard("is_online", || Ok(self.driver()?.is_online())).unwrap_or(false)
    }

    /// Imports the depot's consignments now.
    pub async fn import_now(&self) -> Result<ImportSummary, CoreError> {
        let driver = self.driver()?;
        off_thread("import_now", move || Ok(driver.import_now()?.into())).await
    }

    /// Everything now, whatever `set_online` said: imports consignments, sends what is due in
    /// the outbox, then pulls tracking. A failed import (`Offline`, `Unauthorized`,
    /// `NotEnabled`) fails the call and nothing else is tried; captured work stays queued. A
    /// failed tracking pull does not fail it: the summary says why (and `tracking_health`).
    pub async fn sync_now(&self) -> Result<SyncSummary, CoreError> {
        let driver = self.driver()?;
        off_thread("sync_now", move || {
            let import = driver.import_now()?.into();
            let flush = driver.flush_now()?.into();
            let (tracking, tracking_error) = match driver.pull_tracking_now() {
                Ok(report) => (Some(report.into()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            Ok(SyncSummary {
                import,
                flush,
                tracking,
                tracking_error,
            })
        })
        .await
    }

    /// Pulls tracking events now (UPN's feed hands each batch out once; the core stores it
    /// before processing). Stops whose status changed are re-announced to listeners.
    pub async fn pull_tracking_now(&self) -> Result<TrackingSummary, CoreError> {
        let driver = self.driver()?;
        off_thread("pull_tracking_now", move || {
            Ok(driver.pull_tracking_now()?.into())
        })
        .await
    }

    /// The tracking timeline of a consignment and of each of its pallets: UPN's events and the
    /// POD captured on this device.
    pub fn timeline(&self, barcode: String) -> Result<TimelineRecord, CoreError> {
        guard("timeline", || {
            Ok((&self.driver()?.timeline(&barcode)?).into())
        })
    }

    /// Whether tracking is up to date (stale after 15 minutes online without a pull), the last
    /// failure, and what to do.
    pub fn tracking_health(&self) -> Result<TrackingHealthRecord, CoreError> {
        guard("tracking_health", || {
            Ok((&self.driver()?.tracking_health()?).into())
        })
    }

    /// Does as much outbox work as fits in `deadline_ms` milliseconds from now (a background
    /// task's window: WorkManager, BGProcessingTask) and stops cleanly; whatever was cut short
    /// is left consistent and goes next time. Runs whatever `set_online` said.
    pub async fn drain(&self, deadline_ms: u64) -> Result<DrainSummary, CoreError> {
        let driver = self.driver()?;
        off_thread("drain", move || {
            Ok(driver.drain(Duration::from_millis(deadline_ms))?.into())
        })
        .await
    }

    /// The ordered stop list: open work first (most urgent first), then delivered, then
    /// cancelled.
    pub fn stops(&self) -> Result<Vec<StopRecord>, CoreError> {
        guard("stops", || {
            Ok(self.driver()?.stops()?.iter().map(Into::into).collect())
        })
    }

    /// One consignment with its pallets, signature and photos.
    pub fn consignment(&self, barcode: String) -> Result<ConsignmentRecord, CoreError> {
        guard("consignment", || {
            Ok((&self.driver()?.consignment(&barcode)?).into())
        })
    }

    /// Records a delivery photo (JPEG or PNG bytes as captured). Any number, before or after the
    /// signature; photos taken before the signature wait for it. Durable when this returns.
    /// `captured_at_ms` is the device clock at capture; `gps` the fix at capture, if any.
    pub async fn add_photo(
        &self,
        barcode: String,
        photo: Vec<u8>,
        kind: PhotoKind,
        captured_at_ms: i64,
        gps: Option<GpsFixRecord>,
    ) -> Result<OutboxItemRecord, CoreError> {
        let driver = self.driver()?;
        off_thread("add_photo", move || {
            let captured_at = records::instant("captured_at_ms", captured_at_ms)?;
            let gps = gps.map(GpsFixRecord::to_core).transpose()?;
            let item = driver.add_photo(&barcode, &photo, kind.into(), captured_at, gps)?;
            Ok((&item).into())
        })
        .await
    }

    /// Records the consignee's signature image (PNG or JPEG), printed name, time and place: the
    /// ePOD. Durable when this returns. A second signature replaces the first only while the
    /// first never left the device; otherwise it is refused with `AlreadySigned`.
    pub async fn sign(
        &self,
        barcode: String,
        signature: Vec<u8>,
        signed_by: String,
        captured_at_ms: i64,
        gps: Option<GpsFixRecord>,
    ) -> Result<SignResult, CoreError> {
        let driver = self.driver()?;
        off_thread("sign", move || {
            let captured_at = records::instant("captured_at_ms", captured_at_ms)?;
            let gps = gps.map(GpsFixRecord::to_core).transpose()?;
            let signed = driver.sign(&barcode, &signature, &signed_by, captured_at, gps)?;
            Ok((&signed).into())
        })
        .await
    }

    /// Everything not yet acknowledged by UPN, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxItemRecord>, CoreError> {
        guard("outbox", || {
            Ok(self.driver()?.outbox()?.iter().map(Into::into).collect())
        })
    }

    pub fn outbox_stats(&self) -> Result<OutboxStatsRecord, CoreError> {
        guard("outbox_stats", || {
            Ok((&self.driver()?.outbox_stats()?).into())
        })
    }

    /// Sends an item that needs attention again (or a queued one now). `InFlight` while it is
    /// being sent: try again in a moment.
    pub fn retry(&self, capture_id: String) -> Result<OutboxItemRecord, CoreError> {
        guard("retry", || Ok((&self.driver()?.retry(&capture_id)?).into()))
    }

    /// Retries every item that needs attention (and lets a paused outbox probe UPN at once).
    /// Returns the retried items.
    pub fn retry_all(&self) -> Result<Vec<OutboxItemRecord>, CoreError> {
        guard("retry_all", || {
            Ok(self.driver()?.retry_all()?.iter().map(Into::into).collect())
        })
    }

    /// Gives up on an unsent item; its files are removed from the device.
    pub fn discard(&self, capture_id: String) -> Result<OutboxItemRecord, CoreError> {
        guard("discard", || {
            Ok((&self.driver()?.discard(&capture_id)?).into())
        })
    }

    /// Registers `listener`. It first hears the current state of every stop and outbox item
    /// (on this thread, before this returns), then every change (on core threads). Keep the
    /// handle: `cancel()` or dropping it unregisters the listener.
    pub fn subscribe(
        &self,
        listener: Arc<dyn DriverListener>,
    ) -> Result<Arc<ListenerHandle>, CoreError> {
        guard("subscribe", || {
            let bridge = Arc::new(listener::Bridge(listener));
            let subscription = self.driver()?.subscribe(bridge)?;
            Ok(Arc::new(ListenerHandle::new(subscription)))
        })
    }

    /// What support asks first: connectivity, the shape of the stop list, the outbox.
    pub fn diagnostics(&self) -> Result<DiagnosticsRecord, CoreError> {
        guard("diagnostics", || {
            let driver = self.driver()?;
            let stops = driver.stops()?;
            let outbox = driver.outbox_stats()?;
            let tracking = driver.tracking_health()?;
            Ok(DiagnosticsRecord::new(
                driver.is_online(),
                self.depot_code.clone(),
                self.endpoint.clone(),
                &stops,
                &outbox,
                &tracking,
            ))
        })
    }

    /// Stops the background work, waiting at most `timeout_ms` for in-flight requests and
    /// calls; whatever was cut short is consistent on disk and resumes on the next `open`.
    /// Every later call fails with `ShutDown` (`set_online` is ignored). Idempotent.
    pub async fn shutdown(&self, timeout_ms: u64) {
        let taken = self
            .driver
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(driver) = taken else { return };
        let _ = off_thread("shutdown", move || {
            driver.set_online(false);
            let deadline = Instant::now() + Duration::from_millis(timeout_ms);
            let mut driver = driver;
            // Calls still running hold the driver; wait for them until the deadline.
            loop {
                match Arc::try_unwrap(driver) {
                    Ok(owned) => {
                        owned.shutdown(deadline.saturating_duration_since(Instant::now()));
                        return Ok(());
                    }
                    Err(shared) if Instant::now() >= deadline => {
                        // The last call to finish drops the runtime.
                        drop(shared);
                        return Ok(());
                    }
                    Err(shared) => {
                        driver = shared;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests;
