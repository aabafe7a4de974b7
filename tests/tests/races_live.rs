//! The window between `subscribe`'s snapshot and the listener's registration, opened with a
//! failpoint hook: a signature recorded right there must reach the listener once, as a newer
//! stop-list version, and its outbox item once (in the snapshot, not again as a change). This
//! file is the only one registering a hook on `listeners.subscribe.after_snapshot`.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use upn_core::clock::Clock;
use upn_core::domain::outbox::OutboxItem;
use upn_core::domain::StopPhase;
use upn_core::listener::{DriverListener, StopListUpdate};
use upn_e2e::{driver_with_clock, manual_clock, signature, sim};
use upn_sim::SimConfig;

#[derive(Default)]
struct Heard {
    updates: Mutex<Vec<StopListUpdate>>,
    items: Mutex<Vec<OutboxItem>>,
    changed: Condvar,
}

impl DriverListener for Heard {
    fn stop_list_changed(&self, update: &StopListUpdate) {
        self.updates.lock().expect("lock").push(update.clone());
        self.changed.notify_all();
    }
    fn outbox_item_changed(&self, item: &OutboxItem) {
        self.items.lock().expect("lock").push(item.clone());
    }
}

#[test]
fn a_change_between_snapshot_and_registration_is_heard_once() {
    let sim = sim(SimConfig {
        seed: 41,
        consignments: 2,
        ..SimConfig::default()
    });
    let clock = manual_clock();
    let t = Arc::new(driver_with_clock(&sim, clock.clone()));
    t.driver.import_now().expect("import");
    let barcode = t.driver.stops().expect("stops")[0]
        .consignment
        .barcode
        .clone();

    let fired = Arc::new(Mutex::new(false));
    let _hook = upn_core::failpoint::on("listeners.subscribe.after_snapshot", {
        let (t, fired, barcode, clock) = (t.clone(), fired.clone(), barcode.clone(), clock.clone());
        move || {
            let mut fired = fired.lock().expect("lock");
            if !*fired {
                *fired = true;
                t.driver
                    .sign(&barcode, &signature(9), "In The Gap", clock.now(), None)
                    .expect("sign in the window");
            }
        }
    });
    let heard = Arc::new(Heard::default());
    let (live, _sub) = t.driver.subscribe(heard.clone()).expect("subscribe");
    assert!(*fired.lock().expect("lock"), "the window was opened");
    // The snapshot was read before the signature: the stop is still open there.
    let in_snapshot = live
        .stops
        .iter()
        .find(|s| s.consignment.barcode == barcode)
        .expect("stop");
    assert_eq!(in_snapshot.phase, StopPhase::Open);

    // A newer version says it is done on this device.
    let until = Instant::now() + Duration::from_secs(20);
    let mut updates = heard.updates.lock().expect("lock");
    let newer = loop {
        let found = updates.iter().find(|u| {
            u.seq > live.seq
                && u.stops
                    .iter()
                    .any(|s| s.consignment.barcode == barcode && s.phase == StopPhase::DoneOnDevice)
        });
        if let Some(u) = found {
            break u.clone();
        }
        let left = until.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the signature was lost: {updates:#?}");
        updates = heard.changed.wait_timeout(updates, left).expect("lock").0;
    };
    // Versions are heard in order, none twice.
    let seqs: Vec<u64> = updates.iter().map(|u| u.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seqs[0], live.seq, "the replay comes first");
    assert!(newer.seq > live.seq);
    drop(updates);
    // The POD's item: in the snapshot (so in the replay), and not again as a change.
    assert_eq!(live.outbox.len(), 1);
    let items = heard.items.lock().expect("lock");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].id, live.outbox[0].id);
}
