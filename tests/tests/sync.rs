//! `Driver::sync_now`, the one policy the app (FFI) and the CLI share (core/src/driver/sync.rs):
//! the import, the outbox flush and the tracking pull each run and report their own outcome;
//! the flush never waits on a broken or a slow import.

use std::sync::Arc;
use std::time::{Duration, Instant};

use upn_core::upn::http::HttpUpn;
use upn_core::upn::wire::{ConsignmentFeed, ImageQuery, ImageReceipt, PodReceipt, PodSubmission};
use upn_core::upn::{BoxFuture, DynUpnApi, Progress, RawTrackingResponse, UpnApi, UpnError};
use upn_core::{Driver, DriverConfig, Error, SyncOutcome};
use upn_e2e::{client, driver, photo, signature, sim, upn_config};
use upn_sim::{FaultSpec, SimConfig, SimHandle};

fn small() -> SimConfig {
    SimConfig {
        seed: 31,
        consignments: 3,
        ..SimConfig::default()
    }
}

fn sign(driver: &Driver, barcode: &str, seed: u64) {
    driver
        .sign(
            barcode,
            &signature(seed),
            "Ana Diaz",
            chrono::Utc::now(),
            None,
        )
        .expect("sign");
}

#[test]
fn a_failing_import_still_flushes_a_queued_pod_and_says_so() {
    let sim = sim(small());
    let t = driver(&sim);
    t.driver.import_now().expect("first import");
    let barcode = sim.consignments()[0].barcode.clone();
    sign(&t.driver, &barcode, 1);

    sim.set_faults("consignments:500:1".parse().expect("spec"));
    let report = t.driver.sync_now();
    assert!(
        matches!(&report.import, Err(Error::Upn(UpnError::Server { .. }))),
        "{report:?}"
    );
    let outbox = report.outbox.as_ref().expect("the flush ran");
    assert_eq!(outbox.flush.sent, 1, "{report:?}");
    assert_eq!(outbox.pending, 0);
    assert!(report.tracking.is_ok(), "{report:?}");
    assert_eq!(report.outcome(), SyncOutcome::Offline);
    let pods = sim.received().pods;
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].barcode, barcode);

    sim.set_faults(FaultSpec::none());
    let report = t.driver.sync_now();
    assert!(report.import.is_ok(), "{report:?}");
    assert_eq!(report.outcome(), SyncOutcome::Done);
}

#[test]
fn each_step_reports_its_own_outcome_and_the_worst_one_wins() {
    let sim = sim(small());
    let t = driver(&sim);
    assert_eq!(t.driver.sync_now().outcome(), SyncOutcome::Done);
    let barcode = sim.consignments()[1].barcode.clone();

    // A photo waiting for its signature: every step worked, and work remains.
    t.driver
        .add_photo(
            &barcode,
            &photo(2),
            upn_core::domain::outbox::CaptureKind::Goods,
            chrono::Utc::now(),
            None,
        )
        .expect("photo");
    let report = t.driver.sync_now();
    assert_eq!(report.outbox.as_ref().map(|o| o.pending).ok(), Some(1));
    assert_eq!(report.outcome(), SyncOutcome::Pending);

    // Tracking refused for the depot: the import and the flush still run; a person must act.
    sim.set_access(true, false, true);
    sign(&t.driver, &barcode, 2);
    let report = t.driver.sync_now();
    assert!(report.import.is_ok(), "{report:?}");
    assert!(
        matches!(
            &report.tracking,
            Err(Error::Upn(UpnError::TrackingActionDisabled))
        ),
        "{report:?}"
    );
    let outbox = report.outbox.as_ref().expect("flushed");
    assert_eq!((outbox.flush.sent, outbox.pending), (2, 0), "{report:?}");
    assert_eq!(report.outcome(), SyncOutcome::Failed);
}

/// UPN over HTTP to the simulator, except that the consignments feed answers only once the test
/// lets it (one permit per answer).
struct HeldFeed {
    http: HttpUpn,
    feed: Arc<tokio::sync::Semaphore>,
}

impl DynUpnApi for HeldFeed {
    fn fetch_consignments<'a>(
        &'a self,
        since: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ConsignmentFeed, UpnError>> {
        Box::pin(async move {
            // Each answer takes its permit for good.
            self.feed
                .acquire()
                .await
                .map_err(|_| UpnError::Timeout)?
                .forget();
            self.http.fetch_consignments(since).await
        })
    }

    fn take_tracking_batch(
        &self,
        max_events: u32,
    ) -> BoxFuture<'_, Result<RawTrackingResponse, UpnError>> {
        Box::pin(self.http.take_tracking_batch(max_events))
    }

    fn submit_pod<'a>(
        &'a self,
        barcode: &'a str,
        idempotency_key: &'a str,
        pod: &'a PodSubmission,
    ) -> BoxFuture<'a, Result<PodReceipt, UpnError>> {
        Box::pin(self.http.submit_pod(barcode, idempotency_key, pod))
    }

    fn upload_image<'a>(
        &'a self,
        barcode: &'a str,
        idempotency_key: &'a str,
        query: &'a ImageQuery,
        jpeg: Vec<u8>,
        progress: Progress,
    ) -> BoxFuture<'a, Result<ImageReceipt, UpnError>> {
        Box::pin(
            self.http
                .upload_image(barcode, idempotency_key, query, jpeg, progress),
        )
    }
}

fn wait_for_pod(sim: &SimHandle) -> bool {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if !sim.received().pods.is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_slow_import_holds_the_flush_back_no_longer_than_its_head_start() {
    let sim = sim(small());
    let feed = Arc::new(tokio::sync::Semaphore::new(1));
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = DriverConfig::new(data.path().to_path_buf(), upn_config(&sim));
    config.intervals.import_head_start = Duration::ZERO;
    let seams = upn_core::driver::Seams {
        api: Some(Arc::new(HeldFeed {
            http: client(&sim),
            feed: feed.clone(),
        })),
        ids: None,
    };
    let driver =
        Driver::open_with(config, Arc::new(upn_core::clock::SystemClock), seams).expect("open");
    driver.import_now().expect("the first import (its permit)");
    let barcode = sim.consignments()[0].barcode.clone();
    sign(&driver, &barcode, 3);

    // The feed now hangs until the POD has reached UPN: the flush must not wait for it.
    let report = std::thread::scope(|s| {
        let sync = s.spawn(|| driver.sync_now());
        let pod_went = wait_for_pod(&sim);
        feed.add_permits(1);
        let report = sync.join().expect("sync_now returned");
        assert!(pod_went, "the POD waited for the import: {report:?}");
        report
    });
    assert!(report.import.is_ok(), "{report:?}");
    assert_eq!(report.outbox.as_ref().map(|o| o.flush.sent).ok(), Some(1));
    assert_eq!(report.outcome(), SyncOutcome::Done);
}
