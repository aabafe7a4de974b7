//! ePOD, photos and the outbox over real HTTP to the simulator, with a real SQLite file and
//! capture folder per test.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use upn_core::domain::capture::GpsFix;
use upn_core::domain::outbox::{CaptureKind, ItemState, OutboxItem};
use upn_core::domain::SyncBadge;
use upn_core::listener::{DriverListener, UploadProgress};
use upn_core::Error;
use upn_core::FlushEnd;
use upn_e2e::{
    blob_files, driver_with_clock, flush_until_empty, manual_clock, photo, signature, sim,
};
use upn_sim::{FaultSpec, Received, SimConfig};

fn small(consignments: usize) -> SimConfig {
    SimConfig {
        seed: 21,
        consignments,
        ..SimConfig::default()
    }
}

fn fix(clock: &upn_core::clock::ManualClock) -> Option<GpsFix> {
    use upn_core::clock::Clock;
    Some(GpsFix::new(52.4862, -1.8904, 6.5, clock.now()))
}

/// Every POD and image exactly once, each image after its consignment's POD.
fn assert_exactly_once_pod_first(received: &Received, pods: usize, images: usize) {
    assert_eq!(received.pods.len(), pods, "{received:?}");
    assert_eq!(received.images.len(), images, "{received:?}");
    let keys: HashSet<_> = received
        .pods
        .iter()
        .map(|p| &p.idempotency_key)
        .chain(received.images.iter().map(|i| &i.idempotency_key))
        .collect();
    assert_eq!(keys.len(), pods + images, "a key was stored twice");
    for image in &received.images {
        let pod = received
            .pods
            .iter()
            .find(|p| p.barcode == image.barcode)
            .expect("an image arrived for a consignment without a POD");
        assert!(pod.seq < image.seq, "image before its POD: {received:?}");
    }
}

#[test]
fn photos_wait_for_the_signature_then_go_after_the_pod_exactly_once() {
    let sim = sim(small(3));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    let now = || {
        use upn_core::clock::Clock;
        clock.now()
    };

    // Offline at the door: two photos before the signature.
    let goods = t
        .driver
        .add_photo(&barcode, &photo(1), CaptureKind::Goods, now(), fix(&clock))
        .expect("photo");
    assert_eq!(goods.state, ItemState::Waiting);
    t.driver
        .add_photo(&barcode, &photo(2), CaptureKind::Location, now(), None)
        .expect("photo");
    assert_eq!(
        t.driver.stops().expect("stops")[..]
            .iter()
            .find(|s| s.consignment.barcode == barcode)
            .map(|s| s.sync),
        Some(SyncBadge::WaitingForSignature)
    );

    // Connectivity alone sends nothing: no signature yet.
    let report = t.driver.flush_now().expect("flush");
    assert_eq!(report.sent, 0);
    assert!(sim.received().images.is_empty());

    let signed = t
        .driver
        .sign(&barcode, &signature(1), "  Jo   Patel ", now(), fix(&clock))
        .expect("sign");
    assert_eq!(signed.item.state, ItemState::Queued);
    assert_eq!(signed.replaced, None);
    t.driver
        .add_photo(&barcode, &photo(3), CaptureKind::LeaveSafe, now(), None)
        .expect("photo after signing");

    let report = t.driver.flush_now().expect("flush");
    assert_eq!(
        (report.sent, report.ended),
        (4, FlushEnd::Done),
        "{report:?}"
    );
    let received = sim.received();
    assert_exactly_once_pod_first(&received, 1, 3);
    assert_eq!(received.pods[0].signed_by, "Jo Patel");
    assert!(received.pods.iter().all(|p| p.attempts == 1));
    assert!(received.images.iter().all(|i| i.attempts == 1));
    let mut kinds: Vec<_> = received.images.iter().map(|i| i.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["goods", "leave_safe", "location"]);

    // The device records what UPN acknowledged.
    assert!(t.driver.outbox().expect("outbox").is_empty());
    let detail = t.driver.consignment(&barcode).expect("detail");
    assert_eq!(detail.sync, SyncBadge::Sent);
    let pod = detail.pod.expect("pod");
    assert_eq!(pod.state, ItemState::Sent);
    assert!(pod.upn_reference.is_some() && pod.sent_at.is_some());
    assert_eq!(detail.photos.len(), 3);
    // Renditions are what went up: a resized JPEG, smaller than the original.
    for p in &detail.photos {
        let upload = p.upload.as_ref().expect("rendition");
        let sent = received
            .images
            .iter()
            .find(|i| i.idempotency_key == p.id)
            .expect("sent image");
        assert_eq!(sent.sha256, upload.sha256);
        assert!(
            upload.bytes < p.original.bytes,
            "{upload:?} vs {:?}",
            p.original
        );
    }
    // A photo after the POD went goes straight to the queue, and alone.
    let late = t
        .driver
        .add_photo(&barcode, &photo(4), CaptureKind::Goods, now(), None)
        .expect("late photo");
    assert_eq!(late.state, ItemState::Queued);
    flush_until_empty(&t, &clock, 3);
    assert_exactly_once_pod_first(&sim.received(), 1, 4);
    let stats = t.driver.outbox_stats().expect("stats");
    assert_eq!((stats.sent, stats.queued, stats.bytes_pending), (5, 0, 0));
    assert!(stats.last_success_at.is_some());
}

/// One test per fault kind: half the POD and image requests fail that way; everything still
/// arrives exactly once, PODs first.
macro_rules! fault_kind_tests {
    ($($name:ident: $kind:literal,)*) => {$(
        #[test]
        fn $name() {
            eventually_everything_arrives_once($kind);
        }
    )*};
}

fault_kind_tests! {
    fault_500: "500",
    fault_503: "503",
    fault_429_retry_after: "429",
    fault_drop: "drop",
    fault_lost_response: "lost-response",
    fault_truncate: "truncate",
    fault_garbage: "garbage",
    fault_slow: "slow",
}

fn eventually_everything_arrives_once(kind: &str) {
    let sim = sim(small(2));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    use upn_core::clock::Clock;
    for (i, c) in sim.consignments().iter().enumerate() {
        let seed = i as u64 * 10;
        t.driver
            .add_photo(
                &c.barcode,
                &photo(seed),
                CaptureKind::Goods,
                clock.now(),
                None,
            )
            .expect("photo");
        t.driver
            .sign(&c.barcode, &signature(seed), "A. Driver", clock.now(), None)
            .expect("sign");
        t.driver
            .add_photo(
                &c.barcode,
                &photo(seed + 1),
                CaptureKind::Location,
                clock.now(),
                None,
            )
            .expect("photo");
    }
    let probability = if kind == "slow" { "0.3" } else { "0.5" };
    sim.set_faults(
        format!("pod:{kind}:{probability},image:{kind}:{probability}")
            .parse::<FaultSpec>()
            .expect("spec"),
    );
    flush_until_empty(&t, &clock, 40);
    let received = sim.received();
    assert_exactly_once_pod_first(&received, 2, 4);
    assert!(t.driver.outbox().expect("outbox").is_empty());
    assert_eq!(t.driver.outbox_stats().expect("stats").sent, 6);
}

#[test]
fn a_lost_response_is_retried_with_the_same_key_and_stored_once() {
    let sim = sim(small(1));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    use upn_core::clock::Clock;
    let signed = t
        .driver
        .sign(&barcode, &signature(3), "R. Singh", clock.now(), None)
        .expect("sign");
    sim.set_faults("pod:lost-response:1".parse().expect("spec"));
    let report = t.driver.flush_now().expect("flush");
    assert_eq!(report.sent, 0);
    // UPN stored it, but the device never heard back.
    assert_eq!(sim.received().pods.len(), 1);
    let item = &t.driver.outbox().expect("outbox")[0];
    assert_eq!((item.state, item.attempts), (ItemState::Queued, 1));
    assert!(item.last_error.is_some());

    sim.set_faults(FaultSpec::none());
    clock.advance(chrono::Duration::minutes(20));
    assert_eq!(t.driver.flush_now().expect("flush").sent, 1);
    let received = sim.received();
    assert_eq!(received.pods.len(), 1);
    assert_eq!(received.pods[0].idempotency_key, signed.item.id);
    assert_eq!(received.pods[0].attempts, 2);
}

#[test]
fn a_409_leaves_one_consignment_needing_attention_while_the_others_flush() {
    let sim = sim(small(3));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcodes: Vec<String> = sim.consignments().into_iter().map(|c| c.barcode).collect();
    use upn_core::clock::Clock;

    // Someone else's device delivered the first consignment already.
    let other = upn_e2e::client(&sim);
    let pod = upn_core::upn::wire::PodSubmission {
        signed_by: "Someone Else".into(),
        signed_at: clock.now(),
        clock_offset_ms: None,
        gps: None,
        signature_png_base64: "iVBORw0KGgo=".into(),
        image_count: 0,
        pod_sha256: None,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(upn_core::upn::UpnApi::submit_pod(
            &other,
            &barcodes[0],
            "other-device-key",
            &pod,
        ))
        .expect("other device's POD");

    for (i, barcode) in barcodes.iter().enumerate() {
        t.driver
            .add_photo(
                barcode,
                &photo(i as u64),
                CaptureKind::Goods,
                clock.now(),
                None,
            )
            .expect("photo");
        t.driver
            .sign(
                barcode,
                &signature(i as u64),
                "Consignee",
                clock.now(),
                None,
            )
            .expect("sign");
    }
    let report = t.driver.flush_now().expect("flush");
    assert_eq!((report.sent, report.needs_attention), (4, 1), "{report:?}");

    let outbox = t.driver.outbox().expect("outbox");
    let stuck: Vec<&OutboxItem> = outbox.iter().filter(|i| i.barcode == barcodes[0]).collect();
    assert_eq!(outbox.len(), 2, "{outbox:?}");
    let pod = stuck
        .iter()
        .find(|i| i.kind == CaptureKind::Pod)
        .expect("pod");
    assert_eq!(pod.state, ItemState::NeedsAttention);
    assert!(
        pod.last_error.as_deref().unwrap_or("").contains("409"),
        "{pod:?}"
    );
    let photo_item = stuck
        .iter()
        .find(|i| i.kind == CaptureKind::Goods)
        .expect("photo");
    assert_eq!(
        photo_item.state,
        ItemState::Waiting,
        "photos never go before their POD"
    );
    assert_eq!(
        t.driver.consignment(&barcodes[0]).expect("detail").sync,
        SyncBadge::NeedsAttention
    );
    for b in &barcodes[1..] {
        assert_eq!(
            t.driver.consignment(b).expect("detail").sync,
            SyncBadge::Sent
        );
    }
    // Kept until someone acts: more flushes do not touch it.
    clock.advance(chrono::Duration::hours(1));
    assert_eq!(t.driver.flush_now().expect("flush").sent, 0);
    assert_eq!(t.driver.outbox().expect("outbox").len(), 2);
    // An explicit retry tries once more (still refused); a discard gives up and frees the files.
    t.driver.retry(&pod.id).expect("retry");
    assert_eq!(t.driver.flush_now().expect("flush").needs_attention, 1);
    let files_before = blob_files(&t).len();
    t.driver.discard(&pod.id).expect("discard");
    assert!(blob_files(&t).len() < files_before);
    assert_eq!(sim.received().pods.len(), 3);
}

#[test]
fn an_unsent_signature_can_be_replaced_and_a_sent_one_cannot() {
    let sim = sim(small(1));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    use upn_core::clock::Clock;
    let first = t
        .driver
        .sign(&barcode, &signature(1), "First Name", clock.now(), None)
        .expect("sign");
    let second = t
        .driver
        .sign(&barcode, &signature(2), "Second Name", clock.now(), None)
        .expect("re-sign");
    assert_eq!(second.replaced.as_deref(), Some(first.item.id.as_str()));
    // The change is recorded: the first stays on the device, marked replaced.
    let all = t.driver.captures(&barcode).expect("captures");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].state, ItemState::Replaced);
    assert_eq!(all[1].replaces.as_deref(), Some(first.item.id.as_str()));

    t.driver.flush_now().expect("flush");
    let received = sim.received();
    assert_eq!(received.pods.len(), 1);
    assert_eq!(received.pods[0].signed_by, "Second Name");
    assert!(matches!(
        t.driver
            .sign(&barcode, &signature(3), "Third", clock.now(), None),
        Err(Error::AlreadySigned { .. })
    ));
}

#[test]
fn bad_input_is_refused_with_a_typed_error_and_changes_nothing() {
    let sim = sim(small(3));
    let clock = manual_clock();
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = upn_core::DriverConfig::new(data.path(), upn_e2e::upn_config(&sim));
    config.media.max_input_bytes = 2 * 1024 * 1024;
    let t = upn_e2e::TestDriver {
        driver: upn_core::Driver::open_with_clock(config, clock.clone()).expect("open"),
        data,
    };
    t.driver.import_now().expect("import");
    let barcodes: Vec<String> = sim.consignments().into_iter().map(|c| c.barcode).collect();
    let (open, cancelled) = (&barcodes[0], &barcodes[1]);
    sim.cancel(cancelled, Some("customer cancelled"));
    t.driver.import_now().expect("import cancellation");
    use upn_core::clock::Clock;
    let now = clock.now();
    let good_fix = GpsFix::new(52.4, -1.9, 5.0, now);

    let snapshot = |t: &upn_e2e::TestDriver| {
        (
            t.driver.outbox().expect("outbox"),
            t.driver.outbox_stats().expect("stats"),
            blob_files(t),
        )
    };
    let before = snapshot(&t);

    let field = |r: upn_core::Result<_>| match r {
        Err(Error::InvalidInput { field, .. }) => field.to_string(),
        Err(other) => format!("{other:?}"),
        Ok::<(), _>(()) => "accepted".into(),
    };
    let photo_ok = photo(5);
    let sig_ok = signature(5);
    let add = |barcode: &str, bytes: &[u8], gps: Option<GpsFix>, at| {
        t.driver
            .add_photo(barcode, bytes, CaptureKind::Goods, at, gps)
            .map(|_| ())
    };
    let sign = |barcode: &str, bytes: &[u8], name: &str, gps: Option<GpsFix>| {
        t.driver.sign(barcode, bytes, name, now, gps).map(|_| ())
    };

    assert!(matches!(
        add("UPN0429999999", &photo_ok, None, now),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        add(cancelled, &photo_ok, None, now),
        Err(Error::Cancelled { .. })
    ));
    assert!(matches!(
        sign(cancelled, &sig_ok, "Name", None),
        Err(Error::Cancelled { .. })
    ));
    assert_eq!(field(add("bad barcode!", &photo_ok, None, now)), "barcode");
    assert_eq!(field(sign(open, &sig_ok, "   ", None)), "signed_by");
    assert_eq!(
        field(sign(open, &sig_ok, &"n".repeat(81), None)),
        "signed_by"
    );
    assert_eq!(
        field(sign(
            open,
            &sig_ok,
            "Name",
            Some(GpsFix::new(f64::NAN, 0.0, 5.0, now))
        )),
        "gps.lat"
    );
    assert_eq!(
        field(add(
            open,
            &photo_ok,
            Some(GpsFix::new(52.0, 200.0, 5.0, now)),
            now
        )),
        "gps.lon"
    );
    assert_eq!(
        field(add(
            open,
            &photo_ok,
            Some(GpsFix::new(52.0, -1.0, -3.0, now)),
            now
        )),
        "gps.accuracy_m"
    );
    assert_eq!(
        field(add(open, &photo_ok, None, now + chrono::Duration::hours(2))),
        "captured_at"
    );
    assert_eq!(
        field(add(open, b"definitely not an image", None, now)),
        "photo"
    );
    assert_eq!(field(add(open, &[], None, now)), "photo");
    let mut truncated = photo_ok.clone();
    truncated.truncate(photo_ok.len() / 3);
    assert_eq!(field(add(open, &truncated, None, now)), "photo");
    // Over the configured size limit (2 MiB here).
    let oversized = [photo_ok.as_slice(), &vec![0u8; 2 * 1024 * 1024]].concat();
    assert_eq!(field(add(open, &oversized, None, now)), "photo");
    // A decompression bomb: a tiny PNG whose header claims 100000 x 100000 pixels.
    assert_eq!(
        field(add(open, &png_header_only(100_000, 100_000), None, now)),
        "photo"
    );
    assert_eq!(
        field(sign(
            open,
            &upn_sim::samples::blank_png(600, 200),
            "Name",
            None
        )),
        "signature"
    );
    assert_eq!(
        field(sign(open, b"\x89PNG\r\n\x1a\nnope", "Name", None)),
        "signature"
    );

    assert_eq!(snapshot(&t), before, "a refused call changed something");

    // A stale fix is not a refusal: kept, flagged.
    let stale = GpsFix::new(52.4, -1.9, 5.0, now - chrono::Duration::minutes(45));
    let signed = t
        .driver
        .sign(open, &sig_ok, "Name", now, Some(stale))
        .expect("stale fix kept");
    assert!(signed.stale_gps);
    let photo = t
        .driver
        .add_photo(open, &photo_ok, CaptureKind::Goods, now, Some(good_fix));
    assert_eq!(
        photo.expect("a good photo is accepted").state,
        ItemState::Waiting
    );
}

/// A PNG signature and IHDR claiming `w`x`h`, with no image data behind it.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&ihdr);
    let crc = crc32(&chunk);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&(ihdr.len() as u32).to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[derive(Default)]
struct Recorder {
    progress: Mutex<Vec<UploadProgress>>,
    states: Mutex<Vec<(String, ItemState)>>,
    stops: Mutex<Vec<(String, SyncBadge)>>,
}

impl DriverListener for Recorder {
    fn stop_changed(&self, stop: &upn_core::domain::Stop) {
        self.stops
            .lock()
            .expect("lock")
            .push((stop.consignment.barcode.clone(), stop.sync));
    }
    fn outbox_item_changed(&self, item: &OutboxItem) {
        self.states
            .lock()
            .expect("lock")
            .push((item.id.clone(), item.state));
    }
    fn upload_progress(&self, progress: &UploadProgress) {
        self.progress.lock().expect("lock").push(progress.clone());
    }
}

#[test]
fn going_online_flushes_by_itself_and_listeners_see_progress_and_states() {
    let sim = sim(SimConfig {
        throttle_bytes_per_s: Some(400_000),
        ..small(2)
    });
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    use upn_core::clock::Clock;
    let big = upn_sim::samples::photo_jpeg(7, 2400, 1800);
    let photo_item = t
        .driver
        .add_photo(&barcode, &big, CaptureKind::Goods, clock.now(), None)
        .expect("photo");
    t.driver
        .sign(&barcode, &signature(7), "Listener Test", clock.now(), None)
        .expect("sign");

    let recorder = Arc::new(Recorder::default());
    let subscription = t.driver.subscribe(recorder.clone()).expect("subscribe");
    // Replay first: both items and every stop are reported before anything changes.
    assert_eq!(recorder.states.lock().expect("lock").len(), 2);
    assert_eq!(recorder.stops.lock().expect("lock").len(), 2);

    t.driver.set_online(true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !t.driver.outbox().expect("outbox").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox did not flush by itself"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_exactly_once_pod_first(&sim.received(), 1, 1);

    let progress = recorder.progress.lock().expect("lock").clone();
    let photo_progress: Vec<_> = progress
        .iter()
        .filter(|p| p.capture_id == photo_item.id)
        .collect();
    // The dispatcher coalesces progress to the latest value per capture when the listener lags,
    // so how many arrive depends on timing; what arrives is monotonic and ends at the total.
    assert!(!photo_progress.is_empty(), "{progress:?}");
    let total = photo_progress[0].total;
    assert!(photo_progress.windows(2).all(|w| w[0].sent <= w[1].sent));
    assert_eq!(photo_progress.last().map(|p| p.sent), Some(total));

    let states = recorder.states.lock().expect("lock").clone();
    let photo_states: Vec<ItemState> = states
        .iter()
        .filter(|(id, _)| *id == photo_item.id)
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(photo_states.first(), Some(&ItemState::Waiting));
    assert!(photo_states.contains(&ItemState::Queued));
    assert!(photo_states.contains(&ItemState::Sending));
    assert_eq!(photo_states.last(), Some(&ItemState::Sent));
    let badges: Vec<SyncBadge> = recorder
        .stops
        .lock()
        .expect("lock")
        .iter()
        .filter(|(b, _)| *b == barcode)
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(badges.last(), Some(&SyncBadge::Sent));

    // Dropping the subscription stops the calls.
    drop(subscription);
    let seen = recorder.states.lock().expect("lock").len();
    t.driver
        .add_photo(&barcode, &photo(8), CaptureKind::Goods, clock.now(), None)
        .expect("photo");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(recorder.states.lock().expect("lock").len(), seen);
}

#[test]
fn unsent_work_resumes_on_start_up_by_itself() {
    let sim = sim(small(1));
    let barcode = sim.consignments()[0].barcode.clone();
    let data = tempfile::tempdir().expect("tempdir");
    let open = || {
        upn_core::Driver::open(upn_core::DriverConfig::new(
            data.path(),
            upn_e2e::upn_config(&sim),
        ))
        .expect("open")
    };
    {
        let driver = open();
        driver.import_now().expect("import");
        let now = chrono::Utc::now();
        driver
            .add_photo(&barcode, &photo(1), CaptureKind::Goods, now, None)
            .expect("photo");
        driver
            .sign(&barcode, &signature(1), "Restart", now, None)
            .expect("sign");
        // The app is closed while offline.
        driver.shutdown(std::time::Duration::from_secs(1));
    }
    let driver = open();
    assert_eq!(driver.outbox().expect("outbox").len(), 2);
    driver.set_online(true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !driver.outbox().expect("outbox").is_empty() {
        assert!(std::time::Instant::now() < deadline, "did not resume");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_exactly_once_pod_first(&sim.received(), 1, 1);
}

#[test]
fn drain_stops_at_its_deadline_and_loses_nothing() {
    let sim = sim(SimConfig {
        throttle_bytes_per_s: Some(100_000),
        ..small(1)
    });
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    use upn_core::clock::Clock;
    t.driver
        .sign(&barcode, &signature(4), "Drain", clock.now(), None)
        .expect("sign");
    for seed in 0..3 {
        t.driver
            .add_photo(
                &barcode,
                &upn_sim::samples::photo_jpeg(seed, 2400, 1800),
                CaptureKind::Goods,
                clock.now(),
                None,
            )
            .expect("photo");
    }
    let started = std::time::Instant::now();
    let report = t
        .driver
        .drain(std::time::Duration::from_millis(700))
        .expect("drain");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(report.flush.ended, FlushEnd::Deadline, "{report:?}");
    assert!(report.pending > 0);
    // Whatever was cut short goes later, once.
    flush_until_empty(&t, &clock, 5);
    assert_exactly_once_pod_first(&sim.received(), 1, 3);
}

#[test]
fn a_damaged_capture_file_needs_attention_without_blocking_the_others() {
    let sim = sim(small(2));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcodes: Vec<String> = sim.consignments().into_iter().map(|c| c.barcode).collect();
    use upn_core::clock::Clock;
    let damaged = t
        .driver
        .sign(&barcodes[0], &signature(1), "First", clock.now(), None)
        .expect("sign");
    t.driver
        .sign(&barcodes[1], &signature(2), "Second", clock.now(), None)
        .expect("sign");
    // Storage corruption under the app: the original no longer matches its recorded sha256.
    let file = t
        .data
        .path()
        .join("blobs")
        .join(format!("{}.orig", damaged.item.id));
    std::fs::write(&file, b"corrupted").expect("corrupt");

    let report = t.driver.flush_now().expect("flush");
    assert_eq!((report.sent, report.needs_attention), (1, 1), "{report:?}");
    let outbox = t.driver.outbox().expect("outbox");
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].state, ItemState::NeedsAttention);
    assert!(
        outbox[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("sha256"),
        "{outbox:?}"
    );
    assert_eq!(sim.received().pods.len(), 1);
    assert_eq!(sim.received().pods[0].barcode, barcodes[1]);
}

#[test]
fn image_action_disabled_pauses_photos_instead_of_stranding_them_and_resumes_by_itself() {
    let sim = sim(small(1));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    use upn_core::clock::Clock;
    sim.set_access(true, true, false);
    t.driver
        .sign(&barcode, &signature(7), "Sam Lee", clock.now(), None)
        .expect("sign");
    let photo_item = t
        .driver
        .add_photo(
            &barcode,
            &photo(7),
            CaptureKind::LeaveSafe,
            clock.now(),
            None,
        )
        .expect("photo");
    let report = t.driver.flush_now().expect("flush");
    assert_eq!(
        (report.sent, report.needs_attention, report.paused),
        (1, 0, 1),
        "{report:?}"
    );
    let outbox = t.driver.outbox().expect("outbox");
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].id, photo_item.id);
    assert_eq!(outbox[0].state, ItemState::Queued, "never stranded");
    let stats = t.driver.outbox_stats().expect("stats");
    assert_eq!(stats.needs_attention, 0);
    let pause = stats.pauses.images.expect("photos paused, visibly");
    assert!(pause.message.contains("image"), "{pause:?}");
    assert!(stats.pauses.outbox.is_none(), "PODs still go");

    // While paused, passes before the probe time send nothing.
    let rejected = sim.received().rejected.len();
    assert_eq!(t.driver.flush_now().expect("flush").paused, 0);
    assert_eq!(sim.received().rejected.len(), rejected);

    // Still refused at the probe: the pause stays and its interval grows.
    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(t.driver.flush_now().expect("flush").paused, 1);
    let again = t
        .driver
        .outbox_pauses()
        .expect("pauses")
        .images
        .expect("paused");
    assert_eq!(again.probes, 2);

    // UPN fixes the depot: the next probe succeeds and the pause lifts by itself.
    sim.set_access(true, true, true);
    clock.advance(chrono::Duration::minutes(20));
    let report = t.driver.flush_now().expect("flush");
    assert_eq!(report.sent, 1, "{report:?}");
    assert!(t.driver.outbox().expect("outbox").is_empty());
    assert_eq!(
        t.driver.outbox_pauses().expect("pauses"),
        Default::default()
    );
    assert_exactly_once_pod_first(&sim.received(), 1, 1);
}

#[test]
fn integration_disabled_pauses_the_whole_outbox_and_retry_all_probes_at_once() {
    let sim = sim(small(2));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    use upn_core::clock::Clock;
    for (i, c) in sim.consignments().iter().enumerate() {
        t.driver
            .sign(
                &c.barcode,
                &signature(10 + i as u64),
                "Al Bo",
                clock.now(),
                None,
            )
            .expect("sign");
    }
    sim.set_access(false, true, true);
    let report = t.driver.flush_now().expect("flush");
    assert_eq!(
        (report.sent, report.needs_attention, report.paused),
        (0, 0, 1),
        "one probe, then the pass stops: {report:?}"
    );
    assert_eq!(
        sim.received().rejected.len(),
        1,
        "the rest was not hammered"
    );
    let stats = t.driver.outbox_stats().expect("stats");
    assert_eq!((stats.queued, stats.needs_attention), (2, 0));
    assert!(stats.pauses.outbox.is_some());

    sim.set_access(true, true, true);
    // A person retries: the pause probes now, not after its backoff.
    t.driver.retry_all().expect("retry all");
    let report = t.driver.flush_now().expect("flush");
    assert_eq!(report.sent, 2, "{report:?}");
    assert_eq!(
        t.driver.outbox_pauses().expect("pauses"),
        Default::default()
    );
}

#[test]
fn a_device_clock_set_back_does_not_stall_retries() {
    let sim = sim(small(1));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    use upn_core::clock::Clock;
    t.driver
        .sign(&barcode, &signature(8), "Clock Back", clock.now(), None)
        .expect("sign");
    sim.set_faults("pod:503:1".parse().expect("spec"));
    for _ in 0..6 {
        t.driver.flush_now().expect("flush");
        clock.advance(chrono::Duration::minutes(20));
    }
    sim.set_faults(FaultSpec::none());
    let item = t.driver.outbox().expect("outbox").remove(0);
    let next = item.next_attempt_at.expect("waits on a backoff");
    // The device clock jumps back an hour: the stored wait lies far ahead of "now".
    clock.advance(chrono::Duration::hours(-1));
    assert!(next > clock.now() + chrono::Duration::minutes(15));
    let report = t.driver.flush_now().expect("flush");
    assert_eq!(
        report.sent, 1,
        "retries never stall on a clock set back: {report:?}"
    );
}

#[test]
fn the_pod_body_is_frozen_at_its_first_attempt() {
    let sim = sim(small(1));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    use upn_core::clock::Clock;
    t.driver
        .add_photo(&barcode, &photo(9), CaptureKind::Goods, clock.now(), None)
        .expect("photo");
    t.driver
        .sign(&barcode, &signature(9), "Same Bytes", clock.now(), None)
        .expect("sign");
    sim.set_faults("pod:lost-response:1".parse().expect("spec"));
    t.driver.flush_now().expect("flush");
    // A photo taken after the first attempt does not change what the POD's key carries.
    t.driver
        .add_photo(
            &barcode,
            &photo(10),
            CaptureKind::Location,
            clock.now(),
            None,
        )
        .expect("photo");
    sim.set_faults(FaultSpec::none());
    let pod = t
        .driver
        .captures(&barcode)
        .expect("captures")
        .into_iter()
        .find(|c| c.kind == CaptureKind::Pod)
        .expect("pod");
    assert_eq!(pod.pod_image_count, Some(1), "frozen at the first attempt");
    flush_until_empty(&t, &clock, 5);
    let received = sim.received();
    assert_exactly_once_pod_first(&received, 1, 2);
    assert!(received.pods[0].attempts >= 2);
    let pod = t
        .driver
        .captures(&barcode)
        .expect("captures")
        .into_iter()
        .find(|c| c.kind == CaptureKind::Pod)
        .expect("pod");
    assert_eq!(pod.pod_image_count, Some(1));
}

#[test]
fn a_fix_taken_minutes_after_the_capture_is_accepted_and_its_skew_kept() {
    let sim = sim(small(1));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    use upn_core::clock::Clock;
    let captured_at = clock.now() - chrono::Duration::minutes(8);
    let gps = GpsFix::new(52.4862, -1.8904, 6.5, clock.now());
    t.driver
        .sign(
            &barcode,
            &signature(11),
            "Slow Clock",
            captured_at,
            Some(gps),
        )
        .expect("a slow device clock is not a refusal");
    let pod = t.driver.captures(&barcode).expect("captures").remove(0);
    assert_eq!(pod.fix.expect("fix").ahead_ms, 8 * 60 * 1000);
}
