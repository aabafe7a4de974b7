//! Sign-out: `Driver::wipe` removes everything the core made in its data folder, refuses while
//! anything is unsent (unless forced), and a new open of the folder starts empty.

use std::path::Path;

use upn_core::domain::outbox::CaptureKind;
use upn_core::{Driver, DriverConfig, Error};
use upn_e2e::{photo, signature, sim, upn_config};
use upn_sim::{SimConfig, SimHandle};

fn small() -> SimConfig {
    SimConfig {
        seed: 11,
        consignments: 2,
        ..SimConfig::default()
    }
}

fn open(sim: &SimHandle, data: &Path) -> Driver {
    Driver::open(DriverConfig::new(data, upn_config(sim))).expect("open")
}

/// Every name under `dir`, recursively, sorted.
fn names(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("list").flatten() {
            let path = e.path();
            out.push(
                path.strip_prefix(root)
                    .expect("prefix")
                    .display()
                    .to_string(),
            );
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A folder with a signed POD and a photo, both unsent (the driver never went online).
fn with_unsent(sim: &SimHandle, data: &Path) -> Driver {
    let driver = open(sim, data);
    driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    let now = chrono::Utc::now();
    driver
        .sign(&barcode, &signature(1), "Owner Test", now, None)
        .expect("sign");
    driver
        .add_photo(&barcode, &photo(2), CaptureKind::Goods, now, None)
        .expect("photo");
    driver
}

#[test]
fn a_wipe_with_unsent_captures_is_refused_and_changes_nothing() {
    let sim = sim(small());
    let data = tempfile::tempdir().expect("tempdir");
    let driver = with_unsent(&sim, data.path());
    let before = names(data.path());

    let refused = driver.wipe(false).expect_err("two captures are unsent");
    assert!(
        matches!(refused.error, Error::UnsentCaptures { count: 2 }),
        "{:?}",
        refused.error
    );
    assert!(
        refused.error.to_string().contains("force"),
        "{}",
        refused.error
    );
    assert_eq!(
        names(data.path()),
        before,
        "a refused wipe removed something"
    );
    // The core came back open and working.
    let driver = refused.driver.expect("the core is handed back");
    assert_eq!(driver.outbox().expect("outbox").len(), 2);
}

#[test]
fn a_forced_wipe_leaves_none_of_the_cores_files_and_a_new_open_starts_empty() {
    let sim = sim(small());
    let data = tempfile::tempdir().expect("tempdir");
    let driver = with_unsent(&sim, data.path());
    std::fs::write(data.path().join("app-notes.txt"), b"the app's own").expect("write");
    assert!(data.path().join("blobs").is_dir());
    assert!(data.path().join("logs").is_dir());
    std::fs::create_dir_all(data.path().join("quarantine")).expect("quarantine");

    let report = driver.wipe(true).expect("forced wipe");
    assert_eq!(report.unsent_deleted, 2);
    assert_eq!(names(data.path()), vec!["app-notes.txt".to_string()]);
    assert!(
        sim.received().pods.is_empty(),
        "nothing was sent by the wipe"
    );

    // A new open starts empty, and may now belong to another depot.
    let mut other = upn_config(&sim);
    other.depot = "043".into();
    let driver = Driver::open(DriverConfig::new(data.path(), other)).expect("reopen");
    assert!(driver.stops().expect("stops").is_empty());
    assert!(driver.outbox().expect("outbox").is_empty());
}

#[test]
fn a_wipe_after_everything_was_sent_needs_no_force() {
    let sim = sim(small());
    let data = tempfile::tempdir().expect("tempdir");
    let driver = with_unsent(&sim, data.path());
    for _ in 0..5 {
        driver.flush_now().expect("flush");
        if driver.unsent_count().expect("count") == 0 {
            break;
        }
    }
    assert_eq!(driver.unsent_count().expect("count"), 0);
    driver.wipe(false).expect("nothing unsent");
    assert!(names(data.path()).is_empty(), "{:?}", names(data.path()));
}
