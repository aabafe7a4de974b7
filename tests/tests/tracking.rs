//! Tracking sync over real HTTP to the simulator, with a real SQLite file per test: C and P
//! events, duplicates, out-of-order and unknown stages, events before their consignment, a
//! malformed batch, staleness with a controllable clock, the 403 tracking refusal, scale, and
//! a pull that does not wait behind an upload.

use std::time::{Duration, Instant};

use chrono::Utc;
use upn_core::clock::Clock;
use upn_core::domain::outbox::{CaptureKind, ItemState};
use upn_core::domain::tracking::{to_millis, CaptureType, Source};
use upn_core::domain::Stage;
use upn_core::testing::store::{Store, DB_FILE_NAME};
use upn_core::upn::wire::stage;
use upn_core::upn::UpnError;
use upn_core::{Driver, DriverConfig, Error, Timeline};
use upn_e2e::{driver, driver_with_clock, manual_clock, photo, signature, sim, upn_config};
use upn_sim::wire::WireConsignment;
use upn_sim::{FaultSpec, NewEvent, SimConfig, SimHandle};

fn config(consignments: usize) -> SimConfig {
    SimConfig {
        seed: 31,
        consignments,
        ..SimConfig::default()
    }
}

fn event(barcode: &str, capture_type: &str, pallet: Option<&str>, stage: &str) -> NewEvent {
    NewEvent {
        barcode: barcode.to_string(),
        pallet: pallet.map(str::to_string),
        capture_type: capture_type.to_string(),
        stage: stage.to_string(),
        at: None,
    }
}

/// The first generated consignment with at least `n` pallets.
fn with_pallets(sim: &SimHandle, n: usize) -> WireConsignment {
    sim.consignments()
        .into_iter()
        .find(|c| c.pallets.len() >= n)
        .expect("a consignment with enough pallets")
}

fn stage_codes(entries: &[upn_core::TimelineEntry]) -> Vec<String> {
    entries.iter().map(|e| e.stage.code().to_string()).collect()
}

/// (consignment status code, each pallet's status code).
fn statuses(driver: &Driver, barcode: &str) -> (String, Vec<String>) {
    let d = driver.consignment(barcode).expect("consignment");
    (
        d.status.code(),
        d.pallets.iter().map(|(_, s)| s.code()).collect(),
    )
}

fn upn_error(result: upn_core::Result<impl std::fmt::Debug>) -> UpnError {
    match result {
        Err(Error::Upn(e)) => e,
        other => panic!("expected a UPN error, got {other:?}"),
    }
}

#[test]
fn c_events_move_the_consignment_and_every_pallet_p_events_only_their_pallet() {
    let sim = sim(config(12));
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    let c = with_pallets(&sim, 3);
    let (p0, p1) = (c.pallets[0].barcode.clone(), c.pallets[1].barcode.clone());

    // The simulator queued one BOOKED (C) per consignment at start.
    let report = t.driver.pull_tracking_now().expect("pull");
    assert_eq!(report.applied, 12);
    assert_eq!(report.waiting_for_consignment, 0);
    let n = c.pallets.len();
    assert_eq!(
        statuses(&t.driver, &c.barcode),
        ("booked".into(), vec!["booked".into(); n])
    );

    sim.push_events(vec![
        event(&c.barcode, "C", None, stage::OUT_FOR_DELIVERY),
        event(&c.barcode, "P", Some(&p1), stage::UNLOADED),
    ]);
    let report = t.driver.pull_tracking_now().expect("pull");
    assert_eq!(
        (report.applied, report.changed.clone()),
        (2, vec![c.barcode.clone()])
    );
    let (status, pallets) = statuses(&t.driver, &c.barcode);
    assert_eq!(
        status, "out_for_delivery",
        "a P event never moves the consignment"
    );
    for (i, s) in pallets.iter().enumerate() {
        let want = if i == 1 {
            "unloaded"
        } else {
            "out_for_delivery"
        };
        assert_eq!(s, want, "pallet {i}");
    }

    let timeline = t.driver.timeline(&c.barcode).expect("timeline");
    assert_eq!(
        stage_codes(&timeline.consignment),
        ["BOOKED", "OUT_FOR_DELIVERY", "UNLOADED"]
    );
    let unloaded = &timeline.consignment[2];
    assert_eq!(unloaded.capture_type, CaptureType::Pallet);
    assert_eq!(unloaded.pallet.as_deref(), Some(p1.as_str()));
    assert_eq!(unloaded.source, Source::Upn);
    assert!(
        unloaded.location.is_some(),
        "the simulator gives a location"
    );
    assert_eq!(
        stage_codes(timeline.pallet(&p1).expect("p1")),
        ["BOOKED", "OUT_FOR_DELIVERY", "UNLOADED"]
    );
    assert_eq!(
        stage_codes(timeline.pallet(&p0).expect("p0")),
        ["BOOKED", "OUT_FOR_DELIVERY"]
    );
    assert_eq!(timeline.pallets.len(), n);

    // A later C event moves every pallet, the unloaded one included.
    sim.push_events(vec![event(&c.barcode, "C", None, stage::DELIVERED)]);
    t.driver.pull_tracking_now().expect("pull");
    assert_eq!(
        statuses(&t.driver, &c.barcode),
        ("delivered".into(), vec!["delivered".into(); n])
    );
}

#[test]
fn a_batch_delivered_twice_applies_once() {
    let sim = sim(config(4));
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    let first = t.driver.pull_tracking_now().expect("pull");
    assert_eq!(first.applied, 4);
    let barcode = sim.consignments()[0].barcode.clone();
    let before: Timeline = t.driver.timeline(&barcode).expect("timeline");

    // The same response body stored again (a replay): processed first by the next pull.
    {
        let mut store = Store::open(&t.data.path().join(DB_FILE_NAME)).expect("store");
        let body = store
            .tracking_batch(1)
            .expect("read")
            .expect("batch 1")
            .body;
        store
            .store_tracking_response(&body, None, Utc::now())
            .expect("store replay");
    }
    let report = t.driver.pull_tracking_now().expect("pull");
    assert_eq!(report.resumed, 1);
    assert_eq!((report.applied, report.duplicates), (0, 4));
    assert!(report.changed.is_empty());
    assert_eq!(t.driver.timeline(&barcode).expect("timeline"), before);
    let store = Store::open(&t.data.path().join(DB_FILE_NAME)).expect("store");
    assert_eq!(store.tracking_event_count().expect("count"), 4);
}

#[test]
fn out_of_order_events_never_move_a_status_backwards() {
    let sim = sim(config(3));
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    t.driver.pull_tracking_now().expect("pull");
    let barcode = sim.consignments()[0].barcode.clone();
    let now = Utc::now();
    sim.push_events(vec![NewEvent {
        at: Some(now),
        ..event(&barcode, "C", None, stage::DELIVERED)
    }]);
    t.driver.pull_tracking_now().expect("pull");
    // Older events arrive later (UPN's feed is in arrival order, not time order).
    sim.push_events(vec![
        NewEvent {
            at: Some(now - chrono::Duration::minutes(30)),
            ..event(&barcode, "C", None, stage::ARRIVED)
        },
        NewEvent {
            at: Some(now - chrono::Duration::minutes(90)),
            ..event(&barcode, "C", None, stage::OUT_FOR_DELIVERY)
        },
    ]);
    let report = t.driver.pull_tracking_now().expect("pull");
    assert_eq!(report.applied, 2);
    assert!(report.changed.is_empty(), "{report:?}");
    let (status, pallets) = statuses(&t.driver, &barcode);
    assert_eq!(status, "delivered");
    assert!(pallets.iter().all(|p| p == "delivered"), "{pallets:?}");
    // The timeline keeps every event, in time order.
    let timeline = t.driver.timeline(&barcode).expect("timeline");
    let codes = stage_codes(&timeline.consignment);
    assert_eq!(
        codes[codes.len() - 3..],
        ["OUT_FOR_DELIVERY", "ARRIVED", "DELIVERED"]
    );
    assert!(timeline.consignment.windows(2).all(|w| w[0].at <= w[1].at));

    // A complaint raised after delivery does show.
    sim.push_events(vec![event(&barcode, "C", None, stage::COMPLAINT_RAISED)]);
    t.driver.pull_tracking_now().expect("pull");
    assert_eq!(statuses(&t.driver, &barcode).0, "complaint_raised");
}

#[test]
fn unknown_stage_codes_are_kept_and_shown_verbatim() {
    let sim = sim(config(2));
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    let c = with_pallets(&sim, 1);
    sim.push_events(vec![
        event(&c.barcode, "C", None, "HELD_AT_HUB"),
        event(&c.barcode, "Z", None, "MYSTERY"),
    ]);
    let report = t.driver.pull_tracking_now().expect("pull");
    assert_eq!(report.applied, 4, "2 BOOKED + 2 new");
    let d = t.driver.consignment(&c.barcode).expect("detail");
    assert_eq!(d.status.code(), "HELD_AT_HUB");
    assert_eq!(d.status.label(), "HELD_AT_HUB");
    let timeline = t.driver.timeline(&c.barcode).expect("timeline");
    let last_two: Vec<_> = timeline.consignment[1..]
        .iter()
        .map(|e| (e.stage.clone(), e.capture_type.code().to_string()))
        .collect();
    assert!(last_two.contains(&(Stage::Other("HELD_AT_HUB".into()), "C".into())));
    // An unknown capture type is kept for the timeline, and changes no status.
    assert!(last_two.contains(&(Stage::Other("MYSTERY".into()), "Z".into())));
}

#[test]
fn events_before_their_consignment_apply_when_it_is_imported() {
    let sim = sim(config(5));
    let t = driver(&sim);
    // Tracking first: nothing is imported yet.
    let c = with_pallets(&sim, 2);
    sim.push_events(vec![
        event(&c.barcode, "C", None, stage::OUT_FOR_DELIVERY),
        event(
            &c.barcode,
            "P",
            Some(&c.pallets[1].barcode),
            stage::UNLOADED,
        ),
    ]);
    let report = t.driver.pull_tracking_now().expect("pull");
    assert_eq!(report.applied, 7);
    assert_eq!(report.waiting_for_consignment, 7);
    assert!(t.driver.stops().expect("stops").is_empty());
    // The timeline of a consignment not imported yet is already visible.
    let early = t
        .driver
        .timeline(&c.barcode)
        .expect("timeline before import");
    assert_eq!(early.consignment.len(), 3);

    t.driver.import_now().expect("import");
    let (status, pallets) = statuses(&t.driver, &c.barcode);
    assert_eq!(status, "out_for_delivery");
    assert_eq!(pallets[1], "unloaded");
    assert!(pallets
        .iter()
        .enumerate()
        .all(|(i, p)| i == 1 || p == "out_for_delivery"));
    let stops = t.driver.stops().expect("stops");
    assert!(stops
        .iter()
        .filter(|s| s.consignment.barcode != c.barcode)
        .all(|s| s.status.code() == "booked"));
    // A barcode nobody knows is still "not found".
    assert!(matches!(
        t.driver.timeline("UPN0429999999"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn a_malformed_batch_is_kept_failed_and_later_batches_still_apply() {
    let sim = sim(config(3));
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    sim.set_faults("events:garbage:1".parse::<FaultSpec>().expect("spec"));
    let report = t
        .driver
        .pull_tracking_now()
        .expect("a garbled body is not a UPN refusal");
    assert_eq!(
        (report.batches, report.failed_batches, report.applied),
        (1, 1, 0)
    );
    assert_eq!(
        sim.received().event_batches_handed_out,
        1,
        "UPN handed the batch out"
    );
    let health = t.driver.tracking_health().expect("health");
    assert_eq!(health.failed_batches.len(), 1);
    let failed = &health.failed_batches[0];
    assert!(failed.error.contains("malformed JSON"), "{}", failed.error);
    assert!(
        !failed.error.contains("Bad Gateway"),
        "the body leaked: {}",
        failed.error
    );
    assert!(failed.bytes > 0);
    assert!(health.last_success.is_none());
    assert!(health.advice().is_some());

    // UPN recovers: later batches apply; the failed one stays, kept with its body.
    sim.set_faults(FaultSpec::none());
    let barcode = sim.consignments()[0].barcode.clone();
    sim.push_events(vec![event(&barcode, "C", None, stage::OUT_FOR_DELIVERY)]);
    let report = t.driver.pull_tracking_now().expect("pull");
    assert_eq!((report.applied, report.failed_batches), (1, 0));
    assert_eq!(statuses(&t.driver, &barcode).0, "out_for_delivery");
    let health = t.driver.tracking_health().expect("health");
    assert_eq!(health.failed_batches.len(), 1);
    assert!(health.last_success.is_some());
    assert_eq!(health.last_error, None);
    let store = Store::open(&t.data.path().join(DB_FILE_NAME)).expect("store");
    let kept = store
        .tracking_batch(health.failed_batches[0].id)
        .expect("read")
        .expect("kept");
    assert_eq!(kept.body.len() as u64, health.failed_batches[0].bytes);
}

/// Polls until `check` holds (the engine works on its own threads).
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tracking_is_stale_after_15_minutes_online_without_a_successful_pull() {
    let sim = sim(config(2));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    let health = t.driver.tracking_health().expect("health");
    assert!(!health.stale && health.last_success.is_none());

    // Going online pulls at once (the engine), and the pull succeeds.
    t.driver.set_online(true);
    wait_until("the first scheduled pull", || {
        t.driver.last_tracking_sync().expect("last").is_some()
    });
    // Stored to the millisecond.
    let start = to_millis(clock.now());
    assert_eq!(t.driver.last_tracking_sync().expect("last"), Some(start));
    clock.advance(chrono::Duration::minutes(14));
    assert!(!t.driver.tracking_health().expect("health").stale);
    clock.advance(chrono::Duration::minutes(1));
    let health = t.driver.tracking_health().expect("health");
    assert!(health.stale, "{health:?}");
    assert!(health.advice().expect("advice").contains("15+ minutes"));

    // Offline, nothing could have been pulled: not stale.
    t.driver.set_online(false);
    assert!(!t.driver.tracking_health().expect("health").stale);

    // A pull that fails keeps it stale (going online again pulls at once, and fails too);
    // one that succeeds clears it.
    sim.set_faults("events:503:1".parse::<FaultSpec>().expect("spec"));
    t.driver.set_online(true);
    assert!(upn_error(t.driver.pull_tracking_now()).is_recoverable());
    let health = t.driver.tracking_health().expect("health");
    assert!(health.stale);
    assert_eq!(health.last_success, Some(start));
    assert!(health.last_error.expect("error").contains("503"));
    sim.set_faults(FaultSpec::none());
    t.driver.pull_tracking_now().expect("pull");
    let health = t.driver.tracking_health().expect("health");
    assert!(!health.stale);
    assert_eq!(health.last_success, Some(to_millis(clock.now())));
}

#[test]
fn tracking_action_not_enabled_is_reported_as_such_with_what_to_do() {
    let sim = sim(config(2));
    sim.set_access(true, false, true);
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    let e = upn_error(t.driver.pull_tracking_now());
    assert_eq!(e, UpnError::TrackingActionDisabled);
    assert!(!e.is_recoverable());
    let text = e.to_string();
    assert!(text.contains("tracking action"), "{text}");
    assert!(
        text.contains("ask UPN IT to enable the tracking action for the depot"),
        "{text}"
    );
    assert_eq!(sim.received().event_batches_handed_out, 0);

    // Never succeeded while online: stale 15 minutes after the first attempt, saying why.
    t.driver.set_online(true);
    let health = t.driver.tracking_health().expect("health");
    assert!(!health.stale);
    assert_eq!(health.last_error.as_deref(), Some(text.as_str()));
    clock.advance(chrono::Duration::minutes(16));
    let health = t.driver.tracking_health().expect("health");
    assert!(health.stale);
    assert!(health
        .advice()
        .expect("advice")
        .contains("ask UPN IT to enable the tracking action for the depot"));

    // Once UPN enables it, the pull works and the import is unaffected throughout.
    t.driver
        .import_now()
        .expect("import works without the tracking action");
    sim.set_access(true, true, true);
    t.driver.pull_tracking_now().expect("pull");
    assert!(!t.driver.tracking_health().expect("health").stale);
    let barcode = sim.consignments()[0].barcode.clone();
    assert_eq!(statuses(&t.driver, &barcode).0, "booked");
}

#[test]
fn a_hundred_thousand_events_arrive_in_a_handful_of_batches() {
    const EVENTS: usize = 100_000;
    let sim = sim(config(20));
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    let barcodes: Vec<String> = sim.consignments().into_iter().map(|c| c.barcode).collect();
    let stages = [
        stage::OUT_FOR_DELIVERY,
        stage::ARRIVED,
        stage::UNLOADED,
        "HELD_AT_HUB",
    ];
    sim.push_events(
        (0..EVENTS - barcodes.len())
            .map(|i| {
                event(
                    &barcodes[i % barcodes.len()],
                    "C",
                    None,
                    stages[i % stages.len()],
                )
            })
            .collect(),
    );
    let started = Instant::now();
    let report = t.driver.pull_tracking_now().expect("pull");
    let took = started.elapsed();
    assert_eq!(report.applied as usize, EVENTS);
    // UPN hands out at most 5000 per batch; the pull starts at 500 and grows to 5000 on
    // loopback at once: 21 responses, each one inbox commit and one apply commit, never one
    // commit per event.
    assert!(report.batches <= 22, "{} batches", report.batches);
    assert_eq!(report.batch_size, 5000);
    assert_eq!(report.remaining, 0);
    assert_eq!(
        sim.received().event_batches_handed_out,
        u64::from(report.batches)
    );
    let store = Store::open(&t.data.path().join(DB_FILE_NAME)).expect("store");
    assert_eq!(store.tracking_event_count().expect("count"), EVENTS as u64);
    assert!(store
        .pending_tracking_batches()
        .expect("pending")
        .is_empty());
    eprintln!("{EVENTS} events pulled and applied in {took:?}");
}

#[test]
fn a_tracking_pull_does_not_wait_behind_a_long_upload() {
    let sim = sim(config(2));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    t.driver.pull_tracking_now().expect("pull");
    let barcode = sim.consignments()[0].barcode.clone();
    t.driver
        .sign(&barcode, &signature(3), "Pat Long", clock.now(), None)
        .expect("sign");
    t.driver
        .add_photo(&barcode, &photo(3), CaptureKind::Goods, clock.now(), None)
        .expect("photo");
    // Every image upload takes UPN 2 seconds.
    sim.set_faults("image:slow:1".parse::<FaultSpec>().expect("spec"));
    t.driver.set_online(true);
    wait_until("the photo upload to start", || {
        t.driver
            .outbox()
            .expect("outbox")
            .iter()
            .any(|i| i.kind.is_photo() && i.state == ItemState::Sending)
    });
    sim.push_events(vec![event(&barcode, "C", None, stage::ARRIVED)]);
    let started = Instant::now();
    t.driver.pull_tracking_now().expect("pull");
    let took = started.elapsed();
    // (The engine's own scheduled pull may be the one that applied it.)
    assert_eq!(statuses(&t.driver, &barcode).0, "arrived");
    assert!(
        took < Duration::from_millis(1500),
        "the pull waited {took:?}"
    );
    assert!(
        t.driver
            .outbox()
            .expect("outbox")
            .iter()
            .any(|i| i.kind.is_photo() && i.state == ItemState::Sending),
        "the upload was still going when the pull finished"
    );
}

#[test]
fn the_timeline_shows_the_pod_captured_on_this_device() {
    let sim = sim(config(1));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    t.driver.pull_tracking_now().expect("pull");
    let barcode = sim.consignments()[0].barcode.clone();
    let fix = upn_core::domain::capture::GpsFix::new(52.48, -1.89, 5.0, clock.now());
    t.driver
        .sign(&barcode, &signature(5), "Sam Door", clock.now(), Some(fix))
        .expect("sign");
    let timeline = t.driver.timeline(&barcode).expect("timeline");
    let device: Vec<_> = timeline
        .consignment
        .iter()
        .filter(|e| e.source == Source::Device)
        .collect();
    assert_eq!(device.len(), 1);
    assert_eq!(device[0].stage, Stage::Delivered);
    assert_eq!(device[0].location.as_ref().and_then(|l| l.lat), Some(52.48));
    // The device's own capture does not change UPN's status.
    assert_eq!(statuses(&t.driver, &barcode).0, "booked");
}

#[test]
fn stored_batches_are_processed_at_open_before_anything_else() {
    let sim = sim(config(3));
    let data = tempfile::tempdir().expect("tempdir");
    let open = || Driver::open(DriverConfig::new(data.path(), upn_config(&sim))).expect("open");
    {
        let driver = open();
        driver.import_now().expect("import");
        driver.shutdown(Duration::from_secs(1));
    }
    // A response stored by a run that died before processing it.
    let barcode = sim.consignments()[0].barcode.clone();
    let body = serde_json::json!({
        "server_time": Utc::now(),
        "batch_id": "B999",
        "events": [{
            "id": "EV-STORED-1", "barcode": barcode, "capture_type": "C",
            "stage": "OUT_FOR_DELIVERY", "at": Utc::now()
        }],
        "remaining": 0
    });
    Store::open(&data.path().join(DB_FILE_NAME))
        .expect("store")
        .store_tracking_response(body.to_string().as_bytes(), None, Utc::now())
        .expect("store response");
    let driver = open();
    // Offline, no pull: processed at open.
    assert_eq!(statuses(&driver, &barcode).0, "out_for_delivery");
    assert_eq!(driver.tracking_health().expect("health").pending_batches, 0);
    assert_eq!(sim.received().event_batches_handed_out, 0);
}

/// Hole 4: on a slow link a full batch takes long to arrive. The consuming GET waits on read
/// progress (an idle timeout), not a total deadline, so a body that keeps coming is received
/// and applied, not lost; and the next batch size fits what the link carries.
#[test]
fn a_slow_full_batch_is_received_and_applied_while_its_bytes_keep_coming() {
    use std::sync::Mutex;
    use upn_core::upn::http::{HttpUpn, Timeouts};
    const EVENTS: usize = 500;
    let sim = sim(SimConfig {
        throttle_bytes_per_s: Some(60_000),
        ..config(1)
    });
    let barcode = sim.consignments()[0].barcode.clone();
    // One BOOKED event is queued at start: 499 more fill the first 500-event batch.
    sim.push_events(
        (0..EVENTS - 1)
            .map(|_| event(&barcode, "C", None, "HELD_AT_HUB"))
            .collect(),
    );
    // Far shorter than the body takes: a total deadline this short would lose the batch.
    let timeouts = Timeouts {
        request: Duration::from_millis(700),
        read_idle: Duration::from_millis(700),
        ..Timeouts::default()
    };
    let client = HttpUpn::with_timeouts(upn_config(&sim), timeouts).expect("client");
    let data = tempfile::tempdir().expect("tempdir");
    let store = Mutex::new(Store::open(&data.path().join(DB_FILE_NAME)).expect("store"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let report = runtime
        .block_on(upn_core::testing::sync::tracking::pull_tracking(
            &client,
            &store,
            &upn_core::clock::SystemClock,
        ))
        .expect("a slow body that keeps coming is received");
    let took = started.elapsed();
    assert!(
        took > Duration::from_millis(1200),
        "not throttled: {took:?}"
    );
    assert_eq!(report.applied as usize, EVENTS);
    assert_eq!(sim.received().event_batches_handed_out, 1);
    let store = store.lock().expect("store");
    assert_eq!(store.tracking_event_count().expect("count"), EVENTS as u64);
    assert!(store
        .pending_tracking_batches()
        .expect("pending")
        .is_empty());
    // The size grew from the first 500 with the throughput measured (about the throttle's
    // rate), and both are kept for the next pull.
    assert!(report.batch_size > 500, "{}", report.batch_size);
    let measured: u64 = store
        .sync_state(upn_core::testing::store::keys::TRACKING_THROUGHPUT)
        .expect("state")
        .and_then(|v| v.parse().ok())
        .expect("throughput kept");
    assert!((10_000..=75_000).contains(&measured), "{measured} bytes/s");
    assert_eq!(
        store.tracking_batch_size().expect("size"),
        Some(report.batch_size)
    );
}

/// Hole 9 over HTTP: a batch with one malformed event applies its good events; the bad one is
/// kept aside with its reason and shows in the health.
#[test]
fn a_malformed_event_is_kept_aside_and_the_good_ones_of_its_batch_apply() {
    let sim = sim(config(2));
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    sim.push_events(vec![
        event(&barcode, "C", None, stage::OUT_FOR_DELIVERY),
        // An empty stage code: no status can come from it.
        event(&barcode, "C", None, ""),
    ]);
    let report = t.driver.pull_tracking_now().expect("pull");
    assert_eq!(report.failed_batches, 0, "the batch is not discarded");
    assert_eq!(report.malformed_events, 1);
    assert_eq!(report.applied, 3, "the two BOOKED and the OUT_FOR_DELIVERY");
    assert_eq!(statuses(&t.driver, &barcode).0, "out_for_delivery");
    let kept = t.driver.malformed_events().expect("malformed");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].reason, "stage is empty");
    let health = t.driver.tracking_health().expect("health");
    assert_eq!(health.malformed_events, 1);
    assert!(health.failed_batches.is_empty());
    assert!(health.advice().is_some());
}
