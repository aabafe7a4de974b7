//! Rows 4-7: the store under a day's (and a month's) tracking history, driven through the
//! `Driver`'s public methods against the simulator over loopback. The one thing done beside
//! the core: a million stored events are bulk-loaded with plain SQL against the schema (the
//! core has no bulk-load API and the simulator would take minutes to feed them).

use std::path::Path;

use chrono::Utc;
use rusqlite::{params, Connection};
use upn_core::Driver;
use upn_sim::rng::SplitMix64;
use upn_sim::{NewEvent, SimHandle};

use crate::stats::{median, timed};
use crate::{report, setup, Options, Result};

const STAGES: [&str; 5] = [
    "OUT_FOR_DELIVERY",
    "ARRIVED",
    "UNLOADED",
    "HELD_AT_HUB",
    "IN_TRANSIT",
];

/// `count` events over the simulator's consignments: consignment (C) and pallet (P) events
/// mixed, one in ten repeating an earlier one's content (UPN re-sends a scan under a new id),
/// each at a distinct millisecond ending now.
fn events(sim: &SimHandle, count: usize, stream: &str) -> Vec<NewEvent> {
    let consignments = sim.consignments();
    let mut rng = SplitMix64::for_stream(7, stream);
    let start = Utc::now() - chrono::Duration::milliseconds(count as i64 + 1000);
    let mut out: Vec<NewEvent> = Vec::with_capacity(count);
    for i in 0..count {
        if i > 10 && rng.below(10) == 0 {
            let earlier = &out[rng.below(i as u64) as usize];
            out.push(earlier.clone());
            continue;
        }
        let c = &consignments[rng.below(consignments.len() as u64) as usize];
        let pallet = (rng.below(2) == 0)
            .then(|| {
                c.pallets
                    .get(rng.below(c.pallets.len().max(1) as u64) as usize)
            })
            .flatten()
            .map(|p| p.barcode.clone());
        out.push(NewEvent {
            barcode: c.barcode.clone(),
            capture_type: if pallet.is_some() { "P" } else { "C" }.to_string(),
            pallet,
            stage: STAGES[rng.below(STAGES.len() as u64) as usize].to_string(),
            at: Some(start + chrono::Duration::milliseconds(i as i64)),
        });
    }
    out
}

/// Pulls until UPN has nothing left; returns the events applied.
fn pull_all(driver: &Driver) -> Result<u64> {
    let mut applied = 0;
    loop {
        let r = driver
            .pull_tracking_now()
            .map_err(|e| format!("pull: {e}"))?;
        applied += u64::from(r.applied);
        if r.remaining == 0 {
            return Ok(applied);
        }
    }
}

/// The reference table: the same columns as the core's, no index beyond the key.
fn bare_table(path: &Path) -> Result<Connection> {
    let db = Connection::open(path).map_err(|e| e.to_string())?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS tracking_events (id TEXT PRIMARY KEY NOT NULL, barcode TEXT NOT NULL,
           pallet TEXT, capture_type TEXT NOT NULL, stage TEXT NOT NULL, at INTEGER NOT NULL) STRICT;",
    )
    .map_err(|e| e.to_string())?;
    Ok(db)
}

/// Inserts `events` in one transaction (ids as given, `prefix` + index).
fn insert_raw(db: &mut Connection, events: &[NewEvent], prefix: &str) -> Result {
    let tx = db.transaction().map_err(|e| e.to_string())?;
    {
        let mut insert = tx
            .prepare("INSERT INTO tracking_events (id, barcode, pallet, capture_type, stage, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .map_err(|e| e.to_string())?;
        for (i, e) in events.iter().enumerate() {
            let at = e.at.map(|t| t.timestamp_millis()).unwrap_or(0);
            insert
                .execute(params![
                    format!("{prefix}{i:07}"),
                    e.barcode,
                    e.pallet,
                    e.capture_type,
                    e.stage,
                    at
                ])
                .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())
}

/// `tracking --events N --runs R`: row 4. Each run: a fresh core, the batch queued at the
/// simulator, pulled until nothing remains (parse, inbox, apply); then the same rows inserted
/// raw into a fresh bare table.
pub fn apply_batch(o: &Options) -> Result {
    let count = o.number("events", 100_000)? as usize;
    let runs = o.number("runs", 3)?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sim = setup::sim(1000, None)?;
    let batch = events(&sim, count, "row4");
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    let mut applied = 0;
    for run in 0..runs {
        let driver = setup::imported(&setup::folder(work.path(), &format!("core{run}"))?, &sim)?;
        sim.push_events(batch.clone());
        let (t, n) = timed(|| pull_all(&driver))?;
        ours.push(t);
        applied = n;
        setup::close(driver);
        let mut db = bare_table(&setup::folder(work.path(), &format!("raw{run}"))?.join("raw.db"))?;
        raw.push(timed(|| insert_raw(&mut db, &batch, "EV"))?.0);
    }
    report(serde_json::json!({
        "events": count, "applied": applied,
        "ours_ms": median(&ours), "raw_ms": median(&raw),
    }));
    Ok(())
}

/// Bulk-loads `count` stored events into the core's database file with plain SQL.
fn bulk_load(dir: &Path, sim: &SimHandle, count: usize) -> Result {
    let mut db = Connection::open(setup::database_file(dir)?).map_err(|e| e.to_string())?;
    let history = events(sim, count, "history");
    let tx = db.transaction().map_err(|e| e.to_string())?;
    {
        let mut insert = tx
            .prepare("INSERT INTO tracking_events (id, barcode, pallet, capture_type, stage, at, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'upn')")
            .map_err(|e| e.to_string())?;
        let month = chrono::Duration::days(30).num_milliseconds();
        for (i, e) in history.iter().enumerate() {
            let at = e.at.map(|t| t.timestamp_millis() - month).unwrap_or(0);
            insert
                .execute(params![
                    format!("OLD{i:08}"),
                    e.barcode,
                    e.pallet,
                    e.capture_type,
                    e.stage,
                    at
                ])
                .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())
}

/// `history --consignments N --events M --runs R`: rows 5 and 7 on one pair of data folders.
/// Row 5: 100 new events pulled into a core holding M events, then into one holding none
/// (interleaved). Row 7: opening the core on the full folder, then the bare file + one query.
pub fn pull_and_open(o: &Options) -> Result {
    let consignments = o.number("consignments", 10_000)? as usize;
    let stored = o.number("events", 1_000_000)? as usize;
    let runs = o.number("runs", 5)?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sim = setup::sim(consignments, None)?;
    let (full_dir, empty_dir) = (
        setup::folder(work.path(), "full")?,
        setup::folder(work.path(), "empty")?,
    );
    setup::close(setup::imported(&full_dir, &sim)?);
    bulk_load(&full_dir, &sim, stored)?;
    let full = setup::open(&full_dir, setup::upn_config(&sim))?;
    let empty = setup::imported(&empty_dir, &sim)?;
    let (mut with_history, mut without) = (Vec::new(), Vec::new());
    for run in 0..runs {
        for (driver, samples) in [(&full, &mut with_history), (&empty, &mut without)] {
            sim.push_events(events(&sim, 100, &format!("new{run}")));
            samples.push(timed(|| pull_all(driver))?.0);
        }
    }
    setup::close(full);
    setup::close(empty);

    let db_file = setup::database_file(&full_dir)?;
    let (mut open, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (t, driver) = timed(|| setup::open(&full_dir, setup::upn_config(&sim)))?;
        open.push(t);
        setup::close(driver);
        bare.push(timed(|| bare_open(&db_file))?.0);
    }
    report(serde_json::json!({
        "consignments": consignments, "stored_events": stored,
        "pull_full_ms": median(&with_history), "pull_empty_ms": median(&without),
        "open_ms": median(&open), "bare_open_ms": median(&bare),
    }));
    Ok(())
}

/// Opening the file as any SQLite user would, and one query that reads it.
fn bare_open(path: &Path) -> Result<i64> {
    let db = Connection::open(path).map_err(|e| e.to_string())?;
    db.query_row("SELECT count(*) FROM consignments", [], |r| r.get(0))
        .map_err(|e| e.to_string())
}

/// `stops --stops N --runs R --signature F`: row 6. The stop list (badges from a few signed
/// deliveries, last stages from pulled events) against a bare SELECT of the same rows on a
/// second connection, interleaved.
pub fn stop_list(o: &Options) -> Result {
    let stops = o.number("stops", 500)? as usize;
    let runs = o.number("runs", 21)?;
    let signature =
        std::fs::read(o.string("signature")?).map_err(|e| format!("--signature: {e}"))?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sim = setup::sim(stops, None)?;
    let dir = setup::folder(work.path(), "core")?;
    let driver = setup::imported(&dir, &sim)?;
    sim.push_events(events(&sim, stops * 2, "stages"));
    pull_all(&driver)?;
    for c in sim.consignments().iter().step_by(10) {
        driver
            .sign(&c.barcode, &signature, "A. Consignee", Utc::now(), None)
            .map_err(|e| format!("sign: {e}"))?;
    }
    let db = Connection::open(setup::database_file(&dir)?).map_err(|e| e.to_string())?;
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    let mut listed = 0;
    for _ in 0..runs {
        let (t, list) = timed(|| driver.stops().map_err(|e| e.to_string()))?;
        listed = list.len();
        ours.push(t);
        bare.push(timed(|| bare_select(&db))?.0);
    }
    setup::close(driver);
    report(serde_json::json!({
        "stops": listed, "ours_ms": median(&ours), "bare_ms": median(&bare),
    }));
    Ok(())
}

/// Every column of every consignment with its pallets, read into values.
fn bare_select(db: &Connection) -> Result<usize> {
    let mut q = db
        .prepare_cached(
            "SELECT c.*, p.* FROM consignments c LEFT JOIN pallets p ON p.consignment = c.barcode",
        )
        .map_err(|e| e.to_string())?;
    let columns = q.column_count();
    let rows = q
        .query_map([], |r| {
            (0..columns)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    for row in rows {
        row.map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}
