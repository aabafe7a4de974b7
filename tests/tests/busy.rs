//! Another writer holding the database (issue 13, database-busy): the core waits at most its
//! configured `store_busy_wait`, then the call fails with the typed `Error::Busy`, having
//! stored nothing, so the app's retry makes exactly one capture. No failpoint hooks: each test
//! holds the lock of its own data folder with a second connection (BEGIN IMMEDIATE).

use std::time::{Duration, Instant};

use upn_core::domain::outbox::CaptureKind;
use upn_core::testing::store::DB_FILE_NAME;
use upn_core::{Driver, DriverConfig, Error};
use upn_e2e::{blob_files, photo, signature, sim, upn_config, TestDriver};
use upn_sim::SimConfig;

fn driver_waiting(sim: &upn_sim::SimHandle, wait: Duration) -> TestDriver {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = DriverConfig::new(data.path().to_path_buf(), upn_config(sim));
    config.store_busy_wait = wait;
    let driver = Driver::open(config).expect("open driver");
    TestDriver { driver, data }
}

/// A second connection on the driver's database, holding its write lock until dropped.
fn hold(t: &TestDriver) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(t.data.path().join(DB_FILE_NAME)).expect("connection");
    conn.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    conn
}

#[test]
fn a_capture_meeting_a_held_database_fails_busy_stores_nothing_and_the_retry_stores_one() {
    let sim = sim(SimConfig {
        seed: 131,
        consignments: 2,
        ..SimConfig::default()
    });
    let t = driver_waiting(&sim, Duration::from_millis(20));
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    let now = chrono::Utc::now();

    let other = hold(&t);
    let started = Instant::now();
    let signed = t
        .driver
        .sign(&barcode, &signature(1), "A. Consignee", now, None);
    assert!(matches!(signed, Err(Error::Busy)), "{signed:?}");
    let photo_added = t
        .driver
        .add_photo(&barcode, &photo(2), CaptureKind::Goods, now, None);
    assert!(matches!(photo_added, Err(Error::Busy)), "{photo_added:?}");
    // The configured wait, not SQLite's 10 s default (generous bound: a loaded machine).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let message = Error::Busy.to_string();
    assert!(message.contains("try again"), "{message}");

    // Nothing of either call is on the device.
    assert!(t.driver.captures(&barcode).expect("captures").is_empty());
    assert!(t.driver.outbox().expect("outbox").is_empty());
    assert!(blob_files(&t).is_empty(), "{:?}", blob_files(&t));

    drop(other);
    let signed = t
        .driver
        .sign(&barcode, &signature(1), "A. Consignee", now, None)
        .expect("the retry once the other writer let go");
    assert!(signed.replaced.is_none());
    let captures = t.driver.captures(&barcode).expect("captures");
    assert_eq!(captures.len(), 1, "{captures:?}");
    assert_eq!(captures[0].id, signed.item.id);
}

#[test]
fn a_pull_meeting_a_held_database_before_it_asks_consumes_nothing() {
    let sim = sim(SimConfig {
        seed: 132,
        consignments: 2,
        ..SimConfig::default()
    });
    sim.push_stage_for_all("OUT_FOR_DELIVERY");
    let t = driver_waiting(&sim, Duration::from_millis(20));
    t.driver.import_now().expect("import");
    let other = hold(&t);
    let pulled = t.driver.pull_tracking_now();
    assert!(matches!(pulled, Err(Error::Busy)), "{pulled:?}");
    assert_eq!(
        sim.received().event_batches_handed_out,
        0,
        "no batch is taken while its commit could not be noted"
    );
    drop(other);
    let report = t.driver.pull_tracking_now().expect("pull");
    assert_eq!(report.batches, 1);
}

#[test]
fn the_store_busy_wait_is_range_checked_before_anything_is_created() {
    let sim = sim(SimConfig {
        seed: 133,
        consignments: 1,
        ..SimConfig::default()
    });
    for wait in [Duration::ZERO, Duration::from_secs(61)] {
        let parent = tempfile::tempdir().expect("tempdir");
        let data = parent.path().join("data");
        let mut config = DriverConfig::new(&data, upn_config(&sim));
        config.store_busy_wait = wait;
        match Driver::open(config) {
            Err(Error::InvalidInput { field, reason }) => {
                assert_eq!(field, "config.store_busy_wait");
                assert!(reason.contains("out of range"), "{reason}");
            }
            other => panic!("{wait:?}: {other:?}"),
        }
        assert!(!data.exists(), "a refused open created the data folder");
    }
}
