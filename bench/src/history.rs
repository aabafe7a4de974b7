//! Rows 4-7: the store under a day's (and a month's) tracking history, driven through the
//! `Driver`'s public methods against the simulator over loopback. The one thing done beside
//! the core: a million stored events are bulk-loaded with plain SQL against the schema (the
//! core has no bulk-load API and the simulator would take minutes to feed them).

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use rusqlite::{params, Connection};
use upn_core::upn::wire::TrackingBatch;
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

/// The reference table: the columns the core stores for an event, no index beyond the key and
/// no foreign key. `indexed` adds the one index the core keeps beside the key (a consignment's
/// events by time: its timeline, and its stages recomputed when it is imported). Beside it, a
/// bare inbox for the floor that keeps each body first.
fn bare_table(path: &Path, indexed: bool) -> Result<Connection> {
    let db = Connection::open(path).map_err(|e| e.to_string())?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS tracking_events (id TEXT PRIMARY KEY NOT NULL,
           barcode TEXT NOT NULL, pallet TEXT, capture_type TEXT NOT NULL, stage TEXT NOT NULL,
           at INTEGER NOT NULL, location TEXT, lat REAL, lon REAL, source TEXT NOT NULL,
           inbox_id INTEGER) STRICT;
         CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, body BLOB NOT NULL) STRICT;",
    )
    .map_err(|e| e.to_string())?;
    if indexed {
        db.execute_batch(
            "CREATE INDEX IF NOT EXISTS by_consignment ON tracking_events(barcode, at)",
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(db)
}

/// The response bodies a core received, in arrival order (read back from its inbox after the
/// run, so the reference parses exactly the bytes the core did).
fn received_bodies(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let db = Connection::open(setup::database_file(dir)?).map_err(|e| e.to_string())?;
    let mut q = db
        .prepare("SELECT body FROM tracking_bodies ORDER BY inbox_id")
        .map_err(|e| e.to_string())?;
    let rows = q
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(|e| e.to_string())?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(|e| e.to_string())
}

/// The reference: what any client must do with the same bodies, and no more. Each body is
/// parsed whole into UPN's wire type (one bad event would fail it: no per-event isolation) and
/// its rows are inserted, in one transaction for all of them. Returns the rows inserted.
fn insert_raw(db: &mut Connection, bodies: &[Vec<u8>]) -> Result<usize> {
    insert_rows(db, bodies.iter().enumerate())
}

/// The same rows one transaction per response (as UPN hands them out, each applied and marked
/// on its own): with `bare_table(_, true)`, the floor under the core's own storage. With
/// `inbox`, each body is first committed on its own, as the product must (UPN hands a batch out
/// once): the floor under the core's storage and its durability rule together.
fn insert_per_response(db: &mut Connection, bodies: &[Vec<u8>], inbox: bool) -> Result<usize> {
    let mut rows = 0;
    for (batch, body) in bodies.iter().enumerate() {
        if inbox {
            db.execute("INSERT INTO inbox (body) VALUES (?1)", [body])
                .map_err(|e| e.to_string())?;
        }
        rows += insert_rows(db, std::iter::once((batch, body)))?;
    }
    Ok(rows)
}

/// Parses `bodies` (index, body) and inserts their rows in one transaction.
fn insert_rows<'a>(
    db: &mut Connection,
    bodies: impl Iterator<Item = (usize, &'a Vec<u8>)>,
) -> Result<usize> {
    let tx = db.transaction().map_err(|e| e.to_string())?;
    let mut rows = 0;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO tracking_events (id, barcode, pallet, capture_type, stage, at,
                   location, lat, lon, source, inbox_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'upn', ?10)",
            )
            .map_err(|e| e.to_string())?;
        for (batch, body) in bodies {
            let parsed: TrackingBatch =
                serde_json::from_slice(body).map_err(|e| format!("reference parse: {e}"))?;
            for e in &parsed.events {
                let location = e.location.as_ref();
                insert
                    .execute(params![
                        e.id,
                        e.barcode,
                        e.pallet,
                        e.capture_type,
                        e.stage,
                        e.at.timestamp_millis(),
                        location.and_then(|l| l.description.as_deref()),
                        location.and_then(|l| l.lat),
                        location.and_then(|l| l.lon),
                        batch as i64 + 1,
                    ])
                    .map_err(|e| e.to_string())?;
                rows += 1;
            }
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(rows)
}

/// `tracking --events N --runs R`: row 4. Each run: a fresh core, the batch queued at the
/// simulator, pulled until nothing remains (HTTP, inbox commit, parse, apply); then the
/// reference on the bodies that core received: parse and insert the same rows into a bare
/// table in one transaction. Then, for context, two floors: the same rows with the core's one
/// index beside the key, one transaction per response; and that with each body committed first.
pub fn apply_batch(o: &Options) -> Result {
    let count = o.number("events", 100_000)? as usize;
    let runs = o.number("runs", 3)?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sim = setup::sim(1000, None)?;
    let batch = events(&sim, count, "row4");
    let (mut ours, mut raw, mut floor, mut kept) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut applied, mut reference_rows) = (0, 0);
    for run in 0..runs {
        let dir = setup::folder(work.path(), &format!("core{run}"))?;
        let driver = setup::imported(&dir, &sim)?;
        sim.push_events(batch.clone());
        let (t, n) = timed(|| pull_all(&driver))?;
        ours.push(t);
        applied = n;
        setup::close(driver);
        let bodies = received_bodies(&dir)?;
        let raw_dir = setup::folder(work.path(), &format!("raw{run}"))?;
        let mut db = bare_table(&raw_dir.join("raw.db"), false)?;
        let (t, rows) = timed(|| insert_raw(&mut db, &bodies))?;
        raw.push(t);
        reference_rows = rows;
        let mut db = bare_table(&raw_dir.join("floor.db"), true)?;
        floor.push(timed(|| insert_per_response(&mut db, &bodies, false))?.0);
        let mut db = bare_table(&raw_dir.join("kept.db"), true)?;
        kept.push(timed(|| insert_per_response(&mut db, &bodies, true))?.0);
    }
    if reference_rows as u64 != applied {
        return Err(format!(
            "the reference inserted {reference_rows} rows, the core applied {applied}"
        ));
    }
    report(serde_json::json!({
        "events": count, "applied": applied,
        "ours_ms": median(&ours), "raw_ms": median(&raw), "floor_ms": median(&floor), "kept_floor_ms": median(&kept),
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
/// (interleaved). Row 7: opening the core on the full folder until its first stop list, then
/// the bare file and the one query that reads the same rows (interleaved).
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
    let (mut stops, mut rows) = (0, 0);
    for _ in 0..runs {
        let (t, (driver, listed)) = open_and_list(&full_dir, &sim)?;
        open.push(t);
        stops = listed;
        setup::close(driver);
        let (t, n) = timed(|| bare_open(&db_file))?;
        bare.push(t);
        rows = n;
    }
    report(serde_json::json!({
        "consignments": consignments, "stored_events": stored,
        "pull_full_ms": median(&with_history), "pull_empty_ms": median(&without),
        "open_ms": median(&open), "bare_open_ms": median(&bare),
        "open_stops": stops, "bare_open_rows": rows,
    }));
    Ok(())
}

/// Row 7, ours: what the app waits for at start-up. `Driver::open` (folder lock, store
/// preflight, migration check, resume of stored tracking batches, retention at open, the
/// background tasks) and the first stop-list read, timed together. Returns the stops listed.
fn open_and_list(dir: &Path, sim: &SimHandle) -> Result<(Duration, (Driver, usize))> {
    let (opening, driver) = timed(|| setup::open(dir, setup::upn_config(sim)))?;
    let (listing, listed) = timed(|| driver.stops().map_err(|e| format!("stops: {e}")))?;
    Ok((opening + listing, (driver, listed.len())))
}

/// Row 7, the reference: opening the file as any SQLite user would, and the one query that
/// reads what the first stop list shows (every consignment with its pallets).
fn bare_open(path: &Path) -> Result<usize> {
    let db = Connection::open(path).map_err(|e| e.to_string())?;
    bare_select(&db)
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
