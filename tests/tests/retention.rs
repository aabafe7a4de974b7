//! Retention: sent captures' files leave the device a while after UPN acknowledged them, old
//! consignments leave with everything of theirs, and nothing unsent ever does. Receipts and
//! `verify` of a purged POD say so, typed, instead of reporting tampering.

use std::path::Path;
use std::sync::Arc;

use upn_core::clock::ManualClock;
use upn_core::domain::outbox::CaptureKind;
use upn_core::testing::store::blobs::QUARANTINE_DIR_NAME;
use upn_core::{Driver, DriverConfig, Error};
use upn_e2e::{manual_clock, photo, signature, sim, upn_config};
use upn_sim::{SimConfig, SimHandle};

fn small() -> SimConfig {
    SimConfig {
        seed: 23,
        consignments: 2,
        ..SimConfig::default()
    }
}

fn open(sim: &SimHandle, data: &Path, clock: &Arc<ManualClock>) -> Driver {
    Driver::open_with_clock(DriverConfig::new(data, upn_config(sim)), clock.clone()).expect("open")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Signs and photographs the first consignment and sends both.
fn delivered(sim: &SimHandle, driver: &Driver) -> (String, String, String) {
    driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    let now = chrono::Utc::now();
    let shot = driver
        .add_photo(&barcode, &photo(3), CaptureKind::Goods, now, None)
        .expect("photo");
    let signed = driver
        .sign(&barcode, &signature(3), "Kept Then Gone", now, None)
        .expect("sign");
    for _ in 0..5 {
        driver.flush_now().expect("flush");
    }
    assert_eq!(driver.unsent_count().expect("count"), 0);
    (barcode, signed.item.id, shot.id)
}

#[test]
fn sent_originals_are_purged_after_the_window_and_receipts_say_so() {
    let sim = sim(small());
    let data = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let driver = open(&sim, data.path(), &clock);
    let (barcode, pod_id, photo_id) = delivered(&sim, &driver);
    let blobs = data.path().join("blobs");
    assert!(!files_in(&blobs).is_empty());

    // Within the window nothing goes.
    clock.advance(chrono::Duration::days(6));
    assert_eq!(
        driver.run_retention().expect("retention").originals_purged,
        0
    );
    assert!(driver.capture_image(&pod_id, None).is_ok());

    clock.advance(chrono::Duration::days(2));
    let report = driver.run_retention().expect("retention");
    assert_eq!(report.originals_purged, 2);
    assert_eq!(report.consignments_removed, 0);
    assert!(files_in(&blobs).is_empty(), "{:?}", files_in(&blobs));

    let e = driver.capture_image(&photo_id, None).unwrap_err();
    assert!(matches!(e, Error::OriginalsPurged { .. }), "{e:?}");
    assert!(e.to_string().contains("removed from this device on"), "{e}");
    let v = driver.verify_pod(&barcode).expect("verify");
    assert!(
        v.intact,
        "a purged POD is not tampered with: {:?}",
        v.problems
    );
    assert!(v.originals_purged_at.is_some());
    let html = driver.receipt_html(&barcode).expect("receipt");
    assert!(html.contains("originals purged on"), "receipt");
    assert!(html.contains("removed from this device on"), "receipt");
    // The consignment and its history stay until the consignment's own window.
    assert_eq!(driver.stops().expect("stops").len(), 2);

    // A reopen finds nothing to quarantine and nothing missing.
    drop(driver);
    let driver = open(&sim, data.path(), &clock);
    assert!(files_in(&data.path().join(QUARANTINE_DIR_NAME)).is_empty());
    assert!(driver.verify_pod(&barcode).expect("verify").intact);
}

#[test]
fn old_consignments_leave_with_everything_of_theirs_but_never_with_unsent_work() {
    let sim = sim(small());
    let data = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let driver = open(&sim, data.path(), &clock);
    let (delivered_barcode, _, _) = delivered(&sim, &driver);
    // The other consignment has a signature that never left the device.
    let unsent_barcode = sim.consignments()[1].barcode.clone();
    driver
        .sign(
            &unsent_barcode,
            &signature(4),
            "Still Here",
            chrono::Utc::now(),
            None,
        )
        .expect("sign");

    // A screen showing the list hears the stop leave it.
    let heard = Arc::new(Removals::default());
    let (_snapshot, _subscription) = driver.subscribe(heard.clone()).expect("subscribe");

    clock.advance(chrono::Duration::days(16));
    let report = driver.run_retention().expect("retention");
    assert_eq!(report.consignments_removed, 1, "{report:?}");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut removed = heard.removed.lock().expect("lock");
    while !removed.contains(&delivered_barcode) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "no listener heard the stop leave the list");
        removed = heard.changed.wait_timeout(removed, left).expect("lock").0;
    }
    drop(removed);
    let stops: Vec<String> = driver
        .stops()
        .expect("stops")
        .into_iter()
        .map(|s| s.consignment.barcode)
        .collect();
    assert_eq!(stops, vec![unsent_barcode.clone()]);
    assert!(matches!(
        driver.consignment(&delivered_barcode),
        Err(Error::NotFound { .. })
    ));
    assert!(driver
        .captures(&delivered_barcode)
        .expect("captures")
        .is_empty());
    // Only the unsent signature's file is left, and it is still queued.
    assert_eq!(files_in(&data.path().join("blobs")).len(), 1);
    assert_eq!(driver.unsent_count().expect("count"), 1);

    // A reopen keeps it so, and quarantines nothing.
    drop(driver);
    let driver = open(&sim, data.path(), &clock);
    assert_eq!(driver.stops().expect("stops").len(), 1);
    assert!(files_in(&data.path().join(QUARANTINE_DIR_NAME)).is_empty());
}

/// Barcodes a listener heard as removed from the stop list.
#[derive(Default)]
struct Removals {
    removed: std::sync::Mutex<Vec<String>>,
    changed: std::sync::Condvar,
}

impl upn_core::listener::DriverListener for Removals {
    fn stop_list_changed(&self, update: &upn_core::listener::StopListUpdate) {
        let mut removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        removed.extend(
            update
                .changes
                .iter()
                .filter(|c| c.kind == upn_core::domain::stop_list::StopChangeKind::Removed)
                .map(|c| c.barcode.clone()),
        );
        self.changed.notify_all();
    }
}
