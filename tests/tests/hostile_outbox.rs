//! The outbox against a small hostile UPN on loopback: it records every request body and
//! answers as the test says (a 503 first, then receipts that do not match what was sent).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use upn_core::clock::Clock;
use upn_core::domain::outbox::{CaptureKind, ItemState};
use upn_core::upn::{ApiKey, UpnConfig};
use upn_core::{Driver, DriverConfig};
use upn_e2e::{driver_with_clock, manual_clock, photo, signature, sim, TestDriver};
use upn_sim::SimConfig;

type Recorded = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Serves one request per connection: `answer(path, nth request to this kind of path)`
/// gives (status, JSON body). Returns the endpoint and what it received.
fn hostile(answer: impl Fn(&str, usize) -> (u16, String) + Send + 'static) -> (String, Recorded) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let recorded: Recorded = Arc::default();
    let log = recorded.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let nth = {
                let mut log = log.lock().unwrap();
                let kind = path.split('?').next().unwrap_or("").to_string();
                log.push((path.clone(), body));
                log.iter()
                    .filter(|(p, _)| p.split('?').next() == Some(kind.as_str()))
                    .count()
            };
            let (status, json) = answer(&path, nth);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            );
        }
    });
    (endpoint, recorded)
}

/// The same data folder reopened against the hostile UPN at `endpoint`, with the test's clock.
fn reopen_against(
    endpoint: &str,
    sim: &upn_sim::SimHandle,
    data: &tempfile::TempDir,
    clock: &Arc<upn_core::clock::ManualClock>,
) -> Driver {
    let upn = UpnConfig {
        endpoint: endpoint.to_string(),
        depot: sim.depot(),
        api_key: ApiKey::new(sim.api_key()),
    };
    upn_e2e::rebind_folder(data.path(), endpoint);
    Driver::open_with_clock(
        DriverConfig::new(data.path().to_path_buf(), upn),
        clock.clone(),
    )
    .expect("reopen against the hostile UPN")
}

#[test]
fn one_key_carries_one_pod_body_and_a_mismatching_image_receipt_needs_attention() {
    let sim = sim(SimConfig {
        seed: 44,
        consignments: 1,
        ..SimConfig::default()
    });
    let clock = manual_clock();
    let TestDriver { driver, data } = driver_with_clock(&sim, clock.clone());
    driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    driver
        .sign(&barcode, &signature(1), "Frozen Body", clock.now(), None)
        .expect("sign");
    driver
        .add_photo(&barcode, &photo(1), CaptureKind::Goods, clock.now(), None)
        .expect("photo");
    drop(driver);

    let (endpoint, recorded) = hostile(move |path, nth| {
        let now = chrono::Utc::now().to_rfc3339();
        if path.contains("/images") {
            let receipt = format!(
                r#"{{"server_time":"{now}","barcode":"B","image_reference":"IMG-{nth}","sha256":"{}","bytes":1,"duplicate":false}}"#,
                "0".repeat(64)
            );
            return (201, receipt);
        }
        if nth == 1 {
            let busy = format!(
                r#"{{"server_time":"{now}","error":{{"code":"unavailable","message":"busy"}}}}"#
            );
            return (503, busy);
        }
        let receipt = format!(
            r#"{{"server_time":"{now}","barcode":"B","pod_reference":"POD-1","received_at":"{now}","duplicate":false}}"#
        );
        (201, receipt)
    });
    let driver = reopen_against(&endpoint, &sim, &data, &clock);

    let report = driver.flush_now().expect("flush");
    assert_eq!(report.retrying, 1, "{report:?}");
    // A photo taken between two attempts of the POD changes nothing the POD's key carries.
    driver
        .add_photo(
            &barcode,
            &photo(2),
            CaptureKind::Location,
            clock.now(),
            None,
        )
        .expect("photo");
    clock.advance(chrono::Duration::minutes(20));
    let report = driver.flush_now().expect("flush");
    assert_eq!((report.sent, report.needs_attention), (1, 2), "{report:?}");

    let recorded = recorded.lock().unwrap();
    let pods: Vec<&Vec<u8>> = recorded
        .iter()
        .filter(|(p, _)| !p.contains("/images"))
        .map(|(_, b)| b)
        .collect();
    assert_eq!(pods.len(), 2);
    assert_eq!(
        pods[0], pods[1],
        "the same idempotency key sent different bodies"
    );

    let outbox = driver.outbox().expect("outbox");
    assert_eq!(outbox.len(), 2);
    for item in &outbox {
        assert_eq!(item.state, ItemState::NeedsAttention);
        let reason = item.last_error.as_deref().unwrap_or("");
        assert!(reason.contains("receipt"), "{reason}");
    }
}

/// UPN says it stored other signature bytes under the POD's key: the POD is not taken as
/// delivered (needs attention, the reason kept), and its photos do not go after it.
#[test]
fn a_pod_receipt_naming_other_signature_bytes_needs_attention() {
    let sim = sim(SimConfig {
        seed: 45,
        consignments: 1,
        ..SimConfig::default()
    });
    let clock = manual_clock();
    let TestDriver { driver, data } = driver_with_clock(&sim, clock.clone());
    driver.import_now().expect("import");
    let barcode = sim.consignments()[0].barcode.clone();
    driver
        .add_photo(&barcode, &photo(3), CaptureKind::Goods, clock.now(), None)
        .expect("photo");
    driver
        .sign(&barcode, &signature(3), "Other Bytes", clock.now(), None)
        .expect("sign");
    drop(driver);

    let (endpoint, recorded) = hostile(move |_, _| {
        let now = chrono::Utc::now().to_rfc3339();
        let receipt = format!(
            r#"{{"server_time":"{now}","barcode":"B","pod_reference":"POD-1","received_at":"{now}","duplicate":false,"signature_sha256":"{}","signature_bytes":7}}"#,
            "0".repeat(64)
        );
        (201, receipt)
    });
    let driver = reopen_against(&endpoint, &sim, &data, &clock);

    let report = driver.flush_now().expect("flush");
    assert_eq!((report.sent, report.needs_attention), (0, 1), "{report:?}");
    let outbox = driver.outbox().expect("outbox");
    let pod = outbox
        .iter()
        .find(|i| i.kind == CaptureKind::Pod)
        .expect("pod");
    assert_eq!(pod.state, ItemState::NeedsAttention);
    let reason = pod.last_error.as_deref().unwrap_or("");
    assert!(
        reason.contains("receipt") && reason.contains("signature"),
        "{reason}"
    );
    let photo = outbox
        .iter()
        .find(|i| i.kind == CaptureKind::Goods)
        .expect("photo");
    assert_eq!(photo.state, ItemState::Waiting);
    let recorded = recorded.lock().unwrap();
    assert!(
        recorded.iter().all(|(p, _)| !p.contains("/images")),
        "a photo went after a POD whose receipt did not match"
    );
}

#[test]
fn a_401_pauses_the_outbox_keeps_items_queued_and_a_later_success_lifts_it() {
    let sim = sim(SimConfig {
        seed: 45,
        consignments: 2,
        ..SimConfig::default()
    });
    let clock = manual_clock();
    let TestDriver { driver, data } = driver_with_clock(&sim, clock.clone());
    driver.import_now().expect("import");
    for (i, c) in sim.consignments().iter().enumerate() {
        driver
            .sign(
                &c.barcode,
                &signature(20 + i as u64),
                "Key Test",
                clock.now(),
                None,
            )
            .expect("sign");
    }
    drop(driver);
    let refuse = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gate = refuse.clone();
    let (endpoint, recorded) = hostile(move |_, _| {
        let now = chrono::Utc::now().to_rfc3339();
        if gate.load(std::sync::atomic::Ordering::SeqCst) {
            let body = format!(
                r#"{{"server_time":"{now}","error":{{"code":"unauthorized","message":"bad key"}}}}"#
            );
            return (401, body);
        }
        let receipt = format!(
            r#"{{"server_time":"{now}","barcode":"B","pod_reference":"POD-1","received_at":"{now}","duplicate":false}}"#
        );
        (201, receipt)
    });
    let driver = reopen_against(&endpoint, &sim, &data, &clock);

    let report = driver.flush_now().expect("flush");
    assert_eq!(
        (report.paused, report.needs_attention),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(
        recorded.lock().unwrap().len(),
        1,
        "one probe, then the pass stops"
    );
    let stats = driver.outbox_stats().expect("stats");
    assert_eq!((stats.queued, stats.needs_attention), (2, 0));
    let pause = stats.pauses.outbox.expect("paused, visibly");
    assert!(pause.message.contains("401"), "{pause:?}");

    refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(chrono::Duration::minutes(20));
    let report = driver.flush_now().expect("flush");
    assert_eq!(report.sent, 2, "{report:?}");
    assert_eq!(driver.outbox_pauses().expect("pauses"), Default::default());
}
