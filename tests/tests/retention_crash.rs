//! A crash between a purge's commit and the removal of its files: the files stay behind with
//! no row referencing them, and the next open's sweep moves them to quarantine. Its own test
//! binary: it registers a process-wide failpoint hook.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use upn_core::domain::outbox::CaptureKind;
use upn_core::driver::FAILPOINT_AFTER_PURGE;
use upn_core::testing::store::blobs::QUARANTINE_DIR_NAME;
use upn_core::{Driver, DriverConfig};
use upn_e2e::{manual_clock, photo, signature, sim, upn_config};
use upn_sim::SimConfig;

/// A file as it was at the failpoint: path and bytes.
type Kept = (PathBuf, Vec<u8>);

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn files_left_by_a_crash_after_the_purge_commit_are_quarantined_at_open() {
    let sim = sim(SimConfig {
        seed: 29,
        consignments: 1,
        ..SimConfig::default()
    });
    let data = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let config = DriverConfig::new(data.path(), upn_config(&sim));
    let driver = Driver::open_with_clock(config.clone(), clock.clone()).expect("open");
    driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    let now = chrono::Utc::now();
    driver
        .add_photo(&barcode, &photo(5), CaptureKind::Goods, now, None)
        .expect("photo");
    driver
        .sign(&barcode, &signature(5), "Crash Between", now, None)
        .expect("sign");
    for _ in 0..5 {
        driver.flush_now().expect("flush");
    }
    let blobs = data.path().join("blobs");

    // At the failpoint the row is committed and the files are still there: keep a copy of
    // them, and put them back afterwards, which is what a crash at that point leaves.
    let kept: Arc<Mutex<Vec<Kept>>> = Arc::default();
    let hook_kept = kept.clone();
    let hook_blobs = blobs.clone();
    let guard = upn_core::failpoint::on(FAILPOINT_AFTER_PURGE, move || {
        let mut kept = hook_kept.lock().unwrap();
        for path in files_in(&hook_blobs) {
            if !kept.iter().any(|(p, _)| *p == path) {
                let bytes = std::fs::read(&path).expect("read");
                kept.push((path, bytes));
            }
        }
    });
    clock.advance(chrono::Duration::days(8));
    assert_eq!(
        driver.run_retention().expect("retention").originals_purged,
        2
    );
    drop(guard);
    drop(driver);
    let kept = kept.lock().unwrap().clone();
    assert!(!kept.is_empty());
    for (path, bytes) in &kept {
        std::fs::write(path, bytes).expect("restore");
    }

    let driver = Driver::open_with_clock(config, clock).expect("reopen");
    assert!(files_in(&blobs).is_empty(), "{:?}", files_in(&blobs));
    assert_eq!(
        files_in(&data.path().join(QUARANTINE_DIR_NAME)).len(),
        kept.len()
    );
    assert!(driver.verify_pod(&barcode).expect("verify").intact);
}
