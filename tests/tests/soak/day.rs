//! One seeded delivery day: the core (opened offline, so its background loops idle) against
//! the in-process UPN, driven step by step by the harness; crashes drop the core and open it
//! again on the same files. The model keeps what the app was told succeeded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use upn_core::clock::{Clock, ManualClock};
use upn_core::digest::sha256_hex;
use upn_core::domain::outbox::CaptureKind;
use upn_core::driver::{IdSource, Seams};
use upn_core::store::FAILPOINT_STORE_ACCESS;
use upn_core::upn::{ApiKey, DynUpnApi, UpnConfig};
use upn_core::{Driver, DriverConfig, Error};
use upn_sim::rng::SplitMix64;

use crate::plan::{Step, FAULT_MIXES, STAGES};
use crate::upn::{InProcessUpn, DEPOT, KEY};

/// Consignments in a day.
pub const STOPS: usize = 12;

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

/// Seeded capture ids: the same day gives the same keys, and they never repeat.
struct SeededIds(Mutex<SplitMix64>);

impl IdSource for SeededIds {
    fn next_id(&self) -> u128 {
        let mut rng = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
    }
}

#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub steps: u64,
    pub crashes: u64,
    pub reopens: u64,
    pub disk_full: u64,
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
    ids: Arc<SeededIds>,
    pub barcodes: Vec<String>,
    /// Consignments a capture was attempted on (the only ones that can have captures).
    pub touched: std::collections::BTreeSet<String>,
    pub model: Model,
    pub counts: Counts,
    /// Set while a step injects a local fault: storage errors are then expected.
    pub expect_storage_error: bool,
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
        let ids = Arc::new(SeededIds(Mutex::new(SplitMix64::for_stream(
            seed, "soak/ids",
        ))));
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
        self.counts.steps += 1;
        match step {
            Step::Crash(crash, inner) => self.crash(i, crash.at, inner),
            Step::DiskFull(inner) => {
                self.counts.disk_full += 1;
                let _full = upn_core::failpoint::inject_io_fault("blobs.disk_full");
                self.expect_storage_error = true;
                let result = self.work(i, inner);
                self.expect_storage_error = false;
                result
            }
            other => self.work(i, other),
        }
    }

    /// The inner step with a crash at its `at`-th store operation (or, if it makes fewer,
    /// right after it): the core is dropped mid-flight and opened again on the same files.
    fn crash(&mut self, i: usize, at: u32, inner: &Step) -> Result<(), String> {
        self.counts.crashes += 1;
        let seen = Arc::new(AtomicU32::new(0));
        let counter = seen.clone();
        let guard = upn_core::failpoint::on(FAILPOINT_STORE_ACCESS, move || {
            if counter.fetch_add(1, Ordering::SeqCst) + 1 == at {
                std::panic::panic_any(SimCrash);
            }
        });
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.work(i, inner)));
        drop(guard);
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
            Step::DiskFull(inner) | Step::Crash(_, inner) => self.work(i, inner),
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
            Err(e @ (Error::Storage { .. } | Error::Io { .. })) if !self.expect_storage_error => {
                Err(format!("unexpected storage error: {e}"))
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
