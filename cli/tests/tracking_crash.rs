//! A crash between committing a tracking response to the inbox and applying it loses nothing:
//! a real `upn-driver sync` process is stopped at the `tracking.after_inbox_commit` failpoint
//! and SIGKILLed; the next run applies every event of that batch exactly once, without asking
//! UPN for it again (UPN hands each batch out only once).

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use upn_core::testing::store::{Store, DB_FILE_NAME};
use upn_sim::{SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_upn-driver");
const FAILPOINT: &str = "tracking.after_inbox_commit";

fn driver_cmd(
    endpoint: &str,
    depot: &str,
    key: &str,
    dir: &std::path::Path,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args([
            "--db",
            &dir.to_string_lossy(),
            "--endpoint",
            endpoint,
            "--depot",
            depot,
        ])
        .env("UPN_API_KEY", key)
        .env_remove(upn_core::failpoint::ENV);
    cmd
}

#[test]
fn a_kill_after_the_inbox_commit_loses_no_event_and_applies_each_once() {
    let sim = Simulator::start_background(
        SimConfig {
            seed: 77,
            consignments: 4,
            ..SimConfig::default()
        },
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    )
    .expect("simulator");
    let (endpoint, depot, key) = (sim.endpoint(), sim.depot(), sim.api_key());
    let dir = tempfile::tempdir().expect("tempdir");
    // Beyond the 4 BOOKED events queued at start: one more per consignment.
    let barcodes = sim.push_stage_for_all("OUT_FOR_DELIVERY");

    // 1. `sync` stops right after the first tracking response is committed; kill it there.
    let mut child = driver_cmd(&endpoint, &depot, &key, dir.path(), &["sync"])
        .env(upn_core::failpoint::ENV, FAILPOINT)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn upn-driver sync");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let hit = line.trim() == format!("FAILPOINT {FAILPOINT}");
            let _ = tx.send(line);
            if hit {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.trim() == format!("FAILPOINT {FAILPOINT}") => break,
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("the child never reached the failpoint ({e}); stderr: {seen:?}");
            }
        }
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "killed: {status:?}");

    // UPN handed the batch out, once; it is on the device, stored but not applied.
    assert_eq!(sim.received().event_batches_handed_out, 1);
    {
        let store = Store::open(&dir.path().join(DB_FILE_NAME)).expect("open the store");
        let pending = store.pending_tracking_batches().expect("pending");
        assert_eq!(pending.len(), 1, "the batch survived the kill");
        assert_eq!(
            store.tracking_event_count().expect("count"),
            0,
            "nothing applied yet"
        );
        let batch = store
            .tracking_batch(pending[0])
            .expect("read")
            .expect("batch");
        assert!(!batch.body.is_empty());
    }

    // 2. The next run processes the stored batch first; UPN is not asked for it again.
    let out = driver_cmd(&endpoint, &depot, &key, dir.path(), &["sync"])
        .output()
        .expect("rerun sync");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tracking:"), "{text}");
    assert_eq!(
        sim.received().event_batches_handed_out,
        1,
        "the batch was not fetched again (and there was nothing else to hand out)"
    );
    let store = Store::open(&dir.path().join(DB_FILE_NAME)).expect("open the store");
    assert!(store
        .pending_tracking_batches()
        .expect("pending")
        .is_empty());
    assert_eq!(
        store.tracking_event_count().expect("count"),
        8,
        "every event, once"
    );
    drop(store);

    // Each consignment shows both events exactly once, and the newer status.
    for barcode in &barcodes {
        let out = driver_cmd(
            &endpoint,
            &depot,
            &key,
            dir.path(),
            &["show", barcode, "--json"],
        )
        .output()
        .expect("show");
        assert_eq!(out.status.code(), Some(0));
        let detail: Value = serde_json::from_slice(&out.stdout).expect("show JSON");
        assert_eq!(detail["status"], "out_for_delivery", "{detail}");
        let stages: Vec<&str> = detail["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .map(|e| e["stage"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(stages, ["BOOKED", "OUT_FOR_DELIVERY"], "{barcode}");
        for entry in detail["timeline"].as_array().expect("timeline") {
            for field in [
                "at_ms",
                "stage",
                "capture_type",
                "pallet",
                "location",
                "source",
            ] {
                assert!(
                    entry.get(field).is_some(),
                    "timeline entry lacks {field}: {entry}"
                );
            }
            assert_eq!(entry["source"], "upn");
        }
    }
}

/// A simulator with one more event queued per consignment (beyond its BOOKED one).
fn sim_with_events(seed: u64) -> (upn_sim::SimHandle, usize) {
    let sim = Simulator::start_background(
        SimConfig {
            seed,
            consignments: 3,
            ..SimConfig::default()
        },
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    )
    .expect("simulator");
    let barcodes = sim.push_stage_for_all("OUT_FOR_DELIVERY");
    (sim, barcodes.len() * 2)
}

fn spill_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join(upn_core::testing::sync::tracking::SPILL_DIR_NAME))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Hole 3: the disk is full when the consumed body is committed (ENOSPC injected at the inbox
/// commit, every attempt): the body goes to a spill file, `sync` says so and fails; the next
/// `sync` applies it, every event once, without asking UPN again.
#[test]
fn a_full_disk_at_the_inbox_commit_spills_the_batch_and_the_next_sync_applies_it() {
    let (sim, events) = sim_with_events(78);
    let (endpoint, depot, key) = (sim.endpoint(), sim.depot(), sim.api_key());
    let dir = tempfile::tempdir().expect("tempdir");
    let out = driver_cmd(&endpoint, &depot, &key, dir.path(), &["sync"])
        .env(
            upn_core::failpoint::FAULT_ENV,
            upn_core::testing::store::tracking::FAULT_INBOX_DISK_FULL,
        )
        .output()
        .expect("sync with a full disk");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("tracking-spill"), "{stderr}");
    assert!(stderr.contains("out of space"), "{stderr}");
    assert_eq!(sim.received().event_batches_handed_out, 1);
    assert_eq!(spill_files(dir.path()).len(), 1, "the body is kept");
    {
        let store = Store::open(&dir.path().join(DB_FILE_NAME)).expect("store");
        assert_eq!(store.tracking_event_count().expect("count"), 0);
    }

    let out = driver_cmd(&endpoint, &depot, &key, dir.path(), &["sync"])
        .env_remove(upn_core::failpoint::FAULT_ENV)
        .output()
        .expect("sync again");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(spill_files(dir.path()).is_empty());
    assert_eq!(
        sim.received().event_batches_handed_out,
        1,
        "not asked twice"
    );
    let store = Store::open(&dir.path().join(DB_FILE_NAME)).expect("store");
    assert_eq!(
        store.tracking_event_count().expect("count"),
        events as u64,
        "every event, once"
    );
}

/// Hole 3: no consuming GET while the data folder could not hold its largest possible body.
#[test]
fn no_tracking_batch_is_taken_without_room_to_store_it() {
    let (sim, _) = sim_with_events(79);
    let (endpoint, depot, key) = (sim.endpoint(), sim.depot(), sim.api_key());
    let dir = tempfile::tempdir().expect("tempdir");
    let out = driver_cmd(&endpoint, &depot, &key, dir.path(), &["sync"])
        .env(
            upn_core::failpoint::FAULT_ENV,
            upn_core::testing::sync::tracking::FAULT_LOW_SPACE,
        )
        .output()
        .expect("sync with little space");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("free some space"), "{stderr}");
    assert_eq!(
        sim.received().event_batches_handed_out,
        0,
        "UPN was not asked for a batch"
    );
}
