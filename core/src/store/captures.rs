//! Captured PODs and photos and their outbox state. Every transition is decided by
//! `domain::outbox::transition` and applied here compare-and-set (`WHERE id = ? AND state = ?
//! AND attempts = ?`), reporting whether it applied: a row that moved meanwhile is never forced.
//! Marking a POD sent and releasing its waiting photos happen in one transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row, TransactionBehavior};

use super::blobs::BlobRef;
use super::{format_time, parse_time, Store};
use crate::domain::capture::{CheckedFix, GpsFix};
use crate::domain::data_saver::{DataSaver, Hold, MeteredUsage, Saver};
use crate::domain::outbox::{
    due_now, initial_state, next_wake, sending_order, transition, CaptureKind, Event, ItemState,
    ItemStatus, OutboxReason, Pause, PauseScope, Pauses, QueuedItem, Refusal, Schedule, Transition,
};
use crate::domain::pod_hash::{CoveredPhoto, PodContent};
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
    /// The stable code of `last_error` (read from the text for rows failed before codes).
    pub reason: Option<OutboxReason>,
    pub sent_at: Option<DateTime<Utc>>,
    pub upn_reference: Option<String>,
    pub replaces: Option<String>,
    /// Length of the wait ending at `next_attempt_at`, ms.
    pub retry_wait_ms: Option<i64>,
    /// A POD's `image_count`, frozen at its first attempt.
    pub pod_image_count: Option<u32>,
    /// A POD's tamper-evident hash (`domain::pod_hash`), frozen with `pod_image_count`.
    pub pod_sha256: Option<String>,
    /// The canonical manifest `pod_sha256` was taken over.
    pub pod_manifest: Option<String>,
    /// When retention removed its files (original and rendition), after UPN acknowledged it.
    pub purged_at: Option<DateTime<Utc>>,
}

impl Capture {
    /// The live POD (not replaced or discarded) among a consignment's captures.
    pub fn live_pod(captures: &[Capture]) -> Option<&Capture> {
        captures
            .iter()
            .find(|c| !c.kind.is_photo() && c.state.is_live())
    }

    /// What this POD attests, with `captures` its consignment's captures: the photos covered
    /// are the live ones, in capture order (the set a POD's `image_count` counts).
    pub fn pod_content(&self, captures: &[Capture]) -> PodContent {
        let mut photos: Vec<&Capture> = captures
            .iter()
            .filter(|c| c.kind.is_photo() && c.state.is_live())
            .collect();
        photos.sort_by_key(|c| c.seq);
        PodContent {
            barcode: self.barcode.clone(),
            signed_by: self.signed_by.clone().unwrap_or_default(),
            signed_at: self.captured_at,
            place: self.fix.map(|f| f.fix),
            signature_sha256: self.original.sha256.clone(),
            photos: photos
                .into_iter()
                .map(|c| CoveredPhoto {
                    capture_id: c.id.clone(),
                    kind: c.kind,
                    sha256: c.original.sha256.clone(),
                })
                .collect(),
        }
    }

    pub fn status(&self) -> ItemStatus {
        ItemStatus {
            kind: self.kind,
            state: self.state,
            attempts: self.attempts,
        }
    }

    /// Bytes to upload: the rendition once made, the original before (what a data-saver
    /// budget counts until the rendition exists).
    pub fn bytes_to_send(&self) -> u64 {
        self.upload
            .as_ref()
            .map_or(self.original.bytes, |u| u.bytes)
    }

    fn queued_item(&self) -> QueuedItem<'_> {
        QueuedItem {
            barcode: &self.barcode,
            kind: self.kind,
            seq: self.seq,
            schedule: Schedule {
                next_attempt_at: self.next_attempt_at,
                wait_ms: self.retry_wait_ms,
            },
            bytes: self.bytes_to_send(),
        }
    }
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
    /// Account refusals holding the outbox (or its photos) back, with their reasons.
    pub pauses: Pauses,
}

/// The columns an insert writes (a macro so [`SELECTED`] can extend the same literal).
macro_rules! inserted_columns {
    () => {
        "id, barcode, kind, seq, captured_at, clock_offset_ms, signed_by, lat, lon, \
    accuracy_m, fix_at, gps_stale, original_file, original_sha256, original_bytes, upload_file, \
    upload_sha256, upload_bytes, state, attempts, next_attempt_at, last_error, sent_at, \
    upn_reference, replaces, retry_wait_ms, pod_image_count, fix_ahead_ms"
    };
}
const COLUMNS: &str = inserted_columns!();
/// What a read selects: every inserted column, then those set only at the first attempt.
const SELECTED: &str = concat!(
    inserted_columns!(),
    ", pod_sha256, pod_manifest, last_error_code, purged_at"
);

fn corrupt(id: &str, what: &str) -> Error {
    Error::Storage {
        reason: format!("stored capture {id} has an unreadable {what}"),
        disk_full: false,
    }
}

/// An item's reason: its stored code, else (a row failed before codes) what its text says.
fn reason_of(code: Option<&str>, text: Option<&str>) -> Option<OutboxReason> {
    match (code, text) {
        (Some(code), _) => Some(OutboxReason::from_code(code).unwrap_or(OutboxReason::Other)),
        (None, Some(text)) => Some(OutboxReason::from_legacy_text(text)),
        (None, None) => None,
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
    let last_error: Option<String> = r.get(21)?;
    let last_error_code: Option<String> = r.get(30)?;
    let purged: Option<i64> = r.get(31)?;
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
                ahead_ms: r.get(27)?,
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
            reason: reason_of(last_error_code.as_deref(), last_error.as_deref()),
            last_error: last_error.clone(),
            sent_at: sent.and_then(parse_time),
            upn_reference: r.get(23)?,
            replaces: r.get(24)?,
            retry_wait_ms: r.get(25)?,
            pod_image_count: r
                .get::<_, Option<i64>>(26)?
                .map(|n| n.clamp(0, u32::MAX as i64) as u32),
            pod_sha256: r.get(28)?,
            pod_manifest: r.get(29)?,
            purged_at: purged.and_then(parse_time),
            id: id.clone(),
        })
    };
    Ok(build())
}

impl Store {
    fn query_captures(&self, filter: &str, args: impl rusqlite::Params) -> Result<Vec<Capture>> {
        query(self.conn(), filter, args)
    }

    pub fn capture(&self, id: &str) -> Result<Option<Capture>> {
        Ok(self
            .query_captures("WHERE id = ?1", [id])?
            .into_iter()
            .next())
    }

    /// The consignment's POD that is not replaced or discarded.
    pub fn live_pod(&self, barcode: &str) -> Result<Option<Capture>> {
        live_pod_in(self.conn(), barcode)
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

    /// Records a capture in one transaction (replacing an unsent POD if asked). The initial
    /// state is decided inside it, from the consignment's POD as this transaction reads it: a
    /// POD marked sent just before cannot leave a new photo waiting for good.
    ///
    /// The id may come from the app (a retry after a timeout or a process death): the row
    /// decides, inside this transaction. On a primary-key conflict the existing capture is
    /// compared: the same capture is returned as [`Inserted::Existing`] and nothing changes;
    /// anything else is [`Error::CaptureIdConflict`]. `publish` (the original file put in
    /// place) runs only for a new row, after its insert and before the commit.
    pub fn insert_capture(
        &mut self,
        c: &NewCapture,
        now: DateTime<Utc>,
        publish: impl FnOnce() -> Result<()>,
    ) -> Result<Inserted> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if c.replaces.as_deref() == Some(c.id.as_str()) {
            // A retry of the live POD itself: never replace a capture by itself.
            return existing_or_conflict(&tx, c);
        }
        if let Some(old) = &c.replaces {
            let applied = match capture_in(&tx, old)? {
                Some(pod) => match transition(pod.status(), &Event::Replace, now) {
                    Ok(t) => apply(&tx, old, &t)?,
                    Err(Refusal::InFlight) => return Err(Error::InFlight { id: old.clone() }),
                    Err(Refusal::NotNow { .. }) => false,
                },
                None => false,
            };
            if !applied {
                return Err(Error::invalid(
                    "signature",
                    "the earlier signature started sending meanwhile; it can no longer be replaced",
                ));
            }
        }
        let pod = match c.kind {
            CaptureKind::Pod => None,
            _ => live_pod_in(&tx, &c.barcode)?.map(|p| p.state),
        };
        let state = initial_state(c.kind, pod);
        Store::in_tx();
        let seq: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM captures")?
            .query_row([], |r| r.get(0))?;
        let fix = c.fix.as_ref();
        let inserted = tx
            .prepare_cached(&format!(
                "INSERT INTO captures ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                 ?11, ?12, ?13, ?14, ?15, NULL, NULL, NULL, ?16, 0, NULL, NULL, NULL, NULL, ?17,
                 NULL, NULL, ?18)"
            ))?
            .execute(params![
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
                state.code(),
                c.replaces,
                fix.map(|f| f.ahead_ms).unwrap_or(0),
            ]);
        match inserted {
            Ok(_) => {}
            // Dropping `tx` rolls back whatever this transaction did (a replace included).
            Err(e) if is_primary_key_conflict(&e) => return existing_or_conflict(&tx, c),
            Err(e) => return Err(e.into()),
        }
        publish()?;
        tx.commit()?;
        Ok(Inserted::New)
    }

    /// Applies the state machine's answer to `event` for capture `id`, compare-and-set, in one
    /// transaction.
    pub fn apply_event(
        &mut self,
        id: &str,
        event: &Event<'_>,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let outcome = step(&tx, id, event, now)?;
        tx.commit()?;
        Ok(outcome)
    }

    /// After a crash or a cancelled flush, nothing is really in flight: queue it again. The
    /// idempotency key makes the repeat safe if the first request did reach UPN.
    pub fn requeue_in_flight(&mut self, now: DateTime<Utc>) -> Result<u32> {
        let mut n = 0;
        for c in self.query_captures("WHERE state = 'sending'", [])? {
            if matches!(
                self.apply_event(&c.id, &Event::Recover, now)?,
                Outcome::Applied(_)
            ) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The flush takes a queued capture (`queued → sending`, counting the attempt) before it
    /// reads or renders anything of it. `None`: it was replaced, discarded or claimed meanwhile.
    pub fn claim(&mut self, id: &str, now: DateTime<Utc>) -> Result<Option<Capture>> {
        Ok(match self.apply_event(id, &Event::Claim, now)? {
            Outcome::Applied(c) => Some(*c),
            _ => None,
        })
    }

    /// Queued items whose time has come, in sending order (per consignment its POD before its
    /// photos), as the domain decides from their schedules, the outbox's pauses and the data
    /// saver (`metered`: the network the app reported).
    pub fn due_captures(&self, now: DateTime<Utc>, metered: bool) -> Result<Vec<Capture>> {
        let queued = self.query_captures("WHERE state = 'queued' ORDER BY seq", [])?;
        let pauses = self.outbox_pauses()?;
        let saver = self.saver(now, metered)?;
        let items: Vec<QueuedItem<'_>> = queued.iter().map(Capture::queued_item).collect();
        let order = due_now(&items, &pauses, &saver, now);
        Ok(order.into_iter().map(|i| queued[i].clone()).collect())
    }

    /// When the next queued item becomes due, if any waits (on a backoff, a pause, or a
    /// data-saver budget's next day).
    pub fn next_due_at(&self, now: DateTime<Utc>, metered: bool) -> Result<Option<DateTime<Utc>>> {
        let queued = self.query_captures("WHERE state = 'queued'", [])?;
        let pauses = self.outbox_pauses()?;
        let saver = self.saver(now, metered)?;
        let items: Vec<QueuedItem<'_>> = queued.iter().map(Capture::queued_item).collect();
        Ok(next_wake(&items, &pauses, &saver, now))
    }

    /// The queued photos the data saver holds now, by capture id: each queued item in sending
    /// order, the budget spent by those ahead (as a flush would take them).
    pub fn data_saver_holds(
        &self,
        now: DateTime<Utc>,
        metered: bool,
    ) -> Result<HashMap<String, Hold>> {
        // Nothing is held on an unmetered network: no read at all (every capture asks).
        if !metered {
            return Ok(HashMap::new());
        }
        let saver = self.saver(now, metered)?;
        if saver.policy == DataSaver::Off {
            return Ok(HashMap::new());
        }
        let queued = self.query_captures("WHERE state = 'queued' ORDER BY seq", [])?;
        let items: Vec<QueuedItem<'_>> = queued.iter().map(Capture::queued_item).collect();
        let order = sending_order(&items);
        let holds = saver.holds(order.iter().map(|&i| (items[i].kind, items[i].bytes)));
        Ok(order
            .into_iter()
            .zip(holds)
            .filter_map(|(i, hold)| Some((queued[i].id.clone(), hold?)))
            .collect())
    }

    /// What the data saver decides with: the policy, the network, today's metered bytes.
    pub fn saver(&self, now: DateTime<Utc>, metered: bool) -> Result<Saver> {
        Ok(Saver {
            policy: self.data_saver()?,
            metered,
            spent_today: MeteredUsage::today(self.metered_usage()?, now),
            now,
        })
    }

    /// The driver's data-saver policy (off unless set). A stored value that does not read back
    /// as a valid policy (a damaged row) is off, with a warning: it never stops the outbox.
    pub fn data_saver(&self) -> Result<DataSaver> {
        let Some(json) = self.sync_state(super::keys::DATA_SAVER)? else {
            return Ok(DataSaver::Off);
        };
        match serde_json::from_str::<DataSaver>(&json).map(DataSaver::validate) {
            Ok(Ok(policy)) => Ok(policy),
            _ => {
                tracing::warn!("the stored data-saver policy is unreadable; treated as off");
                Ok(DataSaver::Off)
            }
        }
    }

    /// Records a (validated) policy.
    pub fn set_data_saver(&mut self, policy: DataSaver) -> Result<()> {
        let json = serde_json::to_string(&policy).map_err(|e| Error::Storage {
            reason: format!("could not record the data-saver policy: {e}"),
            disk_full: false,
        })?;
        super::set_sync_state(self.conn(), super::keys::DATA_SAVER, &json)
    }

    /// Photo bytes UPN acknowledged on metered networks, on the day last counted.
    pub fn metered_usage(&self) -> Result<Option<MeteredUsage>> {
        Ok(self
            .sync_state(super::keys::DATA_SAVER_METERED_USAGE)?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Records the rendition of a claimed capture (only while it is being sent), unless one is
    /// recorded already (`sync::render::RenderClaims::publish`: the first maker's wins).
    pub fn set_upload_rendition(&mut self, id: &str, upload: &BlobRef) -> Result<bool> {
        self.record_rendition(id, upload, "state = 'sending' AND upload_file IS NULL")
    }

    /// Records a rendition made in the background, only on an unsent photo that has none yet
    /// (compare-and-set: a photo discarded or rendered meanwhile is left alone; one the flush
    /// claimed meanwhile takes it, and the flush then uploads this file).
    pub fn set_background_rendition(&mut self, id: &str, upload: &BlobRef) -> Result<bool> {
        self.record_rendition(
            id,
            upload,
            "state IN ('waiting', 'queued', 'sending') AND upload_file IS NULL",
        )
    }

    fn record_rendition(&mut self, id: &str, upload: &BlobRef, guard: &str) -> Result<bool> {
        Ok(self.conn().execute(
            &format!(
                "UPDATE captures SET upload_file = ?2, upload_sha256 = ?3, upload_bytes = ?4
                 WHERE id = ?1 AND {guard}"
            ),
            params![id, upload.name, upload.sha256, upload.bytes as i64],
        )? == 1)
    }

    /// Unsent photos (waiting or queued) without an upload rendition, oldest first: the
    /// background renderer's work, at open and after each capture.
    /// The ids of unsent photos without an upload rendition, newest first.
    pub fn unrendered_photo_ids(&self) -> Result<Vec<String>> {
        self.ids(
            "SELECT id FROM captures
             WHERE state IN ('waiting', 'queued') AND kind != 'pod' AND upload_file IS NULL
             ORDER BY seq DESC",
        )
    }

    /// The ids of queued photos whose upload rendition is made: ready to send at once.
    pub fn rendered_queued_photo_ids(&self) -> Result<HashSet<String>> {
        self.ids(
            "SELECT id FROM captures
             WHERE state = 'queued' AND kind != 'pod' AND upload_file IS NOT NULL",
        )
    }

    fn ids<C: FromIterator<String>>(&self, sql: &str) -> Result<C> {
        let mut statement = self.conn().prepare_cached(sql)?;
        let ids = statement
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<C>>()?;
        Ok(ids)
    }

    /// Freezes a claimed POD's body at its first attempt: `image_count` and the POD hash with
    /// its manifest. Later attempts under the same key reuse them, so they send the same bytes.
    /// Returns what is frozen (possibly by an earlier attempt, possibly without a hash).
    pub fn freeze_pod_body(
        &mut self,
        id: &str,
        image_count: u32,
        hash: Option<(&str, &str)>,
    ) -> Result<Option<(u32, Option<String>)>> {
        self.conn().execute(
            "UPDATE captures SET pod_image_count = ?2, pod_sha256 = ?3, pod_manifest = ?4
             WHERE id = ?1 AND state = 'sending' AND pod_image_count IS NULL",
            params![id, image_count as i64, hash.map(|h| h.0), hash.map(|h| h.1)],
        )?;
        Ok(self
            .capture(id)?
            .and_then(|c| c.pod_image_count.map(|n| (n, c.pod_sha256))))
    }

    /// UPN acknowledged the capture. Applies only to a capture being sent; for a POD, its
    /// waiting photos are released in the same transaction. `metered_bytes`: a photo's bytes
    /// acknowledged over a metered network, counted for the data saver in the same transaction.
    /// `None` when it did not apply; otherwise the ids of the released photos.
    pub fn mark_sent(
        &mut self,
        id: &str,
        at: DateTime<Utc>,
        upn_reference: &str,
        metered_bytes: Option<u64>,
    ) -> Result<Option<Vec<String>>> {
        let usage = self.metered_usage()?;
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Outcome::Applied(capture) = step(&tx, id, &Event::Acknowledged, at)? else {
            return Ok(None);
        };
        Store::in_tx();
        tx.execute(
            "UPDATE captures SET sent_at = ?2, upn_reference = ?3 WHERE id = ?1",
            params![id, format_time(at), upn_reference],
        )?;
        if let Some(bytes) = metered_bytes.filter(|_| capture.kind.is_photo()) {
            let usage = MeteredUsage::add(usage, at, bytes);
            let json = serde_json::to_string(&usage).map_err(|e| Error::Storage {
                reason: format!("could not count metered photo bytes: {e}"),
                disk_full: false,
            })?;
            super::set_sync_state(&tx, super::keys::DATA_SAVER_METERED_USAGE, &json)?;
        }
        let mut released = Vec::new();
        if capture.kind == CaptureKind::Pod {
            let waiting = query(
                &tx,
                "WHERE barcode = ?1 AND state = 'waiting' ORDER BY seq",
                [&capture.barcode],
            )?;
            for photo in waiting {
                if matches!(
                    step(&tx, &photo.id, &Event::PodSent, at)?,
                    Outcome::Applied(_)
                ) {
                    released.push(photo.id);
                }
                Store::in_tx();
            }
        }
        tx.commit()?;
        Ok(Some(released))
    }

    /// An explicit retry of an item that needs attention (or a nudge of a queued one, or the
    /// release of a photo still waiting although its POD was sent): due now.
    pub fn retry_capture(&mut self, id: &str, now: DateTime<Utc>) -> Result<Capture> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let outcome = retry_in(&tx, id, now)?;
        tx.commit()?;
        applied_or_refused(
            id,
            outcome,
            "only items that need attention or are queued can be retried",
        )
    }

    /// Retries every item that needs attention (and releases photos whose POD was sent);
    /// returns their ids.
    pub fn retry_all(&mut self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let candidates = query(
            &tx,
            "WHERE state IN ('needs_attention', 'waiting') ORDER BY seq",
            [],
        )?;
        let mut retried = Vec::new();
        for c in candidates {
            if matches!(retry_in(&tx, &c.id, now)?, Outcome::Applied(_)) {
                retried.push(c.id);
            }
            Store::in_tx();
        }
        tx.commit()?;
        Ok(retried)
    }

    /// Gives up on an item that was not sent. Its files can then be removed.
    pub fn discard_capture(&mut self, id: &str, now: DateTime<Utc>) -> Result<Capture> {
        let outcome = self.apply_event(id, &Event::Discard, now)?;
        applied_or_refused(id, outcome, "only unsent items can be discarded")
    }

    /// The account refusals holding the outbox back.
    pub fn outbox_pauses(&self) -> Result<Pauses> {
        let read = |key: &str| -> Result<Option<Pause>> {
            Ok(self
                .sync_state(key)?
                .and_then(|v| serde_json::from_str(&v).ok()))
        };
        Ok(Pauses {
            outbox: read(pause_key(PauseScope::Outbox))?,
            images: read(pause_key(PauseScope::Images))?,
        })
    }

    /// Records (or, with `None`, lifts) the pause of `scope`.
    pub fn set_outbox_pause(&mut self, scope: PauseScope, pause: Option<&Pause>) -> Result<()> {
        let key = pause_key(scope);
        match pause {
            Some(p) => {
                let value = serde_json::to_string(p).map_err(|e| Error::Storage {
                    reason: format!("could not record the outbox pause: {e}"),
                    disk_full: false,
                })?;
                super::set_sync_state(self.conn(), key, &value)
            }
            None => {
                self.conn()
                    .execute("DELETE FROM sync_state WHERE key = ?1", [key])?;
                Ok(())
            }
        }
    }

    /// Every file name a capture row refers to (for the orphan sweep).
    /// Records, once, that this database has begun taking captures: before the first capture
    /// file is written, so a crash between that file and its row leaves a database that knows
    /// its files may be orphans (quarantined at open), not one that looks lost beside them
    /// (`Error::NeedsRecovery`, which would keep the app from opening until a person acts).
    pub fn note_captures_begun(&mut self) -> Result<()> {
        if !self.captures_begun()? {
            super::set_sync_state(self.conn(), super::keys::CAPTURES_BEGUN, "1")?;
        }
        Ok(())
    }

    pub fn captures_begun(&self) -> Result<bool> {
        Ok(self.sync_state(super::keys::CAPTURES_BEGUN)?.is_some())
    }

    pub fn referenced_blobs(&self) -> Result<HashSet<String>> {
        let mut stmt = self
            .conn()
            // A purged capture's files are gone on purpose; one left by a crash between the
            // purge's commit and the removal is an orphan for the sweep.
            .prepare("SELECT original_file, upload_file FROM captures WHERE purged_at IS NULL")?;
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
        stats.pauses = self.outbox_pauses()?;
        Ok(stats)
    }
}

/// What [`Store::insert_capture`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    New,
    /// The id was already this very capture (an app's retry): nothing changed.
    Existing(Box<Capture>),
}

/// The first thing that tells a capture recorded under `new.id` apart from `new` (`None`: it
/// is the same capture): consignment, kind and bytes; for a POD also the name and time.
pub fn differs(new: &NewCapture, old: &Capture) -> Option<&'static str> {
    if old.barcode != new.barcode {
        Some("the consignment")
    } else if old.kind != new.kind {
        Some("the kind")
    } else if old.original.sha256 != new.original.sha256 || old.original.bytes != new.original.bytes
    {
        Some("the image bytes")
    } else if new.kind == CaptureKind::Pod && old.signed_by != new.signed_by {
        Some("the printed name")
    } else if new.kind == CaptureKind::Pod
        // Stored as epoch milliseconds.
        && old.captured_at.timestamp_millis() != new.captured_at.timestamp_millis()
    {
        Some("the signing time")
    } else {
        None
    }
}

fn is_primary_key_conflict(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Inside the inserting transaction: the capture already under `c.id`, if it is `c`.
fn existing_or_conflict(conn: &Connection, c: &NewCapture) -> Result<Inserted> {
    let existing = capture_in(conn, &c.id)?.ok_or_else(|| Error::Storage {
        reason: format!("capture {} conflicts with a row that cannot be read", c.id),
        disk_full: false,
    })?;
    match differs(c, &existing) {
        None => Ok(Inserted::Existing(Box::new(existing))),
        Some(what) => Err(Error::CaptureIdConflict {
            id: c.id.clone(),
            differs: what,
        }),
    }
}

/// What an event did to one capture.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Applied; the capture as it is now.
    Applied(Box<Capture>),
    /// The state machine refused it for the capture's current state.
    Refused(Refusal, ItemState),
    /// Allowed, but the row moved between the read and the write: skipped, never forced.
    Moved,
    /// No such capture.
    Missing,
}

fn pause_key(scope: PauseScope) -> &'static str {
    match scope {
        PauseScope::Outbox => super::keys::OUTBOX_PAUSE,
        PauseScope::Images => super::keys::OUTBOX_IMAGE_PAUSE,
    }
}

fn query(conn: &Connection, filter: &str, args: impl rusqlite::Params) -> Result<Vec<Capture>> {
    // Cached: the capture path runs these on every call, and parsing them cost more than
    // running them.
    let mut stmt = conn.prepare_cached(&format!("SELECT {SELECTED} FROM captures {filter}"))?;
    let rows = stmt.query_map(args, capture_from_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

fn capture_in(conn: &Connection, id: &str) -> Result<Option<Capture>> {
    Ok(query(conn, "WHERE id = ?1", [id])?.into_iter().next())
}

fn live_pod_in(conn: &Connection, barcode: &str) -> Result<Option<Capture>> {
    Ok(query(
        conn,
        "WHERE barcode = ?1 AND kind = 'pod' AND state NOT IN ('replaced', 'discarded')",
        [barcode],
    )?
    .into_iter()
    .next())
}

/// Applies `t` to capture `id` if the row is still where `t` starts. True when it applied.
fn apply(conn: &Connection, id: &str, t: &Transition) -> Result<bool> {
    let (set_error, error, code) = match &t.last_error {
        Some(Some(e)) => (true, Some(e.text.clone()), Some(e.reason.code())),
        Some(None) => (true, None, None),
        None => (false, None, None),
    };
    let n = conn.execute(
        "UPDATE captures SET state = ?4, attempts = ?5, next_attempt_at = ?6, retry_wait_ms = ?7,
            last_error = CASE WHEN ?8 THEN ?9 ELSE last_error END,
            last_error_code = CASE WHEN ?8 THEN ?10 ELSE last_error_code END
         WHERE id = ?1 AND state = ?2 AND attempts = ?3",
        params![
            id,
            t.from.code(),
            t.from_attempts as i64,
            t.to.code(),
            t.attempts as i64,
            t.schedule.next_attempt_at.map(format_time),
            t.schedule.wait_ms,
            set_error,
            error,
            code,
        ],
    )?;
    Ok(n == 1)
}

/// Reads the capture, asks the state machine, applies its answer compare-and-set.
fn step(conn: &Connection, id: &str, event: &Event<'_>, now: DateTime<Utc>) -> Result<Outcome> {
    let Some(capture) = capture_in(conn, id)? else {
        return Ok(Outcome::Missing);
    };
    let t = match transition(capture.status(), event, now) {
        Ok(t) => t,
        Err(refusal) => return Ok(Outcome::Refused(refusal, capture.state)),
    };
    if !apply(conn, id, &t)? {
        return Ok(Outcome::Moved);
    }
    Ok(match capture_in(conn, id)? {
        Some(c) => Outcome::Applied(Box::new(c)),
        None => Outcome::Moved,
    })
}

fn retry_in(conn: &Connection, id: &str, now: DateTime<Utc>) -> Result<Outcome> {
    let Some(capture) = capture_in(conn, id)? else {
        return Ok(Outcome::Missing);
    };
    let pod_sent = live_pod_in(conn, &capture.barcode)?.is_some_and(|p| p.state == ItemState::Sent);
    step(conn, id, &Event::Retry { pod_sent }, now)
}

/// The capture an explicit call changed, or the typed refusal that says why not.
fn applied_or_refused(id: &str, outcome: Outcome, allowed: &str) -> Result<Capture> {
    match outcome {
        Outcome::Applied(c) => Ok(*c),
        Outcome::Refused(Refusal::InFlight, _) | Outcome::Moved => {
            Err(Error::InFlight { id: id.to_string() })
        }
        Outcome::Refused(Refusal::NotNow { state }, _) => Err(Error::invalid(
            "capture id",
            format!("{id} is {}; {allowed}", state.code()),
        )),
        Outcome::Missing => Err(Error::invalid(
            "capture id",
            format!("no capture {id} on this device; see `outbox` for the ids"),
        )),
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
            reason: c.reason,
            captured_at: c.captured_at,
            bytes: c.bytes_to_send(),
            sent_at: c.sent_at,
            upn_reference: c.upn_reference.clone(),
        }
    }
}
