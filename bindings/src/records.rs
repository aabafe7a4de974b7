//! Plain records and enums crossing the FFI, converted from core values. No logic: field-by-field
//! conversions only.
//!
//! Conventions, the same everywhere:
//! - instants are `i64` milliseconds since the Unix epoch (UTC), in fields named `*_at_ms`;
//! - durations are `u64` milliseconds, in fields named `*_ms`;
//! - photo and signature bytes are `Vec<u8>` (Kotlin `ByteArray`, Swift `Data`);
//! - closed sets the UI switches on are enums; open sets UPN may extend (consignment status,
//!   service level) are the core's codes as strings, unknown codes kept verbatim.

use chrono::{DateTime, Utc};
use upn_core::domain::capture::{CheckedFix, GpsFix};
use upn_core::domain::outbox::{self as outbox, OutboxItem};
use upn_core::domain::tracking::{PalletTimeline, Timeline, TimelineEntry};
use upn_core::domain::{Stop, SyncBadge as CoreBadge};
use upn_core::driver::{DrainReport, Signed};
use upn_core::listener::UploadProgress;
use upn_core::ImportReport;
use upn_core::{Capture, OutboxStats};
use upn_core::{ConsignmentDetail, SyncOutcome as CoreSyncOutcome, SyncReport};
use upn_core::{FlushEnd as CoreFlushEnd, FlushReport};
use upn_core::{TrackingHealth, TrackingReport};

use crate::CoreError;

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

/// An instant given by the app, in epoch milliseconds.
pub(crate) fn instant(field: &str, at_ms: i64) -> Result<DateTime<Utc>, CoreError> {
    DateTime::from_timestamp_millis(at_ms)
        .ok_or_else(|| CoreError::invalid(field, "is out of range; pass epoch milliseconds (UTC)"))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// Enums

/// A stop's sync badge: what happened to what the driver captured there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncBadge {
    /// Nothing captured for this stop yet.
    NothingCaptured,
    /// Photos captured; waiting for the consignee's signature before anything is sent.
    WaitingForSignature,
    /// Captured and stored on the device; not yet queued.
    Captured,
    /// Waiting for connectivity or a retry.
    Queued,
    Sending,
    /// UPN acknowledged everything captured.
    Sent,
    /// UPN refused something; a person must look (see the outbox item's `last_error`).
    NeedsAttention,
}

impl From<CoreBadge> for SyncBadge {
    fn from(b: CoreBadge) -> Self {
        match b {
            CoreBadge::None => SyncBadge::NothingCaptured,
            CoreBadge::WaitingForSignature => SyncBadge::WaitingForSignature,
            CoreBadge::Captured => SyncBadge::Captured,
            CoreBadge::Queued => SyncBadge::Queued,
            CoreBadge::Sending => SyncBadge::Sending,
            CoreBadge::Sent => SyncBadge::Sent,
            CoreBadge::NeedsAttention => SyncBadge::NeedsAttention,
        }
    }
}

/// What was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CaptureKind {
    /// The consignee's signature with printed name, time and place: the ePOD.
    Pod,
    Goods,
    Location,
    LeaveSafe,
}

impl From<outbox::CaptureKind> for CaptureKind {
    fn from(k: outbox::CaptureKind) -> Self {
        match k {
            outbox::CaptureKind::Pod => CaptureKind::Pod,
            outbox::CaptureKind::Goods => CaptureKind::Goods,
            outbox::CaptureKind::Location => CaptureKind::Location,
            outbox::CaptureKind::LeaveSafe => CaptureKind::LeaveSafe,
        }
    }
}

/// The kind of a delivery photo (`add_photo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PhotoKind {
    /// The goods as delivered.
    Goods,
    /// Where they were left.
    Location,
    /// Proof of a leave-safe delivery.
    LeaveSafe,
}

impl From<PhotoKind> for outbox::CaptureKind {
    fn from(k: PhotoKind) -> Self {
        match k {
            PhotoKind::Goods => outbox::CaptureKind::Goods,
            PhotoKind::Location => outbox::CaptureKind::Location,
            PhotoKind::LeaveSafe => outbox::CaptureKind::LeaveSafe,
        }
    }
}

/// Where an outbox item is on its way to UPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutboxState {
    /// A photo waiting for its consignment's signature to reach UPN.
    Waiting,
    /// Ready to send when due and online.
    Queued,
    Sending,
    Sent,
    /// UPN refused it for good; kept with the reason until retried or discarded.
    NeedsAttention,
    /// A signature replaced by a new one before it was ever sent.
    Replaced,
    /// Given up on by an explicit discard.
    Discarded,
}

impl From<outbox::ItemState> for OutboxState {
    fn from(s: outbox::ItemState) -> Self {
        use outbox::ItemState as S;
        match s {
            S::Waiting => OutboxState::Waiting,
            S::Queued => OutboxState::Queued,
            S::Sending => OutboxState::Sending,
            S::Sent => OutboxState::Sent,
            S::NeedsAttention => OutboxState::NeedsAttention,
            S::Replaced => OutboxState::Replaced,
            S::Discarded => OutboxState::Discarded,
        }
    }
}

/// Why a flush (or drain) pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FlushEnd {
    /// Nothing is due any more (items may wait on a backoff or for attention).
    Done,
    /// UPN could not be reached; the rest waits for connectivity.
    Offline,
    /// The deadline came first; the rest is left consistent and goes next time.
    Deadline,
    /// Only in `sync_now`'s summary: the pass could not run (the device's storage failed);
    /// `SyncSummary.flush_error` says why. Nothing was sent; everything stays queued.
    Failed,
    /// The drain was cancelled (`DrainCancellation.cancel()`, the coroutine or task
    /// cancelled); the rest is left consistent and goes next time.
    Cancelled,
}

impl From<CoreFlushEnd> for FlushEnd {
    fn from(e: CoreFlushEnd) -> Self {
        match e {
            CoreFlushEnd::Done => FlushEnd::Done,
            CoreFlushEnd::Offline => FlushEnd::Offline,
            CoreFlushEnd::Deadline => FlushEnd::Deadline,
            CoreFlushEnd::Cancelled => FlushEnd::Cancelled,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stops and consignments

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ImportSummary {
    pub added: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub cancelled: u32,
    /// Records of the feed refused one by one (a bad barcode or instant); the rest applied.
    pub refused: u32,
    /// UPN's clock at the response.
    pub server_time_ms: i64,
}

impl From<ImportReport> for ImportSummary {
    fn from(r: ImportReport) -> Self {
        Self {
            added: r.counts.added,
            updated: r.counts.updated,
            unchanged: r.counts.unchanged,
            cancelled: r.counts.cancelled,
            refused: count(r.refused.len()),
            server_time_ms: ms(r.server_time),
        }
    }
}

/// One line of the stop list.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct StopRecord {
    /// 1-based position in the day's order.
    pub position: u32,
    pub barcode: String,
    pub consignee: String,
    pub address: String,
    pub postcode: String,
    pub lat: f64,
    pub lon: f64,
    pub pallet_count: u32,
    pub weight_kg: f64,
    /// UPN service code (`PREMIUM`, `AM`, `TIMED`, ...; unknown codes verbatim).
    pub service: String,
    /// "HH:MM-HH:MM" (UK local time) for AM and timed services.
    pub window: Option<String>,
    pub instructions: Option<String>,
    /// `imported`, `cancelled`, a stage in lower case (`out_for_delivery`, `delivered`, ...), or
    /// an unknown stage code verbatim.
    pub status: String,
    pub sync: SyncBadge,
    /// The section of the list the stop is in (the list's first sort key).
    pub phase: crate::live::StopPhase,
}

fn window_text(w: Option<upn_core::domain::Window>) -> Option<String> {
    w.as_ref().map(upn_core::domain::Window::label)
}

impl From<&Stop> for StopRecord {
    fn from(s: &Stop) -> Self {
        let c = &s.consignment;
        Self {
            position: s.position,
            barcode: c.barcode.clone(),
            consignee: c.consignee.name.clone(),
            address: c.address.one_line(),
            postcode: c.address.postcode.clone(),
            lat: c.address.lat,
            lon: c.address.lon,
            pallet_count: count(c.pallets.len()),
            weight_kg: c.weight_kg,
            service: c.service.code().to_string(),
            window: window_text(c.window),
            instructions: c.instructions.clone(),
            status: s.status.code(),
            sync: s.sync.into(),
            phase: s.phase.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PalletRecord {
    pub barcode: String,
    pub size: String,
    pub weight_kg: f64,
    /// As [`StopRecord::status`], for this pallet.
    pub status: String,
}

/// A GPS fix as the phone reported it (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct GpsFixRecord {
    pub lat: f64,
    pub lon: f64,
    /// Radius of 68 % confidence, metres.
    pub accuracy_m: f64,
    /// When the phone took the fix (may be earlier than the capture).
    pub fix_at_ms: i64,
}

impl GpsFixRecord {
    pub(crate) fn to_core(self) -> Result<GpsFix, CoreError> {
        Ok(GpsFix::new(
            self.lat,
            self.lon,
            self.accuracy_m,
            instant("gps.fix_at_ms", self.fix_at_ms)?,
        ))
    }
}

impl From<&CheckedFix> for GpsFixRecord {
    fn from(f: &CheckedFix) -> Self {
        Self {
            lat: f.fix.lat(),
            lon: f.fix.lon(),
            accuracy_m: f.fix.accuracy_m,
            fix_at_ms: ms(f.fix.fix_at),
        }
    }
}

/// A signature or photo as recorded on the device: what the POD and documents view shows.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CaptureRecord {
    /// Also the idempotency key UPN sees.
    pub id: String,
    pub kind: CaptureKind,
    pub state: OutboxState,
    /// Device clock at capture.
    pub captured_at_ms: i64,
    /// Device clock minus UPN's clock when captured, if known.
    pub clock_offset_ms: Option<i64>,
    /// The printed name (signatures only).
    pub signed_by: Option<String>,
    pub gps: Option<GpsFixRecord>,
    /// The fix was older than 30 minutes at capture (kept, flagged).
    pub gps_stale: bool,
    /// Size of the original as captured.
    pub original_bytes: u64,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The typed reason of `last_error`, for the UI to switch on.
    pub reason: Option<crate::OutboxReason>,
    /// When UPN acknowledged it.
    pub sent_at_ms: Option<i64>,
    /// UPN's reference for it.
    pub upn_reference: Option<String>,
    /// When retention removed its original (after UPN acknowledged it): the bytes are gone
    /// from the device, the record stays.
    pub purged_at_ms: Option<i64>,
}

impl From<&Capture> for CaptureRecord {
    fn from(c: &Capture) -> Self {
        Self {
            id: c.id.clone(),
            kind: c.kind.into(),
            state: c.state.into(),
            captured_at_ms: ms(c.captured_at),
            clock_offset_ms: c.clock_offset_ms,
            signed_by: c.signed_by.clone(),
            gps: c.fix.as_ref().map(GpsFixRecord::from),
            gps_stale: c.fix.is_some_and(|f| f.stale),
            original_bytes: c.original.bytes,
            attempts: c.attempts,
            last_error: c.last_error.clone(),
            reason: c.reason.map(Into::into),
            sent_at_ms: opt_ms(c.sent_at),
            upn_reference: c.upn_reference.clone(),
            purged_at_ms: opt_ms(c.purged_at),
        }
    }
}

/// Everything the app shows about one consignment.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ConsignmentRecord {
    pub barcode: String,
    /// As [`StopRecord::status`].
    pub status: String,
    pub shipper: String,
    pub consignee: String,
    pub consignee_phone: Option<String>,
    pub address: String,
    pub postcode: String,
    pub lat: f64,
    pub lon: f64,
    pub weight_kg: f64,
    pub service: String,
    pub window: Option<String>,
    /// "YYYY-MM-DD".
    pub delivery_date: String,
    pub instructions: Option<String>,
    /// Why UPN cancelled it, when it did and gave a reason.
    pub cancellation_reason: Option<String>,
    pub pallets: Vec<PalletRecord>,
    pub sync: SyncBadge,
    /// The signature in force (not replaced or discarded), if signed.
    pub pod: Option<CaptureRecord>,
    /// Delivery photos in capture order (discarded ones left out).
    pub photos: Vec<CaptureRecord>,
}

impl From<&ConsignmentDetail> for ConsignmentRecord {
    fn from(d: &ConsignmentDetail) -> Self {
        let c = &d.consignment;
        Self {
            barcode: c.barcode.clone(),
            status: d.status.code(),
            shipper: c.shipper.name.clone(),
            consignee: c.consignee.name.clone(),
            consignee_phone: c.consignee.phone.clone(),
            address: c.address.one_line(),
            postcode: c.address.postcode.clone(),
            lat: c.address.lat,
            lon: c.address.lon,
            weight_kg: c.weight_kg,
            service: c.service.code().to_string(),
            window: window_text(c.window),
            delivery_date: c.delivery_date.format("%Y-%m-%d").to_string(),
            instructions: c.instructions.clone(),
            cancellation_reason: c.cancelled.as_ref().and_then(|x| x.reason.clone()),
            pallets: d
                .pallets
                .iter()
                .map(|(p, status)| PalletRecord {
                    barcode: p.barcode.clone(),
                    size: p.size.clone(),
                    weight_kg: p.weight_kg,
                    status: status.code(),
                })
                .collect(),
            sync: d.sync.into(),
            pod: d.pod.as_ref().map(CaptureRecord::from),
            photos: d.photos.iter().map(CaptureRecord::from).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outbox

/// One item of the outbox: a signature or photo on its way to UPN.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct OutboxItemRecord {
    /// The capture id, also the idempotency key UPN sees. Pass it to `retry` or `discard`.
    pub id: String,
    pub barcode: String,
    pub kind: CaptureKind,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt_at_ms: Option<i64>,
    /// Why the last attempt failed, for people (never a response body).
    pub last_error: Option<String>,
    /// The typed reason of `last_error`, for the UI to switch on.
    pub reason: Option<crate::OutboxReason>,
    pub captured_at_ms: i64,
    /// Bytes to upload (the upload rendition once made, the original before).
    pub bytes: u64,
    pub sent_at_ms: Option<i64>,
    pub upn_reference: Option<String>,
}

impl From<&OutboxItem> for OutboxItemRecord {
    fn from(i: &OutboxItem) -> Self {
        Self {
            id: i.id.clone(),
            barcode: i.barcode.clone(),
            kind: i.kind.into(),
            state: i.state.into(),
            attempts: i.attempts,
            next_attempt_at_ms: opt_ms(i.next_attempt_at),
            last_error: i.last_error.clone(),
            reason: i.reason.map(Into::into),
            captured_at_ms: ms(i.captured_at),
            bytes: i.bytes,
            sent_at_ms: opt_ms(i.sent_at),
            upn_reference: i.upn_reference.clone(),
        }
    }
}

/// Counts and ages for the app's sync screen.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct OutboxStatsRecord {
    pub waiting: u32,
    pub queued: u32,
    pub sending: u32,
    pub needs_attention: u32,
    pub sent: u32,
    /// Capture time of the oldest item not yet acknowledged by UPN.
    pub oldest_pending_captured_at_ms: Option<i64>,
    /// Bytes still to upload.
    pub bytes_pending: u64,
    /// When UPN last acknowledged an item.
    pub last_success_at_ms: Option<i64>,
    /// Set while UPN refuses the depot's account (key rejected, integration disabled): nothing
    /// is sent, items stay queued, and the outbox probes UPN and resumes by itself. The reason
    /// says whom to ask.
    pub paused_reason: Option<String>,
    /// Set while UPN's image action is disabled for the depot: photos stay queued (PODs still
    /// go) and resume by themselves once UPN accepts images again.
    pub images_paused_reason: Option<String>,
}

impl From<&OutboxStats> for OutboxStatsRecord {
    fn from(s: &OutboxStats) -> Self {
        Self {
            waiting: s.waiting,
            queued: s.queued,
            sending: s.sending,
            needs_attention: s.needs_attention,
            sent: s.sent,
            oldest_pending_captured_at_ms: opt_ms(s.oldest_pending_captured_at),
            bytes_pending: s.bytes_pending,
            last_success_at_ms: opt_ms(s.last_success_at),
            paused_reason: s.pauses.outbox.as_ref().map(|p| p.message.clone()),
            images_paused_reason: s.pauses.images.as_ref().map(|p| p.message.clone()),
        }
    }
}

/// Bytes of one upload on their way.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UploadProgressRecord {
    pub capture_id: String,
    pub barcode: String,
    pub sent_bytes: u64,
    pub total_bytes: u64,
}

impl From<&UploadProgress> for UploadProgressRecord {
    fn from(p: &UploadProgress) -> Self {
        Self {
            capture_id: p.capture_id.clone(),
            barcode: p.barcode.clone(),
            sent_bytes: p.sent,
            total_bytes: p.total,
        }
    }
}

/// What `sign` recorded.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SignResult {
    pub item: OutboxItemRecord,
    /// The unsent signature this one replaced, if any (kept on the device, marked replaced).
    pub replaced_capture_id: Option<String>,
    /// The GPS fix was older than 30 minutes at capture: kept, but worth a warning.
    pub stale_gps: bool,
}

impl From<&Signed> for SignResult {
    fn from(s: &Signed) -> Self {
        Self {
            item: (&s.item).into(),
            replaced_capture_id: s.replaced.clone(),
            stale_gps: s.stale_gps,
        }
    }
}

/// One flush pass over the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct FlushSummary {
    /// Items UPN acknowledged in this pass.
    pub sent: u32,
    /// Items that failed for now and will be retried (backoff).
    pub retrying: u32,
    /// Items UPN refused for good in this pass.
    pub needs_attention: u32,
    /// Items kept queued because UPN refused the depot's account (the outbox is paused).
    pub paused: u32,
    pub ended: FlushEnd,
}

impl From<FlushReport> for FlushSummary {
    fn from(r: FlushReport) -> Self {
        Self {
            sent: r.sent,
            retrying: r.retrying,
            needs_attention: r.needs_attention,
            paused: r.paused,
            ended: r.ended.into(),
        }
    }
}

/// What `drain` managed before its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct DrainSummary {
    pub flush: FlushSummary,
    /// Items still waiting to reach UPN (including those needing attention, and the photos
    /// the data saver holds). A background task can report success when this is 0.
    pub pending: u32,
    /// Of `pending`, photos the data saver holds (not failed: they go on Wi-Fi, or when the
    /// budget allows).
    pub held_by_data_saver: u32,
}

impl From<DrainReport> for DrainSummary {
    fn from(r: DrainReport) -> Self {
        Self {
            flush: r.flush.into(),
            pending: r.pending,
            held_by_data_saver: r.held_by_data_saver,
        }
    }
}

/// The one value to switch on after `sync_now`: the worst outcome of its three steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncOutcome {
    /// Every step succeeded and nothing waits to reach UPN.
    Done,
    /// Every step reached UPN, but captures still wait (a backoff, a pause, a signature, or a
    /// person: see `outbox()`).
    Pending,
    /// UPN could not be reached, or failed for now, in some step. The core retries by itself.
    Offline,
    /// A step failed for a reason retrying will not fix (the key or an action refused, an
    /// unreadable response, storage): its `*_error` says which.
    Failed,
}

impl From<CoreSyncOutcome> for SyncOutcome {
    fn from(o: CoreSyncOutcome) -> Self {
        match o {
            CoreSyncOutcome::Done => SyncOutcome::Done,
            CoreSyncOutcome::Pending => SyncOutcome::Pending,
            CoreSyncOutcome::Offline => SyncOutcome::Offline,
            CoreSyncOutcome::Failed => SyncOutcome::Failed,
        }
    }
}

/// What `sync_now` did: the import, the outbox flush and the tracking pull, each with its own
/// result (one failing never skips another), and the `outcome` of the whole.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SyncSummary {
    pub outcome: SyncOutcome,
    /// `None` when the import failed: see `import_error`.
    pub import: Option<ImportSummary>,
    /// Why the import failed (UPN unreachable, the key refused, ...).
    pub import_error: Option<String>,
    /// The flush; all zeros with `ended = FAILED` when it could not run (see `flush_error`).
    pub flush: FlushSummary,
    /// Why the flush could not run (the device's storage).
    pub flush_error: Option<String>,
    /// Items still waiting to reach UPN after the flush (including those needing attention).
    pub pending: u32,
    /// Of `pending`, photos the data saver holds (not failed).
    pub held_by_data_saver: u32,
    /// `None` when the pull failed: see `tracking_error` and `tracking_health()`.
    pub tracking: Option<TrackingSummary>,
    /// Why the tracking pull failed (e.g. UPN has not enabled the tracking action).
    pub tracking_error: Option<String>,
}

impl From<SyncReport> for SyncSummary {
    fn from(r: SyncReport) -> Self {
        let outcome = r.outcome().into();
        let (import, import_error) = split(r.import, ImportSummary::from);
        let (outbox, flush_error) = split(r.outbox, |d| d);
        let (tracking, tracking_error) = split(r.tracking, TrackingSummary::from);
        let failed = FlushSummary {
            sent: 0,
            retrying: 0,
            needs_attention: 0,
            paused: 0,
            ended: FlushEnd::Failed,
        };
        Self {
            outcome,
            import,
            import_error,
            pending: outbox.as_ref().map_or(0, |d| d.pending),
            held_by_data_saver: outbox.as_ref().map_or(0, |d| d.held_by_data_saver),
            flush: outbox.map_or(failed, |d| d.flush.into()),
            flush_error,
            tracking,
            tracking_error,
        }
    }
}

/// A step's result as the record's pair: the summary, or why it failed (never a key: the
/// core's messages carry none).
fn split<T, S>(result: upn_core::Result<T>, f: impl FnOnce(T) -> S) -> (Option<S>, Option<String>) {
    match result {
        Ok(t) => (Some(f(t)), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

// ---------------------------------------------------------------------------------------------
// Tracking

/// One line of a tracking timeline.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TimelineEntryRecord {
    /// The event id (UPN's, or the device's own).
    pub id: String,
    /// When it happened (UPN's clock).
    pub at_ms: i64,
    /// The stage code as UPN sent it (`OUT_FOR_DELIVERY`, `DELIVERED`, `CARDED`, ...; unknown
    /// codes verbatim).
    pub stage: String,
    /// `C` (the consignment and all its pallets), `P` (one pallet), or an unknown code verbatim.
    pub capture_type: String,
    pub pallet: Option<String>,
    /// Where, as far as known: "Castle Joinery Ltd, Wakefield (53.67410, -1.49120)".
    pub location: Option<String>,
    /// `true` when this device recorded it (e.g. the POD); `false` for UPN's events.
    pub from_device: bool,
}

impl From<&TimelineEntry> for TimelineEntryRecord {
    fn from(e: &TimelineEntry) -> Self {
        Self {
            id: e.id.clone(),
            at_ms: ms(e.at),
            stage: e.stage.code().to_string(),
            capture_type: e.capture_type.code().to_string(),
            pallet: e.pallet.clone(),
            location: e
                .location
                .as_ref()
                .map(|l| l.text())
                .filter(|t| !t.is_empty()),
            from_device: e.source == upn_core::domain::tracking::Source::Device,
        }
    }
}

/// What one tracking pull did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TrackingSummary {
    /// Responses taken from UPN in this pull (including empty ones).
    pub batches: u32,
    /// Responses stored by an earlier run and processed now.
    pub resumed: u32,
    /// Events in the processed responses.
    pub events: u32,
    /// Events new on this device.
    pub applied: u32,
    /// Events already on the device, ignored.
    pub duplicates: u32,
    /// New events whose consignment is not imported yet (applied when it arrives).
    pub waiting_for_consignment: u32,
    /// Responses that could not be read (kept on the device for support).
    pub failed_batches: u32,
    /// Events UPN still held when the pull stopped (0 unless the per-pull bound was reached).
    pub remaining: u64,
    /// Consignments whose status (or a pallet's) changed: their stops were re-announced to
    /// listeners.
    pub changed: Vec<String>,
}

impl From<TrackingReport> for TrackingSummary {
    fn from(r: TrackingReport) -> Self {
        Self {
            batches: r.batches,
            resumed: r.resumed,
            events: r.events,
            applied: r.applied,
            duplicates: r.duplicates,
            waiting_for_consignment: r.waiting_for_consignment,
            failed_batches: r.failed_batches,
            remaining: r.remaining,
            changed: r.changed,
        }
    }
}

/// Whether tracking is up to date, and what to do if not.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TrackingHealthRecord {
    pub online: bool,
    /// When a tracking pull last succeeded (device clock).
    pub last_success_at_ms: Option<i64>,
    /// Online and no successful pull for `tracking_stale_after_ms` (15 minutes): show it.
    pub stale: bool,
    /// Why the last pull failed, as people read it.
    pub last_error: Option<String>,
    /// What a person should do, when something needs doing.
    pub advice: Option<String>,
    /// Responses from UPN that could not be read, kept on the device for support.
    pub unreadable_responses: u32,
    /// Responses stored but not processed yet (normally 0).
    pub pending_responses: u32,
    /// Events UPN sent that could not be used, kept aside with the reason (the rest applied).
    pub malformed_events: u32,
    /// Responses waiting in spill files because storing them failed (normally 0).
    pub spilled_responses: u32,
}

impl From<&TrackingHealth> for TrackingHealthRecord {
    fn from(h: &TrackingHealth) -> Self {
        Self {
            online: h.online,
            last_success_at_ms: opt_ms(h.last_success),
            stale: h.stale,
            last_error: h.last_error.clone(),
            advice: h.advice(),
            unreadable_responses: count(h.failed_batches.len()),
            pending_responses: h.pending_batches,
            malformed_events: h.malformed_events,
            spilled_responses: h.spilled_batches,
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PalletTimelineRecord {
    pub pallet: String,
    /// Every `C` event and the pallet's own `P` events, in time order.
    pub entries: Vec<TimelineEntryRecord>,
}

impl From<&PalletTimeline> for PalletTimelineRecord {
    fn from(p: &PalletTimeline) -> Self {
        Self {
            pallet: p.pallet.clone(),
            entries: p.entries.iter().map(Into::into).collect(),
        }
    }
}

/// The tracking timeline of one consignment and of each of its pallets.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TimelineRecord {
    pub barcode: String,
    /// Every event of the consignment, in time order.
    pub consignment: Vec<TimelineEntryRecord>,
    pub pallets: Vec<PalletTimelineRecord>,
}

impl From<&Timeline> for TimelineRecord {
    fn from(t: &Timeline) -> Self {
        Self {
            barcode: t.barcode.clone(),
            consignment: t.consignment.iter().map(Into::into).collect(),
            pallets: t.pallets.iter().map(Into::into).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Diagnostics

/// What support asks first, in one call: connectivity, the stop list's shape, the outbox,
/// tracking.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DiagnosticsRecord {
    /// What the app last said about connectivity (`set_online`).
    pub online: bool,
    pub depot_code: String,
    /// UPN base URL in use (never the API key).
    pub endpoint: String,
    pub stops: u32,
    pub stops_open: u32,
    pub stops_delivered: u32,
    pub stops_cancelled: u32,
    /// Stops whose badge is `NeedsAttention`.
    pub stops_needing_attention: u32,
    pub outbox: OutboxStatsRecord,
    pub tracking: TrackingHealthRecord,
}

impl DiagnosticsRecord {
    pub(crate) fn new(
        online: bool,
        depot_code: String,
        endpoint: String,
        stops: &[Stop],
        outbox: &OutboxStats,
        tracking: &TrackingHealth,
    ) -> Self {
        use upn_core::domain::Status;
        let cancelled = stops
            .iter()
            .filter(|s| s.status == Status::Cancelled)
            .count();
        let delivered = stops.iter().filter(|s| s.status.is_done()).count();
        Self {
            online,
            depot_code,
            endpoint,
            stops: count(stops.len()),
            stops_open: count(stops.len() - cancelled - delivered),
            stops_delivered: count(delivered),
            stops_cancelled: count(cancelled),
            stops_needing_attention: count(
                stops
                    .iter()
                    .filter(|s| s.sync == CoreBadge::NeedsAttention)
                    .count(),
            ),
            outbox: outbox.into(),
            tracking: tracking.into(),
        }
    }
}
