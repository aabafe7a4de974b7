//! Tracking sync: take the next batch from UPN's consuming feed, commit the raw response to the
//! inbox at once, then parse and apply it; repeat while UPN says more remain (bounded).
//!
//! UPN hands each batch out once, so nothing may stand between reading a response and
//! committing it: no parsing, no validation. A response that cannot be parsed is kept in the
//! inbox, marked failed with a reason that describes it without echoing it, and later batches
//! carry on. Responses stored by a run that died before processing them are processed first,
//! at start-up ([`process_pending`]) and at the start of every pull.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::digest::sha256_hex;
use crate::domain::tracking::{to_millis, CaptureType, Location, Source, TrackingEvent};
use crate::domain::Stage;
use crate::error::Result;
use crate::failpoint;
use crate::store::tracking::{AppliedBatch, BatchInfo, FailedBatch};
use crate::store::Store;
use crate::sync::import::lock;
use crate::upn::http::parse_json;
use crate::upn::wire::{TrackingBatch, WireTrackingEvent};
use crate::upn::{UpnApi, UpnError};

/// Most events asked for per batch (UPN's cap).
pub const BATCH_MAX_EVENTS: u32 = 5000;
/// Most batches taken in one pull; what is left waits for the next cycle.
pub const MAX_BATCHES_PER_PULL: u32 = 50;
/// The failpoint between the inbox commit and processing (crash tests).
pub const FAILPOINT_AFTER_INBOX_COMMIT: &str = "tracking.after_inbox_commit";

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
    /// Events UPN still held when the pull stopped (0 unless the per-pull bound was reached).
    pub remaining: u64,
    /// Consignments whose status (or a pallet's) changed.
    pub changed: Vec<String>,
}

impl TrackingReport {
    fn add(&mut self, applied: AppliedBatch) {
        self.events += applied.events;
        self.applied += applied.applied;
        self.duplicates += applied.duplicates;
        self.waiting_for_consignment += applied.waiting_for_consignment;
        for barcode in applied.changed {
            if !self.changed.contains(&barcode) {
                self.changed.push(barcode);
            }
        }
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
        if self.stale {
            return Some(
                "tracking has not synced for 15+ minutes while online: check the connection; if it persists, ask your admin to verify UPN has enabled the tracking action for the depot".into(),
            );
        }
        if !self.failed_batches.is_empty() {
            return Some(format!(
                "{} tracking response(s) from UPN could not be read; they are kept on the device: include them in a support bundle",
                self.failed_batches.len()
            ));
        }
        None
    }
}

/// How processing one stored response ended.
enum Outcome {
    Applied { remaining: u64 },
    Failed,
}

/// One pull: stored leftovers first, then batches from UPN until none remain (at most
/// [`MAX_BATCHES_PER_PULL`]). UPN refusals and network errors end the pull as `Error::Upn`;
/// everything taken before that is already stored and applied.
pub async fn pull_tracking(
    api: &impl UpnApi,
    store: &Mutex<Store>,
    clock: &dyn Clock,
) -> Result<TrackingReport> {
    note_attempt(store, clock.now())?;
    let mut report = process_pending(store, clock)?;
    for _ in 0..MAX_BATCHES_PER_PULL {
        let raw = match api.take_tracking_batch(BATCH_MAX_EVENTS).await {
            Ok(raw) => raw,
            Err(e) => {
                note_failure(store, &e.to_string())?;
                return Err(e.into());
            }
        };
        // The response is committed before anything looks inside it.
        let inbox_id =
            lock(store)?.store_tracking_response(&raw.body, raw.server_time, clock.now())?;
        failpoint::hit(FAILPOINT_AFTER_INBOX_COMMIT);
        report.batches += 1;
        match process(store, inbox_id, &raw.body, clock, &mut report)? {
            Outcome::Applied { remaining } => {
                report.remaining = remaining;
                if remaining == 0 {
                    break;
                }
            }
            // UPN sent something unreadable: stop here, the next cycle carries on.
            Outcome::Failed => break,
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
        "tracking pulled"
    );
    Ok(report)
}

/// Processes every stored response not processed yet, oldest first (start-up, and the start of
/// each pull). Never calls UPN.
pub fn process_pending(store: &Mutex<Store>, clock: &dyn Clock) -> Result<TrackingReport> {
    let mut report = TrackingReport::default();
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

/// Parses and applies one stored response (the store lock is released while parsing).
fn process(
    store: &Mutex<Store>,
    inbox_id: i64,
    body: &[u8],
    clock: &dyn Clock,
    report: &mut TrackingReport,
) -> Result<Outcome> {
    let batch: TrackingBatch = match parse_json(body) {
        Ok(batch) => batch,
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
    let info = BatchInfo {
        batch_id: batch.batch_id,
        remaining: batch.remaining,
    };
    let events: Vec<TrackingEvent> = batch.events.into_iter().map(event).collect();
    let applied = lock(store)?.apply_tracking_batch(inbox_id, &info, &events, clock.now())?;
    report.add(applied);
    Ok(Outcome::Applied {
        remaining: info.remaining,
    })
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
    use crate::upn::{Progress, RawTrackingResponse};
    use chrono::TimeZone;
    use std::collections::VecDeque;

    /// A feed that answers from a script of responses.
    struct Scripted(Mutex<VecDeque<std::result::Result<Vec<u8>, UpnError>>>);

    impl Scripted {
        fn new(items: Vec<std::result::Result<Vec<u8>, UpnError>>) -> Self {
            Self(Mutex::new(items.into()))
        }
        fn left(&self) -> usize {
            self.0.lock().unwrap().len()
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
            _max: u32,
        ) -> std::result::Result<RawTrackingResponse, UpnError> {
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
}
