//! Tracking sync: take the next batch from UPN's consuming feed, commit the raw response to the
//! inbox at once, then parse and apply it; repeat while UPN says more remain (bounded).
//!
//! UPN hands each batch out once, so nothing may stand between reading a response and
//! committing it: no parsing, no validation. A response that cannot be parsed is kept in the
//! inbox, marked failed with a reason that describes it without echoing it, and later batches
//! carry on. Responses stored by a run that died before processing them are processed first,
//! at start-up ([`process_pending`]) and at the start of every pull.
//!
//! Because a consumed body exists nowhere else:
//! - no batch is asked for while the data folder lacks room for the largest body ([`space_needed`]);
//! - a failed inbox commit (disk full, another writer holding the database) is retried with
//!   backoff while the body is held; if it keeps failing the body goes to a spill file
//!   (`tracking-spill/`), moved into the inbox at the next open or pull;
//! - the GET waits on read progress, not a total deadline, and asks for as many events as the
//!   link carries in about 20 s ([`crate::domain::tracking::batch_size`], kept in `sync_state`);
//! - events are parsed one by one: a malformed one is kept aside with its reason
//!   (`tracking_malformed`) and the rest of its batch applies. Failed batches and kept-aside
//!   events carry the parser version; another version looks at them again at open.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::digest::sha256_hex;
use crate::domain::tracking::batch_size::{self, Take};
use crate::domain::tracking::{
    event_problem, to_millis, CaptureType, Location, Source, TrackingEvent, PARSER_VERSION,
};
use crate::domain::Stage;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::store::tracking::{AppliedBatch, BatchInfo, FailedBatch, MalformedEvent};
use crate::store::Store;
use crate::sync::import::lock;
use crate::upn::http::{parse_json, MAX_RESPONSE_BYTES};
use crate::upn::wire::{TrackingBatch, WireTrackingEvent};
use crate::upn::{RawTrackingResponse, UpnApi, UpnError};

pub(crate) mod spill;

pub use spill::SPILL_DIR_NAME;

/// Most batches taken in one pull; what is left waits for the next cycle.
pub const MAX_BATCHES_PER_PULL: u32 = 50;
/// The failpoint between the inbox commit and processing (crash tests).
pub const FAILPOINT_AFTER_INBOX_COMMIT: &str = "tracking.after_inbox_commit";
/// The failpoint before each attempt at the inbox commit (race tests hold the database there).
pub const FAILPOINT_BEFORE_INBOX_COMMIT: &str = "tracking.before_inbox_commit";
/// The failpoint fault (`UPN_FAULT`) that makes the data folder look full to the space check.
pub const FAULT_LOW_SPACE: &str = "tracking.low_space";

/// Attempts at committing a consumed body before it goes to a spill file.
const COMMIT_ATTEMPTS: u32 = 4;
/// Wait after the first failed attempt; doubled after each.
const COMMIT_FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How long one attempt waits for another writer to finish.
const COMMIT_BUSY_WAIT: Duration = Duration::from_secs(1);

/// Free space a consuming GET needs in the data folder: its body may be as large as the
/// response cap, and is written once to the database (its write-ahead log) and, if that commit
/// fails, once more to a spill file; plus room for the processing commit.
pub fn space_needed() -> u64 {
    (MAX_RESPONSE_BYTES as u64).saturating_mul(2) + 8 * 1024 * 1024
}

/// What one pull (or one start-up resume) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrackingReport {
    /// Responses taken from UPN in this pull (including empty ones).
    pub batches: u32,
    /// Responses stored by an earlier run and processed now.
    pub resumed: u32,
    /// Events in the processed batches.
    pub events: u32,
    /// Events new on this device.
    pub applied: u32,
    /// Events already on the device (same id), ignored.
    pub duplicates: u32,
    /// New events whose consignment is not imported yet (applied when it arrives).
    pub waiting_for_consignment: u32,
    /// Responses that could not be parsed (kept, marked failed).
    pub failed_batches: u32,
    /// Events that could not be used (kept aside with the reason); the rest of their batch applied.
    pub malformed_events: u32,
    /// Spill files (responses the inbox could not take earlier) moved into the inbox now.
    pub spills_applied: u32,
    /// Events UPN still held when the pull stopped (0 unless the per-pull bound was reached).
    pub remaining: u64,
    /// Events asked for per batch at the end of the pull (adapted to the link).
    pub batch_size: u32,
    /// Consignments whose status (or a pallet's) changed.
    pub changed: Vec<String>,
}

impl TrackingReport {
    fn add(&mut self, applied: AppliedBatch) {
        self.events += applied.events;
        self.applied += applied.applied;
        self.duplicates += applied.duplicates;
        self.waiting_for_consignment += applied.waiting_for_consignment;
        self.malformed_events += applied.malformed;
        // A batch names each consignment once; only those new to this pull are added (a set,
        // not a scan of the list per barcode: a day's backlog changes thousands).
        let known: std::collections::BTreeSet<&str> =
            self.changed.iter().map(String::as_str).collect();
        let new: Vec<String> = (applied.changed.into_iter())
            .filter(|b| !known.contains(b.as_str()))
            .collect();
        self.changed.extend(new);
    }
}

/// Whether tracking is up to date, and what to do if not.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrackingHealth {
    pub online: bool,
    /// When a tracking pull last succeeded (device clock).
    pub last_success: Option<DateTime<Utc>>,
    /// Online and no successful pull for `intervals.tracking_stale_after` (15 minutes).
    pub stale: bool,
    /// Why the last pull failed, as people read it (e.g. the tracking action is not enabled).
    pub last_error: Option<String>,
    /// Responses UPN sent that could not be read: kept on the device for support.
    pub failed_batches: Vec<FailedBatch>,
    /// Responses stored but not processed yet (normally 0).
    pub pending_batches: u32,
    /// Events UPN sent that could not be used, kept aside (see `Driver::malformed_events`).
    pub malformed_events: u32,
    /// Responses waiting in spill files because storing them failed (normally 0).
    pub spilled_batches: u32,
}

impl TrackingHealth {
    /// What a person should do, when something needs doing.
    pub fn advice(&self) -> Option<String> {
        let tracking_disabled = UpnError::TrackingActionDisabled.to_string();
        if self.last_error.as_deref() == Some(tracking_disabled.as_str()) {
            return Some(
                "UPN has not enabled the tracking action for this depot: ask UPN IT to enable the tracking action for the depot".into(),
            );
        }
        if self.spilled_batches > 0 {
            return Some(format!(
                "{} tracking response(s) could not be stored in the database and wait in files on the device: free some space; they are applied at the next sync",
                self.spilled_batches
            ));
        }
        if self.stale {
            return Some(
                "tracking has not synced for 15+ minutes while online: check the connection; if it persists, ask your admin to verify UPN has enabled the tracking action for the depot".into(),
            );
        }
        if !self.failed_batches.is_empty() || self.malformed_events > 0 {
            return Some(format!(
                "{} tracking response(s) and {} tracking event(s) from UPN could not be read; they are kept on the device: include them in a support bundle",
                self.failed_batches.len(),
                self.malformed_events
            ));
        }
        None
    }
}

/// How processing one stored response ended.
enum Outcome {
    /// Applied; `events` counts every event of the response, malformed ones included.
    Applied {
        remaining: u64,
        events: u32,
    },
    Failed,
}

/// One pull: stored leftovers first, then batches from UPN until none remain (at most
/// [`MAX_BATCHES_PER_PULL`]). UPN refusals and network errors end the pull as `Error::Upn`;
/// everything taken before that is already stored and applied. No batch is asked for while
/// the data folder lacks [`space_needed`]; a consumed body the store cannot take is kept in a
/// spill file, and the pull ends with the storage error.
pub async fn pull_tracking(
    api: &impl UpnApi,
    store: &Mutex<Store>,
    clock: &dyn Clock,
) -> Result<TrackingReport> {
    note_attempt(store, clock.now())?;
    let mut report = super::blocking(|| process_pending(store, clock))?;
    let data_dir = data_dir(store)?;
    report.batch_size = batch_size_of(store)?;
    for _ in 0..MAX_BATCHES_PER_PULL {
        let remaining = match take_one(api, store, &data_dir, clock, &mut report).await {
            Ok(Some(remaining)) => remaining,
            // UPN sent something unreadable: stop here, the next cycle carries on.
            Ok(None) => break,
            Err(e) => {
                // Best effort, briefly: the store may be what failed.
                let _ = lock(store).and_then(|mut s| {
                    s.with_busy_wait(COMMIT_BUSY_WAIT, |s| {
                        s.note_tracking_failure(&e.to_string())
                    })
                });
                return Err(e);
            }
        };
        report.remaining = remaining;
        if remaining == 0 {
            break;
        }
    }
    if report.failed_batches > 0 {
        note_failure(
            store,
            &format!(
                "{} tracking response(s) from UPN could not be read; they are kept on the device for support",
                report.failed_batches
            ),
        )?;
    } else {
        note_success(store, clock.now())?;
    }
    tracing::info!(
        batches = report.batches,
        resumed = report.resumed,
        applied = report.applied,
        duplicates = report.duplicates,
        failed = report.failed_batches,
        malformed = report.malformed_events,
        batch_size = report.batch_size,
        "tracking pulled"
    );
    Ok(report)
}

/// Takes, stores and applies one batch. `Some(remaining)` when it applied, `None` when the
/// response was unreadable (kept as failed).
async fn take_one(
    api: &impl UpnApi,
    store: &Mutex<Store>,
    data_dir: &Path,
    clock: &dyn Clock,
    report: &mut TrackingReport,
) -> Result<Option<u64>> {
    ensure_room(data_dir)?;
    let asked = report.batch_size;
    let started = Instant::now();
    let raw = match api.take_tracking_batch(asked).await {
        Ok(raw) => raw,
        Err(e) => {
            if e == UpnError::Timeout {
                report.batch_size = learn(store, asked, Take::TimedOut)?;
            }
            return Err(e.into());
        }
    };
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    // The response is committed before anything looks inside it.
    let inbox_id = commit_or_spill(store, data_dir, &raw, clock).await?;
    failpoint::hit(FAILPOINT_AFTER_INBOX_COMMIT);
    report.batches += 1;
    match super::blocking(|| process(store, inbox_id, &raw.body, clock, report))? {
        Outcome::Applied { remaining, events } => {
            let take = Take::Received {
                asked,
                events,
                bytes: raw.body.len() as u64,
                elapsed_ms,
            };
            report.batch_size = learn(store, asked, take)?;
            Ok(Some(remaining))
        }
        Outcome::Failed => Ok(None),
    }
}

/// Commits a consumed body to the inbox, retrying with backoff while it is held in memory
/// (another writer holding the database, a momentarily full disk). If every attempt fails the
/// body goes to a spill file, applied at the next open or pull, and the storage error is
/// returned: UPN will not hand the batch out again, so it must never be dropped.
async fn commit_or_spill(
    store: &Mutex<Store>,
    data_dir: &Path,
    raw: &RawTrackingResponse,
    clock: &dyn Clock,
) -> Result<i64> {
    // A store told to wait only briefly for writers retries briefly too (no `?`: the body is
    // held and must reach the inbox or a spill file whatever happens).
    let mut backoff = lock(store).map_or(COMMIT_FIRST_BACKOFF, |s| {
        COMMIT_FIRST_BACKOFF.min(s.busy_wait())
    });
    let mut attempt = 1;
    let failure = loop {
        failpoint::hit(FAILPOINT_BEFORE_INBOX_COMMIT);
        let stored = super::blocking(|| {
            lock(store).and_then(|mut s| {
                s.try_store_tracking_response(
                    &raw.body,
                    raw.server_time,
                    clock.now(),
                    COMMIT_BUSY_WAIT,
                )
            })
        });
        match stored {
            Ok(id) => return Ok(id),
            Err(e) if attempt >= COMMIT_ATTEMPTS => break e,
            Err(e) => {
                tracing::warn!(attempt, error = %e, "a tracking response could not be stored yet; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
        attempt += 1;
    };
    let disk_full = is_disk_full(&failure);
    if let Err(spill_error) = spill::write(data_dir, &raw.body, clock.now()) {
        // The last copy: held in memory and committed first thing at the next pull or sync,
        // before anything else is asked for (see `store_held`).
        tracing::error!(error = %spill_error, store_error = %failure, bytes = raw.body.len(),
            "a consumed tracking response could be neither stored nor spilled; holding it in memory");
        store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .held_tracking
            .push(raw.clone());
        return Err(Error::Storage {
            reason: format!(
                "a tracking response could be neither stored nor kept in a file ({spill_error}); it is held in memory and stored at the next sync: free some space on the device and keep the app open until then"
            ),
            disk_full: true,
        });
    }
    tracing::warn!(error = %failure, "a tracking response was kept in a spill file");
    Err(Error::Storage {
        reason: format!(
            "a tracking response could not be stored ({failure}); it is kept in {SPILL_DIR_NAME}/ in the data folder and applied at the next sync"
        ),
        disk_full,
    })
}

fn is_disk_full(e: &Error) -> bool {
    match e {
        Error::Storage { disk_full, .. } => *disk_full,
        Error::Io { source, .. } => crate::error::is_disk_full(source),
        _ => false,
    }
}

/// Refuses a consuming GET when the data folder could not hold its largest possible body.
fn ensure_room(data_dir: &Path) -> Result<()> {
    let needed = space_needed();
    let free = if failpoint::io_fault(FAULT_LOW_SPACE).is_some() {
        Some(0)
    } else {
        spill::free_bytes(data_dir)
    };
    match free {
        Some(free) if free < needed => Err(Error::Storage {
            reason: format!(
                "only {} MB are free in the data folder and a tracking pull needs {} MB (UPN hands each batch out once, so none is asked for until it can be stored): free some space on the device",
                free / (1024 * 1024),
                needed.div_ceil(1024 * 1024)
            ),
            disk_full: true,
        }),
        _ => Ok(()),
    }
}

/// The next batch size after `take`, persisted with the measured throughput.
fn learn(store: &Mutex<Store>, asked: u32, take: Take) -> Result<u32> {
    let next = batch_size::next(asked, take);
    lock(store)?.set_tracking_batch_size(next, batch_size::throughput(take))?;
    Ok(next)
}

fn batch_size_of(store: &Mutex<Store>) -> Result<u32> {
    Ok(lock(store)?
        .tracking_batch_size()?
        .map_or(batch_size::START, |n| {
            n.clamp(batch_size::MIN, batch_size::MAX)
        }))
}

/// The data folder: the one the database lives in.
fn data_dir(store: &Mutex<Store>) -> Result<PathBuf> {
    let path = lock(store)?.path().to_path_buf();
    Ok(match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    })
}

/// Commits the responses held in memory (neither the inbox nor a spill file could take them),
/// oldest first. While one is still held, nothing new is asked for: the error ends the pull.
fn store_held(store: &Mutex<Store>, clock: &dyn Clock) -> Result<()> {
    let mut s = lock(store)?;
    let mut held = std::mem::take(&mut s.held_tracking).into_iter();
    while let Some(raw) = held.next() {
        match s.try_store_tracking_response(
            &raw.body,
            raw.server_time,
            clock.now(),
            COMMIT_BUSY_WAIT,
        ) {
            Ok(id) => tracing::info!(
                inbox_id = id,
                "a tracking response held in memory is stored"
            ),
            Err(e) => {
                s.held_tracking = std::iter::once(raw).chain(held).collect();
                return Err(e);
            }
        }
    }
    Ok(())
}

/// How many consumed responses wait in spill files in `data_dir`.
pub fn spilled_count(data_dir: &Path) -> u32 {
    spill::list(data_dir).map_or(0, |l| u32::try_from(l.len()).unwrap_or(u32::MAX))
}

/// Processes every stored response not processed yet, oldest first (start-up, and the start of
/// each pull). Never calls UPN. First, spill files go into the inbox, and batches a different
/// parser version judged are queued again.
pub fn process_pending(store: &Mutex<Store>, clock: &dyn Clock) -> Result<TrackingReport> {
    store_held(store, clock)?;
    let mut report = TrackingReport {
        spills_applied: spill::apply_all(store, &data_dir(store)?)?,
        ..TrackingReport::default()
    };
    let requeued = lock(store)?.requeue_for_parser(PARSER_VERSION)?;
    if requeued > 0 {
        tracing::info!(
            requeued,
            parser_version = PARSER_VERSION,
            "tracking batches queued again for a new parser"
        );
    }
    let pending = lock(store)?.pending_tracking_batches()?;
    for id in pending {
        let Some(batch) = lock(store)?.tracking_batch(id)? else {
            continue;
        };
        if sha256_hex(&batch.body) != batch.sha256 {
            lock(store)?.fail_tracking_batch(
                id,
                "the stored response does not match its sha256 (damaged on the device)",
                clock.now(),
            )?;
            report.failed_batches += 1;
            continue;
        }
        tracing::info!(
            inbox_id = id,
            "processing a tracking response stored by an earlier run"
        );
        process(store, id, &batch.body, clock, &mut report)?;
        report.resumed += 1;
    }
    Ok(report)
}

/// Parses and applies one stored response (the store lock is released while parsing). The
/// envelope must parse; then each event is parsed and checked on its own, and a bad one is kept
/// aside with its reason while the rest apply.
fn process(
    store: &Mutex<Store>,
    inbox_id: i64,
    body: &[u8],
    clock: &dyn Clock,
    report: &mut TrackingReport,
) -> Result<Outcome> {
    let parsed = match parse_batch(inbox_id, body) {
        Ok(parsed) => parsed,
        Err(e) => {
            let reason = match e {
                UpnError::BadResponse { reason } => reason,
                other => other.to_string(),
            };
            tracing::warn!(inbox_id, %reason, "a tracking response could not be parsed; kept as failed");
            lock(store)?.fail_tracking_batch(inbox_id, &reason, clock.now())?;
            report.failed_batches += 1;
            return Ok(Outcome::Failed);
        }
    };
    if !parsed.info.malformed.is_empty() {
        tracing::warn!(
            inbox_id,
            malformed = parsed.info.malformed.len(),
            "tracking events kept aside as malformed"
        );
    }
    let applied =
        lock(store)?.apply_tracking_batch(inbox_id, &parsed.info, &parsed.events, clock.now())?;
    report.add(applied);
    Ok(Outcome::Applied {
        remaining: parsed.info.remaining,
        events: parsed.total,
    })
}

/// A stored response, read: what the inbox records, the good events, and how many it held.
pub(crate) struct ParsedBatch {
    pub info: BatchInfo,
    pub events: Vec<TrackingEvent>,
    /// Every element of `events` in the body, malformed ones included.
    pub total: u32,
}

/// Reads a response body: the envelope must parse (else the whole batch is refused, as
/// [`parse_json`] words it); each event is then checked on its own, so one bad event is kept
/// aside without taking its batch down. A batch whose every event serde reads (the usual case)
/// is read in one pass, as any client reads it; only one with an event serde refuses is read
/// again event by event ([`parse_each_event`]), so that event alone is kept aside. Both paths
/// read the same event type and make the same checks, so they agree on every batch both read.
pub(crate) fn parse_batch(inbox_id: i64, body: &[u8]) -> Result<ParsedBatch, UpnError> {
    check_depth(body)?;
    // From text, as the event-by-event path reads each event: one reader for both.
    let whole = std::str::from_utf8(body)
        .ok()
        .and_then(|text| serde_json::from_str::<TrackingBatch>(text).ok());
    match whole {
        Some(batch) => Ok(finish(inbox_id, batch, Ok)),
        None => parse_each_event(inbox_id, body),
    }
}

/// [`parse_batch`] one event at a time: the envelope with each event as its own slice of the
/// body (no value tree), then each slice parsed on its own.
fn parse_each_event(inbox_id: i64, body: &[u8]) -> Result<ParsedBatch, UpnError> {
    let batch: TrackingBatch<&serde_json::value::RawValue> = parse_json(body)?;
    Ok(finish(inbox_id, batch, |raw| {
        serde_json::from_str::<WireTrackingEvent>(raw.get()).map_err(|e| describe(&e))
    }))
}

/// A read envelope's events, each read by `read` (or refused with its reason), then checked.
fn finish<E>(
    inbox_id: i64,
    batch: TrackingBatch<E>,
    read: impl FnMut(E) -> Result<WireTrackingEvent, String>,
) -> ParsedBatch {
    let total = u32::try_from(batch.events.len()).unwrap_or(u32::MAX);
    let (events, malformed) = checked_events(inbox_id, batch.events.into_iter().map(read));
    ParsedBatch {
        info: BatchInfo {
            batch_id: batch.batch_id,
            remaining: batch.remaining,
            malformed,
        },
        events,
        total,
    }
}

/// serde_json's recursion limit: its parsers refuse a document nested this deep.
const MAX_DEPTH: usize = 128;

/// Refuses a body nested [`MAX_DEPTH`] levels deep as a whole, as a parse into a value tree
/// does: splitting the events into raw slices skips over values without a depth limit, and a
/// body that deep is not a tracking response.
fn check_depth(body: &[u8]) -> Result<(), UpnError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth >= MAX_DEPTH {
                    return Err(UpnError::BadResponse {
                        reason: format!(
                            "malformed JSON ({} bytes): nested {MAX_DEPTH} levels deep at byte {i}",
                            body.len()
                        ),
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Each event read (or the reason serde refused it), translated and checked by the domain's
/// rules; a refused or failing one is kept aside at its position.
fn checked_events(
    inbox_id: i64,
    read: impl Iterator<Item = Result<WireTrackingEvent, String>>,
) -> (Vec<TrackingEvent>, Vec<MalformedEvent>) {
    let mut events = Vec::with_capacity(read.size_hint().0);
    let mut malformed = Vec::new();
    for (position, wire) in read.enumerate() {
        let checked = wire
            .map(event)
            .and_then(|e| event_problem(&e).map_or(Ok(e), Err));
        match checked {
            Ok(e) => events.push(e),
            Err(reason) => malformed.push(MalformedEvent {
                inbox_id,
                position: u32::try_from(position).unwrap_or(u32::MAX),
                reason,
            }),
        }
    }
    (events, malformed)
}

/// Longest reason kept for a malformed event.
const MAX_REASON_CHARS: usize = 200;

/// serde's message about an event, with every value it quotes taken out (UPN's data may be
/// personal): `invalid type: string "…", expected …` keeps its shape, not the string. Field
/// names serde quotes from our own types (`missing field `at``) stay.
fn describe(e: &serde_json::Error) -> String {
    let text = e.to_string();
    // The position is within the event's own slice: it says nothing the position in the
    // batch does not, and is left out.
    let at = format!(" at line {} column {}", e.line(), e.column());
    let text = text.strip_suffix(&at).unwrap_or(&text);
    let names_field = ["missing field", "unknown field", "duplicate field"]
        .iter()
        .any(|p| text.starts_with(p));
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || (c == '`' && !names_field) => quote = Some(c),
            None => out.push(c),
        }
    }
    let out = out.replace(" ,", ",").trim().to_string();
    let out = if out.is_empty() {
        "unreadable event".to_string()
    } else {
        out
    };
    out.chars().take(MAX_REASON_CHARS).collect()
}

/// The one wire → domain translation of tracking events.
fn event(w: WireTrackingEvent) -> TrackingEvent {
    let id = if w.id.trim().is_empty() {
        // No id from UPN: derive a stable one from the content, so re-processing stays
        // idempotent.
        let key = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            w.barcode,
            w.pallet.as_deref().unwrap_or(""),
            w.capture_type,
            w.stage,
            w.at.to_rfc3339()
        );
        format!("derived:{}", sha256_hex(key.as_bytes()))
    } else {
        w.id
    };
    TrackingEvent {
        id,
        barcode: w.barcode,
        pallet: w.pallet.filter(|p| !p.is_empty()),
        capture_type: CaptureType::from_code(&w.capture_type),
        stage: Stage::from_code(&w.stage),
        at: to_millis(w.at),
        location: w.location.map(|l| Location {
            description: l.description,
            lat: l.lat,
            lon: l.lon,
        }),
        source: Source::Upn,
    }
}

fn note_attempt(store: &Mutex<Store>, now: DateTime<Utc>) -> Result<()> {
    lock(store)?.note_tracking_attempt(now)
}

fn note_success(store: &Mutex<Store>, now: DateTime<Utc>) -> Result<()> {
    lock(store)?.note_tracking_success(now)
}

fn note_failure(store: &Mutex<Store>, message: &str) -> Result<()> {
    lock(store)?.note_tracking_failure(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::keys;
    use crate::upn::wire::{ConsignmentFeed, ImageQuery, ImageReceipt, PodReceipt, PodSubmission};
    use crate::upn::Progress;
    use chrono::TimeZone;
    use std::collections::VecDeque;

    /// A feed that answers from a script of responses, and records each `max` asked for.
    struct Scripted(
        Mutex<VecDeque<std::result::Result<Vec<u8>, UpnError>>>,
        Mutex<Vec<u32>>,
    );

    impl Scripted {
        fn new(items: Vec<std::result::Result<Vec<u8>, UpnError>>) -> Self {
            Self(Mutex::new(items.into()), Mutex::default())
        }
        fn left(&self) -> usize {
            self.0.lock().unwrap().len()
        }
        fn asked(&self) -> Vec<u32> {
            self.1.lock().unwrap().clone()
        }
    }

    /// The scripted fake only answers the tracking feed.
    fn not_scripted() -> UpnError {
        UpnError::Invalid {
            status: 0,
            message: "not scripted in this test".into(),
        }
    }

    impl UpnApi for Scripted {
        async fn fetch_consignments(
            &self,
            _since: Option<&str>,
        ) -> std::result::Result<ConsignmentFeed, UpnError> {
            Err(not_scripted())
        }
        async fn take_tracking_batch(
            &self,
            max: u32,
        ) -> std::result::Result<RawTrackingResponse, UpnError> {
            self.1.lock().unwrap().push(max);
            let next = self
                .0
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Ok(body(&[], 0)));
            next.map(|body| RawTrackingResponse {
                body,
                server_time: None,
            })
        }
        async fn submit_pod(
            &self,
            _: &str,
            _: &str,
            _: &PodSubmission,
        ) -> std::result::Result<PodReceipt, UpnError> {
            Err(not_scripted())
        }
        async fn upload_image(
            &self,
            _: &str,
            _: &str,
            _: &ImageQuery,
            _: Vec<u8>,
            _: Progress,
        ) -> std::result::Result<ImageReceipt, UpnError> {
            Err(not_scripted())
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap()
    }

    fn wire(id: &str, stage: &str) -> WireTrackingEvent {
        WireTrackingEvent {
            id: id.into(),
            barcode: "UPN0420000001".into(),
            pallet: None,
            capture_type: "C".into(),
            stage: stage.into(),
            at: t0(),
            location: None,
        }
    }

    fn body(events: &[WireTrackingEvent], remaining: u64) -> Vec<u8> {
        serde_json::to_vec(&TrackingBatch {
            server_time: t0(),
            batch_id: (!events.is_empty()).then(|| "B1".to_string()),
            events: events.to_vec(),
            remaining,
        })
        .unwrap()
    }

    fn store() -> (tempfile::TempDir, Mutex<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        (dir, Mutex::new(store))
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn tracking_pull_follows_remaining_and_stores_every_response() {
        let (_d, store) = store();
        let clock = ManualClock::new(t0());
        let api = Scripted::new(vec![
            Ok(body(&[wire("E1", "BOOKED")], 1)),
            Ok(body(&[wire("E2", "OUT_FOR_DELIVERY")], 0)),
            Ok(body(&[wire("E3", "ARRIVED")], 0)),
        ]);
        let report = rt().block_on(pull_tracking(&api, &store, &clock)).unwrap();
        assert_eq!(
            (report.batches, report.applied, report.remaining),
            (2, 2, 0)
        );
        assert_eq!(report.waiting_for_consignment, 2);
        assert_eq!(api.left(), 1, "stops once nothing remains");
        let s = store.lock().unwrap();
        assert_eq!(s.tracking_event_count().unwrap(), 2);
        assert!(s.pending_tracking_batches().unwrap().is_empty());
        assert_eq!(
            s.sync_time(keys::TRACKING_LAST_SUCCESS).unwrap(),
            Some(t0())
        );
    }

    #[test]
    fn tracking_malformed_response_is_kept_failed_and_later_batches_apply() {
        let (_d, store) = store();
        let clock = ManualClock::new(t0());
        let secret = b"{\"events\":[{\"id\":\"E1\",\"barcode\":\"SECRET-PERSONAL-DATA\"".to_vec();
        let api = Scripted::new(vec![
            Ok(secret.clone()),
            Ok(body(&[wire("E2", "BOOKED")], 0)),
        ]);
        let report = rt().block_on(pull_tracking(&api, &store, &clock)).unwrap();
        assert_eq!((report.batches, report.failed_batches), (1, 1));
        {
            let s = store.lock().unwrap();
            let failed = s.failed_tracking_batches().unwrap();
            assert_eq!(failed.len(), 1);
            assert!(
                failed[0].error.contains("malformed JSON"),
                "{}",
                failed[0].error
            );
            assert!(
                !failed[0].error.contains("SECRET"),
                "the body leaked: {}",
                failed[0].error
            );
            assert_eq!(
                s.tracking_batch(failed[0].id).unwrap().unwrap().body,
                secret
            );
            assert!(s.sync_state(keys::TRACKING_LAST_SUCCESS).unwrap().is_none());
            assert!(s.sync_state(keys::TRACKING_LAST_ERROR).unwrap().is_some());
        }
        // The next pull carries on with the later batch.
        let report = rt().block_on(pull_tracking(&api, &store, &clock)).unwrap();
        assert_eq!((report.applied, report.failed_batches), (1, 0));
        let s = store.lock().unwrap();
        assert_eq!(s.failed_tracking_batches().unwrap().len(), 1);
        assert!(s.sync_state(keys::TRACKING_LAST_ERROR).unwrap().is_none());
    }

    #[test]
    fn tracking_refusal_propagates_and_is_remembered() {
        let (_d, store) = store();
        let clock = ManualClock::new(t0());
        let api = Scripted::new(vec![Err(UpnError::TrackingActionDisabled)]);
        let err = rt()
            .block_on(pull_tracking(&api, &store, &clock))
            .unwrap_err();
        assert!(
            matches!(err, crate::Error::Upn(UpnError::TrackingActionDisabled)),
            "{err}"
        );
        let s = store.lock().unwrap();
        let last = s.sync_state(keys::TRACKING_LAST_ERROR).unwrap().unwrap();
        assert!(
            last.contains("ask UPN IT to enable the tracking action"),
            "{last}"
        );
        assert_eq!(
            s.sync_time(keys::TRACKING_FIRST_ATTEMPT).unwrap(),
            Some(t0())
        );
    }

    #[test]
    fn tracking_pending_batches_are_processed_without_calling_upn() {
        let (_d, store) = store();
        let clock = ManualClock::new(t0());
        let id = store
            .lock()
            .unwrap()
            .store_tracking_response(
                &body(&[wire("E1", "BOOKED"), wire("E2", "ARRIVED")], 0),
                None,
                t0(),
            )
            .unwrap();
        let report = process_pending(&store, &clock).unwrap();
        assert_eq!((report.resumed, report.applied), (1, 2));
        let s = store.lock().unwrap();
        assert!(s.pending_tracking_batches().unwrap().is_empty());
        assert!(s
            .failed_tracking_batches()
            .unwrap()
            .iter()
            .all(|f| f.id != id));
    }

    #[test]
    fn tracking_wire_events_translate_verbatim() {
        let mut w = wire("", "HELD_AT_HUB");
        w.capture_type = "P".into();
        w.pallet = Some("PAL1".into());
        w.at = t0() + chrono::Duration::microseconds(1234);
        let a = event(w.clone());
        let b = event(w);
        assert!(a.id.starts_with("derived:"));
        assert_eq!(a.id, b.id, "derived ids are stable");
        assert_eq!(a.stage.code(), "HELD_AT_HUB");
        assert_eq!(a.capture_type, CaptureType::Pallet);
        assert_eq!(a.at, t0() + chrono::Duration::milliseconds(1));
    }

    /// A body with raw JSON events, as a hostile or buggy UPN might send them.
    fn raw_body(events: &[serde_json::Value]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "server_time": t0(),
            "batch_id": "B-RAW",
            "events": events,
            "remaining": 0,
        }))
        .unwrap()
    }

    fn good(id: &str) -> serde_json::Value {
        serde_json::to_value(wire(id, "ARRIVED")).unwrap()
    }

    fn with(id: &str, field: &str, value: serde_json::Value) -> serde_json::Value {
        let mut v = good(id);
        match value {
            serde_json::Value::Null => {
                v.as_object_mut().unwrap().remove(field);
            }
            value => {
                v[field] = value;
            }
        }
        v
    }

    #[test]
    fn tracking_a_malformed_event_is_kept_aside_and_the_rest_of_its_batch_applies() {
        let (_d, store) = store();
        let clock = ManualClock::new(t0());
        let events = vec![
            good("E1"),
            with("E2", "stage", serde_json::json!(42)),
            with("E3", "at", serde_json::json!("SECRET-2026-13-45")),
            with("E4", "barcode", serde_json::Value::Null),
            with("E5", "capture_type", serde_json::json!({"SECRET": 1})),
            with("E6", "at", serde_json::json!("+10000-01-01T00:00:00Z")),
            with("E7", "at", serde_json::json!("1900-01-01T00:00:00Z")),
            serde_json::json!("SECRET-NOT-AN-OBJECT"),
            good("E9"),
        ];
        let api = Scripted::new(vec![Ok(raw_body(&events))]);
        let report = rt().block_on(pull_tracking(&api, &store, &clock)).unwrap();
        assert_eq!(
            (
                report.applied,
                report.malformed_events,
                report.failed_batches
            ),
            (2, 7, 0)
        );
        let s = store.lock().unwrap();
        assert_eq!(s.tracking_event_count().unwrap(), 2);
        let kept = s.malformed_tracking_events().unwrap();
        let positions: Vec<u32> = kept.iter().map(|m| m.position).collect();
        assert_eq!(positions, [1, 2, 3, 4, 5, 6, 7]);
        for m in &kept {
            assert!(
                !m.reason.contains("SECRET"),
                "the value leaked: {}",
                m.reason
            );
            assert!(!m.reason.is_empty());
        }
        assert!(kept[2].reason.contains("barcode"), "{}", kept[2].reason);
        assert!(kept[5].reason.contains("at "), "{}", kept[5].reason);
        assert_eq!(s.tracking_sync_state().unwrap().malformed_events, 7);
        assert!(s.failed_tracking_batches().unwrap().is_empty());
    }

    /// The one-pass read and the event-by-event read agree on every batch serde reads whole:
    /// events that pass, and events serde reads but the domain's checks keep aside (empty,
    /// over-long or control-character codes, years out of range, coordinates out of range,
    /// no id); and a batch with one event serde refuses takes the event-by-event path.
    #[test]
    fn tracking_the_one_pass_read_and_the_event_by_event_read_agree() {
        // (field, value): a good event with that field set; "" for the id: no id at all.
        let variants = [
            ("stage", serde_json::json!("ARRIVED")),
            ("barcode", serde_json::json!("")),
            ("stage", serde_json::json!("S".repeat(200))),
            ("stage", serde_json::json!("ARR\u{7}IVED")),
            ("at", serde_json::json!("1900-01-01T00:00:00Z")),
            ("location", serde_json::json!({"lat": 91.0, "lon": 0.0})),
            ("location", serde_json::json!({"description": "Bay 4"})),
            ("capture_type", serde_json::json!("P")),
            ("", serde_json::json!("UNLOADED")),
        ];
        // Every variant at every position, in batches of 0 to 11 events.
        for round in 0..200usize {
            let events: Vec<serde_json::Value> = (0..round % 12)
                .map(|i| match &variants[(round * 7 + i * 3) % variants.len()] {
                    ("", stage) => with("", "stage", stage.clone()),
                    (field, value) => with(&format!("E{round}-{i}"), field, value.clone()),
                })
                .collect();
            let body = raw_body(&events);
            let whole = parse_batch(3, &body).unwrap();
            let each = parse_each_event(3, &body).unwrap();
            assert_eq!(whole.events, each.events, "round {round}");
            assert_eq!(whole.info, each.info, "round {round}");
            assert_eq!(whole.total, each.total, "round {round}");
            assert_eq!(whole.total as usize, events.len());
        }
        // One event serde refuses: the batch still applies the rest, the refusal kept aside.
        let body = raw_body(&[good("E1"), with("E2", "stage", serde_json::json!(42))]);
        let parsed = parse_batch(3, &body).unwrap();
        assert_eq!(parsed.info, parse_each_event(3, &body).unwrap().info);
        assert_eq!((parsed.events.len(), parsed.info.malformed.len()), (1, 1));
    }

    #[test]
    fn tracking_event_reasons_name_no_position_and_a_body_nested_too_deep_fails_whole() {
        // Each event is parsed from its own slice of the body: a position inside that slice
        // would read as if it were the body's, so reasons carry none.
        let body = raw_body(&[good("E1"), with("E2", "stage", serde_json::json!(42))]);
        let parsed = parse_batch(7, &body).unwrap();
        assert_eq!((parsed.events.len(), parsed.total), (1, 2));
        let reason = &parsed.info.malformed[0].reason;
        assert!(reason.starts_with("invalid type"), "{reason}");
        assert!(!reason.contains("line"), "{reason}");
        // Nested as deep as a value tree refuses: the whole batch, before any event is read.
        let deep = format!(
            r#"{{"server_time":"2026-11-26T10:00:00Z","events":[{}{}]}}"#,
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        let Err(UpnError::BadResponse { reason }) = parse_batch(7, deep.as_bytes()) else {
            panic!("a body nested {MAX_DEPTH} deep was read");
        };
        assert!(reason.starts_with("malformed JSON"), "{reason}");
        // Brackets inside strings are not nesting.
        let mut quoted = good("E3");
        quoted["stage"] = serde_json::json!("[".repeat(MAX_DEPTH * 2));
        let body = raw_body(&[quoted]);
        assert!(parse_batch(7, &body).is_ok());
        // Nor after an escaped quote; but an escaped backslash ends its escape, so the quote
        // after it closes the string and the nesting behind it counts.
        let mut escaped = good("E4");
        escaped["stage"] = serde_json::json!(format!("\"{}", "[".repeat(MAX_DEPTH * 2)));
        assert!(parse_batch(7, &raw_body(&[escaped])).is_ok());
        let deep_after = format!(
            r#"{{"server_time":"2026-11-26T10:00:00Z","batch_id":"a\\","events":[{}{}]}}"#,
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert!(parse_batch(7, deep_after.as_bytes()).is_err());
    }

    #[test]
    fn tracking_batches_judged_by_another_parser_version_are_reprocessed_at_open() {
        let (_d, store) = store();
        let clock = ManualClock::new(t0());
        // Kept as failed by the old whole-batch parser, which had no version.
        let old = raw_body(&[good("E1"), with("E2", "stage", serde_json::json!(7))]);
        {
            let mut s = store.lock().unwrap();
            let id = s.store_tracking_response(&old, None, t0()).unwrap();
            s.fail_tracking_batch(id, "malformed JSON (old parser)", t0())
                .unwrap();
            s.conn()
                .execute(
                    "UPDATE tracking_inbox SET parser_version = NULL WHERE id = ?1",
                    [id],
                )
                .unwrap();
        }
        let report = process_pending(&store, &clock).unwrap();
        assert_eq!(
            (report.resumed, report.applied, report.malformed_events),
            (1, 1, 1)
        );
        {
            let s = store.lock().unwrap();
            assert!(s.failed_tracking_batches().unwrap().is_empty());
            assert_eq!(s.tracking_event_count().unwrap(), 1);
        }
        // The current parser has judged it: the next open leaves it alone.
        let again = process_pending(&store, &clock).unwrap();
        assert_eq!((again.resumed, again.applied), (0, 0));
        // A batch failed by this parser is not retried by it either.
        {
            let mut s = store.lock().unwrap();
            let id = s.store_tracking_response(b"not json", None, t0()).unwrap();
            s.fail_tracking_batch(id, "malformed JSON", t0()).unwrap();
        }
        assert_eq!(process_pending(&store, &clock).unwrap().resumed, 0);
        // Events a previous parser version kept aside are looked at again, applied once.
        store
            .lock()
            .unwrap()
            .conn()
            .execute("UPDATE tracking_malformed SET parser_version = 1", [])
            .unwrap();
        let report = process_pending(&store, &clock).unwrap();
        assert_eq!(
            (report.resumed, report.duplicates, report.malformed_events),
            (1, 1, 1)
        );
        assert_eq!(store.lock().unwrap().tracking_event_count().unwrap(), 1);
    }

    #[test]
    fn tracking_batch_size_starts_small_grows_and_halves_after_a_timeout() {
        let (_d, store) = store();
        let clock = ManualClock::new(t0());
        let full: Vec<WireTrackingEvent> = (0..batch_size::START)
            .map(|i| wire(&format!("E{i}"), "BOOKED"))
            .collect();
        let api = Scripted::new(vec![
            Ok(body(&full, 1)),
            Ok(body(&[], 0)),
            Err(UpnError::Timeout),
        ]);
        let report = rt().block_on(pull_tracking(&api, &store, &clock)).unwrap();
        let asked = api.asked();
        assert_eq!(asked[0], batch_size::START, "starts small");
        assert!(
            asked[1] > batch_size::START,
            "grows on a fast link: {asked:?}"
        );
        assert_eq!(report.batch_size, asked[1]);
        let err = rt()
            .block_on(pull_tracking(&api, &store, &clock))
            .unwrap_err();
        assert!(matches!(err, Error::Upn(UpnError::Timeout)), "{err}");
        // Persisted: the next pull asks for half of what timed out.
        let _ = rt().block_on(pull_tracking(&api, &store, &clock));
        assert_eq!(api.asked()[3], asked[1] / 2);
        let s = store.lock().unwrap();
        assert_eq!(s.tracking_batch_size().unwrap(), Some(asked[1] / 2));
        assert!(s.sync_state(keys::TRACKING_THROUGHPUT).unwrap().is_some());
    }
}
