//! A crash during the very first capture of a data folder, between its file and its row, must
//! leave a folder that opens (the file is an orphan, quarantined), not one refused as a lost
//! database (`NeedsRecovery`, which would keep the app out until a person acts). Found by the
//! soak harness (seed 44). Its own file: the test registers a process-wide failpoint hook.

use std::panic::AssertUnwindSafe;

use upn_core::testing::store::blobs::QUARANTINE_DIR_NAME;
use upn_core::{Driver, DriverConfig};
use upn_e2e::{driver, signature, sim, upn_config};
use upn_sim::SimConfig;

#[test]
fn a_crash_mid_first_capture_leaves_a_folder_that_opens() {
    let sim = sim(SimConfig {
        consignments: 3,
        ..SimConfig::default()
    });
    let t = driver(&sim);
    t.driver.import_now().expect("import");
    let barcode = t.driver.stops().expect("stops")[0]
        .consignment
        .barcode
        .clone();

    // The process dies after the capture file is durable and before its row commits.
    let crash = upn_core::failpoint::on("capture.before_insert", || panic!("killed"));
    let signed = std::panic::catch_unwind(AssertUnwindSafe(|| {
        t.driver.sign(
            &barcode,
            &signature(1),
            "A. Consignee",
            chrono::Utc::now(),
            None,
        )
    }));
    assert!(signed.is_err(), "the hook stops the capture");
    drop(crash);
    let upn_e2e::TestDriver { driver, data } = t;
    drop(driver);

    let reopened = Driver::open(DriverConfig::new(data.path(), upn_config(&sim)))
        .expect("the folder opens again");
    assert!(reopened.outbox().expect("outbox").is_empty());
    let quarantined = std::fs::read_dir(data.path().join(QUARANTINE_DIR_NAME))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        quarantined, 1,
        "the orphan file is kept aside, never deleted"
    );
    // And the driver can capture again.
    reopened
        .sign(
            &barcode,
            &signature(2),
            "A. Consignee",
            chrono::Utc::now(),
            None,
        )
        .expect("sign after the crash");
}
