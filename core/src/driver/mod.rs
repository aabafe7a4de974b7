//! [`Driver`]: the core as one object, as the CLI and the FFI layer use it. It owns the tokio
//! runtime, the store and the UPN client, and runs the background work (see [`engine`]).
//! Its methods are blocking and safe to call from any thread that is not itself running inside
//! a tokio runtime; the work they start runs on the core's own runtime.
//!
//! One file per feature: `mod.rs` (open, import, stop list), `tracking.rs`, `outbox.rs`.

mod data_saver;
mod diagnostics;
mod documents;
mod engine;
mod invoice;
mod outbox;
mod receipt;
mod render;
mod retention;
mod support;
mod sync;
mod task;
mod tracking;
mod wipe;

pub use data_saver::DataSaverStatus;
pub use documents::CaptureImage;
pub use outbox::{normalise_capture_id, DrainReport, Signed};
pub use receipt::PodVerification;
pub use retention::{Retention, RetentionReport, FAILPOINT_AFTER_PURGE};
pub use support::MAX_BUNDLE_CONSIGNMENTS;
pub use sync::{SyncOutcome, SyncReport};
pub use task::{Task, TaskError, BLOCKING_THREADS};
pub use wipe::{WipeRefused, WipeReport};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::clock::{Clock, SystemClock};
use crate::domain::diagnostics::Limits as DiagnosticLimits;
use crate::domain::outbox::badge;
use crate::domain::{order_stops, Consignment, DeviceFacts, Status, Stop, SyncBadge};
use crate::error::{Error, Result};
use crate::listener::OwnedListeners;
use crate::media::MediaLimits;
use crate::store::blobs::Blobs;
use crate::store::captures::Capture;
use crate::store::{ClosingMark, DataDir, DataDirLock, FolderBinding, Store};
use crate::sync::import::{self, lock, validate_barcode, ImportReport};
use crate::upn::http::HttpUpn;
use crate::upn::{Api, DynUpnApi, UpnConfig};

/// How often the background work runs while online.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intervals {
    /// Consignment import.
    pub import: Duration,
    /// Tracking pull (UPN's cycle is 10 minutes).
    pub tracking: Duration,
    /// No successful tracking pull for this long while online: the timeline is stale.
    pub tracking_stale_after: Duration,
    /// How long `sync_now`'s outbox flush waits for the import before it starts beside it:
    /// the flush never waits longer on a slow feed (see `driver/sync.rs`).
    pub import_head_start: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            import: Duration::from_secs(5 * 60),
            tracking: Duration::from_secs(10 * 60),
            tracking_stale_after: Duration::from_secs(15 * 60),
            import_head_start: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The app's private data folder: the database and the capture files live here.
    pub data_dir: PathBuf,
    pub upn: UpnConfig,
    pub intervals: Intervals,
    /// Size limits for captures and the upload renditions (long side, JPEG quality).
    pub media: MediaLimits,
    /// Thresholds of the troubleshooting checks (geofence, clock skew, staleness).
    pub diagnostics: DiagnosticLimits,
    /// How long a database statement waits for another writer before the call fails with
    /// `Error::Busy` (default 10 s; within `store::BUSY_WAIT_RANGE`).
    pub store_busy_wait: Duration,
    /// Make photos' upload renditions in the background after each capture and at open
    /// (default `true`). A simulation that must replay exactly turns it off; the flush then
    /// renders what is missing, as it always does.
    pub background_renditions: bool,
    /// How long sent captures' files and old consignments stay on the device.
    pub retention: Retention,
}

impl DriverConfig {
    pub fn new(data_dir: impl Into<PathBuf>, upn: UpnConfig) -> Self {
        Self {
            data_dir: data_dir.into(),
            upn,
            intervals: Intervals::default(),
            media: MediaLimits::default(),
            diagnostics: DiagnosticLimits::default(),
            store_busy_wait: crate::store::BUSY_TIMEOUT,
            background_renditions: true,
            retention: Retention::default(),
        }
    }
}

/// Everything the app shows about one consignment.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsignmentDetail {
    pub consignment: Consignment,
    pub status: Status,
    /// Each pallet with its own status (a pallet-level stage, or its consignment's).
    pub pallets: Vec<(crate::domain::Pallet, Status)>,
    pub sync: SyncBadge,
    /// The live POD (not replaced or discarded), if signed.
    pub pod: Option<Capture>,
    /// Delivery photos, in capture order (discarded ones left out).
    pub photos: Vec<Capture>,
}

/// Where new capture ids come from. Each id is the idempotency key UPN sees, so a source must
/// never repeat a value (in one data folder, ever). The default is the OS's randomness; the
/// simulation harness gives a seeded one so a run replays exactly.
pub trait IdSource: Send + Sync {
    /// 128 fresh bits; the core writes them as 32 lowercase hex digits (the blob file names).
    fn next_id(&self) -> u128;
}

/// UUID v4 from the OS's randomness.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_id(&self) -> u128 {
        uuid::Uuid::new_v4().as_u128()
    }
}

/// What a simulation (or a test) may swap in at open; the default is the product's own:
/// HTTP to `config.upn` and random capture ids.
#[derive(Clone, Default)]
pub struct Seams {
    /// A UPN other than HTTP (`None`: [`HttpUpn`] over `config.upn`).
    pub api: Option<Arc<dyn DynUpnApi>>,
    /// Capture ids (`None`: [`RandomIds`]).
    pub ids: Option<Arc<dyn IdSource>>,
}

impl std::fmt::Debug for Seams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seams")
            .field("api", &self.api.is_some())
            .field("ids", &self.ids.is_some())
            .finish()
    }
}

/// State shared between the blocking API and the background tasks.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub blobs: Blobs,
    pub listeners: OwnedListeners,
    pub api: Api,
    /// Where capture ids (the idempotency keys UPN sees) come from.
    pub ids: Arc<dyn IdSource>,
    pub clock: Arc<dyn Clock>,
    pub config: DriverConfig,
    /// What the app last said about connectivity. Background work runs only while `true`.
    pub online: watch::Sender<bool>,
    /// Whether the app reports the network metered (`set_network`; unmetered at open), and
    /// changes to it or to the data-saver policy (a flush pass then decides again).
    pub saver: crate::sync::outbox::SaverInputs,
    /// Wakes the background loops at once (going online, new captures, `sync_now`).
    pub wake: Notify,
    /// Single-flight guards: never two imports or two tracking pulls at once.
    pub import_gate: tokio::sync::Mutex<()>,
    pub tracking_gate: tokio::sync::Mutex<()>,
    pub outbox_gate: tokio::sync::Mutex<()>,
    /// Wakes the outbox task; keeps one permit, so a capture during a flush starts another.
    pub outbox_wake: Notify,
    /// One capture recorded at a time (`Driver::record`): a staged file's name is per id.
    pub capture_gate: Mutex<()>,
    /// Wakes the background renderer (a new photo); keeps one permit.
    pub render_wake: Notify,
    /// Who is making a rendition now, and whose file wins when the flush (which waits only
    /// briefly for the niced renderer) and the renderer both made one.
    pub renders: crate::sync::render::RenderClaims,
    /// The background renderer's low-priority thread.
    pub renderer: render::Renderer,
    /// The flush's assistant's thread, at normal priority (busy only while a flush runs).
    pub assist_renderer: render::Renderer,
    /// One owner per data folder: held until the last background task lets go of `Shared`.
    _owner: DataDirLock,
}

impl Shared {
    pub fn store(&self) -> Result<std::sync::MutexGuard<'_, Store>> {
        lock(&self.store)
    }

    pub fn is_online(&self) -> bool {
        *self.online.borrow()
    }

    /// The ordered stop list with each stop's sync badge.
    pub fn stops(&self) -> Result<Vec<Stop>> {
        let store = self.store()?;
        let consignments = store.consignments()?;
        let states = store.capture_states()?;
        drop(store);
        Ok(order_stops(consignments, |c| {
            states
                .get(&c.barcode)
                .map(|items| DeviceFacts::of(items))
                .unwrap_or(DeviceFacts::NONE)
        }))
    }

    pub fn badge_of(&self, barcode: &str) -> Result<SyncBadge> {
        let states = self.store()?.capture_states()?;
        Ok(states
            .get(barcode)
            .map(|items| badge(items))
            .unwrap_or(SyncBadge::None))
    }

    /// One import, single-flight.
    pub async fn import(&self) -> Result<ImportReport> {
        let _gate = self.import_gate.lock().await;
        let clock = self.clock.clone();
        let result = import::import_consignments(&self.api, &self.store, move || clock.now()).await;
        diagnostics::record_import(self, &result);
        if result.is_ok() {
            // Background or explicit alike: listeners hear what the import added, changed,
            // cancelled or removed (the dispatcher diffs the list it last published).
            self.listeners.stops_dirty();
            // Retention never fails an import: its next chance is the next import.
            if let Err(e) = retention::run_if_due(self) {
                tracing::warn!("retention did not run: {e}");
            }
        }
        result
    }
}

fn check_busy_wait(wait: Duration) -> Result<()> {
    let range = crate::store::BUSY_WAIT_RANGE;
    if range.contains(&wait) {
        return Ok(());
    }
    Err(Error::invalid(
        "config.store_busy_wait",
        format!(
            "{} ms is out of range; give {}..={} ms (the default is {} ms)",
            wait.as_millis(),
            range.start().as_millis(),
            range.end().as_millis(),
            crate::store::BUSY_TIMEOUT.as_millis()
        ),
    ))
}

/// The data folder may be missing (it is created) but must not be something else.
fn check_data_dir(dir: &std::path::Path) -> Result<()> {
    if dir.as_os_str().is_empty() {
        return Err(Error::invalid(
            "data_dir",
            "is empty; give the app's private data folder",
        ));
    }
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(Error::invalid(
            "data_dir",
            format!(
                "{} is a file, not a folder; give the data folder (it is created if missing)",
                dir.display()
            ),
        )),
        _ => Ok(()),
    }
}

pub struct Driver {
    /// Dropped first: from here on this process's next open of the folder waits for the core's
    /// threads to let go of it (`store::owner`) instead of being refused.
    _closing: ClosingMark,
    /// The background tasks, stopped before the runtime they run on.
    engine: engine::Engine,
    runtime: task::CoreRuntime,
    shared: Arc<Shared>,
    /// Dropped last (fields drop in order): a dropped core is a closed core.
    _released: Released,
}

/// How long dropping a [`Driver`] waits for the core's own threads to let go of it.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Waits, when the [`Driver`] is dropped, until nothing holds the core any more: the listener
/// dispatcher may be mid-round with the core in hand (reading the stop list), and the core's
/// folder lock goes with the last holder. An open in this process waits for that by itself
/// (the [`ClosingMark`]); this wait serves the app and other processes, which see a dropped
/// core as a closed one. Bounded: a holder that does not let go (an app thread inside a call)
/// is not waited for beyond [`RELEASE_WAIT`].
struct Released(std::sync::Weak<Shared>);

impl Drop for Released {
    fn drop(&mut self) {
        wait_until(RELEASE_WAIT, || self.0.strong_count() == 0);
    }
}

/// Waits, polling every millisecond, until `done` or until `wait` has passed: for the core's
/// own threads to finish, on a close, where no notification exists to wait on.
fn wait_until(wait: Duration, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + wait;
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("upn", &self.shared.api)
            .finish()
    }
}

impl Driver {
    /// Opens the core on `config.data_dir`. It starts offline: call [`Driver::set_online`]
    /// when the device has connectivity, and background work starts at once.
    pub fn open(config: DriverConfig) -> Result<Self> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    pub fn open_with_clock(config: DriverConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::open_with(config, clock, Seams::default())
    }

    /// Opens with a clock and [`Seams`]. The configuration is checked the same way whatever
    /// the seams, so a simulation refuses what the product would.
    pub fn open_with(config: DriverConfig, clock: Arc<dyn Clock>, seams: Seams) -> Result<Self> {
        // Bad configuration is bad input, refused before anything is created or sent.
        check_data_dir(&config.data_dir)?;
        check_busy_wait(config.store_busy_wait)?;
        config.retention.validate()?;
        let binding = FolderBinding {
            depot: config.upn.depot.clone(),
            endpoint: config.upn.validate()?.origin().ascii_serialization(),
        };
        let api = match seams.api {
            None => Api::Http(Box::new(HttpUpn::new(config.upn.clone())?)),
            Some(api) => Api::InProcess(api),
        };
        let ids = seams.ids.unwrap_or_else(|| Arc::new(RandomIds));
        // The folder is owned (locked) for the life of `Shared`, before anything reads it.
        let DataDir {
            lock,
            mut store,
            blobs,
        } = DataDir::open(&config.data_dir, &binding)?;
        store.set_busy_wait(config.store_busy_wait)?;
        crate::logbook::attach(&config.data_dir, config.upn.api_key.expose());
        let runtime =
            task::CoreRuntime::start().map_err(Error::io("starting the core's runtime"))?;
        let closing = lock.closing_mark();
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            blobs,
            listeners: OwnedListeners::default(),
            api,
            ids,
            clock,
            config,
            online: watch::Sender::new(false),
            saver: Default::default(),
            wake: Notify::new(),
            import_gate: tokio::sync::Mutex::new(()),
            tracking_gate: tokio::sync::Mutex::new(()),
            outbox_gate: tokio::sync::Mutex::new(()),
            outbox_wake: Notify::new(),
            capture_gate: Mutex::new(()),
            render_wake: Notify::new(),
            renders: Default::default(),
            renderer: render::Renderer::start(render::Priority::Low)?,
            assist_renderer: render::Renderer::start(render::Priority::Normal)?,
            _owner: lock,
        });
        let weak = Arc::downgrade(&shared);
        shared
            .listeners
            .spawn_dispatcher(move || weak.upgrade()?.stops().ok())
            .map_err(Error::io("starting the listener dispatcher"))?;
        let mut driver = Self {
            _closing: closing,
            engine: engine::Engine::default(),
            runtime,
            _released: Released(Arc::downgrade(&shared)),
            shared,
        };
        driver.resume()?;
        driver.engine = engine::spawn(&driver.runtime, driver.shared.clone());
        Ok(driver)
    }

    /// Work left unfinished by a previous run (a crash, a kill) is picked up before anything else.
    fn resume(&self) -> Result<()> {
        tracking::resume(&self.shared)?;
        retention::run(&self.shared).map(|_| ())
    }

    /// The app reports connectivity. Going online starts the background work at once.
    pub fn set_online(&self, online: bool) {
        self.shared.online.send_replace(online);
        diagnostics::record_connectivity(&self.shared, online);
        if online {
            self.shared.wake.notify_waiters();
            self.shared.outbox_wake.notify_one();
        }
    }

    pub fn is_online(&self) -> bool {
        self.shared.is_online()
    }

    /// Imports the depot's consignments now.
    pub fn import_now(&self) -> Result<ImportReport> {
        self.runtime.block_on(self.shared.import())
    }

    /// [`Driver::import_now`] as a [`Task`] on the core's runtime, for async callers.
    pub fn import_task(&self) -> Task<Result<ImportReport>> {
        let shared = self.shared.clone();
        self.spawn(async move { shared.import().await })
    }

    /// Runs the blocking `f` (a capture, a read of files, a support bundle) on the core's
    /// bounded blocking pool ([`BLOCKING_THREADS`] threads; more calls wait their turn), for
    /// async callers: no tokio worker and no thread of the caller's is blocked meanwhile. Once
    /// started, `f` runs to its end even if the task is dropped.
    pub fn blocking_task<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Task<T> {
        Task::new(self.runtime.spawn_blocking(f))
    }

    /// Starts `future` on the core's runtime; dropping the returned task aborts it.
    fn spawn<T: Send + 'static>(
        &self,
        future: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        Task::new(self.runtime.spawn(future))
    }

    /// The ordered stop list.
    pub fn stops(&self) -> Result<Vec<Stop>> {
        self.shared.stops()
    }

    /// One consignment with its pallets' statuses.
    pub fn consignment(&self, barcode: &str) -> Result<ConsignmentDetail> {
        let barcode = validate_barcode(barcode)?;
        let consignment =
            self.shared
                .store()?
                .consignment(barcode)?
                .ok_or_else(|| Error::NotFound {
                    barcode: barcode.to_string(),
                })?;
        let cancelled = consignment.cancelled.is_some();
        let captures = self.shared.store()?.captures_of(barcode)?;
        let pod = Capture::live_pod(&captures).cloned();
        let photos = captures
            .into_iter()
            .filter(|c| c.kind.is_photo() && c.state.is_live())
            .collect();
        Ok(ConsignmentDetail {
            pod,
            photos,
            status: consignment.status(),
            pallets: consignment
                .pallets
                .iter()
                .map(|p| (p.clone(), p.status(cancelled)))
                .collect(),
            sync: self.shared.badge_of(barcode)?,
            consignment,
        })
    }

    /// Stops the background work, waiting at most `timeout` for in-flight requests. Whatever
    /// was cut short is left consistent in the store and resumes on the next open.
    pub fn shutdown(mut self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        self.engine.stop(timeout);
        self.runtime
            .shutdown(deadline.saturating_duration_since(std::time::Instant::now()));
    }
}
