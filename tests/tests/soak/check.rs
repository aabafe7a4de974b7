//! The invariants, checked after every step (and, with `settled`, at the end of the day).
//! Each returns the first violation found as one line.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use upn_core::digest::sha256_hex;
use upn_core::domain::outbox::{badge, CaptureKind, ItemState};
use upn_core::domain::tracking::{current_stages, CaptureType, Source, StageMark, TrackingEvent};
use upn_core::domain::Stage;
use upn_core::testing::store::blobs::BLOB_DIR_NAME;
use upn_core::testing::store::DB_FILE_NAME;
use upn_core::testing::sync::tracking::SPILL_DIR_NAME;
use upn_core::Capture;

use crate::day::Day;

pub fn all(day: &Day, settled: bool) -> Result<(), String> {
    let driver = day.driver()?;
    let mut captures: Vec<Capture> = Vec::new();
    for barcode in &day.touched {
        captures.extend(
            driver
                .captures(barcode)
                .map_err(|e| format!("captures of {barcode}: {e}"))?,
        );
    }
    let db = open_db(day.data_dir())?;
    durable(day, &captures)?;
    told(day, &captures)?;
    blobs(day.data_dir(), &captures)?;
    at_upn(day, &captures, settled)?;
    badges(day, &captures)?;
    stages(&db)?;
    tracking(day, &db, settled)?;
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("integrity_check: {e}"))?;
    if ok != "ok" {
        return Err(format!("PRAGMA integrity_check: {ok}"));
    }
    Ok(())
}

fn open_db(dir: &Path) -> Result<Connection, String> {
    Connection::open_with_flags(dir.join(DB_FILE_NAME), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("opening the database to check it: {e}"))
}

/// Every capture whose call returned is stored, with the bytes it was given.
fn durable(day: &Day, captures: &[Capture]) -> Result<(), String> {
    let by_id: HashMap<&str, &Capture> = captures.iter().map(|c| (c.id.as_str(), c)).collect();
    for m in &day.model.captured {
        let Some(c) = by_id.get(m.id.as_str()) else {
            return Err(format!(
                "capture {} returned success but is not stored",
                m.id
            ));
        };
        if c.original.sha256 != m.sha256 || c.kind != m.kind || c.barcode != m.barcode {
            return Err(format!(
                "capture {} is stored with other bytes or kind",
                m.id
            ));
        }
    }
    Ok(())
}

/// Every stored capture is one whose call returned success, or one asked for in a step a
/// crash cut short (the app never heard back): a call that failed (busy, disk full) stored
/// nothing, so the app's retry makes no second capture.
fn told(day: &Day, captures: &[Capture]) -> Result<(), String> {
    let succeeded: HashSet<&str> = day.model.captured.iter().map(|c| c.id.as_str()).collect();
    for c in captures {
        if succeeded.contains(c.id.as_str()) {
            continue;
        }
        match day.ids.step_of(&c.id) {
            Some(step) if day.model.crashed_steps.contains(&step) => {}
            step => {
                return Err(format!(
                    "capture {} ({:?}) is stored though its call at step {step:?} failed",
                    c.id, c.state
                ))
            }
        }
    }
    Ok(())
}

/// Every file a capture row refers to exists with its sha256 (discarded ones are removed).
fn blobs(dir: &Path, captures: &[Capture]) -> Result<(), String> {
    for c in captures.iter().filter(|c| c.state != ItemState::Discarded) {
        for blob in std::iter::once(&c.original).chain(c.upload.as_ref()) {
            let bytes = std::fs::read(dir.join(BLOB_DIR_NAME).join(&blob.name)).map_err(|e| {
                format!(
                    "capture {} ({:?}): file {} unreadable: {e}",
                    c.id, c.state, blob.name
                )
            })?;
            if sha256_hex(&bytes) != blob.sha256 {
                return Err(format!(
                    "capture {}: file {} does not match its sha256",
                    c.id, blob.name
                ));
            }
        }
    }
    Ok(())
}

/// What UPN holds: one record per key, each a capture of that consignment and kind, the same
/// bytes on every attempt, images after their POD, nothing sent after it was discarded or
/// replaced; settled, every live capture of an open consignment is there.
fn at_upn(day: &Day, captures: &[Capture], settled: bool) -> Result<(), String> {
    let received = day.upn.received();
    let log = day.upn.log.lock().map_err(|_| "log poisoned")?;
    let by_id: HashMap<&str, &Capture> = captures.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut keys = HashSet::new();
    let mut pod_seq: HashMap<&str, u64> = HashMap::new();
    for p in &received.pods {
        if !keys.insert(p.idempotency_key.as_str()) {
            return Err(format!("two UPN records for key {}", p.idempotency_key));
        }
        match by_id.get(p.idempotency_key.as_str()) {
            Some(c) if c.kind == CaptureKind::Pod && c.barcode == p.barcode => {}
            _ => {
                return Err(format!(
                    "UPN holds POD {} that is no POD capture of {}",
                    p.idempotency_key, p.barcode
                ))
            }
        }
        pod_seq.insert(p.barcode.as_str(), p.seq);
    }
    for i in &received.images {
        if !keys.insert(i.idempotency_key.as_str()) {
            return Err(format!("two UPN records for key {}", i.idempotency_key));
        }
        match by_id.get(i.idempotency_key.as_str()) {
            Some(c) if c.kind.is_photo() && c.barcode == i.barcode => {}
            _ => {
                return Err(format!(
                    "UPN holds image {} that is no photo of {}",
                    i.idempotency_key, i.barcode
                ))
            }
        }
        if pod_seq.get(i.barcode.as_str()).is_none_or(|s| *s > i.seq) {
            return Err(format!(
                "image {} reached UPN before the POD of {}",
                i.idempotency_key, i.barcode
            ));
        }
    }
    if log.pod_required > 0 {
        return Err("an image was sent before UPN had its POD (409 pod_required)".into());
    }
    let mut first_body: HashMap<&str, &str> = HashMap::new();
    for a in &log.attempts {
        if first_body.entry(a.key.as_str()).or_insert(a.body.as_str()) != &a.body.as_str() {
            return Err(format!(
                "key {} was sent with different bodies ({})",
                a.key, a.route
            ));
        }
        if let Some(gone) = day.model.gone.get(&a.key) {
            if a.step > *gone {
                return Err(format!(
                    "{} {} was sent at step {} after it was discarded or replaced at step {gone}",
                    a.route, a.key, a.step
                ));
            }
        }
    }
    if settled {
        // UPN keeps the first POD it got per consignment. A POD discarded after an attempt
        // whose answer was lost may be that one: a later signature is then refused (409,
        // needs attention, with the reason) and its photos wait. Everything else must be sent.
        let upn_pod: HashMap<&str, &str> = received
            .pods
            .iter()
            .map(|p| (p.barcode.as_str(), p.idempotency_key.as_str()))
            .collect();
        let deliverable_pod = |c: &Capture| {
            upn_pod
                .get(c.barcode.as_str())
                .is_none_or(|key| *key == c.id)
        };
        let live_pod: HashSet<&str> = captures
            .iter()
            .filter(|c| c.kind == CaptureKind::Pod && c.state.is_live() && deliverable_pod(c))
            .map(|c| c.barcode.as_str())
            .collect();
        for c in captures.iter().filter(|c| c.state.is_live()) {
            let expected = day.upn.is_open(&c.barcode)
                && if c.kind == CaptureKind::Pod {
                    deliverable_pod(c)
                } else {
                    live_pod.contains(c.barcode.as_str())
                };
            if expected && (c.state != ItemState::Sent || !keys.contains(c.id.as_str())) {
                return Err(format!(
                    "{} {} of open consignment {} is still {:?} after a long healthy spell ({:?})",
                    c.kind.code(),
                    c.id,
                    c.barcode,
                    c.state,
                    c.last_error
                ));
            }
        }
    }
    Ok(())
}

/// Each stop's badge is the badge of its items' states.
fn badges(day: &Day, captures: &[Capture]) -> Result<(), String> {
    let stops = day.driver()?.stops().map_err(|e| format!("stops: {e}"))?;
    for stop in stops {
        let items: Vec<(CaptureKind, ItemState)> = captures
            .iter()
            .filter(|c| c.barcode == stop.consignment.barcode)
            .map(|c| (c.kind, c.state))
            .collect();
        if stop.sync != badge(&items) {
            return Err(format!(
                "stop {} shows {:?}, its items give {:?}",
                stop.consignment.barcode,
                stop.sync,
                badge(&items)
            ));
        }
    }
    Ok(())
}

/// Each consignment's and pallet's stage equals a fresh fold over all its stored events.
fn stages(db: &Connection) -> Result<(), String> {
    type Row = (String, Option<String>, Option<i64>);
    let q = |e: rusqlite::Error| format!("reading stages: {e}");
    let rows = |sql: &str| -> Result<Vec<(String, Row)>, String> {
        db.prepare(sql)
            .map_err(q)?
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
            .map_err(q)?
            .collect::<rusqlite::Result<_>>()
            .map_err(q)
    };
    let consignments = rows("SELECT barcode, barcode, stage, stage_at FROM consignments")?;
    let mut pallets: HashMap<String, Vec<Row>> = HashMap::new();
    for (consignment, row) in
        rows("SELECT consignment, barcode, stage, stage_at FROM pallets ORDER BY barcode")?
    {
        pallets.entry(consignment).or_default().push(row);
    }
    let mut events = all_events(db)?;
    for (barcode, (_, stage, at)) in consignments {
        let pallets = pallets.remove(&barcode).unwrap_or_default();
        let events = events.remove(&barcode).unwrap_or_default();
        let names: Vec<&str> = pallets.iter().map(|p| p.0.as_str()).collect();
        let (want, want_pallets) = current_stages(&events, &names);
        if !same(&want, &stage, at) {
            return Err(format!(
                "consignment {barcode} is at {stage:?}@{at:?}, its events give {want:?}"
            ));
        }
        for ((pallet, stage, at), want) in pallets.iter().zip(want_pallets) {
            if !same(&want, stage, *at) {
                return Err(format!(
                    "pallet {pallet} is at {stage:?}@{at:?}, its events give {want:?}"
                ));
            }
        }
    }
    Ok(())
}

fn same(want: &Option<StageMark>, stage: &Option<String>, at: Option<i64>) -> bool {
    match (want, stage, at) {
        (None, None, _) => true,
        (Some(w), Some(s), Some(at)) => w.stage.code() == s && w.at.timestamp_millis() == at,
        _ => false,
    }
}

/// Every stored event, by consignment.
fn all_events(db: &Connection) -> Result<HashMap<String, Vec<TrackingEvent>>, String> {
    let q = |e: rusqlite::Error| format!("reading events: {e}");
    let mut stmt = db
        .prepare("SELECT id, barcode, pallet, capture_type, stage, at, source FROM tracking_events")
        .map_err(q)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .map_err(q)?;
    let mut out: HashMap<String, Vec<TrackingEvent>> = HashMap::new();
    for row in rows {
        let (id, barcode, pallet, capture_type, stage, at, source) = row.map_err(q)?;
        out.entry(barcode.clone()).or_default().push(TrackingEvent {
            id,
            barcode,
            pallet,
            capture_type: CaptureType::from_code(&capture_type),
            stage: Stage::from_code(&stage),
            at: chrono::DateTime::from_timestamp_millis(at).ok_or("an event time is unreadable")?,
            location: None,
            source: Source::from_code(&source).ok_or("an event source is unreadable")?,
        });
    }
    Ok(out)
}

/// Every batch UPN handed out and the device received is held (inbox or spill file) or applied;
/// settled, every one of its events is applied (the events table keys them by id: once).
fn tracking(day: &Day, db: &Connection, settled: bool) -> Result<(), String> {
    let q = |e: rusqlite::Error| format!("reading the inbox: {e}");
    let mut held: HashSet<String> = db
        .prepare("SELECT sha256 FROM tracking_inbox")
        .map_err(q)?
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(q)?
        .collect::<rusqlite::Result<_>>()
        .map_err(q)?;
    if let Ok(entries) = std::fs::read_dir(day.data_dir().join(SPILL_DIR_NAME)) {
        for entry in entries.flatten() {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                held.insert(sha256_hex(&bytes));
            }
        }
    }
    let log = day.upn.log.lock().map_err(|_| "log poisoned")?;
    let mut applied = db
        .prepare("SELECT 1 FROM tracking_events WHERE id = ?1")
        .map_err(q)?;
    for batch in &log.delivered {
        let mut missing = None;
        for id in &batch.event_ids {
            let found = applied.query_row([id], |_| Ok(())).optional().map_err(q)?;
            if found.is_none() {
                missing = Some(id);
                break;
            }
        }
        let Some(id) = missing else { continue };
        let stored = held.contains(&batch.body_sha256);
        if !stored && day.model.crashed_steps.contains(&batch.step) {
            continue; // consumed, then the core died before storing it: never received
        }
        if !stored {
            return Err(format!(
                "a tracking batch received at step {} is neither stored nor applied",
                batch.step
            ));
        }
        if settled {
            return Err(format!(
                "event {id} of a batch received at step {} was never applied",
                batch.step
            ));
        }
    }
    Ok(())
}
