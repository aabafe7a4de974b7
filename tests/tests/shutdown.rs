//! Shutting the core down while its background flush is between two steps of an item. The
//! background tasks are stopped before the runtime is: a task left running while the runtime
//! shuts down meets a stopped timer at its next sleep and panics on the core's thread. This
//! file's hooks are process-wide: its tests run one at a time (`serial`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use upn_core::{Driver, DriverConfig};
use upn_e2e::hooks::{hold, serial, PATIENCE};
use upn_e2e::{signature, sim, upn_config};
use upn_sim::SimConfig;

/// Counts panics on the core's runtime threads (named `upn-core`) while installed.
fn count_core_panics() -> Arc<AtomicU32> {
    let count = Arc::new(AtomicU32::new(0));
    let seen = count.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("upn-core") {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
    count
}

#[test]
fn a_shutdown_during_a_background_flush_stops_the_task_first_and_sends_the_pod_once() {
    let _serial = serial();
    let sim = sim(SimConfig {
        seed: 51,
        consignments: 1,
        ..SimConfig::default()
    });
    let barcode = sim.consignments()[0].barcode.clone();
    let data = tempfile::tempdir().expect("tempdir");
    let config = DriverConfig::new(data.path().to_path_buf(), upn_config(&sim));
    let driver = Driver::open(config.clone()).expect("open");
    driver.import_now().expect("import");
    driver
        .sign(&barcode, &signature(1), "A. Consignee", Utc::now(), None)
        .expect("sign");
    let panics = count_core_panics();

    // The background flush (online) uploads the POD and is held before recording it sent.
    let held = hold("outbox.after_upload_before_mark", 1);
    driver.set_online(true);
    held.reached
        .recv_timeout(PATIENCE)
        .expect("the background flush reached the window");
    // Then held again inside the transaction recording it sent: a blocking section, where the
    // runtime's worker has handed its other work to another thread.
    let in_commit = hold(upn_core::testing::store::FAILPOINT_STORE_IN_TX, 1);
    held.go.send(()).expect("release");
    in_commit
        .reached
        .recv_timeout(PATIENCE)
        .expect("the flush reached its commit");
    // As the app's shutdown does: offline first (which wakes the background tasks), then stop.
    let shutdown = std::thread::spawn(move || {
        driver.set_online(false);
        driver.shutdown(Duration::from_secs(30))
    });
    // Shutdown is under way while the task is held; then the task goes on.
    std::thread::sleep(Duration::from_millis(300));
    in_commit.go.send(()).expect("release the commit");
    shutdown.join().expect("shutdown returns");
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "no panic on the core's threads"
    );

    // The POD reached UPN once; a reopened core sends nothing twice and ends empty.
    let driver = Driver::open(config).expect("reopen");
    driver.set_online(true);
    for _ in 0..5 {
        driver.flush_now().expect("flush");
        let stats = driver.outbox_stats().expect("stats");
        if stats.queued + stats.sending + stats.waiting == 0 {
            break;
        }
    }
    let received = sim.received();
    assert_eq!(received.pods.len(), 1, "one POD record at UPN");
    assert_eq!(received.pods[0].barcode, barcode);
    let stats = driver.outbox_stats().expect("stats");
    assert_eq!(stats.queued + stats.sending + stats.waiting, 0);
}
