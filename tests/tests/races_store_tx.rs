//! Crashes inside a store transaction (issue 13, gap b): the `store.in_tx` failpoint sits
//! between the statements of the multi-statement transactions, so a crash there lands inside
//! one. The crash is a panic from the hook (as the soak's crash scheduler does); the
//! transaction rolls back, and the core reopened on the same files carries on as if the
//! transaction had never started: nothing lost, nothing sent twice.
//!
//! The hooks are process-wide, so the tests in this file run one at a time (`SERIAL`).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use upn_core::domain::outbox::{CaptureKind, ItemState};
use upn_core::testing::store::FAILPOINT_STORE_IN_TX;
use upn_core::{Driver, DriverConfig};
use upn_e2e::{photo, signature, sim, upn_config};
use upn_sim::SimConfig;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

struct Crash;

/// Runs `f` with a crash at the `at`-th `store.in_tx` point; true when it crashed there.
fn crash_inside(at: u32, f: impl FnOnce()) -> bool {
    let seen = Arc::new(AtomicU32::new(0));
    let hook = {
        let seen = seen.clone();
        upn_core::failpoint::on(FAILPOINT_STORE_IN_TX, move || {
            if seen.fetch_add(1, Ordering::SeqCst) + 1 == at {
                std::panic::panic_any(Crash);
            }
        })
    };
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(f));
    drop(hook);
    matches!(outcome, Err(p) if p.downcast_ref::<Crash>().is_some())
}

fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Crash>().is_none() {
                default(info);
            }
        }));
    });
}

#[test]
fn a_crash_inside_mark_sent_rolls_back_and_the_reopened_core_sends_each_capture_once() {
    let _serial = serial();
    quiet();
    let sim = sim(SimConfig {
        seed: 141,
        consignments: 1,
        ..SimConfig::default()
    });
    let data = tempfile::tempdir().expect("tempdir");
    let open = || Driver::open(DriverConfig::new(data.path(), upn_config(&sim))).expect("open");
    let barcode = sim.consignments()[0].barcode.clone();
    let now = chrono::Utc::now();
    let driver = open();
    driver.import_now().expect("import");
    let photo_id = driver
        .add_photo(&barcode, &photo(1), CaptureKind::Goods, now, None)
        .expect("photo")
        .id;
    let pod_id = driver
        .sign(&barcode, &signature(2), "A. Consignee", now, None)
        .expect("sign")
        .item
        .id;
    // Offline (as opened): no background flush races the one here.
    // UPN has the POD; the crash lands after the POD's row is marked sent, before its photo
    // is released, inside the one transaction that does both.
    assert!(
        crash_inside(1, || {
            let _ = driver.flush_now();
        }),
        "the flush passed no point inside a transaction"
    );
    drop(driver);

    let driver = open();
    let states: Vec<(String, ItemState)> = driver
        .captures(&barcode)
        .expect("captures")
        .into_iter()
        .map(|c| (c.id, c.state))
        .collect();
    assert!(
        states.iter().all(|(_, s)| *s != ItemState::Sent),
        "the transaction was cut short, so nothing of it may be in: {states:?}"
    );
    assert!(
        states.contains(&(photo_id.clone(), ItemState::Waiting)),
        "{states:?}"
    );
    driver.flush_now().expect("flush after reopen");
    driver.flush_now().expect("the released photo");
    let captures = driver.captures(&barcode).expect("captures");
    assert!(
        captures.iter().all(|c| c.state == ItemState::Sent),
        "{captures:?}"
    );
    let received = sim.received();
    assert_eq!(received.pods.len(), 1, "{received:?}");
    assert_eq!(received.pods[0].idempotency_key, pod_id);
    assert_eq!(received.images.len(), 1, "{received:?}");
    assert_eq!(received.images[0].idempotency_key, photo_id);
}

#[test]
fn a_crash_inside_the_import_transaction_leaves_no_half_import_and_the_next_one_completes() {
    let _serial = serial();
    quiet();
    let sim = sim(SimConfig {
        seed: 142,
        consignments: 3,
        ..SimConfig::default()
    });
    let data = tempfile::tempdir().expect("tempdir");
    let open = || Driver::open(DriverConfig::new(data.path(), upn_config(&sim))).expect("open");
    let driver = open();
    // After the first consignment is upserted, before the others and the cursor.
    assert!(
        crash_inside(1, || {
            let _ = driver.import_now();
        }),
        "the import passed no point inside a transaction"
    );
    drop(driver);
    let driver = open();
    assert!(
        driver.stops().expect("stops").is_empty(),
        "a half import is in"
    );
    driver.import_now().expect("import");
    assert_eq!(driver.stops().expect("stops").len(), 3);
}
