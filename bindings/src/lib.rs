//! The UniFFI surface of UPN Driver Core: thin records and one object over [`upn_core::Driver`].
//! No logic lives here: every method converts, calls the core, converts back, and never lets a
//! panic cross into Kotlin or Swift.
//!
//! Threading: quick reads and writes of local state (`stops`, `consignment`, `outbox`, `retry`,
//! `timeline`, ...) are synchronous. Work that talks to UPN or processes images (`import_now`,
//! `sync_now`, `pull_tracking_now`, `add_photo`, `sign`, `drain`, ...) is `async` and runs on the
//! core's own tokio runtime, never on a thread per call: network work as a task on its two
//! workers, captures and file work on its bounded blocking pool
//! ([`upn_core::BLOCKING_THREADS`]; more calls wait their turn). The foreign future (a Kotlin
//! `suspend fun`, a Swift `async func`) awaits that work and needs no particular executor, so
//! the caller's thread is never blocked. Cancelling it (a coroutine cancelled, a Swift task
//! cancelled) drops the future, which aborts the core's work at its next await: an import, a
//! pull or a flush stops there, consistent (every step commits whole transactions; rows left
//! `sending` are queued again). A capture that has started is never cut in half: it commits or
//! not, and its result is dropped.

mod config;
mod data_saver;
mod documents;
mod error;
mod invoice;
mod listener;
mod live;
mod logs;
mod reason;
mod records;
mod support;
mod wipe;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use upn_core::Driver;

pub use config::{ApiKey, CoreConfig};
pub use data_saver::{DataSaver, DataSaverStatusRecord};
pub use documents::CaptureImageRecord;
pub use error::CoreError;
pub use invoice::{
    InvoiceLineRecord, InvoiceMatchRecord, InvoiceNearMissReason, InvoiceNearMissRecord,
};
pub use listener::{DriverListener, ListenerHandle};
pub use live::{
    DrainCancellation, StopChangeKindRecord, StopChangeRecord, StopListUpdateRecord, StopPhase,
};
pub use logs::{log_lines_dropped, set_log_listener, LogLevel, LogListener, LogRecord};
pub use reason::{OutboxReason, UpnFeature};
pub use records::{
    CaptureKind, CaptureRecord, ConsignmentRecord, DiagnosticsRecord, DrainSummary, FlushEnd,
    FlushSummary, GpsFixRecord, ImportSummary, OutboxItemRecord, OutboxState, OutboxStatsRecord,
    PalletRecord, PalletTimelineRecord, PhotoKind, SignResult, StopRecord, SyncBadge, SyncOutcome,
    SyncSummary, TimelineEntryRecord, TimelineRecord, TrackingHealthRecord, TrackingSummary,
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

/// Awaits work on the core's runtime. A panic in it (caught by the runtime) becomes
/// [`CoreError::Internal`], without its message; a core shut down meanwhile, `ShutDown`.
/// Dropping this future drops the task, which aborts the work (see the module's doc).
async fn on_core<T>(op: &'static str, task: upn_core::Task<T>) -> Result<T, CoreError> {
    task.await.map_err(|e| match e {
        upn_core::TaskError::Panicked => CoreError::Internal {
            reason: format!("{op} failed unexpectedly and was not completed"),
        },
        upn_core::TaskError::ShutDown => CoreError::ShutDown,
    })
}

/// Runs the blocking `f` on the core's bounded blocking pool and awaits it. The caller's
/// `driver` is held until the result is back, so `shutdown` waits for the call as for any other.
async fn blocking<T: Send + 'static>(
    driver: Arc<Driver>,
    op: &'static str,
    f: impl FnOnce(&Driver) -> Result<T, CoreError> + Send + 'static,
) -> Result<T, CoreError> {
    let inner = driver.clone();
    on_core(op, driver.blocking_task(move || f(&inner))).await?
}

/// Runs the blocking `f` on a new thread and completes when it is done: only for `shutdown`,
/// which stops the core's runtime and so cannot run on it. `tokio::sync::oneshot` needs no
/// runtime, so any executor drives the wait.
async fn on_own_thread<T: Send + 'static>(
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
        Ok(on_core("import_now", driver.import_task()).await??.into())
    }

    /// Everything now, whatever `set_online` said: imports consignments, sends what is due in
    /// the outbox and pulls tracking. Each step runs even when another fails (a broken feed
    /// never keeps queued PODs back) and reports its own result; `outcome` is the one value to
    /// switch on. Throws only when the core is shut down (or on a bug).
    pub async fn sync_now(&self) -> Result<SyncSummary, CoreError> {
        let driver = self.driver()?;
        Ok(on_core("sync_now", driver.sync_task()).await?.into())
    }

    /// Pulls tracking events now (UPN's feed hands each batch out once; the core stores it
    /// before processing). Stops whose status changed are re-announced to listeners.
    pub async fn pull_tracking_now(&self) -> Result<TrackingSummary, CoreError> {
        let driver = self.driver()?;
        Ok(on_core("pull_tracking_now", driver.pull_tracking_task())
            .await??
            .into())
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
    /// is left consistent and goes next time. Runs whatever `set_online` said. Cancelling the
    /// coroutine or task awaiting it cancels the drain (as `drain_cancellable` does).
    pub async fn drain(&self, deadline_ms: u64) -> Result<DrainSummary, CoreError> {
        self.drain_cancellable(deadline_ms, DrainCancellation::new())
            .await
    }

    /// `drain` that also stops within moments when `cancellation.cancel()` is called (from
    /// `DrainWorker.onStopped`, a BGTask's expiration handler, any thread) or when the awaiting
    /// coroutine or task is cancelled: the outbox is released at once, so the next drain starts
    /// without waiting; the summary ends `Cancelled` and what it left goes next time.
    pub async fn drain_cancellable(
        &self,
        deadline_ms: u64,
        cancellation: Arc<DrainCancellation>,
    ) -> Result<DrainSummary, CoreError> {
        let driver = self.driver()?;
        let budget = Duration::from_millis(deadline_ms);
        // Dropping this future (the coroutine or Swift task cancelled) drops the task, which
        // stops the drain at its next await, as `cancellation.cancel()` does.
        let task = driver.drain_task(budget, cancellation.token.clone());
        Ok(on_core("drain", task).await??.into())
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
    /// `capture_id` (32 hex digits or a UUID), when the app gives one, makes a retry after a
    /// timeout or a process death safe: the same id and photo return the capture already made;
    /// the same id with anything different is `CaptureIdConflict`. The photo is checked from
    /// its header and structure; its upload rendition is made in the background, and a photo
    /// that cannot be rendered then needs attention (the listener hears of it).
    #[uniffi::method(default(capture_id = None))]
    pub async fn add_photo(
        &self,
        barcode: String,
        photo: Vec<u8>,
        kind: PhotoKind,
        captured_at_ms: i64,
        gps: Option<GpsFixRecord>,
        capture_id: Option<String>,
    ) -> Result<OutboxItemRecord, CoreError> {
        blocking(self.driver()?, "add_photo", move |driver| {
            let captured_at = records::instant("captured_at_ms", captured_at_ms)?;
            let gps = gps.map(GpsFixRecord::to_core).transpose()?;
            let item = driver.add_photo_with_id(
                &barcode,
                &photo,
                kind.into(),
                captured_at,
                gps,
                capture_id.as_deref(),
            )?;
            Ok((&item).into())
        })
        .await
    }

    /// Records the consignee's signature image (PNG or JPEG), printed name, time and place: the
    /// ePOD. Durable when this returns. A second signature replaces the first only while the
    /// first never left the device; otherwise it is refused with `AlreadySigned`.
    /// `capture_id` as for `add_photo`: the same id, signature, name and time return the POD
    /// already recorded.
    #[uniffi::method(default(capture_id = None))]
    pub async fn sign(
        &self,
        barcode: String,
        signature: Vec<u8>,
        signed_by: String,
        captured_at_ms: i64,
        gps: Option<GpsFixRecord>,
        capture_id: Option<String>,
    ) -> Result<SignResult, CoreError> {
        blocking(self.driver()?, "sign", move |driver| {
            let captured_at = records::instant("captured_at_ms", captured_at_ms)?;
            let gps = gps.map(GpsFixRecord::to_core).transpose()?;
            let signed = driver.sign_with_id(
                &barcode,
                &signature,
                &signed_by,
                captured_at,
                gps,
                capture_id.as_deref(),
            )?;
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

    /// Registers `listener`. It first hears the current state of every stop and outbox item and
    /// then the whole list (`on_stop_list_changed`, the end of the replay), on this thread
    /// before this returns; then every change, from the core's dispatcher thread, with no gap
    /// and nothing repeated. Keep the handle: `cancel()` or dropping it unregisters the listener.
    pub fn subscribe(
        &self,
        listener: Arc<dyn DriverListener>,
    ) -> Result<Arc<ListenerHandle>, CoreError> {
        guard("subscribe", || {
            let bridge = Arc::new(listener::Bridge(listener));
            let (_, subscription) = self.driver()?.subscribe(bridge)?;
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
        // On a thread of its own: it stops the core's runtime, so it cannot run there.
        let _ = on_own_thread("shutdown", move || {
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
