//! Races against the flush, opened deterministically with failpoint hooks: a re-sign or a
//! discard between reading the due list and claiming an item, the same calls while the item is
//! in flight, and a photo taken while its POD is being marked sent. Each window has its own
//! failpoint, and this file is the only one registering hooks on them. Hooks are process-wide
//! and one window's competing call passes other failpoints, so the tests here run one at a
//! time (`serial`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use upn_core::clock::Clock;
use upn_core::domain::outbox::{CaptureKind, ItemState};
use upn_core::Error;
use upn_e2e::{driver_with_clock, manual_clock, photo, signature, sim, TestDriver};
use upn_sim::SimConfig;

/// Held for a whole test: no other test's hook can fire in its flows.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn setup() -> (
    upn_sim::SimHandle,
    Arc<TestDriver>,
    Arc<upn_core::clock::ManualClock>,
    String,
) {
    let sim = sim(SimConfig {
        seed: 33,
        consignments: 2,
        ..SimConfig::default()
    });
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    (sim, Arc::new(t), clock, barcode)
}

/// Runs `f` the first time the failpoint is hit; records that it ran.
fn once(
    name: &str,
    f: impl Fn() + Send + Sync + 'static,
) -> (upn_core::failpoint::HookGuard, Arc<AtomicBool>) {
    let fired = Arc::new(AtomicBool::new(false));
    let flag = fired.clone();
    let guard = upn_core::failpoint::on(name, move || {
        if !flag.swap(true, Ordering::SeqCst) {
            f();
        }
    });
    (guard, fired)
}

#[test]
fn a_re_sign_before_the_claim_sends_only_the_new_signature() {
    let _serial = serial();
    let (sim, t, clock, barcode) = setup();
    let first = t
        .driver
        .sign(&barcode, &signature(1), "First Name", clock.now(), None)
        .expect("sign");
    let replaced = Arc::new(Mutex::new(None));
    let (guard, fired) = {
        let (t, barcode, clock, replaced) =
            (t.clone(), barcode.clone(), clock.clone(), replaced.clone());
        once("outbox.before_claim", move || {
            let r = t
                .driver
                .sign(&barcode, &signature(2), "Second Name", clock.now(), None);
            *replaced.lock().unwrap() = Some(r.map(|s| s.replaced));
        })
    };
    let report = t
        .driver
        .flush_now()
        .expect("no UNIQUE constraint error, no failure");
    drop(guard);
    assert!(fired.load(Ordering::SeqCst), "the race window was opened");
    let replaced = replaced.lock().unwrap().take().expect("hook ran");
    assert_eq!(
        replaced.expect("the unsent POD can be replaced"),
        Some(first.item.id.clone())
    );
    assert_eq!(report.sent, 1, "{report:?}");
    let received = sim.received();
    assert_eq!(received.pods.len(), 1, "{received:?}");
    assert_eq!(
        received.pods[0].signed_by, "Second Name",
        "UPN must never hold the replaced signature"
    );
    assert!(received.rejected.is_empty(), "{:?}", received.rejected);
    let all = t.driver.captures(&barcode).expect("captures");
    assert_eq!(all[0].state, ItemState::Replaced);
    assert_eq!(all[0].attempts, 0);
    assert_eq!(all[1].state, ItemState::Sent);
}

#[test]
fn a_discard_before_the_claim_sends_nothing() {
    let _serial = serial();
    let (sim, t, clock, barcode) = setup();
    let pod = t
        .driver
        .sign(&barcode, &signature(3), "Gone Soon", clock.now(), None)
        .expect("sign");
    let (guard, fired) = {
        let (t, id) = (t.clone(), pod.item.id.clone());
        once("outbox.before_claim", move || {
            t.driver.discard(&id).expect("discard of a queued POD");
        })
    };
    let report = t.driver.flush_now().expect("flush");
    drop(guard);
    assert!(fired.load(Ordering::SeqCst));
    assert_eq!(report.sent, 0, "{report:?}");
    assert!(sim.received().pods.is_empty(), "a discarded POD was sent");
    let all = t.driver.captures(&barcode).expect("captures");
    assert_eq!(
        all[0].state,
        ItemState::Discarded,
        "a discard is never undone"
    );
}

#[test]
fn an_item_in_flight_refuses_re_sign_discard_and_retry_with_in_flight() {
    let _serial = serial();
    let (sim, t, clock, barcode) = setup();
    let pod = t
        .driver
        .sign(&barcode, &signature(4), "Kept Name", clock.now(), None)
        .expect("sign");
    let results = Arc::new(Mutex::new(Vec::new()));
    let (guard, fired) = {
        let (t, id, barcode, clock, results) = (
            t.clone(),
            pod.item.id.clone(),
            barcode.clone(),
            clock.clone(),
            results.clone(),
        );
        once("outbox.after_claim", move || {
            let mut r = results.lock().unwrap();
            r.push(
                t.driver
                    .sign(&barcode, &signature(5), "Other Name", clock.now(), None)
                    .map(|_| ()),
            );
            r.push(t.driver.discard(&id).map(|_| ()));
            r.push(t.driver.retry(&id).map(|_| ()));
        })
    };
    let report = t.driver.flush_now().expect("flush");
    drop(guard);
    assert!(fired.load(Ordering::SeqCst));
    for r in results.lock().unwrap().iter() {
        match r {
            Err(e @ Error::InFlight { id }) => {
                assert_eq!(id, &pod.item.id);
                assert!(e.to_string().contains("try again"), "{e}");
            }
            other => panic!("expected InFlight, got {other:?}"),
        }
    }
    assert_eq!(report.sent, 1);
    let received = sim.received();
    assert_eq!(received.pods.len(), 1);
    assert_eq!(received.pods[0].signed_by, "Kept Name");
    assert_eq!(t.driver.captures(&barcode).expect("captures").len(), 1);
}

#[test]
fn a_photo_taken_while_its_pod_is_marked_sent_is_queued_and_reaches_upn() {
    let _serial = serial();
    let (sim, t, clock, barcode) = setup();
    t.driver
        .sign(&barcode, &signature(6), "Door Step", clock.now(), None)
        .expect("sign");
    // Between the driver's read of the POD (queued) and the photo's insert, the POD is sent.
    let (guard, fired) = {
        let t = t.clone();
        once("capture.before_insert", move || {
            let report = t.driver.flush_now().expect("flush in the window");
            assert_eq!(report.sent, 1);
        })
    };
    let item = t
        .driver
        .add_photo(&barcode, &photo(6), CaptureKind::Goods, clock.now(), None)
        .expect("photo");
    drop(guard);
    assert!(fired.load(Ordering::SeqCst));
    assert_eq!(
        item.state,
        ItemState::Queued,
        "decided in the inserting transaction, the photo sees the POD sent"
    );
    let report = t.driver.flush_now().expect("flush");
    assert_eq!(report.sent, 1, "{report:?}");
    let received = sim.received();
    assert_eq!((received.pods.len(), received.images.len()), (1, 1));
    assert!(t.driver.outbox().expect("outbox").is_empty());
}
