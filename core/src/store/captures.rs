//! Captured PODs and photos and their outbox state. Every transition is one transaction; in
//! particular, marking a POD sent and releasing its waiting photos happen together.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use super::blobs::BlobRef;
use super::{format_time, parse_time, Store};
use crate::domain::capture::{CheckedFix, GpsFix};
use crate::domain::outbox::{CaptureKind, FailureDecision, ItemState};
use crate::error::{Error, Result};

/// A capture about to be recorded (its original file is already durable).
#[derive(Debug, Clone)]
pub struct NewCapture {
    pub id: String,
    pub barcode: String,
    pub kind: CaptureKind,
    pub captured_at: DateTime<Utc>,
    pub clock_offset_ms: Option<i64>,
    pub signed_by: Option<String>,
    pub fix: Option<CheckedFix>,
    pub original: BlobRef,
    pub state: ItemState,
    /// The unsent POD this one replaces.
    pub replaces: Option<String>,
}

/// A capture as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub id: String,
    pub barcode: String,
    pub kind: CaptureKind,
    pub seq: i64,
    pub captured_at: DateTime<Utc>,
    pub clock_offset_ms: Option<i64>,
    pub signed_by: Option<String>,
    pub fix: Option<CheckedFix>,
    pub original: BlobRef,
    pub upload: Option<BlobRef>,
    pub state: ItemState,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub upn_reference: Option<String>,
    pub replaces: Option<String>,
}

/// Counts and ages for the app's sync screen.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OutboxStats {
    pub waiting: u32,
    pub queued: u32,
    pub sending: u32,
    pub needs_attention: u32,
    pub sent: u32,
    /// Capture time of the oldest item not yet acknowledged by UPN.
    pub oldest_pending_captured_at: Option<DateTime<Utc>>,
    /// Bytes still to upload (renditions where made, originals otherwise).
    pub bytes_pending: u64,
    pub last_success_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, barcode, kind, seq, captured_at, clock_offset_ms, signed_by, lat, lon, \
    accuracy_m, fix_at, gps_stale, original_file, original_sha256, original_bytes, upload_file, \
    upload_sha256, upload_bytes, state, attempts, next_attempt_at, last_error, sent_at, \
    upn_reference, replaces";

fn corrupt(id: &str, what: &str) -> Error {
    Error::Storage {
        reason: format!("stored capture {id} has an unreadable {what}"),
        disk_full: false,
    }
}

fn capture_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Capture>> {
    let id: String = r.get(0)?;
    let kind: String = r.get(2)?;
    let captured_at: i64 = r.get(4)?;
    let lat: Option<f64> = r.get(7)?;
    let lon: Option<f64> = r.get(8)?;
    let accuracy: Option<f64> = r.get(9)?;
    let fix_at: Option<i64> = r.get(10)?;
    let state: String = r.get(18)?;
    let upload_file: Option<String> = r.get(15)?;
    let next: Option<i64> = r.get(20)?;
    let sent: Option<i64> = r.get(22)?;
    let build = || -> Result<Capture> {
        let fix = match (lat, lon, accuracy, fix_at) {
            (Some(lat), Some(lon), Some(acc), Some(at)) => Some(CheckedFix {
                fix: GpsFix::new(
                    lat,
                    lon,
                    acc,
                    parse_time(at).ok_or_else(|| corrupt(&id, "fix time"))?,
                ),
                stale: r.get::<_, i64>(11)? != 0,
            }),
            _ => None,
        };
        let upload = match upload_file {
            Some(name) => Some(BlobRef {
                name,
                sha256: r.get::<_, Option<String>>(16)?.unwrap_or_default(),
                bytes: r.get::<_, Option<i64>>(17)?.unwrap_or(0).max(0) as u64,
            }),
            None => None,
        };
        Ok(Capture {
            kind: CaptureKind::from_code(&kind).ok_or_else(|| corrupt(&id, "kind"))?,
            barcode: r.get(1)?,
            seq: r.get(3)?,
            captured_at: parse_time(captured_at).ok_or_else(|| corrupt(&id, "capture time"))?,
            clock_offset_ms: r.get(5)?,
            signed_by: r.get(6)?,
            fix,
            original: BlobRef {
                name: r.get(12)?,
                sha256: r.get(13)?,
                bytes: r.get::<_, i64>(14)?.max(0) as u64,
            },
            upload,
            state: ItemState::from_code(&state).ok_or_else(|| corrupt(&id, "state"))?,
            attempts: r.get::<_, i64>(19)?.clamp(0, u32::MAX as i64) as u32,
            next_attempt_at: next.and_then(parse_time),
            last_error: r.get(21)?,
            sent_at: sent.and_then(parse_time),
            upn_reference: r.get(23)?,
            replaces: r.get(24)?,
            id: id.clone(),
        })
    };
    Ok(build())
}

impl Store {
    fn query_captures(&self, filter: &str, args: impl rusqlite::Params) -> Result<Vec<Capture>> {
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT {COLUMNS} FROM captures {filter}"))?;
        let rows = stmt.query_map(args, capture_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    pub fn capture(&self, id: &str) -> Result<Option<Capture>> {
        Ok(self
            .query_captures("WHERE id = ?1", [id])?
            .into_iter()
            .next())
    }

    /// The consignment's POD that is not replaced or discarded.
    pub fn live_pod(&self, barcode: &str) -> Result<Option<Capture>> {
        Ok(self
            .query_captures(
                "WHERE barcode = ?1 AND kind = 'pod' AND state NOT IN ('replaced', 'discarded')",
                [barcode],
            )?
            .into_iter()
            .next())
    }

    /// Every capture of a consignment in capture order (replaced and discarded ones included).
    pub fn captures_of(&self, barcode: &str) -> Result<Vec<Capture>> {
        self.query_captures("WHERE barcode = ?1 ORDER BY seq", [barcode])
    }

    /// Everything not yet acknowledged by UPN, oldest first.
    pub fn pending_captures(&self) -> Result<Vec<Capture>> {
        self.query_captures(
            "WHERE state IN ('waiting', 'queued', 'sending', 'needs_attention') ORDER BY seq",
            [],
        )
    }

    /// Records a capture in one transaction (replacing an unsent POD if asked).
    pub fn insert_capture(&mut self, c: &NewCapture) -> Result<()> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(old) = &c.replaces {
            let n = tx.execute(
                "UPDATE captures SET state = 'replaced', next_attempt_at = NULL
                 WHERE id = ?1 AND kind = 'pod' AND attempts = 0
                   AND state IN ('queued', 'needs_attention', 'waiting')",
                [old],
            )?;
            if n != 1 {
                return Err(Error::invalid(
                    "signature",
                    "the earlier signature started sending meanwhile; it can no longer be replaced",
                ));
            }
        }
        let seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM captures", [], |r| {
            r.get(0)
        })?;
        let fix = c.fix.as_ref();
        tx.execute(
            &format!(
                "INSERT INTO captures ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                 ?11, ?12, ?13, ?14, ?15, NULL, NULL, NULL, ?16, 0, NULL, NULL, NULL, NULL, ?17)"
            ),
            params![
                c.id,
                c.barcode,
                c.kind.code(),
                seq,
                format_time(c.captured_at),
                c.clock_offset_ms,
                c.signed_by,
                fix.map(|f| f.fix.lat()),
                fix.map(|f| f.fix.lon()),
                fix.map(|f| f.fix.accuracy_m),
                fix.map(|f| format_time(f.fix.fix_at)),
                fix.map(|f| f.stale as i64).unwrap_or(0),
                c.original.name,
                c.original.sha256,
                c.original.bytes as i64,
                c.state.code(),
                c.replaces,
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// After a crash or a cancelled flush, nothing is really in flight: queue it again. The
    /// idempotency key makes the repeat safe if the first request did reach UPN.
    pub fn requeue_in_flight(&mut self) -> Result<u32> {
        Ok(self.conn().execute(
            "UPDATE captures SET state = 'queued' WHERE state = 'sending'",
            [],
        )? as u32)
    }

    /// Queued items whose time has come: per consignment, its POD before its photos.
    pub fn due_captures(&self, now: DateTime<Utc>) -> Result<Vec<Capture>> {
        self.query_captures(
            "WHERE state = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
             ORDER BY barcode, kind != 'pod', seq",
            [format_time(now)],
        )
    }

    /// When the next queued item becomes due, if any is waiting on a backoff.
    pub fn next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        let at: Option<i64> = self.conn().query_row(
            "SELECT MIN(next_attempt_at) FROM captures WHERE state = 'queued'",
            [],
            |r| r.get(0),
        )?;
        Ok(at.and_then(parse_time))
    }

    pub fn set_upload_rendition(&mut self, id: &str, upload: &BlobRef) -> Result<()> {
        self.conn().execute(
            "UPDATE captures SET upload_file = ?2, upload_sha256 = ?3, upload_bytes = ?4 WHERE id = ?1",
            params![id, upload.name, upload.sha256, upload.bytes as i64],
        )?;
        Ok(())
    }

    /// A request is about to leave: counts the attempt before it starts.
    pub fn mark_sending(&mut self, id: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE captures SET state = 'sending', attempts = attempts + 1 WHERE id = ?1 AND state = 'queued'",
            [id],
        )?;
        Ok(())
    }

    /// UPN acknowledged the capture. For a POD, its waiting photos are released in the same
    /// transaction. Returns the ids of the released photos.
    pub fn mark_sent(
        &mut self,
        id: &str,
        at: DateTime<Utc>,
        upn_reference: &str,
    ) -> Result<Vec<String>> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, String)> = tx
            .query_row(
                "SELECT barcode, kind FROM captures WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((barcode, kind)) = row else {
            return Ok(Vec::new());
        };
        tx.execute(
            "UPDATE captures SET state = 'sent', sent_at = ?2, upn_reference = ?3,
                next_attempt_at = NULL, last_error = NULL WHERE id = ?1",
            params![id, format_time(at), upn_reference],
        )?;
        let mut released = Vec::new();
        if kind == CaptureKind::Pod.code() {
            let mut stmt = tx.prepare(
                "UPDATE captures SET state = 'queued', next_attempt_at = NULL
                 WHERE barcode = ?1 AND kind != 'pod' AND state = 'waiting' RETURNING id",
            )?;
            let ids = stmt.query_map([&barcode], |r| r.get::<_, String>(0))?;
            for id in ids {
                released.push(id?);
            }
        }
        tx.commit()?;
        Ok(released)
    }

    /// Records a failed attempt as the outbox state machine decided.
    pub fn mark_failed(&mut self, id: &str, decision: &FailureDecision, error: &str) -> Result<()> {
        match decision {
            FailureDecision::Retry { at } | FailureDecision::Offline { at } => {
                self.conn().execute(
                    "UPDATE captures SET state = 'queued', next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                    params![id, format_time(*at), error],
                )?;
            }
            FailureDecision::NeedsAttention { reason } => {
                self.conn().execute(
                    "UPDATE captures SET state = 'needs_attention', next_attempt_at = NULL, last_error = ?2 WHERE id = ?1",
                    params![id, reason],
                )?;
            }
        }
        Ok(())
    }

    /// An explicit retry of an item that needs attention (or a nudge of a queued one): due now.
    /// A photo whose POD has not reached UPN goes back to waiting for it.
    pub fn retry_capture(&mut self, id: &str) -> Result<Capture> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE captures SET
                state = CASE
                    WHEN kind = 'pod' THEN 'queued'
                    WHEN EXISTS (SELECT 1 FROM captures p WHERE p.barcode = captures.barcode
                                 AND p.kind = 'pod' AND p.state = 'sent') THEN 'queued'
                    ELSE 'waiting' END,
                next_attempt_at = NULL
             WHERE id = ?1 AND state IN ('needs_attention', 'queued')",
            [id],
        )?;
        tx.commit()?;
        let capture = self
            .capture(id)?
            .ok_or_else(|| Error::invalid("capture id", "no such capture"))?;
        if n == 0 {
            return Err(Error::invalid(
                "capture id",
                format!(
                    "is {}; only items that need attention or are queued can be retried",
                    capture.state.code()
                ),
            ));
        }
        Ok(capture)
    }

    /// Gives up on an item that was not sent. Its files can then be removed.
    pub fn discard_capture(&mut self, id: &str) -> Result<Capture> {
        let n = self.conn().execute(
            "UPDATE captures SET state = 'discarded', next_attempt_at = NULL
             WHERE id = ?1 AND state IN ('needs_attention', 'queued', 'waiting')",
            [id],
        )?;
        let capture = self
            .capture(id)?
            .ok_or_else(|| Error::invalid("capture id", "no such capture"))?;
        if n == 0 {
            return Err(Error::invalid(
                "capture id",
                format!(
                    "is {}; only unsent items can be discarded",
                    capture.state.code()
                ),
            ));
        }
        Ok(capture)
    }

    /// Every file name a capture row refers to (for the orphan sweep).
    pub fn referenced_blobs(&self) -> Result<HashSet<String>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT original_file, upload_file FROM captures")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        let mut out = HashSet::new();
        for row in rows {
            let (original, upload) = row?;
            out.insert(original);
            out.extend(upload);
        }
        Ok(out)
    }

    /// (kind, state) of every capture, per consignment: the input of the sync badge.
    pub fn capture_states(&self) -> Result<HashMap<String, Vec<(CaptureKind, ItemState)>>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT barcode, kind, state FROM captures ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out: HashMap<String, Vec<_>> = HashMap::new();
        for row in rows {
            let (barcode, kind, state) = row?;
            if let (Some(k), Some(s)) =
                (CaptureKind::from_code(&kind), ItemState::from_code(&state))
            {
                out.entry(barcode).or_default().push((k, s));
            }
        }
        Ok(out)
    }

    pub fn outbox_stats(&self) -> Result<OutboxStats> {
        let mut stats = OutboxStats::default();
        let mut stmt = self
            .conn()
            .prepare("SELECT state, COUNT(*) FROM captures GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let n = n.clamp(0, u32::MAX as i64) as u32;
            match ItemState::from_code(&state) {
                Some(ItemState::Waiting) => stats.waiting = n,
                Some(ItemState::Queued) => stats.queued = n,
                Some(ItemState::Sending) => stats.sending = n,
                Some(ItemState::NeedsAttention) => stats.needs_attention = n,
                Some(ItemState::Sent) => stats.sent = n,
                _ => {}
            }
        }
        let (oldest, bytes, last): (Option<i64>, Option<i64>, Option<i64>) =
            self.conn().query_row(
                "SELECT
                    (SELECT MIN(captured_at) FROM captures WHERE state IN ('waiting','queued','sending','needs_attention')),
                    (SELECT SUM(COALESCE(upload_bytes, original_bytes)) FROM captures
                        WHERE state IN ('waiting','queued','sending','needs_attention')),
                    (SELECT MAX(sent_at) FROM captures WHERE state = 'sent')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        stats.oldest_pending_captured_at = oldest.and_then(parse_time);
        stats.bytes_pending = bytes.unwrap_or(0).max(0) as u64;
        stats.last_success_at = last.and_then(parse_time);
        Ok(stats)
    }
}

impl From<&Capture> for crate::domain::outbox::OutboxItem {
    fn from(c: &Capture) -> Self {
        Self {
            id: c.id.clone(),
            barcode: c.barcode.clone(),
            kind: c.kind,
            state: c.state,
            attempts: c.attempts,
            next_attempt_at: c.next_attempt_at,
            last_error: c.last_error.clone(),
            captured_at: c.captured_at,
            bytes: c
                .upload
                .as_ref()
                .map(|u| u.bytes)
                .unwrap_or(c.original.bytes),
            sent_at: c.sent_at,
            upn_reference: c.upn_reference.clone(),
        }
    }
}
