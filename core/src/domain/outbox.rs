//! The outbox as a state machine: what each captured POD or photo is waiting for, and what a
//! send result does to it. Pure: [`transition`] maps (item, event, now) to a new state or a
//! typed refusal; the store applies it compare-and-set and the flush carries it out.
//!
//! ```text
//!  photo before the POD is sent ─► Waiting ──(POD sent, same transaction)──► Queued
//!  POD, or photo after POD sent ─► Queued ──claim──► Sending ──ok, receipt matches──► Sent
//!                                    ▲                  │
//!                                    ├──backoff─────────┤ recoverable / connectivity
//!                                    ├──pause───────────┤ account refusal (401, 403 disabled):
//!                                    │                  │   the outbox, or its images, pauses
//!                                    │                  └─permanent, receipt mismatch─► NeedsAttention
//!                                    └───────────────────────retry──────────────────────┘ └discard► Discarded
//!  a POD never attempted, signed again ─► Replaced (kept, with what replaced it)
//!  While Sending, retry, discard and replace are refused: InFlight, "try again in a moment".
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use super::data_saver::{Hold, Saver};
pub use super::reason::{Feature, ItemError, OutboxReason};
use super::stop_list::SyncBadge;

/// What was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureKind {
    /// The consignee's signature with printed name, time and place: the ePOD.
    Pod,
    /// Delivery photos.
    Goods,
    Location,
    LeaveSafe,
}

impl CaptureKind {
    pub fn code(self) -> &'static str {
        match self {
            CaptureKind::Pod => "pod",
            CaptureKind::Goods => "goods",
            CaptureKind::Location => "location",
            CaptureKind::LeaveSafe => "leave_safe",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "pod" => CaptureKind::Pod,
            "goods" => CaptureKind::Goods,
            "location" => CaptureKind::Location,
            "leave_safe" => CaptureKind::LeaveSafe,
            _ => return None,
        })
    }

    /// Parses a photo kind given by the app or the driver.
    pub fn photo(code: &str) -> Option<Self> {
        Self::from_code(code).filter(|k| k.is_photo())
    }

    pub fn is_photo(self) -> bool {
        self != CaptureKind::Pod
    }

    /// `pod` or `image`: what the outbox sends.
    pub fn outbox_kind(self) -> &'static str {
        if self.is_photo() {
            "image"
        } else {
            "pod"
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// A photo waiting for its consignment's POD to reach UPN.
    Waiting,
    /// Ready to send when due and online.
    Queued,
    /// A request is (or was, when the app died) in flight.
    Sending,
    Sent,
    /// UPN refused it for good; kept with the reason until retried or discarded.
    NeedsAttention,
    /// A POD replaced by a new signature before it was ever sent.
    Replaced,
    /// Given up on by an explicit discard.
    Discarded,
}

impl ItemState {
    pub fn code(self) -> &'static str {
        match self {
            ItemState::Waiting => "waiting",
            ItemState::Queued => "queued",
            ItemState::Sending => "sending",
            ItemState::Sent => "sent",
            ItemState::NeedsAttention => "needs_attention",
            ItemState::Replaced => "replaced",
            ItemState::Discarded => "discarded",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "waiting" => ItemState::Waiting,
            "queued" => ItemState::Queued,
            "sending" => ItemState::Sending,
            "sent" => ItemState::Sent,
            "needs_attention" => ItemState::NeedsAttention,
            "replaced" => ItemState::Replaced,
            "discarded" => ItemState::Discarded,
            _ => return None,
        })
    }

    /// Not replaced or discarded.
    pub fn is_live(self) -> bool {
        !matches!(self, ItemState::Replaced | ItemState::Discarded)
    }

    /// Still on its way to UPN.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            ItemState::Waiting | ItemState::Queued | ItemState::Sending | ItemState::NeedsAttention
        )
    }
}

/// One item of the outbox as the app lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxItem {
    /// The capture id, also the idempotency key UPN sees.
    pub id: String,
    pub barcode: String,
    pub kind: CaptureKind,
    pub state: ItemState,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The stable code of `last_error`, for the app to switch on.
    pub reason: Option<OutboxReason>,
    pub captured_at: DateTime<Utc>,
    /// Bytes to upload (the rendition once made, the original before).
    pub bytes: u64,
    pub sent_at: Option<DateTime<Utc>>,
    pub upn_reference: Option<String>,
}

/// Where an item stands, as far as its transitions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemStatus {
    pub kind: CaptureKind,
    pub state: ItemState,
    /// Requests that left the device for it so far.
    pub attempts: u32,
}

/// Why a send failed, as the outbox needs to know it. The flush maps UPN's errors to this in
/// one place, so the state machine does not depend on the HTTP layer.
#[derive(Debug, Clone, PartialEq)]
pub struct SendFailure {
    pub kind: FailureKind,
    /// How long UPN asked to wait, if it said (clamped to [`MAX_RETRY_AFTER`] here).
    pub retry_after: Option<Duration>,
    /// The stable code stored beside `reason`.
    pub code: OutboxReason,
    /// What to show a person (never a body, a key or an image).
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// UPN's load or a garbled answer: retry with backoff.
    Recoverable,
    /// The device could not reach UPN: retry with backoff, and end the pass (all would fail).
    Connectivity,
    /// The depot's account was refused: the item stays queued and the outbox (or its image
    /// part) pauses until a later request succeeds.
    Account(AccountPause),
    /// This item was refused for good: kept with the reason for a person.
    Permanent,
}

/// An account-level refusal: nothing is wrong with the item, so it is never stranded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountPause {
    CredentialsRejected,
    IntegrationDisabled,
    ImageActionDisabled,
}

impl AccountPause {
    pub fn scope(self) -> PauseScope {
        match self {
            AccountPause::ImageActionDisabled => PauseScope::Images,
            _ => PauseScope::Outbox,
        }
    }
}

/// What a pause holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseScope {
    /// Everything.
    Outbox,
    /// Photos only; PODs still go.
    Images,
}

impl PauseScope {
    pub fn covers(self, kind: CaptureKind) -> bool {
        self == PauseScope::Outbox || kind.is_photo()
    }
}

/// UPN's `Retry-After` is honoured up to this; anything longer is a hostile or broken server.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);
/// The backoff cap.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Waits stored before waits were recorded with their length (older rows): anything further
/// ahead than this can only mean the device clock went back.
const MAX_WAIT: Duration = MAX_RETRY_AFTER;

/// When an item may go next: the instant and the wait that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Length of the wait that ended at `next_attempt_at`, in ms (unknown for older rows).
    pub wait_ms: Option<i64>,
}

impl Schedule {
    /// Due now, `wait` from `now` (overflow-safe: a clock at the end of time is "due now").
    pub fn after(now: DateTime<Utc>, wait: Duration) -> Self {
        let chrono_wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
        Self {
            next_attempt_at: Some(now.checked_add_signed(chrono_wait).unwrap_or(now)),
            wait_ms: Some(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// When it is really due. A wait ending further ahead than the wait itself means the
    /// device clock was set back since it was chosen: then it is due now, so a clock change
    /// never stalls the outbox.
    pub fn due_at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let Some(at) = self.next_attempt_at else {
            return now;
        };
        let longest = match self.wait_ms {
            Some(ms) => chrono::Duration::milliseconds(ms.clamp(0, MAX_WAIT.as_millis() as i64)),
            None => chrono::Duration::from_std(MAX_WAIT).unwrap_or(chrono::Duration::zero()),
        };
        match at.signed_duration_since(now) {
            ahead if ahead > longest => now,
            _ => at,
        }
    }

    pub fn is_due(self, now: DateTime<Utc>) -> bool {
        self.due_at(now) <= now
    }
}

/// The outbox (or its image part) held back by an account refusal. It still probes: once
/// `probe` is due the next pass tries again, and any success lifts it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Pause {
    pub reason: AccountPause,
    /// UPN's refusal as shown to people.
    pub message: String,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub since: DateTime<Utc>,
    /// Refused probes so far (the backoff grows with them).
    pub probes: u32,
    #[serde(with = "chrono::serde::ts_milliseconds_option", default)]
    pub next_probe_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub wait_ms: Option<i64>,
}

impl Pause {
    /// The pause after (another) refusal for `reason`.
    pub fn after_refusal(
        previous: Option<&Pause>,
        reason: AccountPause,
        message: &str,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Pause {
        let probes = previous.map_or(0, |p| p.probes).saturating_add(1);
        let schedule = Schedule::after(now, backoff(probes, jitter));
        Pause {
            reason,
            message: message.to_string(),
            since: previous.map_or(now, |p| p.since),
            probes,
            next_probe_at: schedule.next_attempt_at,
            wait_ms: schedule.wait_ms,
        }
    }

    fn schedule(&self) -> Schedule {
        Schedule {
            next_attempt_at: self.next_probe_at,
            wait_ms: self.wait_ms,
        }
    }

    /// Probe now (an explicit retry by a person).
    pub fn probe_now(mut self) -> Pause {
        self.next_probe_at = None;
        self.wait_ms = None;
        self
    }
}

/// The outbox's pauses, one per scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pauses {
    pub outbox: Option<Pause>,
    pub images: Option<Pause>,
}

impl Pauses {
    pub fn get(&self, scope: PauseScope) -> Option<&Pause> {
        match scope {
            PauseScope::Outbox => self.outbox.as_ref(),
            PauseScope::Images => self.images.as_ref(),
        }
    }

    /// The earliest instant the pauses let an item of `kind` go (`now` when none holds it).
    fn release_at(&self, kind: CaptureKind, now: DateTime<Utc>) -> DateTime<Utc> {
        [PauseScope::Outbox, PauseScope::Images]
            .into_iter()
            .filter(|s| s.covers(kind))
            .filter_map(|s| self.get(s))
            .map(|p| p.schedule().due_at(now))
            .max()
            .unwrap_or(now)
    }

    /// The scopes a success sending an item of `kind` proves working again.
    pub fn lifted_by_success(&self, kind: CaptureKind) -> Vec<PauseScope> {
        [PauseScope::Outbox, PauseScope::Images]
            .into_iter()
            .filter(|s| self.get(*s).is_some())
            .filter(|s| *s == PauseScope::Outbox || kind.is_photo())
            .collect()
    }
}

/// A queued item, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueuedItem<'a> {
    pub barcode: &'a str,
    pub kind: CaptureKind,
    /// Capture order on the device.
    pub seq: i64,
    pub schedule: Schedule,
    /// Bytes to upload (the rendition once made, the original before): what a data-saver
    /// budget counts.
    pub bytes: u64,
}

impl QueuedItem<'_> {
    fn due_at(&self, pauses: &Pauses, now: DateTime<Utc>) -> DateTime<Utc> {
        self.schedule
            .due_at(now)
            .max(pauses.release_at(self.kind, now))
    }
}

/// Indices into `items` in sending order: per consignment its POD before its photos, then
/// capture order.
pub fn sending_order(items: &[QueuedItem<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].barcode, items[i].kind.is_photo(), items[i].seq));
    order
}

/// What is due now, as indices into `items` in sending order, leaving out the photos the data
/// saver holds (a budget spent in that order).
pub fn due_now(
    items: &[QueuedItem<'_>],
    pauses: &Pauses,
    saver: &Saver,
    now: DateTime<Utc>,
) -> Vec<usize> {
    let due: Vec<usize> = sending_order(items)
        .into_iter()
        .filter(|&i| items[i].due_at(pauses, now) <= now)
        .collect();
    let holds = saver.holds(due.iter().map(|&i| (items[i].kind, items[i].bytes)));
    due.into_iter()
        .zip(holds)
        .filter_map(|(i, hold)| hold.is_none().then_some(i))
        .collect()
}

/// When the next pass should run for the items not due now, if any waits. A photo the data
/// saver holds wakes nothing until its hold ends by itself (a budget's next UTC day); a network
/// or policy change wakes the outbox explicitly.
pub fn next_wake(
    items: &[QueuedItem<'_>],
    pauses: &Pauses,
    saver: &Saver,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !due_now(items, pauses, saver, now).is_empty() {
        return Some(now);
    }
    items
        .iter()
        .filter_map(|i| match i.due_at(pauses, now) {
            // Due by its schedule, so held (nothing is due): nothing ahead of it spends.
            at if at <= now => saver
                .hold(i.kind, i.bytes, saver.spent_today)
                .and_then(Hold::ends_at),
            at => Some(at),
        })
        .min()
}

/// The state a new capture starts in, given its consignment's live POD (read in the same
/// transaction as the insert, so a POD sent meanwhile cannot leave a photo waiting).
pub fn initial_state(kind: CaptureKind, pod: Option<ItemState>) -> ItemState {
    if kind == CaptureKind::Pod || pod == Some(ItemState::Sent) {
        ItemState::Queued
    } else {
        ItemState::Waiting
    }
}

/// Something that happens to an item.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// The flush takes a queued item, before it reads or renders anything of it.
    Claim,
    /// UPN acknowledged the item and its receipt matches what was sent.
    Acknowledged,
    /// The request failed; `jitter` in [0, 1) spreads the retries.
    Failed {
        failure: &'a SendFailure,
        jitter: f64,
    },
    /// Preparing the upload failed: nothing left the device, so the attempt is not counted.
    PrepareFailed {
        failure: &'a SendFailure,
        jitter: f64,
    },
    /// A `sending` row found by a new pass: a crash or a cancelled pass cut it short.
    Recover,
    /// The flush claimed the item to prepare it while another uploaded, then the pass ended
    /// before its request left (offline, paused, deadline): queued again, the claim uncounted.
    Release,
    /// The consignment's POD reached UPN (releases a waiting photo).
    PodSent,
    /// An explicit retry; `pod_sent` says whether the consignment's POD reached UPN.
    Retry {
        pod_sent: bool,
    },
    Discard,
    /// A new signature replaces this POD.
    Replace,
    /// The background rendition of an unsent photo failed (its data cannot be decoded): it
    /// needs a person at once, before any flush. Nothing left the device, so no attempt counts.
    RenderFailed {
        reason: &'a str,
        code: OutboxReason,
    },
}

/// A transition to apply, compare-and-set, on the row still at (`from`, `from_attempts`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: ItemState,
    pub from_attempts: u32,
    pub to: ItemState,
    pub attempts: u32,
    pub schedule: Schedule,
    /// `Some` replaces the stored reason (`Some(None)` clears it); `None` keeps it.
    pub last_error: Option<Option<ItemError>>,
}

/// Why an event does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The item is being sent right now; try again in a moment.
    InFlight,
    /// The event makes no sense in this state (e.g. discarding a sent item).
    NotNow { state: ItemState },
}

/// The outbox state machine: the new state for `event`, or why it does not apply.
pub fn transition(
    item: ItemStatus,
    event: &Event<'_>,
    now: DateTime<Utc>,
) -> std::result::Result<Transition, Refusal> {
    use ItemState::*;
    let to = |to: ItemState, attempts: u32, schedule, last_error| Transition {
        from: item.state,
        from_attempts: item.attempts,
        to,
        attempts,
        schedule,
        last_error,
    };
    let same = item.attempts;
    let unsent = matches!(item.state, Waiting | Queued | NeedsAttention);
    Ok(match (item.state, event) {
        (Queued, Event::Claim) => to(Sending, same.saturating_add(1), Schedule::default(), None),
        (Sending, Event::Acknowledged) => to(Sent, same, Schedule::default(), Some(None)),
        (Sending, Event::Failed { failure, jitter }) => {
            failed(item, failure, *jitter, same, now, to)
        }
        (Sending, Event::PrepareFailed { failure, jitter }) => {
            failed(item, failure, *jitter, same.saturating_sub(1), now, to)
        }
        (Sending, Event::Recover) => to(Queued, same, Schedule::default(), None),
        (Sending, Event::Release) => to(Queued, same.saturating_sub(1), Schedule::default(), None),
        (Waiting, Event::PodSent) => to(Queued, same, Schedule::default(), None),
        (Sending, Event::Retry { .. } | Event::Discard | Event::Replace) => {
            return Err(Refusal::InFlight)
        }
        (Waiting, Event::Retry { pod_sent: false }) => {
            return Err(Refusal::NotNow { state: Waiting })
        }
        (Waiting | Queued | NeedsAttention, Event::Retry { pod_sent }) => {
            let state = if item.kind == CaptureKind::Pod || *pod_sent {
                Queued
            } else {
                Waiting
            };
            to(state, same, Schedule::default(), None)
        }
        (_, Event::Discard) if unsent => to(Discarded, same, Schedule::default(), None),
        (Waiting | Queued, Event::RenderFailed { reason, code }) => to(
            NeedsAttention,
            same,
            Schedule::default(),
            Some(Some(ItemError {
                reason: *code,
                text: reason.to_string(),
            })),
        ),
        (Sending, Event::RenderFailed { .. }) => return Err(Refusal::InFlight),
        // Never attempted: UPN cannot have it.
        (_, Event::Replace) if unsent && item.kind == CaptureKind::Pod && same == 0 => {
            to(Replaced, same, Schedule::default(), None)
        }
        (state, _) => return Err(Refusal::NotNow { state }),
    })
}

/// A failed attempt (counted as `attempts`), as the failure's kind decides.
fn failed(
    item: ItemStatus,
    failure: &SendFailure,
    jitter: f64,
    attempts: u32,
    now: DateTime<Utc>,
    to: impl Fn(ItemState, u32, Schedule, Option<Option<ItemError>>) -> Transition,
) -> Transition {
    let reason = Some(Some(ItemError {
        reason: failure.code,
        text: failure.reason.clone(),
    }));
    match failure.kind {
        FailureKind::Recoverable | FailureKind::Connectivity => {
            let mut wait = backoff(item.attempts.max(1), jitter);
            if let Some(asked) = failure.retry_after {
                wait = wait.max(asked.min(MAX_RETRY_AFTER));
            }
            to(
                ItemState::Queued,
                attempts,
                Schedule::after(now, wait),
                reason,
            )
        }
        // Held by the pause, not by a backoff of its own: it goes as soon as the pause lifts.
        FailureKind::Account(_) => to(ItemState::Queued, attempts, Schedule::default(), reason),
        FailureKind::Permanent => to(
            ItemState::NeedsAttention,
            attempts,
            Schedule::default(),
            reason,
        ),
    }
}

/// What a second signature does to the consignment's existing POD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResignDecision {
    /// No live POD: just capture.
    Capture,
    /// The first POD never left the device: replace it (and record that).
    Replace,
    /// The first POD is being sent right now: try again in a moment.
    InFlight,
    /// The first POD was (or may have been) sent: refuse.
    Refuse,
}

/// The same rule as [`Event::Replace`] in [`transition`], asked before anything is written.
pub fn resign(existing: Option<ItemStatus>, now: DateTime<Utc>) -> ResignDecision {
    match existing {
        None => ResignDecision::Capture,
        Some(s) if !s.state.is_live() => ResignDecision::Capture,
        Some(s) => match transition(s, &Event::Replace, now) {
            Ok(_) => ResignDecision::Replace,
            Err(Refusal::InFlight) => ResignDecision::InFlight,
            Err(Refusal::NotNow { .. }) => ResignDecision::Refuse,
        },
    }
}

/// What a receipt is for, for the reason a person reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipted {
    Photo,
    Signature,
}

/// Checks UPN's receipt (sha256 and size of what it stored under the key) against what was
/// sent: a mismatch means UPN holds other bytes under this key, which a person must look at.
pub fn check_receipt(
    what: Receipted,
    sent_sha256: &str,
    sent_bytes: u64,
    receipt_sha256: &str,
    receipt_bytes: u64,
) -> std::result::Result<(), SendFailure> {
    if sent_sha256.eq_ignore_ascii_case(receipt_sha256) && sent_bytes == receipt_bytes {
        return Ok(());
    }
    let what = match what {
        Receipted::Photo => "photo",
        Receipted::Signature => "signature",
    };
    Err(SendFailure {
        kind: FailureKind::Permanent,
        retry_after: None,
        code: OutboxReason::ReceiptMismatch,
        reason: format!(
            "UPN's receipt does not match the {what} sent ({receipt_bytes} bytes received, {sent_bytes} sent{}); check the {what} with UPN before retrying",
            if sent_sha256.eq_ignore_ascii_case(receipt_sha256) { "" } else { ", different content" }
        ),
    })
}

/// Checks the POD hash UPN reports having stored (when it reports one) against the one sent:
/// another hash under this key means UPN holds another POD body, which a person must look at.
pub fn check_pod_hash_receipt(
    sent: Option<&str>,
    received: Option<&str>,
) -> std::result::Result<(), SendFailure> {
    match (sent, received) {
        (Some(sent), Some(received)) if !sent.eq_ignore_ascii_case(received) => Err(SendFailure {
            kind: FailureKind::Permanent,
            retry_after: None,
            code: OutboxReason::ReceiptMismatch,
            reason: "UPN's receipt holds a different POD hash from the one sent; check the POD with UPN before retrying".into(),
        }),
        _ => Ok(()),
    }
}

/// Backoff after the `attempts`-th failed attempt: 5 s doubling up to 15 min, scaled by
/// `jitter` in [0, 1) into [50 %, 100 %] so a fleet of phones does not retry in lockstep.
pub fn backoff(attempts: u32, jitter: f64) -> Duration {
    const BASE_MS: u64 = 5_000;
    let cap_ms = MAX_BACKOFF.as_millis() as u64;
    let exp = attempts.saturating_sub(1).min(20);
    let full = BASE_MS.saturating_mul(1 << exp).min(cap_ms);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    Duration::from_millis((full as f64 * (0.5 + 0.5 * jitter)) as u64)
}

/// A stop's sync badge from the states of its captures (replaced and discarded ones ignored).
pub fn badge(items: &[(CaptureKind, ItemState)]) -> SyncBadge {
    let live: Vec<_> = items.iter().filter(|(_, s)| s.is_live()).collect();
    if live.is_empty() {
        return SyncBadge::None;
    }
    let any = |state: ItemState| live.iter().any(|(_, s)| *s == state);
    let has_pod = live.iter().any(|(k, _)| *k == CaptureKind::Pod);
    if any(ItemState::NeedsAttention) {
        SyncBadge::NeedsAttention
    } else if any(ItemState::Sending) {
        SyncBadge::Sending
    } else if !has_pod {
        SyncBadge::WaitingForSignature
    } else if any(ItemState::Queued) || any(ItemState::Waiting) {
        SyncBadge::Queued
    } else {
        SyncBadge::Sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()
    }

    #[test]
    fn codes_round_trip() {
        for s in [
            ItemState::Waiting,
            ItemState::Queued,
            ItemState::Sending,
            ItemState::Sent,
            ItemState::NeedsAttention,
            ItemState::Replaced,
            ItemState::Discarded,
        ] {
            assert_eq!(ItemState::from_code(s.code()), Some(s));
        }
        for k in [
            CaptureKind::Pod,
            CaptureKind::Goods,
            CaptureKind::Location,
            CaptureKind::LeaveSafe,
        ] {
            assert_eq!(CaptureKind::from_code(k.code()), Some(k));
        }
        assert_eq!(CaptureKind::photo("pod"), None);
        assert_eq!(
            CaptureKind::photo("leave_safe"),
            Some(CaptureKind::LeaveSafe)
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(5));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(2_500));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(3, 1.0), Duration::from_secs(20));
        assert_eq!(backoff(100, 1.0), Duration::from_secs(900));
        assert_eq!(backoff(100, f64::NAN), Duration::from_secs(450));
        for a in 1..40 {
            assert!(backoff(a, 0.3) <= Duration::from_secs(900));
        }
    }

    fn item(kind: CaptureKind, state: ItemState, attempts: u32) -> ItemStatus {
        ItemStatus {
            kind,
            state,
            attempts,
        }
    }

    fn failure(kind: FailureKind, retry_after: Option<Duration>) -> SendFailure {
        SendFailure {
            kind,
            retry_after,
            code: OutboxReason::Other,
            reason: "x".into(),
        }
    }

    fn failed_at(f: &SendFailure, attempts: u32) -> Transition {
        let sending = item(CaptureKind::Pod, ItemState::Sending, attempts);
        let event = Event::Failed {
            failure: f,
            jitter: 1.0,
        };
        transition(sending, &event, now()).unwrap()
    }

    #[test]
    fn a_released_claim_is_queued_again_without_counting_an_attempt() {
        let claimed = transition(
            item(CaptureKind::Goods, ItemState::Queued, 2),
            &Event::Claim,
            now(),
        )
        .unwrap();
        let sending = item(CaptureKind::Goods, ItemState::Sending, claimed.attempts);
        let t = transition(sending, &Event::Release, now()).unwrap();
        assert_eq!((t.to, t.attempts), (ItemState::Queued, 2));
        assert!(transition(
            item(CaptureKind::Pod, ItemState::Queued, 0),
            &Event::Release,
            now()
        )
        .is_err());
    }

    #[test]
    fn a_failed_background_rendition_needs_attention_unless_in_flight_or_gone() {
        let event = Event::RenderFailed {
            reason: "damaged",
            code: OutboxReason::RenditionFailed,
        };
        for state in [ItemState::Waiting, ItemState::Queued] {
            let t = transition(item(CaptureKind::Goods, state, 2), &event, now()).unwrap();
            assert_eq!(
                (t.from, t.to, t.attempts),
                (state, ItemState::NeedsAttention, 2)
            );
            assert_eq!(
                t.last_error,
                Some(Some(ItemError {
                    reason: OutboxReason::RenditionFailed,
                    text: "damaged".into()
                }))
            );
        }
        let sending = item(CaptureKind::Goods, ItemState::Sending, 1);
        assert_eq!(transition(sending, &event, now()), Err(Refusal::InFlight));
        for state in [
            ItemState::Sent,
            ItemState::Discarded,
            ItemState::Replaced,
            ItemState::NeedsAttention,
        ] {
            assert_eq!(
                transition(item(CaptureKind::Goods, state, 1), &event, now()),
                Err(Refusal::NotNow { state })
            );
        }
    }

    #[test]
    fn failures_are_decided_by_their_kind() {
        let t = failed_at(&failure(FailureKind::Recoverable, None), 1);
        assert_eq!((t.to, t.attempts), (ItemState::Queued, 1));
        assert_eq!(
            t.schedule.next_attempt_at,
            Some(now() + chrono::Duration::seconds(5))
        );
        let t = failed_at(
            &failure(FailureKind::Recoverable, Some(Duration::from_secs(120))),
            1,
        );
        assert_eq!(
            t.schedule.next_attempt_at,
            Some(now() + chrono::Duration::seconds(120))
        );
        let t = failed_at(&failure(FailureKind::Connectivity, None), 2);
        assert_eq!(t.to, ItemState::Queued);
        let t = failed_at(&failure(FailureKind::Permanent, None), 1);
        assert_eq!(t.to, ItemState::NeedsAttention);
        assert_eq!(
            t.last_error,
            Some(Some(ItemError {
                reason: OutboxReason::Other,
                text: "x".into()
            }))
        );
        for account in [
            AccountPause::CredentialsRejected,
            AccountPause::IntegrationDisabled,
            AccountPause::ImageActionDisabled,
        ] {
            let t = failed_at(&failure(FailureKind::Account(account), None), 1);
            assert_eq!(t.to, ItemState::Queued, "{account:?} never strands an item");
            assert_eq!(t.schedule, Schedule::default());
        }
    }

    #[test]
    fn a_huge_retry_after_is_clamped_and_never_overflows() {
        let huge = failure(FailureKind::Recoverable, Some(Duration::MAX));
        let t = failed_at(&huge, 1);
        assert_eq!(
            t.schedule.next_attempt_at,
            Some(now() + chrono::Duration::hours(1))
        );
        let end_of_time = DateTime::<Utc>::MAX_UTC;
        let sending = item(CaptureKind::Goods, ItemState::Sending, u32::MAX);
        let event = Event::Failed {
            failure: &huge,
            jitter: 0.5,
        };
        let t = transition(sending, &event, end_of_time).unwrap();
        assert!(t.schedule.is_due(end_of_time) || t.schedule.next_attempt_at.is_some());
    }

    #[test]
    fn a_clock_set_back_does_not_stall_retries() {
        let s = Schedule::after(now(), Duration::from_secs(600));
        assert!(!s.is_due(now() + chrono::Duration::seconds(599)));
        assert!(s.is_due(now() + chrono::Duration::seconds(600)));
        // The clock went back by a day, or by a minute: the wait is over at once.
        assert!(s.is_due(now() - chrono::Duration::days(1)));
        assert!(s.is_due(now() - chrono::Duration::minutes(1)));
        // Older rows without a recorded wait: at most an hour ahead is believed.
        let old = Schedule {
            next_attempt_at: Some(now() + chrono::Duration::days(400)),
            wait_ms: None,
        };
        assert!(old.is_due(now()));
    }

    #[test]
    fn the_state_machine_refuses_what_does_not_apply() {
        use CaptureKind::*;
        use ItemState::*;
        let t = transition(item(Pod, Queued, 0), &Event::Claim, now()).unwrap();
        assert_eq!((t.from, t.to, t.attempts), (Queued, Sending, 1));
        for state in [Waiting, Sending, Sent, NeedsAttention, Replaced, Discarded] {
            assert!(transition(item(Pod, state, 0), &Event::Claim, now()).is_err());
        }
        for event in [
            Event::Discard,
            Event::Replace,
            Event::Retry { pod_sent: true },
        ] {
            assert_eq!(
                transition(item(Pod, Sending, 1), &event, now()),
                Err(Refusal::InFlight)
            );
        }
        assert_eq!(
            transition(item(Pod, Sent, 1), &Event::Discard, now()),
            Err(Refusal::NotNow { state: Sent })
        );
        assert!(transition(item(Pod, Sent, 1), &Event::Acknowledged, now()).is_err());
        let retry = |kind, state, pod_sent| {
            transition(item(kind, state, 1), &Event::Retry { pod_sent }, now()).map(|t| t.to)
        };
        assert_eq!(retry(Pod, NeedsAttention, false), Ok(Queued));
        assert_eq!(retry(Goods, NeedsAttention, false), Ok(Waiting));
        assert_eq!(retry(Goods, NeedsAttention, true), Ok(Queued));
        assert_eq!(retry(Goods, Waiting, true), Ok(Queued));
        assert!(retry(Goods, Waiting, false).is_err());
        let t = transition(item(Goods, Waiting, 0), &Event::PodSent, now()).unwrap();
        assert_eq!(t.to, Queued);
        let f = failure(FailureKind::Permanent, None);
        let event = Event::PrepareFailed {
            failure: &f,
            jitter: 0.0,
        };
        let t = transition(item(Pod, Sending, 1), &event, now()).unwrap();
        assert_eq!(
            (t.to, t.attempts),
            (NeedsAttention, 0),
            "nothing left the device"
        );
    }

    #[test]
    fn photos_start_queued_only_once_their_pod_is_sent() {
        use ItemState::*;
        assert_eq!(initial_state(CaptureKind::Pod, None), Queued);
        assert_eq!(initial_state(CaptureKind::Goods, None), Waiting);
        assert_eq!(initial_state(CaptureKind::Goods, Some(Sending)), Waiting);
        assert_eq!(initial_state(CaptureKind::LeaveSafe, Some(Sent)), Queued);
    }

    #[test]
    fn due_items_go_pod_first_and_pauses_hold_their_scope() {
        let later = Schedule::after(now(), Duration::from_secs(60));
        let items = [
            QueuedItem {
                barcode: "B",
                kind: CaptureKind::Goods,
                seq: 1,
                schedule: Schedule::default(),
                bytes: 10,
            },
            QueuedItem {
                barcode: "B",
                kind: CaptureKind::Pod,
                seq: 2,
                schedule: Schedule::default(),
                bytes: 10,
            },
            QueuedItem {
                barcode: "A",
                kind: CaptureKind::Pod,
                seq: 3,
                schedule: later,
                bytes: 10,
            },
        ];
        let none = Pauses::default();
        let off = Saver::off(now());
        assert_eq!(due_now(&items, &none, &off, now()), vec![1, 0]);
        assert_eq!(next_wake(&items, &none, &off, now()), Some(now()));
        let images =
            Pause::after_refusal(None, AccountPause::ImageActionDisabled, "off", now(), 1.0);
        assert_eq!(
            images.next_probe_at,
            Some(now() + chrono::Duration::seconds(5))
        );
        let paused = Pauses {
            outbox: None,
            images: Some(images.clone()),
        };
        assert_eq!(due_now(&items, &paused, &off, now()), vec![1]);
        let all = Pauses {
            outbox: Some(images.clone()),
            images: None,
        };
        assert!(due_now(&items, &all, &off, now()).is_empty());
        assert_eq!(
            next_wake(&items, &all, &off, now()),
            Some(now() + chrono::Duration::seconds(5))
        );
        assert_eq!(
            due_now(&items, &all, &off, now() + chrono::Duration::seconds(5)),
            vec![1, 0]
        );
        let again = Pause::after_refusal(Some(&images), images.reason, "off", now(), 1.0);
        assert_eq!((again.probes, again.since), (2, now()));
        assert_eq!(paused.lifted_by_success(CaptureKind::Pod), vec![]);
        assert_eq!(
            paused.lifted_by_success(CaptureKind::Goods),
            vec![PauseScope::Images]
        );
    }

    #[test]
    fn the_data_saver_leaves_held_photos_out_and_wakes_only_when_a_hold_ends() {
        use super::super::data_saver::DataSaver;
        let item = |barcode, kind, seq, bytes, schedule| QueuedItem {
            barcode,
            kind,
            seq,
            schedule,
            bytes,
        };
        let later = Schedule::after(now(), Duration::from_secs(60));
        let items = [
            item("A", CaptureKind::Goods, 2, 600_000, Schedule::default()),
            item("A", CaptureKind::Pod, 1, 5_000_000, Schedule::default()),
            item("A", CaptureKind::Goods, 3, 600_000, Schedule::default()),
            item("B", CaptureKind::Goods, 4, 600_000, later),
        ];
        let none = Pauses::default();
        let saver = |policy, metered, spent_today| Saver {
            policy,
            metered,
            spent_today,
            now: now(),
        };
        let wifi_only = saver(DataSaver::PhotosOnUnmetered, true, 0);
        assert_eq!(
            due_now(&items, &none, &wifi_only, now()),
            vec![1],
            "the POD goes"
        );
        let unmetered = saver(DataSaver::PhotosOnUnmetered, false, 0);
        assert_eq!(due_now(&items, &none, &unmetered, now()), vec![1, 0, 2]);
        let budget = DataSaver::MeteredPhotoBudget {
            bytes_per_day: 1_000_000,
        };
        // 600 kB fits the 1 MB budget once: the second photo is held.
        let metered = saver(budget, true, 0);
        assert_eq!(due_now(&items, &none, &metered, now()), vec![1, 0]);
        assert_eq!(next_wake(&items, &none, &metered, now()), Some(now()));
        // With the budget spent and the POD gone, only the backoff of B and tomorrow remain.
        let spent = saver(budget, true, 500_000);
        let photos = &items[2..3];
        assert!(due_now(photos, &none, &spent, now()).is_empty());
        let midnight = Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap();
        assert_eq!(next_wake(photos, &none, &spent, now()), Some(midnight));
        assert_eq!(
            next_wake(&items[2..], &none, &spent, now()),
            Some(now() + chrono::Duration::seconds(60))
        );
        // Held until Wi-Fi: nothing wakes the outbox by itself (no spinning on a held photo).
        assert_eq!(next_wake(photos, &none, &wifi_only, now()), None);
        assert_eq!(next_wake(photos, &none, &unmetered, now()), Some(now()));
    }

    #[test]
    fn image_receipts_must_match_what_was_sent() {
        assert!(check_receipt(Receipted::Photo, "ab", 3, "AB", 3).is_ok());
        let e = check_receipt(Receipted::Photo, "ab", 3, "cd", 3).unwrap_err();
        assert_eq!(e.kind, FailureKind::Permanent);
        assert!(check_receipt(Receipted::Photo, "ab", 3, "ab", 4).is_err());
        let e = check_receipt(Receipted::Signature, "ab", 3, "ab", 4).unwrap_err();
        assert!(e.reason.contains("signature"), "{}", e.reason);
    }

    #[test]
    fn a_signature_can_be_replaced_only_before_any_attempt() {
        let pod = |state, attempts| Some(item(CaptureKind::Pod, state, attempts));
        assert_eq!(resign(None, now()), ResignDecision::Capture);
        assert_eq!(
            resign(pod(ItemState::Queued, 0), now()),
            ResignDecision::Replace
        );
        assert_eq!(
            resign(pod(ItemState::Queued, 1), now()),
            ResignDecision::Refuse
        );
        assert_eq!(
            resign(pod(ItemState::Sending, 1), now()),
            ResignDecision::InFlight
        );
        assert_eq!(
            resign(pod(ItemState::Sent, 1), now()),
            ResignDecision::Refuse
        );
        assert_eq!(
            resign(pod(ItemState::Discarded, 3), now()),
            ResignDecision::Capture
        );
    }

    #[test]
    fn badges_follow_the_captures() {
        use CaptureKind::*;
        use ItemState::*;
        assert_eq!(badge(&[]), SyncBadge::None);
        assert_eq!(badge(&[(Goods, Waiting)]), SyncBadge::WaitingForSignature);
        assert_eq!(badge(&[(Goods, Waiting), (Pod, Queued)]), SyncBadge::Queued);
        assert_eq!(
            badge(&[(Goods, Waiting), (Pod, Sending)]),
            SyncBadge::Sending
        );
        assert_eq!(badge(&[(Goods, Sent), (Pod, Sent)]), SyncBadge::Sent);
        assert_eq!(
            badge(&[(Goods, Queued), (Pod, NeedsAttention)]),
            SyncBadge::NeedsAttention
        );
        assert_eq!(badge(&[(Pod, Replaced), (Pod, Sent)]), SyncBadge::Sent);
    }
}
