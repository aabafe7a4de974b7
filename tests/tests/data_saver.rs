//! The data saver against the simulator over loopback: photos only on an unmetered network, or
//! within a daily budget on a metered one; PODs always go; held photos stay queued with their
//! reason (no attempt counted) and go once the network is unmetered or the budget allows.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use upn_core::clock::{Clock, ManualClock};
use upn_core::domain::data_saver::{DataSaver, NetworkStatus};
use upn_core::domain::outbox::{CaptureKind, ItemState, OutboxReason};
use upn_core::{Driver, DriverConfig, Error};
use upn_e2e::{driver_with_clock, manual_clock, photo, signature, sim, upn_config, TestDriver};
use upn_sim::{FaultSpec, SimConfig, SimHandle};

const METERED: NetworkStatus = NetworkStatus {
    online: true,
    metered: true,
};
const WIFI: NetworkStatus = NetworkStatus {
    online: true,
    metered: false,
};
const BUDGET: u64 = 1_000_000;

fn small() -> SimConfig {
    SimConfig {
        seed: 33,
        consignments: 3,
        ..SimConfig::default()
    }
}

fn setup() -> (SimHandle, std::sync::Arc<ManualClock>, TestDriver, String) {
    let sim = sim(small());
    let clock = manual_clock();
    let t = driver_with_clock(&sim, clock.clone());
    t.driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    (sim, clock, t, barcode)
}

/// Photos first (they wait for the POD), then the signature.
fn deliver(t: &TestDriver, clock: &ManualClock, barcode: &str, photos: u64) {
    for seed in 1..=photos {
        t.driver
            .add_photo(barcode, &photo(seed), CaptureKind::Goods, clock.now(), None)
            .expect("photo");
    }
    t.driver
        .sign(barcode, &signature(1), "Jo Patel", clock.now(), None)
        .expect("sign");
}

fn queued_photos(driver: &Driver) -> Vec<upn_core::domain::outbox::OutboxItem> {
    driver
        .outbox()
        .expect("outbox")
        .into_iter()
        .filter(|i| i.kind.is_photo() && i.state == ItemState::Queued)
        .collect()
}

/// Waits (bounded) for the background outbox to bring the simulator's image count to `n`.
fn wait_for_images(sim: &SimHandle, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while sim.received().images.len() < n {
        assert!(
            Instant::now() < deadline,
            "the held photos were not sent: {:?}",
            sim.received()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn on_metered_with_wifi_only_the_pod_goes_the_photos_wait_then_go_on_wifi_by_themselves() {
    let (sim, clock, t, barcode) = setup();
    t.driver
        .set_data_saver(DataSaver::PhotosOnUnmetered)
        .expect("policy");
    // Offline while capturing, so only the calls below send.
    t.driver.set_network(NetworkStatus {
        online: false,
        metered: true,
    });
    deliver(&t, &clock, &barcode, 2);

    let report = t.driver.drain(Duration::from_secs(60)).expect("drain");
    assert_eq!(report.flush.sent, 1, "{report:?}");
    assert_eq!((report.pending, report.held_by_data_saver), (2, 2));
    let received = sim.received();
    assert_eq!(received.pods.len(), 1, "the POD is never held");
    assert!(received.images.is_empty(), "{received:?}");
    let held = queued_photos(&t.driver);
    assert_eq!(held.len(), 2);
    for item in &held {
        assert_eq!(item.attempts, 0, "{item:?}");
        assert_eq!(item.reason, Some(OutboxReason::HeldUntilUnmetered));
        assert_eq!(item.next_attempt_at, None, "no backoff started");
    }
    // Not an error: the stop says queued, the images check names the data saver.
    let detail = t.driver.consignment(&barcode).expect("detail");
    assert_eq!(detail.sync, upn_core::domain::SyncBadge::Queued);
    let diagnosis = t.driver.diagnose(Some(&barcode), None).expect("diagnose");
    let images = diagnosis
        .check(upn_core::domain::diagnostics::CheckId::Images)
        .expect("images check");
    assert_eq!(
        images.status,
        upn_core::domain::diagnostics::CheckStatus::Warning
    );
    assert!(images.summary.contains("data saver"), "{images:?}");
    // The background outbox, online on a metered network, still holds them.
    t.driver.set_network(METERED);
    let flush = t.driver.flush_now().expect("flush");
    assert_eq!(flush.sent, 0);
    assert_eq!(t.driver.next_outbox_wake().expect("wake"), None, "no spin");

    // Wi-Fi: sent without a further call.
    t.driver.set_network(WIFI);
    wait_for_images(&sim, 2);
    let received = sim.received();
    assert!(received.images.iter().all(|i| i.attempts == 1));
    assert!(received.images.iter().all(|i| i.seq > received.pods[0].seq));
}

/// The budget lets photos through while today's acknowledged metered bytes plus the next stay
/// within it, counts only what UPN acknowledged, and starts afresh on the next UTC day.
#[test]
fn a_metered_budget_counts_acknowledged_bytes_and_resets_on_the_next_utc_day() {
    let (sim, clock, t, barcode) = setup();
    t.driver
        .set_data_saver(DataSaver::MeteredPhotoBudget {
            bytes_per_day: BUDGET,
        })
        .expect("policy");
    t.driver.set_network(NetworkStatus {
        online: false,
        metered: true,
    });
    // Enough photos to pass 1 MB.
    deliver(&t, &clock, &barcode, 12);

    // A failed upload is not counted: image requests fail while the fault is set.
    sim.set_faults("image:503:1".parse().expect("spec"));
    let report = t.driver.drain(Duration::from_secs(120)).expect("drain");
    assert_eq!(sim.received().pods.len(), 1, "the POD always goes");
    assert!(sim.received().images.is_empty());
    let status = t.driver.data_saver_status().expect("status");
    assert_eq!(status.metered_photo_bytes_today, 0, "{report:?}");
    sim.set_faults(FaultSpec::none());

    let sent = drain_past_backoffs(&t, &clock);
    let images = sim.received().images;
    let acknowledged: u64 = images.iter().map(|i| i.bytes).sum();
    assert!(!images.is_empty(), "the first photos go");
    assert!(acknowledged <= BUDGET, "{acknowledged} over the budget");
    let status = t.driver.data_saver_status().expect("status");
    assert_eq!(status.metered_photo_bytes_today, acknowledged);
    let held = queued_photos(&t.driver);
    assert!(!held.is_empty(), "the rest is held ({sent} sent)");
    for item in &held {
        assert_eq!(item.reason, Some(OutboxReason::HeldByBudget));
        assert!(acknowledged + item.bytes > BUDGET, "{item:?} would fit");
    }
    assert_eq!(status.held as usize, held.len());

    // The next UTC day: the outbox wakes at midnight, and the budget is fresh.
    let midnight = next_utc_midnight(clock.now());
    assert_eq!(t.driver.next_outbox_wake().expect("wake"), Some(midnight));
    clock.advance(midnight - clock.now());
    assert_eq!(
        t.driver
            .data_saver_status()
            .expect("status")
            .metered_photo_bytes_today,
        0
    );
    drain_past_backoffs(&t, &clock);
    let images = sim.received().images;
    let today: u64 = images.iter().skip(sent as usize).map(|i| i.bytes).sum();
    assert!(
        images.len() > sent as usize,
        "more photos go on the new day"
    );
    let status = t.driver.data_saver_status().expect("status");
    assert_eq!(status.metered_photo_bytes_today, today);
    assert!(today <= BUDGET);

    // Wi-Fi sends everything left, and counts nothing against the budget.
    t.driver.set_network(NetworkStatus {
        online: false,
        metered: false,
    });
    t.driver.drain(Duration::from_secs(120)).expect("drain");
    assert_eq!(sim.received().images.len(), 12);
    assert!(queued_photos(&t.driver).is_empty());
    let status = t.driver.data_saver_status().expect("status");
    assert_eq!(status.metered_photo_bytes_today, today);
}

/// Drains, moving the clock to each backoff's end within the day, until nothing more is due
/// today; returns how many photos UPN holds.
fn drain_past_backoffs(t: &TestDriver, clock: &ManualClock) -> u32 {
    let midnight = next_utc_midnight(clock.now());
    for _ in 0..20 {
        t.driver.drain(Duration::from_secs(120)).expect("drain");
        match t.driver.next_outbox_wake().expect("wake") {
            Some(at) if at < midnight => {
                clock.advance((at - clock.now()).max(chrono::Duration::zero()))
            }
            _ => break,
        }
    }
    t.driver
        .outbox_stats()
        .expect("stats")
        .sent
        .saturating_sub(1)
}

fn next_utc_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a next day")
        .and_utc()
}

#[test]
fn the_policy_survives_reopen_and_a_bad_budget_is_refused_changing_nothing() {
    let sim = sim(small());
    let clock = manual_clock();
    let TestDriver { driver, data } = driver_with_clock(&sim, clock.clone());
    assert_eq!(driver.data_saver().expect("policy"), DataSaver::Off);
    let policy = DataSaver::MeteredPhotoBudget {
        bytes_per_day: 50_000_000,
    };
    driver.set_data_saver(policy).expect("set");
    for bad in [0, 999_999, 10_000_000_001, u64::MAX] {
        let e = driver
            .set_data_saver(DataSaver::MeteredPhotoBudget { bytes_per_day: bad })
            .expect_err("out of range");
        assert!(
            matches!(
                e,
                Error::InvalidInput {
                    field: "data_saver.bytes_per_day",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(driver.data_saver().expect("policy"), policy, "unchanged");
    }
    drop(driver);
    let reopened = Driver::open_with_clock(
        DriverConfig::new(data.path().to_path_buf(), upn_config(&sim)),
        clock,
    )
    .expect("reopen");
    assert_eq!(reopened.data_saver().expect("policy"), policy);
    // The network is the app's to report again: unmetered until told.
    assert_eq!(reopened.network(), NetworkStatus::default());
    reopened
        .set_data_saver(DataSaver::PhotosOnUnmetered)
        .expect("set");
    assert_eq!(
        reopened.data_saver().expect("policy"),
        DataSaver::PhotosOnUnmetered
    );
}

#[test]
fn set_online_keeps_the_last_metered_and_a_policy_change_wakes_the_outbox() {
    let (sim, clock, t, barcode) = setup();
    t.driver
        .set_data_saver(DataSaver::PhotosOnUnmetered)
        .expect("policy");
    t.driver.set_network(NetworkStatus {
        online: false,
        metered: true,
    });
    deliver(&t, &clock, &barcode, 1);
    t.driver.drain(Duration::from_secs(60)).expect("drain");
    t.driver.set_online(true);
    assert_eq!(t.driver.network(), METERED, "set_online keeps metered");
    assert_eq!(queued_photos(&t.driver).len(), 1);
    assert!(sim.received().images.is_empty());
    // Switching the data saver off sends the held photo at once, without a further call.
    t.driver.set_data_saver(DataSaver::Off).expect("off");
    wait_for_images(&sim, 1);
}
