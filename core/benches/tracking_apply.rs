//! Applying 100,000 tracking events through the real store path (inbox commit of the raw body,
//! then parse + translate + apply in one transaction), on a real file with WAL and
//! `synchronous=FULL`, against a raw rusqlite baseline inserting the same rows in one
//! transaction.
//!
//! Commits are counted from the outside: a second connection holds a read transaction open so
//! the WAL cannot be restarted, and the WAL's commit frames are counted before and after.
//!
//! `cargo bench -p upn-core --bench tracking_apply` (EVENTS=n to change the size).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rusqlite::{params, Connection};
use upn_core::clock::ManualClock;
use upn_core::domain::{Address, Consignment, Pallet, Party, ServiceLevel};
use upn_core::testing::store::{FeedChanges, Store, DB_FILE_NAME};
use upn_core::testing::sync::tracking::process_pending;
use upn_core::upn::wire::{TrackingBatch, WireLocation, WireTrackingEvent};

const CONSIGNMENTS: usize = 1000;
const PALLETS: usize = 3;
const STAGES: [&str; 6] = [
    "BOOKED",
    "OUT_FOR_DELIVERY",
    "ARRIVED",
    "UNLOADED",
    "DELIVERED",
    "HELD_AT_HUB",
];

fn main() {
    let events: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = Utc.with_ymd_and_hms(2026, 11, 26, 6, 0, 0).unwrap();

    // --- the store path ------------------------------------------------------------------
    let db = dir.path().join("store").join(DB_FILE_NAME);
    let mut store = Store::open(&db).expect("store");
    store.apply_feed(&feed(t0)).expect("import");
    let batch = TrackingBatch {
        server_time: t0,
        batch_id: Some("B000001".into()),
        events: wire_events(events, t0),
        remaining: 0,
    };
    let body = serde_json::to_vec(&batch).expect("body");

    let pin = Pin::new(&db);
    let c0 = pin.commits();
    let started = Instant::now();
    store
        .store_tracking_response(&body, Some(t0), t0)
        .expect("inbox");
    let inbox_time = started.elapsed();
    let c1 = pin.commits();

    let store = Mutex::new(store);
    let clock = ManualClock::new(t0);
    let started = Instant::now();
    let report = process_pending(&store, &clock).expect("process");
    let apply_time = started.elapsed();
    let c2 = pin.commits();
    assert_eq!(report.applied as usize, events, "{report:?}");
    let total = inbox_time + apply_time;
    let stored = store
        .lock()
        .expect("lock")
        .tracking_event_count()
        .expect("count");
    assert_eq!(stored as usize, events);
    drop(pin);

    // --- the baseline: the same rows, one transaction, nothing else --------------------------
    let (baseline_time, baseline_commits) =
        baseline(&dir.path().join("baseline.db"), &batch.events);

    // --- for scale: one commit per event, sampled ---------------------------------------------
    let sample = 500.min(events);
    let per_event = per_event_commits(&dir.path().join("per-event.db"), &batch.events[..sample]);
    let per_event_total = per_event.mul_f64(events as f64 / sample as f64);

    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    let commits = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => (b - a).to_string(),
        _ => "?".into(),
    };
    println!(
        "tracking_apply: {events} events over {CONSIGNMENTS} consignments x {PALLETS} pallets; body {:.1} MB; WAL, synchronous=FULL",
        body.len() as f64 / 1e6
    );
    println!(
        "{:<44} {:>10} {:>12} {:>8}",
        "step", "time", "events/s", "commits"
    );
    let row = |name: &str, d: Duration, commits: String| {
        println!(
            "{:<44} {:>8.1}ms {:>12.0} {:>8}",
            name,
            d.as_secs_f64() * 1e3,
            rate(d),
            commits
        );
    };
    row("inbox: commit the raw body", inbox_time, commits(c0, c1));
    row(
        "process: parse + translate + apply (1 tx)",
        apply_time,
        commits(c1, c2),
    );
    row("store path total", total, commits(c0, c2));
    row(
        "raw rusqlite baseline (same rows, 1 tx)",
        baseline_time,
        baseline_commits.to_string(),
    );
    row(
        &format!("one commit per event (extrapolated from {sample})"),
        per_event_total,
        events.to_string(),
    );
    println!(
        "ratio store path / baseline: {:.2}x   (one commit per event would be {:.0}x the store path)",
        total.as_secs_f64() / baseline_time.as_secs_f64(),
        per_event_total.as_secs_f64() / total.as_secs_f64()
    );
}

fn barcode(i: usize) -> String {
    format!("UPN042{:07}", i)
}

fn feed(t0: DateTime<Utc>) -> FeedChanges {
    let consignments = (0..CONSIGNMENTS)
        .map(|i| Consignment {
            barcode: barcode(i),
            shipper: Party {
                name: "Shipper".into(),
                phone: None,
            },
            consignee: Party {
                name: "Consignee".into(),
                phone: None,
            },
            address: Address {
                lines: vec!["1 Mill Lane".into()],
                town: "Coventry".into(),
                postcode: "CV1 2GT".into(),
                country: "GB".into(),
                lat: 52.4,
                lon: -1.5,
            },
            pallets: (0..PALLETS)
                .map(|p| Pallet {
                    barcode: format!("{}{:02}", barcode(i), p + 1),
                    size: "FULL".into(),
                    weight_kg: 300.0,
                    stage: None,
                })
                .collect(),
            weight_kg: 900.0,
            service: ServiceLevel::Economy,
            window: None,
            delivery_date: NaiveDate::from_ymd_opt(2026, 11, 26).expect("date"),
            instructions: None,
            stage: None,
            cancelled: None,
            upn_updated_at: t0,
        })
        .collect();
    FeedChanges {
        consignments,
        cancellations: vec![],
        cursor: "v1".into(),
        server_time: t0,
        received_at: t0,
    }
}

/// Events spread over the consignments, one in four pallet-level, in a shuffled time order.
fn wire_events(n: usize, t0: DateTime<Utc>) -> Vec<WireTrackingEvent> {
    (0..n)
        .map(|i| {
            let c = i % CONSIGNMENTS;
            let pallet =
                (i % 4 == 3).then(|| format!("{}{:02}", barcode(c), (i / 4) % PALLETS + 1));
            // A deterministic scramble of times, so some events arrive out of order.
            let secs = ((i as u64).wrapping_mul(2_654_435_761) % 36_000) as i64;
            WireTrackingEvent {
                id: format!("EV{i:08}"),
                barcode: barcode(c),
                capture_type: if pallet.is_some() { "P" } else { "C" }.into(),
                pallet,
                stage: STAGES[i % STAGES.len()].into(),
                at: t0 + chrono::Duration::seconds(secs),
                location: Some(WireLocation {
                    description: Some("UPN depot 042, Hams Hall".into()),
                    lat: Some(52.512),
                    lon: Some(-1.703),
                }),
            }
        })
        .collect()
}

const BASELINE_SCHEMA: &str = "
    PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
    CREATE TABLE IF NOT EXISTS tracking_events (
        id TEXT PRIMARY KEY NOT NULL, barcode TEXT NOT NULL, pallet TEXT,
        capture_type TEXT NOT NULL, stage TEXT NOT NULL, at TEXT NOT NULL,
        location TEXT, lat REAL, lon REAL, source TEXT NOT NULL, inbox_id INTEGER
    ) STRICT;
    CREATE INDEX IF NOT EXISTS tracking_events_by_consignment ON tracking_events(barcode, at);";

const BASELINE_INSERT: &str = "INSERT INTO tracking_events
    (id, barcode, pallet, capture_type, stage, at, location, lat, lon, source, inbox_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'upn', 1)";

fn insert_raw(stmt: &mut rusqlite::Statement<'_>, e: &WireTrackingEvent) {
    let location = e.location.as_ref();
    stmt.execute(params![
        e.id,
        e.barcode,
        e.pallet,
        e.capture_type,
        e.stage,
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        location.and_then(|l| l.description.as_deref()),
        location.and_then(|l| l.lat),
        location.and_then(|l| l.lon),
    ])
    .expect("insert");
}

/// The same rows, one prepared statement, one transaction.
fn baseline(path: &Path, events: &[WireTrackingEvent]) -> (Duration, u64) {
    let mut conn = Connection::open(path).expect("baseline db");
    conn.execute_batch(BASELINE_SCHEMA).expect("schema");
    let started = Instant::now();
    let tx = conn.transaction().expect("tx");
    {
        let mut stmt = tx.prepare(BASELINE_INSERT).expect("prepare");
        for e in events {
            insert_raw(&mut stmt, e);
        }
    }
    tx.commit().expect("commit");
    (started.elapsed(), 1)
}

/// What the store path avoids: a commit (an fsync) per event.
fn per_event_commits(path: &Path, events: &[WireTrackingEvent]) -> Duration {
    let conn = Connection::open(path).expect("per-event db");
    conn.execute_batch(BASELINE_SCHEMA).expect("schema");
    let mut stmt = conn.prepare(BASELINE_INSERT).expect("prepare");
    let started = Instant::now();
    for e in events {
        insert_raw(&mut stmt, e);
    }
    started.elapsed()
}

/// A read transaction held open on a second connection: the WAL cannot be restarted while it
/// lives, so every commit made meanwhile stays countable in the WAL file.
struct Pin {
    conn: Connection,
    wal: std::path::PathBuf,
}

impl Pin {
    fn new(db: &Path) -> Self {
        let conn = Connection::open(db).expect("reader");
        conn.execute_batch("BEGIN").expect("begin");
        let _: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .expect("snapshot");
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        Self {
            conn,
            wal: wal.into(),
        }
    }

    /// Commit frames currently in the WAL (frames whose "database size after commit" is set
    /// and whose salts match the header); `None` if the WAL cannot be read.
    fn commits(&self) -> Option<u64> {
        let wal = std::fs::read(&self.wal).ok()?;
        let u32_at = |at: usize| -> Option<u32> {
            wal.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        if wal.len() < 32 {
            return Some(0);
        }
        let magic = u32_at(0)?;
        if magic != 0x377f_0682 && magic != 0x377f_0683 {
            return None;
        }
        let page = u32_at(8)? as usize;
        let (salt1, salt2) = (u32_at(16)?, u32_at(20)?);
        let mut at = 32;
        let mut commits = 0;
        while at + 24 + page <= wal.len() {
            if u32_at(at + 8)? != salt1 || u32_at(at + 12)? != salt2 {
                break;
            }
            if u32_at(at + 4)? != 0 {
                commits += 1;
            }
            at += 24 + page;
        }
        Some(commits)
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = self.conn.execute_batch("COMMIT");
    }
}
