//! The FFI surface driven from Rust against the in-process simulator: what the Kotlin tests do
//! through the generated bindings, plus what only Rust can provoke (a panicking listener).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use upn_sim::{samples, SimConfig, SimHandle, Simulator};

use super::*;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    // Any executor will do; the core's work runs on its own threads.
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(f)
}

fn sim() -> SimHandle {
    Simulator::start_background(
        SimConfig {
            seed: 11,
            consignments: 4,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("an address"),
    )
    .expect("the simulator starts")
}

fn config(sim: &SimHandle) -> CoreConfig {
    CoreConfig::new(sim.endpoint(), sim.depot(), ApiKey::new(sim.api_key()))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Default)]
struct Recorder {
    stops: Mutex<Vec<StopRecord>>,
    items: Mutex<Vec<OutboxItemRecord>>,
    lists: Mutex<Vec<StopListUpdateRecord>>,
    progress: AtomicU32,
}

impl DriverListener for Recorder {
    fn on_stop_changed(&self, stop: StopRecord) {
        self.stops.lock().unwrap().push(stop);
    }
    fn on_stop_list_changed(&self, update: StopListUpdateRecord) {
        self.lists.lock().unwrap().push(update);
    }
    fn on_outbox_item_changed(&self, item: OutboxItemRecord) {
        self.items.lock().unwrap().push(item);
    }
    fn on_upload_progress(&self, _: UploadProgressRecord) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Throws on every call, as a buggy app listener would.
struct Thrower(AtomicU32);

impl DriverListener for Thrower {
    fn on_stop_changed(&self, _: StopRecord) {
        self.0.fetch_add(1, Ordering::Relaxed);
        panic!("listener bug");
    }
    fn on_stop_list_changed(&self, _: StopListUpdateRecord) {
        panic!("listener bug");
    }
    fn on_outbox_item_changed(&self, _: OutboxItemRecord) {
        self.0.fetch_add(1, Ordering::Relaxed);
        panic!("listener bug");
    }
    fn on_upload_progress(&self, _: UploadProgressRecord) {
        panic!("listener bug");
    }
}

#[test]
fn a_panic_becomes_an_internal_error() {
    let r: Result<(), CoreError> = guard("probe", || panic!("boom"));
    assert!(matches!(r, Err(CoreError::Internal { reason }) if !reason.contains("boom")));
    // On the core's runtime too: the runtime catches the task's panic; its message stays out.
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let core = DriverCore::open(dir.path().to_string_lossy().into(), config(&sim)).unwrap();
    let driver = core.driver().unwrap();
    let r: Result<u8, CoreError> = block_on(blocking(driver.clone(), "probe", |_| panic!("boom")));
    assert!(matches!(r, Err(CoreError::Internal { reason }) if !reason.contains("boom")));
    assert_eq!(block_on(blocking(driver, "probe", |_| Ok(7))), Ok(7));
}

#[test]
fn sync_now_sends_a_queued_pod_when_the_import_fails() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let core = DriverCore::open(dir.path().to_string_lossy().into(), config(&sim)).unwrap();
    block_on(core.import_now()).unwrap();
    let barcode = core.stops().unwrap()[0].barcode.clone();
    block_on(core.sign(
        barcode.clone(),
        samples::signature_png(8),
        "Ana Diaz".into(),
        now_ms(),
        None,
        None,
    ))
    .unwrap();
    // The feed breaks; the POD for a stop already on the device must still go.
    sim.set_faults("consignments:500:1".parse().unwrap());
    let synced = block_on(core.sync_now()).unwrap();
    assert_eq!(synced.outcome, SyncOutcome::Offline, "{synced:?}");
    assert!(synced.import.is_none(), "{synced:?}");
    assert!(
        synced
            .import_error
            .as_deref()
            .is_some_and(|e| e.contains("500")),
        "{synced:?}"
    );
    assert_eq!(synced.flush.sent, 1, "{synced:?}");
    assert_eq!(synced.flush_error, None);
    assert_eq!(synced.pending, 0);
    assert!(synced.tracking.is_some(), "{synced:?}");
    let pods = sim.received().pods;
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].barcode, barcode);

    sim.set_faults(upn_sim::FaultSpec::none());
    let synced = block_on(core.sync_now()).unwrap();
    assert_eq!(synced.outcome, SyncOutcome::Done, "{synced:?}");
    assert!(synced.import.is_some() && synced.import_error.is_none());
}

/// A UPN that takes one request and never answers. Says when the request has arrived (on a
/// runtime-agnostic oneshot) and when the client closed the connection (it let go).
fn silent_upn() -> (
    String,
    tokio::sync::oneshot::Receiver<()>,
    std::sync::mpsc::Receiver<()>,
) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (arrived, arrived_rx) = tokio::sync::oneshot::channel();
    let (closed, closed_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 4096];
        if matches!(conn.read(&mut buf), Ok(n) if n > 0) {
            let _ = arrived.send(());
        }
        // Nothing is ever answered; a read ends only when the client closes its side.
        while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
        let _ = closed.send(());
    });
    (endpoint, arrived_rx, closed_rx)
}

#[test]
fn cancelling_an_async_call_stops_its_work_on_the_core() {
    let (endpoint, arrived, closed) = silent_upn();
    let dir = tempfile::tempdir().unwrap();
    let cfg = CoreConfig {
        endpoint,
        depot_code: "042".into(),
        ..config(&sim())
    };
    let core = DriverCore::open(dir.path().to_string_lossy().into(), cfg).unwrap();
    // The coroutine is cancelled once its request is at UPN: its future is dropped.
    block_on(async {
        tokio::select! {
            _ = core.import_now() => panic!("a silent UPN answered"),
            got = arrived => got.expect("the import's request reached UPN"),
        }
    });
    // The import's work stopped: it let go of its request long before the client's timeout
    // (60 s) would have ended it.
    closed
        .recv_timeout(Duration::from_secs(20))
        .expect("the cancelled import stopped and closed its connection");
    assert!(core.stops().unwrap().is_empty());
    block_on(core.shutdown(1_000));
}

#[test]
fn a_whole_delivery_through_the_ffi_surface() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let core = DriverCore::open(dir.path().to_string_lossy().into(), config(&sim)).unwrap();
    assert!(!core.is_online());
    let imported = block_on(core.import_now()).unwrap();
    assert_eq!(imported.added, 4);
    let stops = core.stops().unwrap();
    assert_eq!(stops.len(), 4);
    assert!(stops.iter().all(|s| s.sync == SyncBadge::NothingCaptured));
    let barcode = stops[0].barcode.clone();

    let recorder = Arc::new(Recorder::default());
    let handle = core.subscribe(recorder.clone()).unwrap();
    assert_eq!(
        recorder.stops.lock().unwrap().len(),
        4,
        "replays the stops first"
    );
    // A listener that throws on every call must not disturb anything.
    let thrower = Arc::new(Thrower(AtomicU32::new(0)));
    let _thrower_handle = core.subscribe(thrower.clone()).unwrap();

    let photo = samples::photo_jpeg(3, 640, 480);
    let item = block_on(core.add_photo(
        barcode.clone(),
        photo,
        PhotoKind::Goods,
        now_ms(),
        Some(GpsFixRecord {
            lat: stops[0].lat,
            lon: stops[0].lon,
            accuracy_m: 6.0,
            fix_at_ms: now_ms() - 1_000,
        }),
        None,
    ))
    .unwrap();
    assert_eq!(item.state, OutboxState::Waiting);
    assert_eq!(item.kind, CaptureKind::Goods);
    let signed = block_on(core.sign(
        barcode.clone(),
        samples::signature_png(3),
        "  Jo   Patel ".into(),
        now_ms(),
        None,
        None,
    ))
    .unwrap();
    assert_eq!(signed.item.state, OutboxState::Queued);
    assert!(!signed.stale_gps);
    assert_eq!(core.outbox().unwrap().len(), 2);

    core.set_online(true);
    wait_until("the outbox to empty", || {
        core.outbox().map(|o| o.is_empty()).unwrap_or(false)
    });
    let detail = core.consignment(barcode.clone()).unwrap();
    assert_eq!(detail.sync, SyncBadge::Sent);
    let pod = detail.pod.expect("a POD");
    assert_eq!(pod.signed_by.as_deref(), Some("Jo Patel"));
    assert_eq!(pod.state, OutboxState::Sent);
    assert!(pod.upn_reference.is_some());
    assert_eq!(detail.photos.len(), 1);
    assert!(detail.photos[0].gps.is_some());
    wait_until("the listener to hear the stop is sent", || {
        recorder
            .stops
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.barcode == barcode && s.sync == SyncBadge::Sent)
    });
    assert!(recorder.progress.load(Ordering::Relaxed) > 0);
    assert!(thrower.0.load(Ordering::Relaxed) > 0);
    let received = sim.received();
    assert_eq!(received.pods.len(), 1);
    assert_eq!(received.images.len(), 1);

    // Dropped or cancelled: no more calls.
    let dropped = Arc::new(Recorder::default());
    let dropped_handle = core.subscribe(dropped.clone()).unwrap();
    drop(dropped_handle);
    let heard_by_dropped = dropped.stops.lock().unwrap().len();
    handle.cancel();
    assert!(!handle.is_active());
    let before = recorder.items.lock().unwrap().len();
    block_on(core.add_photo(
        barcode.clone(),
        samples::photo_jpeg(4, 640, 480),
        PhotoKind::Location,
        now_ms(),
        None,
        None,
    ))
    .unwrap();
    assert_eq!(recorder.items.lock().unwrap().len(), before);
    assert_eq!(dropped.stops.lock().unwrap().len(), heard_by_dropped);
    assert!(dropped.items.lock().unwrap().is_empty());

    let diagnostics = core.diagnostics().unwrap();
    assert_eq!(diagnostics.stops, 4);
    assert_eq!(diagnostics.depot_code, sim.depot());

    // Tracking: UPN's event arrives through sync_now, the timeline shows it and the device's POD.
    sim.push_events(vec![upn_sim::NewEvent {
        barcode: barcode.clone(),
        pallet: None,
        capture_type: "C".into(),
        stage: "OUT_FOR_DELIVERY".into(),
        at: Some(chrono::Utc::now() - chrono::Duration::minutes(30)),
    }]);
    let synced = block_on(core.sync_now()).unwrap();
    let tracking = synced.tracking.expect("tracking pulled");
    assert!(tracking.applied >= 1, "{tracking:?}");
    let timeline = core.timeline(barcode.clone()).unwrap();
    assert!(timeline
        .consignment
        .iter()
        .any(|e| !e.from_device && e.stage == "OUT_FOR_DELIVERY"));
    assert!(timeline
        .consignment
        .iter()
        .any(|e| e.from_device && e.stage == "DELIVERED"));
    let health = core.tracking_health().unwrap();
    assert!(health.last_success_at_ms.is_some());
    assert!(!health.stale);

    block_on(core.shutdown(2_000));
    assert_eq!(core.stops(), Err(CoreError::ShutDown));
    assert!(!core.is_online());
    core.set_online(true); // ignored, no panic
    block_on(core.shutdown(0)); // idempotent
}

#[test]
fn errors_are_typed() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let mut bad = config(&sim);
    bad.depot_code = " ".into();
    let refused = DriverCore::open(dir.path().to_string_lossy().into(), bad);
    assert!(matches!(refused, Err(CoreError::InvalidInput { field, .. }) if field == "depot"));

    let core = DriverCore::open(dir.path().to_string_lossy().into(), config(&sim)).unwrap();
    assert!(matches!(
        core.consignment("UPN0429999999".into()),
        Err(CoreError::NotFound { .. })
    ));
    block_on(core.import_now()).unwrap();
    let barcode = core.stops().unwrap()[0].barcode.clone();
    let blank = block_on(core.sign(
        barcode.clone(),
        samples::blank_png(600, 200),
        "Jo".into(),
        now_ms(),
        None,
        None,
    ));
    assert!(matches!(blank, Err(CoreError::InvalidInput { field, .. }) if field == "signature"));
    let future = block_on(core.add_photo(
        barcode.clone(),
        samples::photo_jpeg(1, 640, 480),
        PhotoKind::Goods,
        now_ms() + 3_600_000,
        None,
        None,
    ));
    assert!(matches!(future, Err(CoreError::InvalidInput { field, .. }) if field == "captured_at"));
    let out_of_range = block_on(core.add_photo(
        barcode,
        samples::photo_jpeg(1, 640, 480),
        PhotoKind::Goods,
        i64::MAX,
        None,
        None,
    ));
    assert!(
        matches!(out_of_range, Err(CoreError::InvalidInput { field, .. }) if field == "captured_at_ms")
    );

    let mut wrong_key = config(&sim);
    wrong_key.api_key = ApiKey::new("not-the-key".into());
    let other = tempfile::tempdir().unwrap();
    let core = DriverCore::open(other.path().to_string_lossy().into(), wrong_key).unwrap();
    assert_eq!(block_on(core.import_now()), Err(CoreError::Unauthorized));
}

#[test]
fn a_second_core_on_the_same_data_folder_is_already_open_until_the_first_shuts_down() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let path: String = dir.path().to_string_lossy().into();
    let first = DriverCore::open(path.clone(), config(&sim)).unwrap();
    let second = DriverCore::open(path.clone(), config(&sim));
    assert!(
        matches!(&second, Err(CoreError::AlreadyOpen { reason }) if reason.contains("in use")),
        "{second:?}"
    );
    block_on(first.shutdown(5_000));
    DriverCore::open(path, config(&sim)).expect("free again after shutdown");
}

#[test]
fn an_app_without_a_rust_subscriber_still_keeps_recent_log_lines_for_support() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let core = DriverCore::open(dir.path().to_string_lossy().into(), config(&sim)).unwrap();
    block_on(core.import_now()).expect("import");
    let log = std::fs::read_to_string(dir.path().join("logs").join("core.log")).expect("log file");
    assert!(log.contains("consignments imported"), "{log}");
    assert!(!log.contains(&sim.api_key()), "no key in the log");
    block_on(core.shutdown(5_000));
}

#[test]
fn the_stop_list_replays_as_one_version_and_a_signed_stop_is_done_on_device() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let core = DriverCore::open(dir.path().to_string_lossy().into(), config(&sim)).unwrap();
    block_on(core.import_now()).unwrap();
    let recorder = Arc::new(Recorder::default());
    let _handle = core.subscribe(recorder.clone()).unwrap();
    let replay = recorder
        .lists
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("the replay's list");
    assert_eq!(replay.stops, core.stops().unwrap());
    assert!(replay
        .changes
        .iter()
        .all(|c| c.kind == StopChangeKindRecord::Added));
    let barcode = replay.stops[0].barcode.clone();
    assert_eq!(replay.stops[0].phase, StopPhase::Open);

    block_on(core.sign(
        barcode.clone(),
        samples::signature_png(5),
        "Ana Ruiz".into(),
        now_ms(),
        None,
        None,
    ))
    .unwrap();
    let stop = core
        .stops()
        .unwrap()
        .into_iter()
        .find(|s| s.barcode == barcode)
        .unwrap();
    assert_eq!(stop.phase, StopPhase::DoneOnDevice);
    assert_eq!(stop.position, 4, "below the open stops");
    wait_until("the new version", || {
        recorder.lists.lock().unwrap().iter().any(|u| {
            u.seq > replay.seq
                && u.stops
                    .iter()
                    .any(|s| s.barcode == barcode && s.phase == StopPhase::DoneOnDevice)
        })
    });
}

#[test]
fn dropping_the_drain_future_cancels_the_drain_and_frees_the_core() {
    let sim = Simulator::start_background(
        SimConfig {
            seed: 12,
            consignments: 1,
            throttle_bytes_per_s: Some(40_000),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("an address"),
    )
    .expect("the simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let core = DriverCore::open(dir.path().to_string_lossy().into(), config(&sim)).unwrap();
    block_on(core.import_now()).unwrap();
    let barcode = core.stops().unwrap()[0].barcode.clone();
    block_on(core.sign(
        barcode.clone(),
        samples::signature_png(6),
        "Ola Berg".into(),
        now_ms(),
        None,
        None,
    ))
    .unwrap();
    block_on(core.add_photo(
        barcode,
        samples::photo_jpeg(6, 2400, 1800),
        PhotoKind::Goods,
        now_ms(),
        None,
        None,
    ))
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // The app's coroutine is cancelled while the photo is on its way: the future is dropped.
    let abandoned = runtime.block_on(async {
        tokio::time::timeout(Duration::from_millis(1_500), core.drain(120_000)).await
    });
    assert!(
        abandoned.is_err(),
        "the drain was still running: {abandoned:?}"
    );
    // The drain's thread lets go of the core within a second (it would upload for many more).
    let driver = core.driver().unwrap();
    let until = Instant::now() + Duration::from_secs(1);
    while Arc::strong_count(&driver) > 2 {
        assert!(Instant::now() < until, "the abandoned drain kept running");
        std::thread::yield_now();
    }
    drop(driver);
    // An explicit cancellation: returns at once, `Cancelled`, nothing lost.
    let cancellation = DrainCancellation::new();
    cancellation.cancel();
    let summary = block_on(core.drain_cancellable(60_000, cancellation)).unwrap();
    assert_eq!(summary.flush.ended, FlushEnd::Cancelled);
    assert_eq!(summary.pending, 1);
}

#[test]
fn the_data_saver_through_the_ffi_holds_photos_on_metered_and_refuses_a_bad_budget() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let core = DriverCore::open(dir.path().to_string_lossy().into(), config(&sim)).unwrap();
    block_on(core.import_now()).unwrap();
    let barcode = core.stops().unwrap()[0].barcode.clone();
    assert_eq!(core.data_saver(), Ok(DataSaver::Off));
    core.set_data_saver(DataSaver::PhotosOnUnmetered).unwrap();
    let bad = core.set_data_saver(DataSaver::MeteredPhotoBudget { bytes_per_day: 1 });
    assert!(
        matches!(&bad, Err(CoreError::InvalidInput { field, .. }) if field == "data_saver.bytes_per_day"),
        "{bad:?}"
    );
    assert_eq!(core.data_saver(), Ok(DataSaver::PhotosOnUnmetered));
    core.set_network(false, true);
    block_on(core.add_photo(
        barcode.clone(),
        samples::photo_jpeg(8, 640, 480),
        PhotoKind::Goods,
        now_ms(),
        None,
        None,
    ))
    .unwrap();
    block_on(core.sign(
        barcode,
        samples::signature_png(8),
        "Jo Patel".into(),
        now_ms(),
        None,
        None,
    ))
    .unwrap();
    let drain = block_on(core.drain(60_000)).unwrap();
    assert_eq!(
        (drain.flush.sent, drain.pending, drain.held_by_data_saver),
        (1, 1, 1)
    );
    let held = core.outbox().unwrap();
    assert_eq!(held[0].reason, Some(OutboxReason::HeldUntilUnmetered));
    let status = core.data_saver_status().unwrap();
    assert_eq!((status.metered, status.held), (true, 1));
    core.set_network(true, false);
    wait_until("the held photo is sent", || {
        sim.received().images.len() == 1
    });
    block_on(core.shutdown(2_000));
    core.set_network(true, true); // ignored after shutdown, no panic
    assert_eq!(core.data_saver(), Err(CoreError::ShutDown));
}
