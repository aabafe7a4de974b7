//! The pipelined flush (issue 11, item 2): while one item uploads the next is claimed and
//! prepared. Order and exactly-once are as before, and an item prepared when the pass ends
//! goes back to the queue with its claim uncounted.

use chrono::Utc;
use upn_core::domain::outbox::{CaptureKind, ItemState};
use upn_core::{Driver, DriverConfig};
use upn_e2e::{flush_until_empty, manual_clock, photo, signature, sim, upn_config, TestDriver};
use upn_sim::{SimConfig, SimHandle};

fn setup(
    consignments: usize,
) -> (
    SimHandle,
    TestDriver,
    std::sync::Arc<upn_core::clock::ManualClock>,
) {
    let sim = sim(SimConfig {
        seed: 21,
        consignments,
        ..SimConfig::default()
    });
    let data = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let mut config = DriverConfig::new(data.path(), upn_config(&sim));
    // Renditions not made yet: the flush prepares each one while the previous uploads.
    config.background_renditions = false;
    let driver = Driver::open_with_clock(config, clock.clone()).expect("open");
    driver.import_now().expect("import");
    (sim, TestDriver { driver, data }, clock)
}

#[test]
fn a_pipelined_flush_sends_each_once_and_every_pod_before_its_photos() {
    let (sim, t, clock) = setup(4);
    let barcodes: Vec<String> = sim.consignments().into_iter().map(|c| c.barcode).collect();
    for (i, barcode) in barcodes.iter().enumerate() {
        let seed = i as u64 * 10;
        // Photos first (they wait for the POD), one after.
        for (n, kind) in [CaptureKind::Goods, CaptureKind::Location]
            .into_iter()
            .enumerate()
        {
            t.driver
                .add_photo(barcode, &photo(seed + n as u64), kind, Utc::now(), None)
                .expect("photo");
        }
        t.driver
            .sign(barcode, &signature(seed), "P. Ipeline", Utc::now(), None)
            .expect("sign");
        t.driver
            .add_photo(
                barcode,
                &photo(seed + 5),
                CaptureKind::LeaveSafe,
                Utc::now(),
                None,
            )
            .expect("photo");
    }
    flush_until_empty(&t, &clock, 4);
    let received = sim.received();
    assert_eq!(received.pods.len(), barcodes.len());
    assert_eq!(received.images.len(), 3 * barcodes.len());
    for image in &received.images {
        let pod = received
            .pods
            .iter()
            .find(|p| p.barcode == image.barcode)
            .expect("its POD");
        assert!(pod.seq < image.seq, "{image:?} before {pod:?}");
        assert_eq!(image.attempts, 1);
    }
    assert!(received.pods.iter().all(|p| p.attempts == 1));
    // What went up is what the device kept as each photo's rendition.
    for barcode in &barcodes {
        for c in t.driver.captures(barcode).expect("captures") {
            assert_eq!(c.state, ItemState::Sent);
            if c.kind.is_photo() {
                let upload = c.upload.expect("rendition kept");
                assert!(received.images.iter().any(|i| i.sha256 == upload.sha256));
            }
        }
    }
}

#[test]
fn a_photo_prepared_when_images_pause_is_queued_again_with_its_claim_uncounted() {
    let (sim, t, _clock) = setup(1);
    let barcode = sim.consignments()[0].barcode.clone();
    t.driver
        .sign(&barcode, &signature(1), "A. Signer", Utc::now(), None)
        .expect("sign");
    let first = t
        .driver
        .add_photo(&barcode, &photo(1), CaptureKind::Goods, Utc::now(), None)
        .expect("photo");
    let second = t
        .driver
        .add_photo(&barcode, &photo(2), CaptureKind::Location, Utc::now(), None)
        .expect("photo");
    sim.set_access(true, true, false);
    let report = t.driver.flush_now().expect("flush");
    assert_eq!((report.sent, report.paused), (1, 1), "{report:?}");
    let outbox = t.driver.outbox().expect("outbox");
    let state = |id: &str| outbox.iter().find(|i| i.id == id).expect("item").clone();
    // The first was refused (an attempt); the second was prepared meanwhile and released.
    assert_eq!(state(&first.id).state, ItemState::Queued);
    assert_eq!(state(&first.id).attempts, 1);
    assert_eq!(state(&second.id).state, ItemState::Queued);
    assert_eq!(state(&second.id).attempts, 0, "{outbox:?}");
    assert!(outbox.iter().all(|i| i.state != ItemState::Sending));
    assert!(sim.received().images.is_empty());
}
