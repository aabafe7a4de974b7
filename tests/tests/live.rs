//! The live stop list and cancellable drains, against the simulator over loopback: imports
//! (background and explicit) reach listeners as added / changed / cancelled stops, a stop signed
//! on this device is `DoneOnDevice` at once, a blocked listener does not hold a flush up, and a
//! cancelled drain returns promptly and releases the outbox.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use upn_core::clock::Clock;
use upn_core::domain::outbox::{CaptureKind, ItemState, OutboxItem};
use upn_core::domain::{StopChangeKind, StopPhase};
use upn_core::listener::{DriverListener, StopListUpdate, UploadProgress};
use upn_core::CancelToken;
use upn_core::FlushEnd;
use upn_e2e::{driver_with_clock, manual_clock, signature, sim};
use upn_sim::SimConfig;

fn small(consignments: usize) -> SimConfig {
    SimConfig {
        seed: 31,
        consignments,
        ..SimConfig::default()
    }
}

/// Keeps every stop-list version it hears; tests wait on it (a condition, not a sleep).
#[derive(Default)]
struct Lists {
    updates: Mutex<Vec<StopListUpdate>>,
    changed: Condvar,
}

impl Lists {
    /// Waits (at most 20 s) for a version satisfying `done`, and returns it.
    fn wait_for(&self, what: &str, done: impl Fn(&StopListUpdate) -> bool) -> StopListUpdate {
        let until = Instant::now() + Duration::from_secs(20);
        let mut updates = self.updates.lock().expect("lock");
        loop {
            if let Some(u) = updates.iter().find(|u| done(u)) {
                return u.clone();
            }
            let left = until.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}: {updates:#?}"
            );
            updates = self.changed.wait_timeout(updates, left).expect("lock").0;
        }
    }
}

impl DriverListener for Lists {
    fn stop_list_changed(&self, update: &StopListUpdate) {
        self.updates.lock().expect("lock").push(update.clone());
        self.changed.notify_all();
    }
}

fn change_of(update: &StopListUpdate, barcode: &str) -> Option<StopChangeKind> {
    update
        .changes
        .iter()
        .find(|c| c.barcode == barcode)
        .map(|c| c.kind)
}

#[test]
fn imports_reach_listeners_as_added_changed_and_cancelled_stops() {
    let sim = sim(small(3));
    let t = driver_with_clock(&sim, manual_clock());
    let lists = Arc::new(Lists::default());
    let (live, _sub) = t.driver.subscribe(lists.clone()).expect("subscribe");
    assert!(live.stops.is_empty());

    // The background import (going online starts it) is heard: every stop added.
    t.driver.set_online(true);
    let first = lists.wait_for("the background import", |u| u.stops.len() == 3);
    assert!(first.seq > live.seq);
    assert!(first
        .changes
        .iter()
        .all(|c| c.kind == StopChangeKind::Added));
    t.driver.set_online(false);

    let barcodes: Vec<String> = first
        .stops
        .iter()
        .map(|s| s.consignment.barcode.clone())
        .collect();
    assert!(sim.cancel(&barcodes[0], Some("customer closed")));
    assert!(sim.update_instructions(&barcodes[1], Some("Use the side gate")));
    t.driver.import_now().expect("import");
    let second = lists.wait_for("the cancellation", |u| {
        change_of(u, &barcodes[0]) == Some(StopChangeKind::Cancelled)
    });
    assert!(second.seq > first.seq);
    assert_eq!(
        change_of(&second, &barcodes[1]),
        Some(StopChangeKind::Changed)
    );
    let last = second.stops.last().expect("stops");
    assert_eq!(last.consignment.barcode, barcodes[0]);
    assert_eq!(last.phase, StopPhase::Cancelled);
    // The list is whole and numbered 1..=n: no position shifts silently.
    let positions: Vec<u32> = second.stops.iter().map(|s| s.position).collect();
    assert_eq!(positions, [1, 2, 3]);
    assert_eq!(second.stops, t.driver.stops().expect("stops"));
}

#[test]
fn a_stop_signed_on_this_device_is_done_on_device_at_once() {
    let sim = sim(small(3));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let top = t.driver.stops().expect("stops")[0].clone();
    assert_eq!(top.phase, StopPhase::Open);
    let lists = Arc::new(Lists::default());
    let (live, _sub) = t.driver.subscribe(lists.clone()).expect("subscribe");
    // The replay ends with the whole list, numbered as the snapshot.
    let replay = lists.wait_for("the replay", |u| u.seq == live.seq);
    assert_eq!(replay.stops, live.stops);

    let barcode = top.consignment.barcode.clone();
    t.driver
        .sign(&barcode, &signature(1), "Ada Lovelace", clock.now(), None)
        .expect("sign");
    // Offline, nothing sent: the stop has left the open section already.
    let stops = t.driver.stops().expect("stops");
    let signed = stops
        .iter()
        .find(|s| s.consignment.barcode == barcode)
        .expect("stop");
    assert_eq!(signed.phase, StopPhase::DoneOnDevice);
    assert_eq!(signed.position, 3, "below the open stops: {stops:#?}");
    assert!(stops[..2].iter().all(|s| s.phase == StopPhase::Open));
    let heard = lists.wait_for("the signed stop", |u| {
        u.stops
            .iter()
            .any(|s| s.consignment.barcode == barcode && s.phase == StopPhase::DoneOnDevice)
    });
    assert!(heard.seq > live.seq);
    assert_eq!(change_of(&heard, &barcode), Some(StopChangeKind::Changed));
}

/// Blocks in its first outbox call (once armed) until released, telling the test it is in.
struct Blocking {
    armed: Mutex<bool>,
    entered: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<mpsc::Receiver<()>>,
    blocked: std::sync::atomic::AtomicBool,
}

impl DriverListener for Blocking {
    fn outbox_item_changed(&self, _: &OutboxItem) {
        if !std::mem::take(&mut *self.armed.lock().expect("lock")) {
            return;
        }
        self.blocked
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(entered) = self.entered.lock().expect("lock").take() {
            let _ = entered.send(());
        }
        // Bounded, so the old code (listeners called inside the flush) fails instead of hanging.
        let _ = self
            .release
            .lock()
            .expect("lock")
            .recv_timeout(Duration::from_secs(30));
        self.blocked
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_blocked_listener_does_not_hold_up_a_flush() {
    let sim = sim(small(2));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = t.driver.stops().expect("stops")[0]
        .consignment
        .barcode
        .clone();
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let listener = Arc::new(Blocking {
        armed: Mutex::new(true),
        entered: Mutex::new(Some(entered_tx)),
        release: Mutex::new(release_rx),
        blocked: Default::default(),
    });
    let _sub = t.driver.subscribe(listener.clone()).expect("subscribe");

    // The capture's event reaches the listener, which now blocks (its dispatcher with it).
    t.driver
        .sign(&barcode, &signature(2), "Slow Listener", clock.now(), None)
        .expect("sign");
    entered
        .recv_timeout(Duration::from_secs(20))
        .expect("the listener was called");

    let report = t.driver.flush_now().expect("flush");
    assert_eq!(report.sent, 1, "{report:?}");
    assert!(
        listener.blocked.load(std::sync::atomic::Ordering::SeqCst),
        "the flush finished while the listener was still blocked"
    );
    assert_eq!(sim.received().pods.len(), 1);
    release.send(()).expect("release");
}

/// Signals once an upload of `capture` has bytes on the wire (its answer not yet received).
struct UploadStarted {
    capture: Mutex<Option<String>>,
    started: Mutex<Option<mpsc::Sender<()>>>,
}

impl DriverListener for UploadStarted {
    fn upload_progress(&self, p: &UploadProgress) {
        let wanted = self.capture.lock().expect("lock").clone();
        // Any bytes handed to the connection: the throttled simulator is still reading them
        // (the body fits the socket buffers at once, and the mailbox coalesces progress, so
        // `sent == total` may be the only report) and answers only when it has them all.
        if wanted.as_deref() == Some(p.capture_id.as_str()) && p.sent > 0 {
            if let Some(started) = self.started.lock().expect("lock").take() {
                let _ = started.send(());
            }
        }
    }
}

#[test]
fn a_cancelled_drain_returns_within_a_second_and_the_next_one_runs_at_once() {
    let sim = sim(SimConfig {
        // The photo's ~210 KB take the simulator ~10 s to read: the window the cancel lands in.
        throttle_bytes_per_s: Some(20_000),
        ..small(1)
    });
    let clock = manual_clock();
    let t = Arc::new(driver_with_clock(&sim, clock.clone()));
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    t.driver
        .sign(&barcode, &signature(3), "Cancel Me", clock.now(), None)
        .expect("sign");
    let photo = t
        .driver
        .add_photo(
            &barcode,
            &upn_sim::samples::photo_jpeg(5, 2400, 1800),
            CaptureKind::Goods,
            clock.now(),
            None,
        )
        .expect("photo");
    let (started_tx, started) = mpsc::channel();
    let listener = Arc::new(UploadStarted {
        capture: Mutex::new(Some(photo.id.clone())),
        started: Mutex::new(Some(started_tx)),
    });
    let _sub = t.driver.subscribe(listener).expect("subscribe");

    let token = CancelToken::new();
    let (done_tx, done) = mpsc::channel();
    let drainer = {
        let (t, token) = (t.clone(), token.clone());
        std::thread::spawn(move || {
            let report = t.driver.drain_cancellable(Duration::from_secs(120), &token);
            let _ = done_tx.send(report);
        })
    };
    // Generous: the rendition is made first, on a loaded machine too.
    started
        .recv_timeout(Duration::from_secs(120))
        .expect("the photo upload started");
    let cancelled_at = Instant::now();
    token.cancel();
    let report = done
        .recv_timeout(Duration::from_secs(1))
        .expect("the cancelled drain returned within a second")
        .expect("drain");
    assert!(cancelled_at.elapsed() < Duration::from_secs(1));
    drainer.join().expect("drainer");
    assert_eq!(report.flush.ended, FlushEnd::Cancelled, "{report:?}");
    assert_eq!(report.pending, 1, "the photo is left for the next pass");

    // The outbox is released: the next drain starts at once, requeues the row the cancelled
    // one left `sending`, and sends it, once.
    let next = t
        .driver
        .drain(Duration::from_secs(60))
        .expect("the next drain");
    assert_eq!(next.flush.ended, FlushEnd::Done, "{next:?}");
    assert_eq!(next.pending, 0);
    let items = t.driver.captures(&barcode).expect("captures");
    assert!(
        items.iter().all(|c| c.state == ItemState::Sent),
        "{items:?}"
    );
    let received = sim.received();
    assert_eq!(received.pods.len(), 1);
    assert_eq!(received.images.len(), 1);
    assert_eq!(received.images[0].idempotency_key, photo.id);
}

#[test]
fn a_drain_cancelled_before_it_starts_does_nothing_and_keeps_everything() {
    let sim = sim(small(1));
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    t.driver
        .sign(&barcode, &signature(4), "Too Late", clock.now(), None)
        .expect("sign");
    let token = CancelToken::new();
    token.cancel();
    let report = t
        .driver
        .drain_cancellable(Duration::from_secs(30), &token)
        .expect("drain");
    assert_eq!(report.flush.ended, FlushEnd::Cancelled);
    assert_eq!(report.pending, 1);
    assert!(sim.received().pods.is_empty());
    assert_eq!(
        t.driver
            .drain(Duration::from_secs(30))
            .expect("drain")
            .pending,
        0
    );
}
