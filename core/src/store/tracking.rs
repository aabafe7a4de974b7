//! The tracking inbox (raw responses, committed before they are parsed) and the applied events.
//!
//! - [`Store::store_tracking_response`] commits one response body in its own transaction.
//! - [`Store::apply_tracking_batch`] applies a parsed batch in one transaction: every event is
//!   inserted by id (`INSERT OR IGNORE`, so a batch applied twice changes nothing the second
//!   time), current stages move only when [`crate::domain::tracking::supersedes`] says so, and
//!   the inbox row is marked processed in the same commit.
//! - [`recompute_stages`] applies the stored events of a consignment that has just been imported
//!   (events may arrive before their consignment).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{format_time, keys, parse_time, set_sync_state, set_sync_time, Store};
use crate::digest::sha256_hex;
use crate::domain::tracking::{
    sort_timeline, supersedes, CaptureType, Location, Marks, Source, StageMark, TimelineEntry,
    TrackingEvent, PARSER_VERSION,
};
use crate::domain::Stage;
use crate::error::{Error, Result};

/// One stored tracking-feed response.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxBatch {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub server_time: Option<DateTime<Utc>>,
    pub sha256: String,
    pub body: Vec<u8>,
}

/// A stored response that could not be parsed: kept for support, never deleted.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FailedBatch {
    /// Inbox id (arrival order on this device).
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub server_time: Option<DateTime<Utc>>,
    pub bytes: u64,
    pub sha256: String,
    /// What was wrong, described without the body.
    pub error: String,
}

/// The parts of a parsed batch the inbox records next to its events.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchInfo {
    pub batch_id: Option<String>,
    pub remaining: u64,
    /// Events of the batch that could not be used, kept aside in the same commit.
    pub malformed: Vec<MalformedEvent>,
}

/// One event of a batch that the parser could not use: kept aside with its reason, its batch's
/// good events applied. The event itself stays in its batch's stored body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MalformedEvent {
    /// Inbox id of its batch.
    pub inbox_id: i64,
    /// Index in the batch's `events` array.
    pub position: u32,
    /// What was wrong, naming the field, never the value.
    pub reason: String,
}

/// Tracking sync bookkeeping (see [`keys`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackingSyncState {
    pub last_success: Option<DateTime<Utc>>,
    /// First pull attempt while no pull had succeeded yet.
    pub first_attempt: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Stored responses not processed yet.
    pub pending_batches: u32,
    /// Events kept aside as malformed.
    pub malformed_events: u32,
}

/// What applying one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedBatch {
    /// Events in the batch.
    pub events: u32,
    /// Events new on this device (stored now).
    pub applied: u32,
    /// Events this device already had (same id).
    pub duplicates: u32,
    /// New events whose consignment is not on the device yet (kept for when it arrives).
    pub waiting_for_consignment: u32,
    /// Consignments whose status, or one of whose pallets' status, changed.
    pub changed: Vec<String>,
    /// Events kept aside as malformed.
    pub malformed: u32,
    /// The batch had already been processed (by an earlier run): nothing was done.
    pub already_processed: bool,
}

impl Store {
    /// Commits a tracking-feed response body, untouched, in its own transaction, and returns
    /// its inbox id. Called the moment the body has been read, before it is parsed.
    pub fn store_tracking_response(
        &mut self,
        body: &[u8],
        server_time: Option<DateTime<Utc>>,
        received_at: DateTime<Utc>,
    ) -> Result<i64> {
        if let Some(full) = crate::failpoint::io_fault(FAULT_INBOX_DISK_FULL) {
            return Err(Error::io("storing a tracking response")(full));
        }
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = insert_response(&tx, body, server_time, received_at)?;
        tx.commit()?;
        Ok(id)
    }

    /// One attempt at [`Store::store_tracking_response`] that waits at most `busy` for another
    /// writer, so the caller's own backoff, not SQLite's, paces the retries.
    pub fn try_store_tracking_response(
        &mut self,
        body: &[u8],
        server_time: Option<DateTime<Utc>>,
        received_at: DateTime<Utc>,
        busy: Duration,
    ) -> Result<i64> {
        self.with_busy_wait(busy, |s| {
            s.store_tracking_response(body, server_time, received_at)
        })
    }

    /// Runs `f` with statements waiting at most `busy` for another writer (then the usual wait
    /// again): for callers that pace their own retries, or only try their best.
    pub fn with_busy_wait<T>(
        &mut self,
        busy: Duration,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        // Never longer than the store's own wait: a short configured wait stays short.
        self.conn().busy_timeout(busy.min(self.busy_wait()))?;
        let out = f(self);
        self.conn().busy_timeout(self.busy_wait())?;
        out
    }

    /// Commits a response that was spilled to a file when the inbox could not take it. A body
    /// already in the inbox (the spill file outlived its commit in a crash) is not stored
    /// twice: the same bytes are the same events. Returns the inbox id.
    pub fn store_spilled_response(
        &mut self,
        body: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<i64> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let sha256 = sha256_hex(body);
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM tracking_inbox WHERE sha256 = ?1 ORDER BY id LIMIT 1",
                [&sha256],
                |r| r.get(0),
            )
            .optional()?;
        Store::in_tx();
        let id = match existing {
            Some(id) => id,
            None => insert_response(&tx, body, None, received_at)?,
        };
        tx.commit()?;
        Ok(id)
    }

    /// Ids of stored responses not yet processed, oldest first.
    pub fn pending_tracking_batches(&self) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT id FROM tracking_inbox WHERE state = 'pending' ORDER BY id")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(ids)
    }

    /// One stored response, body included (read from `tracking_bodies`).
    pub fn tracking_batch(&self, id: i64) -> Result<Option<InboxBatch>> {
        let row = self
            .conn()
            .query_row(
                "SELECT i.received_at, i.server_time, i.sha256, b.body
                 FROM tracking_inbox i LEFT JOIN tracking_bodies b ON b.inbox_id = i.id
                 WHERE i.id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, String>(2)?,
                        // A missing body reads as empty: its sha256 then fails it as damaged.
                        r.get::<_, Option<Vec<u8>>>(3)?.unwrap_or_default(),
                    ))
                },
            )
            .optional()?;
        let Some((received_at, server_time, sha256, body)) = row else {
            return Ok(None);
        };
        Ok(Some(InboxBatch {
            id,
            received_at: parse_time(received_at).ok_or_else(|| corrupt_batch(id))?,
            server_time: server_time.and_then(parse_time),
            sha256,
            body,
        }))
    }

    /// Applies a parsed batch in one transaction and marks it processed in the same commit,
    /// with its malformed events kept aside. A batch that is no longer pending (processed by an
    /// earlier run) is left alone.
    pub fn apply_tracking_batch(
        &mut self,
        inbox_id: i64,
        info: &BatchInfo,
        events: &[TrackingEvent],
        processed_at: DateTime<Utc>,
    ) -> Result<AppliedBatch> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: Option<String> = tx
            .query_row(
                "SELECT state FROM tracking_inbox WHERE id = ?1",
                [inbox_id],
                |r| r.get(0),
            )
            .optional()?;
        match found.as_deref() {
            None => return Err(corrupt_batch(inbox_id)),
            Some("pending") => {}
            Some(_) => {
                return Ok(AppliedBatch {
                    already_processed: true,
                    ..AppliedBatch::default()
                })
            }
        }
        let mut out = AppliedBatch {
            events: count(events.len()),
            malformed: count(info.malformed.len()),
            ..AppliedBatch::default()
        };
        let consignment_marks = insert_events(&tx, inbox_id, events, &mut out)?;
        Store::in_tx();
        for (barcode, candidates) in &consignment_marks {
            match apply_candidates(&tx, barcode, &candidates.marks)? {
                None => out.waiting_for_consignment += candidates.new_events,
                Some(true) => out.changed.push((*barcode).to_string()),
                Some(false) => {}
            }
        }
        keep_malformed(&tx, inbox_id, &info.malformed)?;
        Store::in_tx();
        let n = tx.execute(
            "UPDATE tracking_inbox SET state = 'processed', processed_at = ?2, batch_id = ?3,
                event_count = ?4, applied_count = ?5, remaining = ?6, error = NULL,
                malformed_count = ?7
             WHERE id = ?1 AND state = 'pending'",
            params![
                inbox_id,
                format_time(processed_at),
                info.batch_id,
                out.events + out.malformed,
                out.applied,
                i64::try_from(info.remaining).unwrap_or(i64::MAX),
                out.malformed,
            ],
        )?;
        if n != 1 {
            return Err(corrupt_batch(inbox_id));
        }
        tx.commit()?;
        Ok(out)
    }

    /// Batches the current parser has not judged yet go back to pending: those kept as failed
    /// by another parser version, and processed ones with events another version kept aside.
    /// Their events apply by id, so reprocessing never applies one twice. Returns how many.
    pub fn requeue_for_parser(&mut self, version: u32) -> Result<u32> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let failed = tx.execute(
            "UPDATE tracking_inbox SET state = 'pending', error = NULL, processed_at = NULL
             WHERE state = 'failed' AND (parser_version IS NULL OR parser_version <> ?1)",
            [version],
        )?;
        Store::in_tx();
        let with_malformed = tx.execute(
            "UPDATE tracking_inbox SET state = 'pending', processed_at = NULL
             WHERE state = 'processed' AND id IN
                (SELECT inbox_id FROM tracking_malformed WHERE parser_version <> ?1)",
            [version],
        )?;
        tx.execute(
            "DELETE FROM tracking_malformed WHERE parser_version <> ?1",
            [version],
        )?;
        tx.commit()?;
        Ok(count(failed + with_malformed))
    }

    /// Every event kept aside as malformed, oldest batch first.
    pub fn malformed_tracking_events(&self) -> Result<Vec<MalformedEvent>> {
        let mut stmt = self.conn().prepare(
            "SELECT inbox_id, position, reason FROM tracking_malformed
             ORDER BY inbox_id, position",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(MalformedEvent {
                inbox_id: r.get(0)?,
                position: r.get(1)?,
                reason: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Marks a stored response that cannot be parsed as failed, with the reason. It stays in
    /// the inbox for support and never blocks the batches after it.
    pub fn fail_tracking_batch(
        &mut self,
        inbox_id: i64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE tracking_inbox SET state = 'failed', error = ?2, processed_at = ?3,
                parser_version = ?4
             WHERE id = ?1 AND state = 'pending'",
            params![inbox_id, reason, format_time(at), PARSER_VERSION],
        )?;
        if n == 0 {
            tracing::debug!(inbox_id, "tracking batch was no longer pending");
        }
        Ok(())
    }

    /// Every stored response that could not be parsed, oldest first.
    pub fn failed_tracking_batches(&self) -> Result<Vec<FailedBatch>> {
        let mut stmt = self.conn().prepare(
            "SELECT id, received_at, server_time, bytes, sha256, error FROM tracking_inbox
             WHERE state = 'failed' ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, received_at, server_time, bytes, sha256, error) = row?;
            out.push(FailedBatch {
                id,
                received_at: parse_time(received_at).ok_or_else(|| corrupt_batch(id))?,
                server_time: server_time.and_then(parse_time),
                bytes: u64::try_from(bytes).unwrap_or(0),
                sha256,
                error: error.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Every stored event of a consignment (its own and its pallets'), in timeline order.
    pub fn tracking_events_of(&self, barcode: &str) -> Result<Vec<TimelineEntry>> {
        let mut entries: Vec<TimelineEntry> = events_of(self.conn(), barcode)?
            .iter()
            .map(TimelineEntry::from)
            .collect();
        sort_timeline(&mut entries);
        Ok(entries)
    }

    /// Records that a pull is starting. Until the first success, staleness counts from the
    /// first attempt.
    pub fn note_tracking_attempt(&mut self, now: DateTime<Utc>) -> Result<()> {
        self.conn().execute(
            "INSERT INTO sync_state (key, value)
             SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM sync_state WHERE key IN (?1, ?3))",
            params![
                keys::TRACKING_FIRST_ATTEMPT,
                format_time(now).to_string(),
                keys::TRACKING_LAST_SUCCESS
            ],
        )?;
        Ok(())
    }

    /// Records a successful pull (and forgets the last failure).
    pub fn note_tracking_success(&mut self, now: DateTime<Utc>) -> Result<()> {
        let tx = self.conn_mut().transaction()?;
        set_sync_time(&tx, keys::TRACKING_LAST_SUCCESS, now)?;
        tx.execute(
            "DELETE FROM sync_state WHERE key = ?1",
            [keys::TRACKING_LAST_ERROR],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records why the last pull failed, as people should read it (never a response body).
    pub fn note_tracking_failure(&mut self, message: &str) -> Result<()> {
        set_sync_state(self.conn(), keys::TRACKING_LAST_ERROR, message)
    }

    /// The tracking sync bookkeeping: last success, first attempt, last failure.
    pub fn tracking_sync_state(&self) -> Result<TrackingSyncState> {
        Ok(TrackingSyncState {
            last_success: self.sync_time(keys::TRACKING_LAST_SUCCESS)?,
            first_attempt: self.sync_time(keys::TRACKING_FIRST_ATTEMPT)?,
            last_error: self.sync_state(keys::TRACKING_LAST_ERROR)?,
            pending_batches: count(self.pending_tracking_batches()?.len()),
            malformed_events: self.conn().query_row(
                "SELECT COUNT(*) FROM tracking_malformed",
                [],
                |r| r.get(0),
            )?,
        })
    }

    /// The batch size the next tracking pull asks for, once one was learned.
    pub fn tracking_batch_size(&self) -> Result<Option<u32>> {
        Ok(self
            .sync_state(keys::TRACKING_BATCH_SIZE)?
            .and_then(|v| v.parse().ok()))
    }

    /// Records the batch size learned from the link, and the throughput it was learned from.
    pub fn set_tracking_batch_size(&mut self, size: u32, throughput: Option<u64>) -> Result<()> {
        let tx = self.conn_mut().transaction()?;
        set_sync_state(&tx, keys::TRACKING_BATCH_SIZE, &size.to_string())?;
        if let Some(bps) = throughput {
            set_sync_state(&tx, keys::TRACKING_THROUGHPUT, &bps.to_string())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// How many tracking events are stored (all consignments).
    pub fn tracking_event_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM tracking_events", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// New candidates for one consignment's statuses.
#[derive(Debug, Default)]
struct Candidates<'a> {
    marks: Marks<'a>,
    new_events: u32,
}

/// The failpoint fault (`UPN_FAULT`) that fails the inbox commit as a full disk would.
pub const FAULT_INBOX_DISK_FULL: &str = "tracking.inbox_disk_full";

fn insert_response(
    tx: &rusqlite::Transaction<'_>,
    body: &[u8],
    server_time: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> Result<i64> {
    tx.execute(
        "INSERT INTO tracking_inbox (received_at, server_time, sha256, bytes, state)
         VALUES (?1, ?2, ?3, ?4, 'pending')",
        params![
            format_time(received_at),
            server_time.map(format_time),
            sha256_hex(body),
            body.len() as i64,
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO tracking_bodies (inbox_id, body) VALUES (?1, ?2)",
        params![id, body],
    )?;
    if let Some(server_time) = server_time {
        let offset_ms = (received_at - server_time).num_milliseconds();
        set_sync_state(tx, keys::CLOCK_OFFSET_MS, &offset_ms.to_string())?;
    }
    Ok(id)
}

/// Inserts a batch's events by id and collects, per consignment, the newest new candidates
/// (C for the consignment, P per pallet).
fn insert_events<'a>(
    tx: &rusqlite::Transaction<'_>,
    inbox_id: i64,
    events: &'a [TrackingEvent],
    out: &mut AppliedBatch,
) -> Result<BTreeMap<&'a str, Candidates<'a>>> {
    let mut marks: BTreeMap<&str, Candidates<'_>> = BTreeMap::new();
    // Cached: prepared once per connection, not once per batch.
    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
    for e in events {
        if !insert_event(&mut insert, e, Some(inbox_id))? {
            out.duplicates += 1;
            continue;
        }
        out.applied += 1;
        let slot = marks.entry(e.barcode.as_str()).or_default();
        slot.marks.add(e);
        slot.new_events += 1;
    }
    Ok(marks)
}

fn keep_malformed(
    tx: &rusqlite::Transaction<'_>,
    inbox_id: i64,
    malformed: &[MalformedEvent],
) -> Result<()> {
    let mut insert = tx.prepare(
        "INSERT OR REPLACE INTO tracking_malformed (inbox_id, position, reason, parser_version)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for m in malformed {
        insert.execute(params![inbox_id, m.position, m.reason, PARSER_VERSION])?;
    }
    Ok(())
}

const INSERT_EVENT: &str = "INSERT OR IGNORE INTO tracking_events
    (id, barcode, pallet, capture_type, stage, at, location, lat, lon, source, inbox_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// Inserts one event unless its id is already stored; true when it was new.
fn insert_event(
    insert: &mut rusqlite::Statement<'_>,
    e: &TrackingEvent,
    inbox_id: Option<i64>,
) -> Result<bool> {
    let location = e.location.as_ref();
    let n = insert.execute(params![
        e.id,
        e.barcode,
        e.pallet,
        e.capture_type.code(),
        e.stage.code(),
        format_time(e.at),
        location.and_then(|l| l.description.as_deref()),
        location.and_then(|l| l.lat),
        location.and_then(|l| l.lon),
        e.source.code(),
        inbox_id,
    ])?;
    Ok(n == 1)
}

fn mark_from(stage: Option<String>, at: Option<i64>) -> Option<StageMark> {
    let stage = stage?;
    let at = parse_time(at?)?;
    Some(StageMark::new(Stage::from_code(&stage), at))
}

/// Moves the consignment's and its pallets' current stages to the candidates where the status
/// rule says so. `None`: the consignment is not on the device; `Some(changed)` otherwise.
fn apply_candidates(
    conn: &Connection,
    barcode: &str,
    candidates: &Marks<'_>,
) -> Result<Option<bool>> {
    // One read for the consignment and its pallets (a batch touches most of the day's
    // consignments, so this runs thousands of times per batch), their rowids with it: the
    // updates below go straight to the rows read, not through the barcode indexes again.
    let mut current: Option<(i64, Option<StageMark>)> = None;
    let mut pallets: Vec<(i64, String, Option<StageMark>)> = Vec::new();
    {
        let mut read = conn.prepare_cached(
            "SELECT c.rowid, c.stage, c.stage_at, p.rowid, p.barcode, p.stage, p.stage_at
             FROM consignments c LEFT JOIN pallets p ON p.consignment = c.barcode
             WHERE c.barcode = ?1",
        )?;
        let mut rows = read.query([barcode])?;
        while let Some(r) = rows.next()? {
            if current.is_none() {
                current = Some((r.get(0)?, mark_from(r.get(1)?, r.get(2)?)));
            }
            if let (Some(rowid), Some(pallet)) =
                (r.get::<_, Option<i64>>(3)?, r.get::<_, Option<String>>(4)?)
            {
                pallets.push((rowid, pallet, mark_from(r.get(5)?, r.get(6)?)));
            }
        }
    }
    let Some((rowid, current)) = current else {
        return Ok(None);
    };
    let mut changed = false;
    if let Some(c) = &candidates.consignment {
        if supersedes(c, current.as_ref()) {
            conn.prepare_cached(
                "UPDATE consignments SET stage = ?2, stage_at = ?3 WHERE rowid = ?1",
            )?
            .execute(params![rowid, c.stage.code(), format_time(c.at)])?;
            changed = true;
        }
    }
    if candidates.is_empty() {
        return Ok(Some(changed));
    }
    let mut update =
        conn.prepare_cached("UPDATE pallets SET stage = ?2, stage_at = ?3 WHERE rowid = ?1")?;
    for (rowid, pallet, current) in pallets {
        if let Some(candidate) = candidates.pallet(&pallet) {
            if supersedes(&candidate, current.as_ref()) {
                update.execute(params![
                    rowid,
                    candidate.stage.code(),
                    format_time(candidate.at)
                ])?;
                changed = true;
            }
        }
    }
    Ok(Some(changed))
}

/// Applies every stored event of `barcode` to its (just imported) consignment and pallets.
/// Called by the import inside its transaction, once per imported consignment; cheap when the
/// consignment has no events. Returns whether a status changed.
pub(crate) fn recompute_stages(conn: &Connection, barcode: &str) -> Result<bool> {
    let events = events_of(conn, barcode)?;
    if events.is_empty() {
        return Ok(false);
    }
    Ok(apply_candidates(conn, barcode, &Marks::of(&events))?.unwrap_or(false))
}

fn events_of(conn: &Connection, barcode: &str) -> Result<Vec<TrackingEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, barcode, pallet, capture_type, stage, at, location, lat, lon, source
         FROM tracking_events WHERE barcode = ?1 ORDER BY at, rowid",
    )?;
    let rows = stmt.query_map([barcode], event_from_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<Result<TrackingEvent>> {
    let id: String = r.get(0)?;
    let at: i64 = r.get(5)?;
    let source: String = r.get(9)?;
    let description: Option<String> = r.get(6)?;
    let lat: Option<f64> = r.get(7)?;
    let lon: Option<f64> = r.get(8)?;
    let location = (description.is_some() || lat.is_some() || lon.is_some()).then_some(Location {
        description,
        lat,
        lon,
    });
    let (Some(at), Some(source)) = (parse_time(at), Source::from_code(&source)) else {
        return Ok(Err(Error::Storage {
            reason: format!("stored tracking event {id} is unreadable"),
            disk_full: false,
        }));
    };
    Ok(Ok(TrackingEvent {
        barcode: r.get(1)?,
        pallet: r.get(2)?,
        capture_type: CaptureType::from_code(&r.get::<_, String>(3)?),
        stage: Stage::from_code(&r.get::<_, String>(4)?),
        at,
        location,
        source,
        id,
    }))
}

fn corrupt_batch(id: i64) -> Error {
    Error::Storage {
        reason: format!("stored tracking batch {id} is missing or unreadable"),
        disk_full: false,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, Consignment, Pallet, Party, ServiceLevel};
    use crate::store::FeedChanges;
    use chrono::{NaiveDate, TimeZone};

    const C1: &str = "UPN0420000001";

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, h, m, 0).unwrap()
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        (dir, store)
    }

    fn consignment(barcode: &str, pallets: &[&str]) -> Consignment {
        Consignment {
            barcode: barcode.into(),
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
            pallets: pallets
                .iter()
                .map(|b| Pallet {
                    barcode: (*b).into(),
                    size: "FULL".into(),
                    weight_kg: 300.0,
                    stage: None,
                })
                .collect(),
            weight_kg: 300.0,
            service: ServiceLevel::Economy,
            window: None,
            delivery_date: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            instructions: None,
            stage: None,
            cancelled: None,
            upn_updated_at: t(5, 0),
        }
    }

    fn import(store: &mut Store, c: Consignment) {
        store
            .apply_feed(&FeedChanges {
                consignments: vec![c],
                cancellations: vec![],
                cursor: "v1".into(),
                server_time: t(5, 0),
                received_at: t(5, 0),
            })
            .unwrap();
    }

    fn ev(
        id: &str,
        barcode: &str,
        pallet: Option<&str>,
        stage: &str,
        at: DateTime<Utc>,
    ) -> TrackingEvent {
        TrackingEvent {
            id: id.into(),
            barcode: barcode.into(),
            pallet: pallet.map(Into::into),
            capture_type: CaptureType::from_code(if pallet.is_some() { "P" } else { "C" }),
            stage: Stage::from_code(stage),
            at,
            location: Some(Location {
                description: Some("Depot 042".into()),
                lat: Some(53.7),
                lon: None,
            }),
            source: Source::Upn,
        }
    }

    /// Stores a dummy body and applies `events` as its batch.
    fn apply(store: &mut Store, events: &[TrackingEvent]) -> AppliedBatch {
        let id = store
            .store_tracking_response(b"{}", Some(t(12, 0)), t(12, 0))
            .unwrap();
        store
            .apply_tracking_batch(
                id,
                &BatchInfo {
                    batch_id: Some(format!("B{id}")),
                    remaining: 0,
                    malformed: vec![],
                },
                events,
                t(12, 0),
            )
            .unwrap()
    }

    fn stages(store: &Store, barcode: &str) -> (Option<String>, Vec<Option<String>>) {
        let c = store.consignment(barcode).unwrap().unwrap();
        (
            c.stage.map(|s| s.code().to_string()),
            c.pallets
                .iter()
                .map(|p| p.stage.as_ref().map(|s| s.code().to_string()))
                .collect(),
        )
    }

    fn s(code: &str) -> Option<String> {
        Some(code.to_string())
    }

    #[test]
    fn tracking_inbox_keeps_the_body_and_its_digest() {
        let (_d, mut store) = open();
        let body = br#"{"server_time":"2026-11-26T12:00:00Z","events":[],"remaining":0}"#;
        let id = store
            .store_tracking_response(body, Some(t(11, 59)), t(12, 0))
            .unwrap();
        assert_eq!(store.pending_tracking_batches().unwrap(), vec![id]);
        let b = store.tracking_batch(id).unwrap().unwrap();
        assert_eq!(b.body, body.to_vec());
        assert_eq!(b.sha256, sha256_hex(body));
        assert_eq!(b.received_at, t(12, 0));
        assert_eq!(b.server_time, Some(t(11, 59)));
        assert_eq!(
            store.sync_state(keys::CLOCK_OFFSET_MS).unwrap().as_deref(),
            Some("60000")
        );
        assert!(store.tracking_batch(id + 1).unwrap().is_none());
    }

    #[test]
    fn tracking_c_vs_p_on_a_multi_pallet_consignment() {
        let (_d, mut store) = open();
        import(&mut store, consignment(C1, &["P1", "P2", "P3"]));
        apply(
            &mut store,
            &[ev("E1", C1, None, "OUT_FOR_DELIVERY", t(7, 0))],
        );
        assert_eq!(
            stages(&store, C1),
            (s("OUT_FOR_DELIVERY"), vec![s("OUT_FOR_DELIVERY"); 3])
        );
        let out = apply(&mut store, &[ev("E2", C1, Some("P2"), "UNLOADED", t(9, 0))]);
        assert_eq!(out.changed, vec![C1.to_string()]);
        assert_eq!(
            stages(&store, C1),
            (
                s("OUT_FOR_DELIVERY"),
                vec![s("OUT_FOR_DELIVERY"), s("UNLOADED"), s("OUT_FOR_DELIVERY")]
            )
        );
        apply(&mut store, &[ev("E3", C1, None, "DELIVERED", t(10, 0))]);
        assert_eq!(
            stages(&store, C1),
            (s("DELIVERED"), vec![s("DELIVERED"); 3])
        );
    }

    #[test]
    fn tracking_duplicate_events_apply_once() {
        let (_d, mut store) = open();
        import(&mut store, consignment(C1, &["P1"]));
        let e = ev("E1", C1, None, "ARRIVED", t(9, 0));
        // Twice in one batch, then again in a later batch.
        let first = apply(&mut store, &[e.clone(), e.clone()]);
        assert_eq!((first.events, first.applied, first.duplicates), (2, 1, 1));
        let second = apply(&mut store, &[e]);
        assert_eq!((second.applied, second.duplicates), (0, 1));
        assert!(second.changed.is_empty());
        assert_eq!(store.tracking_events_of(C1).unwrap().len(), 1);
        assert_eq!(store.tracking_event_count().unwrap(), 1);
    }

    #[test]
    fn tracking_out_of_order_events_never_move_a_status_backwards() {
        let (_d, mut store) = open();
        import(&mut store, consignment(C1, &["P1", "P2"]));
        apply(&mut store, &[ev("E3", C1, None, "DELIVERED", t(10, 0))]);
        let late = apply(
            &mut store,
            &[
                ev("E1", C1, None, "BOOKED", t(6, 0)),
                ev("E2", C1, Some("P1"), "UNLOADED", t(9, 0)),
            ],
        );
        assert!(late.changed.is_empty());
        assert_eq!(
            stages(&store, C1),
            (s("DELIVERED"), vec![s("DELIVERED"); 2])
        );
        // The timeline keeps them all, in time order.
        let timeline: Vec<String> = store
            .tracking_events_of(C1)
            .unwrap()
            .iter()
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(timeline, ["E1", "E2", "E3"]);
        // A later complaint does show after DELIVERED.
        apply(
            &mut store,
            &[ev("E4", C1, None, "COMPLAINT_RAISED", t(15, 0))],
        );
        assert_eq!(stages(&store, C1).0, s("COMPLAINT_RAISED"));
    }

    #[test]
    fn tracking_unknown_stage_is_kept_verbatim() {
        let (_d, mut store) = open();
        import(&mut store, consignment(C1, &["P1"]));
        apply(&mut store, &[ev("E1", C1, None, "HELD_AT_HUB", t(8, 0))]);
        assert_eq!(
            stages(&store, C1),
            (s("HELD_AT_HUB"), vec![s("HELD_AT_HUB")])
        );
        let entries = store.tracking_events_of(C1).unwrap();
        assert_eq!(entries[0].stage, Stage::Other("HELD_AT_HUB".into()));
        assert_eq!(entries[0].stage.code(), "HELD_AT_HUB");
    }

    #[test]
    fn tracking_events_before_their_consignment_apply_when_it_is_imported() {
        let (_d, mut store) = open();
        let out = apply(
            &mut store,
            &[
                ev("E1", C1, None, "OUT_FOR_DELIVERY", t(7, 0)),
                ev("E2", C1, Some("P2"), "UNLOADED", t(9, 0)),
            ],
        );
        assert_eq!(out.waiting_for_consignment, 2);
        assert!(store.consignment(C1).unwrap().is_none());
        assert_eq!(store.tracking_events_of(C1).unwrap().len(), 2);

        import(&mut store, consignment(C1, &["P1", "P2"]));
        assert_eq!(
            stages(&store, C1),
            (
                s("OUT_FOR_DELIVERY"),
                vec![s("OUT_FOR_DELIVERY"), s("UNLOADED")]
            )
        );
        // A re-import (an update adding a pallet) gives the new pallet the consignment's stage.
        let mut updated = consignment(C1, &["P1", "P2", "P3"]);
        updated.upn_updated_at = t(8, 0);
        import(&mut store, updated);
        assert_eq!(
            stages(&store, C1),
            (
                s("OUT_FOR_DELIVERY"),
                vec![s("OUT_FOR_DELIVERY"), s("UNLOADED"), s("OUT_FOR_DELIVERY")]
            )
        );
    }

    #[test]
    fn tracking_pallet_events_for_unlisted_pallets_are_kept_but_change_nothing() {
        let (_d, mut store) = open();
        import(&mut store, consignment(C1, &["P1"]));
        let mut odd = ev("E2", C1, None, "UNLOADED", t(9, 0));
        odd.capture_type = CaptureType::Other("X".into());
        let out = apply(
            &mut store,
            &[ev("E1", C1, Some("P9"), "DELIVERED", t(9, 0)), odd],
        );
        assert_eq!(out.applied, 2);
        assert!(out.changed.is_empty());
        assert_eq!(stages(&store, C1), (None, vec![None]));
        let entries = store.tracking_events_of(C1).unwrap();
        let odd = entries.iter().find(|e| e.id == "E2").unwrap();
        assert_eq!(odd.capture_type.code(), "X");
    }

    #[test]
    fn tracking_a_processed_batch_is_not_applied_again_and_failed_ones_are_kept() {
        let (_d, mut store) = open();
        let id = store
            .store_tracking_response(b"{}", None, t(12, 0))
            .unwrap();
        let info = BatchInfo {
            batch_id: Some("B1".into()),
            remaining: 3,
            malformed: vec![],
        };
        let events = [ev("E1", C1, None, "BOOKED", t(6, 0))];
        let first = store
            .apply_tracking_batch(id, &info, &events, t(12, 0))
            .unwrap();
        assert_eq!(first.applied, 1);
        let again = store
            .apply_tracking_batch(id, &info, &events, t(12, 1))
            .unwrap();
        assert!(again.already_processed);
        assert!(store.pending_tracking_batches().unwrap().is_empty());

        let bad = store
            .store_tracking_response(b"not json", None, t(12, 5))
            .unwrap();
        store
            .fail_tracking_batch(bad, "malformed JSON (8 bytes)", t(12, 5))
            .unwrap();
        let later = store
            .store_tracking_response(b"{}", None, t(12, 6))
            .unwrap();
        assert_eq!(store.pending_tracking_batches().unwrap(), vec![later]);
        let failed = store.failed_tracking_batches().unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].id, bad);
        assert_eq!(failed[0].bytes, 8);
        assert_eq!(failed[0].error, "malformed JSON (8 bytes)");
        // The body is still there.
        assert_eq!(
            store.tracking_batch(bad).unwrap().unwrap().body,
            b"not json".to_vec()
        );
        // A failed batch cannot be applied by mistake afterwards.
        assert!(
            store
                .apply_tracking_batch(bad, &info, &events, t(12, 7))
                .unwrap()
                .already_processed
        );
    }

    #[test]
    fn tracking_locations_round_trip() {
        let (_d, mut store) = open();
        let mut bare = ev("E2", C1, None, "ARRIVED", t(9, 0));
        bare.location = None;
        apply(&mut store, &[ev("E1", C1, None, "BOOKED", t(6, 0)), bare]);
        let entries = store.tracking_events_of(C1).unwrap();
        assert_eq!(
            entries[0].location,
            Some(Location {
                description: Some("Depot 042".into()),
                lat: Some(53.7),
                lon: None
            })
        );
        assert_eq!(entries[1].location, None);
        assert_eq!(entries[0].source, Source::Upn);
    }

    #[test]
    fn tracking_a_spilled_response_is_stored_once_and_malformed_events_are_kept() {
        let (_d, mut store) = open();
        let body = br#"{"server_time":"2026-11-26T12:00:00Z","events":[],"remaining":0}"#;
        let id = store.store_spilled_response(body, t(12, 0)).unwrap();
        // The spill file outlived its commit (a crash before the delete): not stored twice.
        assert_eq!(store.store_spilled_response(body, t(12, 1)).unwrap(), id);
        assert_eq!(store.pending_tracking_batches().unwrap(), vec![id]);
        let info = BatchInfo {
            batch_id: Some("B1".into()),
            remaining: 0,
            malformed: vec![MalformedEvent {
                inbox_id: id,
                position: 3,
                reason: "stage is empty".into(),
            }],
        };
        let out = store
            .apply_tracking_batch(
                id,
                &info,
                &[ev("E1", C1, None, "BOOKED", t(6, 0))],
                t(12, 2),
            )
            .unwrap();
        assert_eq!((out.applied, out.malformed), (1, 1));
        assert_eq!(store.malformed_tracking_events().unwrap(), info.malformed);
        assert_eq!(store.tracking_sync_state().unwrap().malformed_events, 1);
        // Judged by this parser: nothing to requeue.
        assert_eq!(store.requeue_for_parser(PARSER_VERSION).unwrap(), 0);
        // A different parser looks again, and the old verdicts go.
        assert_eq!(store.requeue_for_parser(PARSER_VERSION + 1).unwrap(), 1);
        assert!(store.malformed_tracking_events().unwrap().is_empty());
        assert_eq!(store.pending_tracking_batches().unwrap(), vec![id]);
    }
}
