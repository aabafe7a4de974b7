//! Store-before-process under a failing store (issue 9, hole 3): UPN hands each tracking batch
//! out once, so a body the inbox cannot take at once (another writer holds the database) is
//! retried while held in memory, and kept in a spill file if the store keeps failing; nothing
//! is dropped. The window between reading a body and committing it is opened deterministically
//! with the `tracking.before_inbox_commit` failpoint: a second connection takes the database's
//! write lock (BEGIN IMMEDIATE) there.
//!
//! The hooks are process-wide, so the tests in this file run one at a time (`SERIAL`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use upn_core::testing::store::tracking::FAULT_INBOX_DISK_FULL;
use upn_core::testing::store::{Store, DB_FILE_NAME};
use upn_core::testing::sync::tracking::{FAILPOINT_BEFORE_INBOX_COMMIT, SPILL_DIR_NAME};
use upn_core::Error;
use upn_e2e::{driver, sim, TestDriver};
use upn_sim::{SimConfig, SimHandle};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A simulator whose consignments each have one more event queued (beyond their BOOKED one).
fn sim_with_events() -> (SimHandle, Vec<String>) {
    let sim = sim(SimConfig {
        seed: 91,
        consignments: 3,
        ..SimConfig::default()
    });
    let barcodes = sim.push_stage_for_all("OUT_FOR_DELIVERY");
    (sim, barcodes)
}

/// Another writer on the same database file, holding its write lock until dropped.
struct Blocker {
    _conn: rusqlite::Connection,
}

impl Blocker {
    fn hold(db: &Path) -> Self {
        let conn = rusqlite::Connection::open(db).expect("second connection");
        conn.execute_batch("BEGIN IMMEDIATE")
            .expect("take the write lock");
        Blocker { _conn: conn }
    }
}

fn db_of(t: &TestDriver) -> PathBuf {
    t.data.path().join(DB_FILE_NAME)
}

fn spill_files(t: &TestDriver) -> Vec<String> {
    std::fs::read_dir(t.data.path().join(SPILL_DIR_NAME))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn status(t: &TestDriver, barcode: &str) -> String {
    t.driver
        .consignment(barcode)
        .expect("consignment")
        .status
        .code()
}

#[test]
fn a_locked_database_delays_the_inbox_commit_and_the_held_body_is_committed() {
    let _serial = serial();
    let (sim, barcodes) = sim_with_events();
    let t = driver(&sim);
    t.driver.import_now().expect("import");

    // Attempt 1 and 2 find the database locked by another writer; it lets go before attempt 3.
    let blocker: Arc<Mutex<Option<Blocker>>> = Arc::default();
    let hits = Arc::new(AtomicU32::new(0));
    let _hook = {
        let (blocker, hits, db) = (blocker.clone(), hits.clone(), db_of(&t));
        upn_core::failpoint::on(FAILPOINT_BEFORE_INBOX_COMMIT, move || {
            let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
            let mut slot = blocker.lock().unwrap_or_else(|p| p.into_inner());
            match n {
                1 => *slot = Some(Blocker::hold(&db)),
                3 => *slot = None,
                _ => {}
            }
        })
    };
    let report = t
        .driver
        .pull_tracking_now()
        .expect("the commit is retried until the other writer lets go");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "two failed attempts, then the commit"
    );
    assert_eq!(report.applied, 6, "every event of the held batch");
    assert_eq!(report.spills_applied, 0);
    assert!(spill_files(&t).is_empty(), "{:?}", spill_files(&t));
    assert_eq!(sim.received().event_batches_handed_out, 1);
    for b in &barcodes {
        assert_eq!(status(&t, b), "out_for_delivery");
    }
}

#[test]
fn a_store_that_keeps_failing_spills_the_body_and_the_next_pull_applies_it_once() {
    let _serial = serial();
    let (sim, barcodes) = sim_with_events();
    let t = driver(&sim);
    t.driver.import_now().expect("import");

    // Another writer holds the database through every attempt.
    let blocker: Arc<Mutex<Option<Blocker>>> = Arc::default();
    let hook = {
        let (blocker, db) = (blocker.clone(), db_of(&t));
        upn_core::failpoint::on(FAILPOINT_BEFORE_INBOX_COMMIT, move || {
            let mut slot = blocker.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(Blocker::hold(&db));
            }
        })
    };
    let err = t
        .driver
        .pull_tracking_now()
        .expect_err("the store failed: the pull says so");
    assert!(
        matches!(&err, Error::Storage { reason, .. } if reason.contains(SPILL_DIR_NAME)),
        "{err}"
    );
    assert_eq!(
        sim.received().event_batches_handed_out,
        1,
        "UPN handed it out"
    );
    assert_eq!(
        spill_files(&t).len(),
        1,
        "the consumed body is kept in a file"
    );
    drop(hook);
    *blocker.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let health = t.driver.tracking_health().expect("health");
    assert_eq!(health.spilled_batches, 1);
    assert!(
        health
            .advice()
            .is_some_and(|a| a.contains("free some space")),
        "{:?}",
        health.advice()
    );

    // The store works again: the next pull moves the spill into the inbox and applies it.
    let report = t.driver.pull_tracking_now().expect("pull");
    assert_eq!((report.spills_applied, report.applied), (1, 6));
    assert!(spill_files(&t).is_empty(), "{:?}", spill_files(&t));
    assert_eq!(
        sim.received().event_batches_handed_out,
        1,
        "nothing was asked for twice"
    );
    for b in &barcodes {
        assert_eq!(status(&t, b), "out_for_delivery");
    }
    assert_eq!(
        t.driver.tracking_health().expect("health").spilled_batches,
        0
    );
    // Applied once: a reopen finds nothing left to apply.
    let db = db_of(&t);
    let TestDriver { driver, data } = t;
    driver.shutdown(std::time::Duration::from_secs(1));
    let store = Store::open(&db).expect("store");
    assert_eq!(store.tracking_event_count().expect("count"), 6);
    assert!(store
        .pending_tracking_batches()
        .expect("pending")
        .is_empty());
    drop(data);
}

#[test]
fn a_body_neither_the_inbox_nor_a_spill_file_can_take_is_held_and_stored_by_a_later_pull() {
    let _serial = serial();
    let (sim, barcodes) = sim_with_events();
    let t = driver(&sim);
    t.driver.import_now().expect("import");

    // The disk fills after the space check: the inbox commit and the spill file both fail.
    let inbox_full = upn_core::failpoint::inject_io_fault(FAULT_INBOX_DISK_FULL);
    let files_full = upn_core::failpoint::inject_io_fault("blobs.disk_full");
    let err = t
        .driver
        .pull_tracking_now()
        .expect_err("nothing could store the body");
    assert!(
        matches!(&err, Error::Storage { reason, .. } if reason.contains("held in memory")),
        "{err}"
    );
    assert_eq!(sim.received().event_batches_handed_out, 1);
    assert!(spill_files(&t).is_empty(), "{:?}", spill_files(&t));

    // Still full: the held body is not stored, and nothing new is asked for meanwhile.
    t.driver
        .pull_tracking_now()
        .expect_err("the disk is still full");
    assert_eq!(
        sim.received().event_batches_handed_out,
        1,
        "no batch is taken while one is held"
    );

    // Space again: the held body is committed first and applied once.
    drop((inbox_full, files_full));
    t.driver.pull_tracking_now().expect("pull");
    for b in &barcodes {
        assert_eq!(status(&t, b), "out_for_delivery");
    }
    let again = t.driver.pull_tracking_now().expect("pull");
    assert_eq!(again.applied, 0, "applied exactly once");
    assert_eq!(sim.received().event_batches_handed_out, 1);
}
