//! One seeded delivery day: the core (opened offline, so its background loops idle) against
//! the in-process UPN, driven step by step by the harness; crashes drop the core and open it
//! again on the same files. The model keeps what the app was told succeeded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use upn_core::clock::{Clock, ManualClock};
use upn_core::digest::sha256_hex;
use upn_core::domain::outbox::CaptureKind;
use upn_core::driver::{IdSource, Seams};
use upn_core::failpoint::{inject_io_fault, HookGuard};
use upn_core::testing::store::tracking::FAULT_INBOX_DISK_FULL;
use upn_core::testing::store::{DB_FILE_NAME, FAILPOINT_STORE_ACCESS, FAILPOINT_STORE_IN_TX};
use upn_core::testing::sync::tracking::{FAILPOINT_BEFORE_INBOX_COMMIT, FAULT_LOW_SPACE};
use upn_core::upn::{ApiKey, DynUpnApi, UpnConfig};
use upn_core::{Driver, DriverConfig, Error};
use upn_sim::rng::SplitMix64;

use crate::plan::{Crash, InboxFull, Step, FAULT_MIXES, STAGES};
use crate::upn::{InProcessUpn, DEPOT, KEY};

/// Consignments in a day.
pub const STOPS: usize = 12;

/// How long the core waits for another writer (SQLite's busy wait is wall time: kept tiny).
const STORE_BUSY_WAIT: Duration = Duration::from_millis(5);

/// The panic payload of a simulated crash (silenced by the panic hook).
struct SimCrash;

/// What the app was told succeeded.
#[derive(Debug, Clone)]
pub struct Captured {
    pub id: String,
    pub barcode: String,
    pub kind: CaptureKind,
    pub sha256: String,
}

#[derive(Default)]
pub struct Model {
    pub captured: Vec<Captured>,
    /// Capture id -> the step whose discard or re-sign returned, making it gone for good.
    pub gone: HashMap<String, usize>,
    /// Steps cut short by a crash (a tracking batch consumed in one may be lost before it is
    /// stored: UPN hands each batch out once, so such a batch was never received).
    pub crashed_steps: HashSet<usize>,
}

/// Seeded capture ids: the same day gives the same keys, and they never repeat. Each id is
/// noted with the step it was handed out in, so a stored capture whose call failed is seen.
pub struct SeededIds {
    rng: Mutex<SplitMix64>,
    step: AtomicUsize,
    handed_out: Mutex<HashMap<String, usize>>,
}

impl SeededIds {
    /// The step capture id `id` was handed out in, if the core asked for it.
    pub fn step_of(&self, id: &str) -> Option<usize> {
        let handed = self.handed_out.lock().unwrap_or_else(|p| p.into_inner());
        handed.get(id).copied()
    }
}

impl IdSource for SeededIds {
    fn next_id(&self) -> u128 {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let id = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        let mut handed = self.handed_out.lock().unwrap_or_else(|p| p.into_inner());
        // The core writes ids as 32 lowercase hex digits.
        handed.insert(format!("{id:032x}"), self.step.load(Ordering::SeqCst));
        id
    }
}

#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub steps: u64,
    pub crashes: u64,
    pub reopens: u64,
    /// Crashes that landed between two statements of one transaction.
    pub crashes_in_tx: u64,
    pub disk_full: u64,
    /// Steps run while another writer held the database (`busy_held`: it took the lock
    /// before the step ended; `busy_errors`: calls that ended in `Error::Busy`).
    pub busy: u64,
    pub busy_held: u64,
    pub busy_errors: u64,
    /// Tracking pulls whose inbox commit hit a full disk (`inbox_spilled`: often enough that
    /// the body went to a spill file; `inbox_full_everywhere`: the whole folder was full).
    pub inbox_full: u64,
    pub inbox_spilled: u64,
    pub inbox_full_everywhere: u64,
    pub clock_jumps: u64,
    pub clock_back: u64,
    pub flaps: u64,
    pub upn_faults: BTreeMap<&'static str, u64>,
}

pub struct Day {
    #[allow(dead_code)] // kept for debugging a day
    pub seed: u64,
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub upn: Arc<InProcessUpn>,
    pub driver: Option<Driver>,
    pub ids: Arc<SeededIds>,
    pub barcodes: Vec<String>,
    /// Consignments a capture was attempted on (the only ones that can have captures).
    pub touched: std::collections::BTreeSet<String>,
    pub model: Model,
    pub counts: Counts,
    /// Set while a step injects a local fault: storage errors are then expected.
    pub expect_storage_error: bool,
    /// Calls that ended in `Error::Busy` (moved into `counts` after each busy step).
    busy_errors: std::cell::Cell<u64>,
}

/// A day starts at 07:00 UTC on a fixed date, so replays are exact.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 7, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

fn temp_root() -> std::path::PathBuf {
    // tmpfs when there is one: every capture and commit fsyncs.
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

pub fn quiet_crashes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<SimCrash>().is_none() {
                default(info);
            }
        }));
    });
}

impl Day {
    pub fn new(seed: u64) -> Result<Self, String> {
        quiet_crashes();
        let dir = tempfile::Builder::new()
            .prefix("upn-soak-")
            .tempdir_in(temp_root())
            .map_err(|e| format!("tempdir: {e}"))?;
        let clock = Arc::new(ManualClock::new(start()));
        let upn = Arc::new(InProcessUpn::new(
            seed,
            STOPS,
            clock.clone(),
            start().date_naive(),
        ));
        let ids = Arc::new(SeededIds {
            rng: Mutex::new(SplitMix64::for_stream(seed, "soak/ids")),
            step: AtomicUsize::new(0),
            handed_out: Mutex::default(),
        });
        let barcodes = upn.barcodes();
        let mut day = Self {
            seed,
            dir,
            clock,
            upn,
            driver: None,
            ids,
            barcodes,
            touched: Default::default(),
            model: Model::default(),
            counts: Counts::default(),
            expect_storage_error: false,
            busy_errors: Default::default(),
        };
        day.open()?;
        Ok(day)
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn open(&mut self) -> Result<(), String> {
        let upn = UpnConfig {
            endpoint: "http://127.0.0.1:9".into(),
            depot: DEPOT.into(),
            api_key: ApiKey::new(KEY),
        };
        let seams = Seams {
            api: Some(self.upn.clone() as Arc<dyn DynUpnApi>),
            ids: Some(self.ids.clone() as Arc<dyn IdSource>),
        };
        let mut config = DriverConfig::new(self.dir.path(), upn);
        config.store_busy_wait = STORE_BUSY_WAIT;
        // A replay must be exact: no background thread touching the store between steps.
        config.background_renditions = false;
        let driver = Driver::open_with(config, self.clock.clone(), seams)
            .map_err(|e| format!("the core could not be opened again: {e}"))?;
        self.driver = Some(driver);
        Ok(())
    }

    pub fn reopen(&mut self) -> Result<(), String> {
        self.driver = None;
        self.counts.reopens += 1;
        self.open()
    }

    pub fn driver(&self) -> Result<&Driver, String> {
        self.driver
            .as_ref()
            .ok_or_else(|| "the core is not open".to_string())
    }

    fn barcode(&self, stop: u32) -> String {
        self.barcodes[stop as usize % self.barcodes.len()].clone()
    }

    /// The consignment a capture step is about.
    fn capture_target(&mut self, stop: u32) -> String {
        let barcode = self.barcode(stop);
        self.touched.insert(barcode.clone());
        barcode
    }

    /// Runs one step; `Err` is an invariant broken by the step itself (an unexpected error).
    pub fn run(&mut self, i: usize, step: &Step) -> Result<(), String> {
        self.upn.set_step(i);
        self.ids.step.store(i, Ordering::SeqCst);
        self.counts.steps += 1;
        self.exec(i, step)
    }

    /// A step with the crash or local fault it arms.
    fn exec(&mut self, i: usize, step: &Step) -> Result<(), String> {
        match step {
            Step::Crash(crash, inner) => self.crash(i, *crash, inner),
            Step::DiskFull(inner) => {
                self.counts.disk_full += 1;
                let _full = inject_io_fault("blobs.disk_full");
                self.expecting_storage_errors(|day| day.exec(i, inner))
            }
            Step::Busy(busy, inner) => self.busy(i, busy.at, inner),
            Step::InboxFull(full) => self.inbox_full(i, *full),
            other => self.work(i, other),
        }
    }

    fn expecting_storage_errors(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        let before = std::mem::replace(&mut self.expect_storage_error, true);
        let result = f(self);
        self.expect_storage_error = before;
        result
    }

    /// The inner step while a second connection on the database file holds its write lock,
    /// taken at the step's `at`-th store operation (0: before it) and let go when it ends.
    /// With the core's few-millisecond busy wait its writes then fail as SQLITE_BUSY.
    fn busy(&mut self, i: usize, at: u32, inner: &Step) -> Result<(), String> {
        self.counts.busy += 1;
        let db = self.data_dir().join(DB_FILE_NAME);
        let holder: Arc<Mutex<Option<rusqlite::Connection>>> = Arc::default();
        let refused: Arc<Mutex<Option<String>>> = Arc::default();
        let take = {
            let (holder, refused) = (holder.clone(), refused.clone());
            move || {
                let taken = rusqlite::Connection::open(&db).and_then(|c| {
                    c.busy_timeout(Duration::ZERO)?;
                    c.execute_batch("BEGIN IMMEDIATE")?;
                    Ok(c)
                });
                match taken {
                    Ok(c) => *holder.lock().unwrap_or_else(|p| p.into_inner()) = Some(c),
                    // Between two store operations the core holds no write transaction.
                    Err(e) => {
                        *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string())
                    }
                }
            }
        };
        let seen = Arc::new(AtomicU32::new(0));
        if at == 0 {
            take();
        }
        let hook = upn_core::failpoint::on(FAILPOINT_STORE_ACCESS, move || {
            if seen.fetch_add(1, Ordering::SeqCst) + 1 == at {
                take();
            }
        });
        let result = self.expecting_storage_errors(|day| day.work(i, inner));
        drop(hook);
        self.counts.busy_errors += self.busy_errors.replace(0);
        if holder
            .lock()
            .map_err(|_| "holder poisoned")?
            .take()
            .is_some()
        {
            self.counts.busy_held += 1;
        }
        if let Some(e) = refused.lock().map_err(|_| "poisoned")?.take() {
            return Err(format!(
                "another writer could not take the lock between two store operations: {e}"
            ));
        }
        result
    }

    /// A tracking pull whose inbox commit hits a full disk on its first `failures` attempts
    /// (with `everywhere`, the whole data folder is full: spill files and the space check too).
    fn inbox_full(&mut self, i: usize, full: InboxFull) -> Result<(), String> {
        self.counts.inbox_full += 1;
        // Declared before the hook that holds a clone, so it is dropped after it: the last
        // owner of the fault's guard must not drop it inside the registry's lock.
        let fault: Arc<Mutex<Option<HookGuard>>> =
            Arc::new(Mutex::new(Some(inject_io_fault(FAULT_INBOX_DISK_FULL))));
        let attempts = Arc::new(AtomicU32::new(0));
        let lift = {
            let (fault, attempts) = (fault.clone(), attempts.clone());
            let failures = u32::from(full.failures);
            upn_core::failpoint::on(FAILPOINT_BEFORE_INBOX_COMMIT, move || {
                if attempts.fetch_add(1, Ordering::SeqCst) >= failures {
                    fault.lock().unwrap_or_else(|p| p.into_inner()).take();
                }
            })
        };
        let _everywhere = full.everywhere.then(|| {
            self.counts.inbox_full_everywhere += 1;
            (
                inject_io_fault("blobs.disk_full"),
                inject_io_fault(FAULT_LOW_SPACE),
            )
        });
        let spills_before = self.spill_files();
        let result = self.expecting_storage_errors(|day| day.work(i, &Step::PullTracking));
        drop(lift);
        fault.lock().map_err(|_| "fault poisoned")?.take();
        if self.spill_files() > spills_before {
            self.counts.inbox_spilled += 1;
        }
        result
    }

    fn spill_files(&self) -> usize {
        std::fs::read_dir(
            self.data_dir()
                .join(upn_core::testing::sync::tracking::SPILL_DIR_NAME),
        )
        .map_or(0, |d| d.count())
    }

    /// The inner step with a crash at its `at`-th store point (between two store operations,
    /// or inside a transaction; with `inside`, only points inside transactions count; if it
    /// makes fewer, right after it): the core is dropped mid-flight and opened again on the
    /// same files.
    fn crash(&mut self, i: usize, crash: Crash, inner: &Step) -> Result<(), String> {
        let at = crash.at;
        self.counts.crashes += 1;
        let seen = Arc::new(AtomicU32::new(0));
        let in_tx = Arc::new(AtomicBool::new(false));
        let arm = |name: &str, inside: bool| {
            let (seen, in_tx) = (seen.clone(), in_tx.clone());
            upn_core::failpoint::on(name, move || {
                if seen.fetch_add(1, Ordering::SeqCst) + 1 == at {
                    in_tx.store(inside, Ordering::SeqCst);
                    std::panic::panic_any(SimCrash);
                }
            })
        };
        let guards = (
            (!crash.inside).then(|| arm(FAILPOINT_STORE_ACCESS, false)),
            arm(FAILPOINT_STORE_IN_TX, true),
        );
        let expecting = self.expect_storage_error;
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.exec(i, inner)));
        drop(guards);
        self.expect_storage_error = expecting;
        if in_tx.load(Ordering::SeqCst) {
            self.counts.crashes_in_tx += 1;
        }
        self.model.crashed_steps.insert(i);
        match outcome {
            Ok(Err(e)) => return Err(e),
            Err(payload) if payload.downcast_ref::<SimCrash>().is_none() => {
                return Err(format!("the core panicked: {}", panic_text(&payload)));
            }
            _ => {}
        }
        self.reopen()
    }

    fn work(&mut self, i: usize, step: &Step) -> Result<(), String> {
        let now = self.clock.now();
        match step {
            Step::Import => self.call(self.driver()?.import_now().map(drop)),
            Step::PullTracking => self.call(self.driver()?.pull_tracking_now().map(drop)),
            Step::Drain { budget_ms } => self.call(
                self.driver()?
                    .drain(Duration::from_millis(*budget_ms))
                    .map(drop),
            ),
            Step::Flush => self.call(self.driver()?.flush_now().map(drop)),
            Step::Sign { stop, seed } => {
                let barcode = self.capture_target(*stop);
                let png = sample(&SIGNATURES, *seed, upn_sim::samples::signature_png);
                let signed = self
                    .driver()?
                    .sign(&barcode, &png, "A. Consignee", now, None);
                match signed {
                    Ok(s) => {
                        if let Some(old) = s.replaced {
                            self.model.gone.insert(old, i);
                        }
                        self.model.captured.push(Captured {
                            id: s.item.id.clone(),
                            barcode,
                            kind: CaptureKind::Pod,
                            sha256: sha256_hex(&png),
                        });
                        Ok(())
                    }
                    Err(e) => self.call::<()>(Err(e)),
                }
            }
            Step::Photo { stop, seed, kind } => {
                let barcode = self.capture_target(*stop);
                let kind = [
                    CaptureKind::Goods,
                    CaptureKind::Location,
                    CaptureKind::LeaveSafe,
                ][*kind as usize % 3];
                let jpeg = sample(&PHOTOS, *seed, |s| {
                    upn_sim::samples::photo_jpeg(s, 320, 240)
                });
                match self.driver()?.add_photo(&barcode, &jpeg, kind, now, None) {
                    Ok(item) => {
                        self.model.captured.push(Captured {
                            id: item.id.clone(),
                            barcode,
                            kind,
                            sha256: sha256_hex(&jpeg),
                        });
                        Ok(())
                    }
                    Err(e) => self.call::<()>(Err(e)),
                }
            }
            Step::Discard { nth } => {
                let pending = self.driver()?.outbox().map_err(|e| e.to_string())?;
                if pending.is_empty() {
                    return Ok(());
                }
                let id = pending[*nth as usize % pending.len()].id.clone();
                match self.driver()?.discard(&id) {
                    Ok(_) => {
                        self.model.gone.insert(id, i);
                        Ok(())
                    }
                    Err(e) => self.call::<()>(Err(e)),
                }
            }
            Step::Retry { nth } => {
                let pending = self.driver()?.outbox().map_err(|e| e.to_string())?;
                if pending.is_empty() {
                    return Ok(());
                }
                let id = pending[*nth as usize % pending.len()].id.clone();
                self.call(self.driver()?.retry(&id).map(drop))
            }
            Step::RetryAll => self.call(self.driver()?.retry_all().map(drop)),
            Step::Online(on) => {
                self.counts.flaps += 1;
                self.upn.set_online(*on);
                Ok(())
            }
            Step::Faults(mix) => {
                self.upn
                    .set_faults(FAULT_MIXES[*mix as usize % FAULT_MIXES.len()]);
                Ok(())
            }
            Step::ImagesEnabled(on) => {
                self.upn.set_images_enabled(*on);
                Ok(())
            }
            Step::Cancel { stop } => {
                self.upn.cancel(&self.barcode(*stop));
                Ok(())
            }
            Step::Update { stop } => {
                self.upn
                    .update(&self.barcode(*stop), &format!("gate code {i}"));
                Ok(())
            }
            Step::Event {
                stop,
                stage,
                pallet,
                late_min,
            } => {
                let barcode = self.barcode(*stop);
                let pallet = pallet
                    .then(|| self.upn.pallets(&barcode).into_iter().next())
                    .flatten();
                let at =
                    (*late_min > 0).then(|| now - chrono::Duration::minutes(i64::from(*late_min)));
                self.upn
                    .push_event(&barcode, pallet, STAGES[*stage as usize % STAGES.len()], at);
                Ok(())
            }
            Step::Clock { secs } => {
                self.counts.clock_jumps += 1;
                if *secs < 0 {
                    self.counts.clock_back += 1;
                }
                self.clock.advance(chrono::Duration::seconds(*secs));
                Ok(())
            }
            Step::Wake => {
                self.wake()?;
                Ok(())
            }
            Step::Reopen => self.reopen(),
            Step::DiskFull(_) | Step::Crash(..) | Step::Busy(..) | Step::InboxFull(_) => {
                self.exec(i, step)
            }
        }
    }

    /// Moves the clock to the outbox's next wake-up (an hour on when nothing waits).
    pub fn wake(&mut self) -> Result<(), String> {
        let now = self.clock.now();
        let next = self
            .driver()?
            .next_outbox_wake()
            .map_err(|e| format!("next_outbox_wake: {e}"))?;
        let at = next.unwrap_or(now + chrono::Duration::hours(1));
        if at > now {
            self.clock.advance(at - now);
        }
        Ok(())
    }

    /// A refused call is an answer, not a failure, unless it is a storage error nobody caused.
    fn call<T>(&self, result: upn_core::Result<T>) -> Result<(), String> {
        match result {
            Ok(_) => Ok(()),
            Err(e @ (Error::Storage { .. } | Error::Io { .. } | Error::Busy))
                if !self.expect_storage_error =>
            {
                Err(format!("unexpected storage error: {e}"))
            }
            Err(Error::Busy) => {
                self.busy_errors.set(self.busy_errors.get() + 1);
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    /// Heals everything and lets the core catch up, as a long spell of good signal would.
    pub fn settle(&mut self) -> Result<(), String> {
        self.upn.set_faults("");
        self.upn.set_online(true);
        self.upn.set_images_enabled(true);
        for _ in 0..12 {
            let d = self.driver()?;
            self.call(d.import_now().map(drop))?;
            self.call(d.pull_tracking_now().map(drop))?;
            self.call(d.retry_all().map(drop))?;
            self.call(d.flush_now().map(drop))?;
            let stats = d.outbox_stats().map_err(|e| e.to_string())?;
            if stats.queued + stats.sending == 0 {
                break;
            }
            self.wake()?;
        }
        self.counts.upn_faults = self
            .upn
            .log
            .lock()
            .map(|l| l.faults.clone())
            .unwrap_or_default();
        Ok(())
    }
}

static SIGNATURES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
static PHOTOS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

/// One of a few sample captures made once per process: encoding one per step would cost more
/// than the step. Distinct captures may carry the same bytes; their keys still differ.
fn sample(cache: &OnceLock<Vec<Vec<u8>>>, seed: u64, make: impl Fn(u64) -> Vec<u8>) -> Vec<u8> {
    let all = cache.get_or_init(|| (0..16).map(&make).collect());
    all[(seed % 16) as usize].clone()
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}
