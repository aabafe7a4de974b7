//! Tracking events and the rules that turn them into a current status and a timeline.
//!
//! # What an event touches
//! - Capture type `C`: the consignment **and all its pallets**.
//! - Capture type `P` with a pallet barcode: **that pallet only**.
//! - Anything else (a `P` without a pallet, a capture type UPN may add later): nothing's status;
//!   the event is still kept and shown in the timeline, verbatim.
//!
//! # The status rule: time order, and nothing else
//! The current status of a consignment is the stage of its newest `C` event; the current status
//! of a pallet is the stage of the newest event among its consignment's `C` events and its own
//! `P` events. "Newest" is UPN's event time (`at`), never arrival order. So:
//! - an event that arrives late with an older time never replaces a newer status, whatever its
//!   stage (out-of-order delivery of the feed cannot move a status backwards);
//! - exceptions are not special: a later `CARDED` shows over `OUT_FOR_DELIVERY`; a later
//!   `OUT_FOR_DELIVERY` after `CARDED` (the redelivery) shows again; a later `COMPLAINT_RAISED`
//!   shows even after `DELIVERED`;
//! - an unknown stage code that is newest is the current status, shown verbatim.
//!
//! Ties (the same time to the millisecond, the precision stored) are broken so the result never
//! depends on arrival order: the stage further along wins (`BOOKED` < `OUT_FOR_DELIVERY` <
//! `ARRIVED` < `UNLOADED` < `DELIVERED` < `CARDED` < `COMPLAINT_RAISED`, exceptions last because
//! they need someone's attention), unknown codes rank below every known one, and between two
//! unknown codes the code's text decides. Because this is a total order, applying events one by
//! one and recomputing from all stored events always agree.
//!
//! Events recorded by this device (`Source::Device`) appear in the timeline but never change the
//! status: the status is UPN's view.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use super::consignment::Stage;

/// Whether an event concerns the whole consignment or one pallet. Unknown codes are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CaptureType {
    /// `C`: the consignment and all its pallets.
    Consignment,
    /// `P`: one pallet.
    Pallet,
    Other(String),
}

impl CaptureType {
    pub fn from_code(code: &str) -> Self {
        match code {
            "C" => Self::Consignment,
            "P" => Self::Pallet,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Self::Consignment => "C",
            Self::Pallet => "P",
            Self::Other(code) => code,
        }
    }
}

/// Who recorded an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// UPN's tracking feed.
    Upn,
    /// This device (e.g. the POD the driver captured).
    Device,
}

impl Source {
    pub fn code(self) -> &'static str {
        match self {
            Source::Upn => "upn",
            Source::Device => "device",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "upn" => Some(Source::Upn),
            "device" => Some(Source::Device),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Source::Upn => "UPN",
            Source::Device => "this device",
        }
    }
}

/// Where an event happened, as far as it is known.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Location {
    pub description: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl Location {
    /// "Castle Joinery Ltd, Wakefield (53.67410, -1.49120)", or what part of it is known.
    pub fn text(&self) -> String {
        let coords = match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => Some(format!("({lat:.5}, {lon:.5})")),
            _ => None,
        };
        match (&self.description, coords) {
            (Some(d), Some(c)) => format!("{d} {c}"),
            (Some(d), None) => d.clone(),
            (None, Some(c)) => c,
            (None, None) => String::new(),
        }
    }
}

/// One tracking event, translated from the wire (or recorded by the device).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackingEvent {
    /// Unique and stable: the key for idempotent application.
    pub id: String,
    /// Consignment barcode.
    pub barcode: String,
    pub pallet: Option<String>,
    pub capture_type: CaptureType,
    pub stage: Stage,
    /// When it happened (UPN's clock), to the millisecond.
    pub at: DateTime<Utc>,
    pub location: Option<Location>,
    pub source: Source,
}

/// Which statuses an event may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The consignment and every one of its pallets.
    ConsignmentAndPallets,
    /// One pallet of the consignment, by barcode.
    Pallet(&'a str),
    /// No status: the event is only kept for the timeline.
    TimelineOnly,
}

/// What an event touches (see the module documentation).
pub fn target(event: &TrackingEvent) -> Target<'_> {
    if event.source != Source::Upn {
        return Target::TimelineOnly;
    }
    match (&event.capture_type, event.pallet.as_deref()) {
        (CaptureType::Consignment, _) => Target::ConsignmentAndPallets,
        (CaptureType::Pallet, Some(pallet)) if !pallet.trim().is_empty() => Target::Pallet(pallet),
        _ => Target::TimelineOnly,
    }
}

/// A status and the time of the event that set it: what the store keeps per consignment and
/// per pallet (`stage`, `stage_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMark {
    pub stage: Stage,
    pub at: DateTime<Utc>,
}

impl StageMark {
    pub fn new(stage: Stage, at: DateTime<Utc>) -> Self {
        Self {
            stage,
            at: to_millis(at),
        }
    }

    pub fn of(event: &TrackingEvent) -> Self {
        Self::new(event.stage.clone(), event.at)
    }
}

/// Where a stage sits when two events carry the same time: further along the delivery wins,
/// exceptions over the normal flow, unknown codes lowest.
pub fn tie_rank(stage: &Stage) -> u8 {
    match stage {
        Stage::Other(_) => 0,
        Stage::Booked => 1,
        Stage::OutForDelivery => 2,
        Stage::Arrived => 3,
        Stage::Unloaded => 4,
        Stage::Delivered => 5,
        Stage::Carded => 6,
        Stage::ComplaintRaised => 7,
    }
}

/// The total order of the status rule: time first, then [`tie_rank`], then the code's text.
pub fn compare_marks(a: &StageMark, b: &StageMark) -> Ordering {
    to_millis(a.at)
        .cmp(&to_millis(b.at))
        .then_with(|| tie_rank(&a.stage).cmp(&tie_rank(&b.stage)))
        .then_with(|| a.stage.code().cmp(b.stage.code()))
}

/// Whether `candidate` becomes the current status over `current`.
pub fn supersedes(candidate: &StageMark, current: Option<&StageMark>) -> bool {
    match current {
        None => true,
        Some(current) => compare_marks(candidate, current) == Ordering::Greater,
    }
}

/// The newer of two optional marks under the status rule.
pub fn newest(a: Option<StageMark>, b: Option<StageMark>) -> Option<StageMark> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if supersedes(&b, Some(&a)) { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Keeps `slot` at the newest of itself and `candidate`.
pub fn keep_newest(slot: &mut Option<StageMark>, candidate: StageMark) {
    if supersedes(&candidate, slot.as_ref()) {
        *slot = Some(candidate);
    }
}

/// Times are kept to the millisecond (what the store holds), so a comparison in memory and one
/// after a round trip through the store always agree.
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::Duration::milliseconds(1))
        .unwrap_or(t)
}

/// One line of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// The event id (UPN's, or the device's own).
    pub id: String,
    pub at: DateTime<Utc>,
    pub stage: Stage,
    pub capture_type: CaptureType,
    pub pallet: Option<String>,
    pub location: Option<Location>,
    pub source: Source,
}

impl From<&TrackingEvent> for TimelineEntry {
    fn from(e: &TrackingEvent) -> Self {
        Self {
            id: e.id.clone(),
            at: e.at,
            stage: e.stage.clone(),
            capture_type: e.capture_type.clone(),
            pallet: e.pallet.clone(),
            location: e.location.clone(),
            source: e.source,
        }
    }
}

/// Timeline order: time, then the status rule's tie order, then the id, so the list reads the
/// same on every device whatever order the events arrived in.
pub fn sort_timeline(entries: &mut [TimelineEntry]) {
    entries.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then_with(|| tie_rank(&a.stage).cmp(&tie_rank(&b.stage)))
            .then_with(|| a.stage.code().cmp(b.stage.code()))
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// Whether an entry belongs on the timeline of `pallet` (its own events and every `C` event).
pub fn concerns_pallet(entry: &TimelineEntry, pallet: &str) -> bool {
    match entry.capture_type {
        CaptureType::Consignment => true,
        _ => entry.pallet.as_deref() == Some(pallet),
    }
}

/// The status rule folded over some events of one consignment: the newest `C` mark, and per
/// pallet the newest of its own `P` marks. The one fold: the store folds a batch's new events
/// with it, and all of a consignment's stored events at import ([`current_stages`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marks<'a> {
    pub consignment: Option<StageMark>,
    /// Pallet barcode (as the `P` events name it) → its newest own mark.
    pub pallets: BTreeMap<&'a str, StageMark>,
}

impl<'a> Marks<'a> {
    pub fn of(events: impl IntoIterator<Item = &'a TrackingEvent>) -> Self {
        let mut marks = Self::default();
        for event in events {
            marks.add(event);
        }
        marks
    }

    /// Folds one more event in (order does not matter).
    pub fn add(&mut self, event: &'a TrackingEvent) {
        match target(event) {
            Target::ConsignmentAndPallets => {
                keep_newest(&mut self.consignment, StageMark::of(event))
            }
            Target::Pallet(p) => {
                let mut slot = self.pallets.remove(p);
                keep_newest(&mut slot, StageMark::of(event));
                if let Some(mark) = slot {
                    self.pallets.insert(p, mark);
                }
            }
            Target::TimelineOnly => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.consignment.is_none() && self.pallets.is_empty()
    }

    /// A pallet's status: the newer of its own mark and its consignment's.
    pub fn pallet(&self, pallet: &str) -> Option<StageMark> {
        newest(self.pallets.get(pallet).cloned(), self.consignment.clone())
    }
}

/// The current statuses that the events of one consignment give, computed from scratch: the
/// consignment's, and each listed pallet's. Equal to applying the same events one by one.
pub fn current_stages<'a>(
    events: impl IntoIterator<Item = &'a TrackingEvent>,
    pallets: &[&str],
) -> (Option<StageMark>, Vec<Option<StageMark>>) {
    let marks = Marks::of(events);
    let per_pallet = pallets.iter().map(|p| marks.pallet(p)).collect();
    (marks.consignment, per_pallet)
}

/// The tracking timeline of one consignment: everything (its own and its pallets' events), and
/// per pallet what applies to that pallet (every `C` event and its own `P` events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub barcode: String,
    /// Every event of the consignment, in time order.
    pub consignment: Vec<TimelineEntry>,
    /// One timeline per pallet: the consignment's pallets in manifest order, then any pallet
    /// that only UPN's pallet events name.
    pub pallets: Vec<PalletTimeline>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PalletTimeline {
    pub pallet: String,
    pub entries: Vec<TimelineEntry>,
}

impl Timeline {
    /// Builds the timelines from a consignment's entries (any order) and its pallet barcodes.
    pub fn build(barcode: &str, mut entries: Vec<TimelineEntry>, pallets: &[&str]) -> Self {
        sort_timeline(&mut entries);
        let mut names: Vec<String> = pallets.iter().map(|p| (*p).to_string()).collect();
        for e in &entries {
            if let (CaptureType::Pallet, Some(p)) = (&e.capture_type, &e.pallet) {
                if !names.contains(p) {
                    names.push(p.clone());
                }
            }
        }
        let pallets = names
            .into_iter()
            .map(|pallet| PalletTimeline {
                entries: entries
                    .iter()
                    .filter(|e| concerns_pallet(e, &pallet))
                    .cloned()
                    .collect(),
                pallet,
            })
            .collect();
        Self {
            barcode: barcode.to_string(),
            consignment: entries,
            pallets,
        }
    }

    /// The timeline of one pallet, if the consignment has it.
    pub fn pallet(&self, pallet: &str) -> Option<&[TimelineEntry]> {
        self.pallets
            .iter()
            .find(|p| p.pallet == pallet)
            .map(|p| p.entries.as_slice())
    }
}

/// Whether tracking is stale: the device is online and no pull has succeeded for `stale_after`,
/// counted from the last success, or from the first attempt if none has ever succeeded.
/// Offline, or before any attempt, it is not stale (nothing could have been pulled).
pub fn is_stale(
    online: bool,
    now: DateTime<Utc>,
    last_success: Option<DateTime<Utc>>,
    first_attempt: Option<DateTime<Utc>>,
    stale_after: std::time::Duration,
) -> bool {
    let Some(since) = last_success.or(first_attempt) else {
        return false;
    };
    let limit = chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
    online && now.signed_duration_since(since) >= limit
}

/// Version of the tracking parser (per-event parsing and [`event_problem`]). Stored with every
/// batch kept as failed and every event kept aside, so a newer parser looks at them again.
pub const PARSER_VERSION: u32 = 2;

/// Longest id, barcode, pallet, capture type or stage code taken from UPN.
pub const MAX_CODE_CHARS: usize = 128;

/// Why an event translated from UPN cannot be applied, or `None` when it can. Each event is
/// judged on its own: a bad one is kept aside with this reason and the rest of its batch applies.
/// The reason names the field, never its value (UPN's data may be personal).
pub fn event_problem(e: &TrackingEvent) -> Option<String> {
    let code_fields = [
        ("id", Some(e.id.as_str())),
        ("barcode", Some(e.barcode.as_str())),
        ("pallet", e.pallet.as_deref()),
        ("capture_type", Some(e.capture_type.code())),
        ("stage", Some(e.stage.code())),
    ];
    for (field, value) in code_fields {
        let Some(value) = value else { continue };
        if value.trim().is_empty() {
            return Some(format!("{field} is empty"));
        }
        if value.chars().count() > MAX_CODE_CHARS {
            return Some(format!(
                "{field} is longer than {MAX_CODE_CHARS} characters"
            ));
        }
        if value.chars().any(char::is_control) {
            return Some(format!("{field} holds control characters"));
        }
    }
    if !super::year_in_range(e.at.year()) {
        let (first, last) = (super::INSTANT_YEARS.start(), super::INSTANT_YEARS.end());
        return Some(format!("at is outside the years {first}..={last}"));
    }
    if let Some(l) = &e.location {
        if l.lat.is_some_and(|v| !(-90.0..=90.0).contains(&v)) {
            return Some("location.lat is outside -90 to 90".into());
        }
        if l.lon.is_some_and(|v| !(-180.0..=180.0).contains(&v)) {
            return Some("location.lon is outside -180 to 180".into());
        }
    }
    None
}

/// How big a tracking batch to ask for: start small, grow with measured throughput, shrink after
/// a timeout. Because UPN's feed is consuming, a batch that cannot arrive before the connection
/// gives up is lost to this device; asking for what the link carries in
/// [`batch_size::BATCH_TARGET_SECS`] keeps every batch well inside the idle and total limits.
pub mod batch_size {
    /// The first ask on a device, before anything was measured.
    pub const START: u32 = 500;
    /// Never ask for fewer (a timeout at this size is the link, not the batch).
    pub const MIN: u32 = 50;
    /// UPN's cap.
    pub const MAX: u32 = 5000;
    /// A full batch should arrive in about this long at the measured rate.
    pub const BATCH_TARGET_SECS: u64 = 20;
    /// At most this factor of growth per batch, so one fast measurement cannot overshoot.
    pub const GROWTH: u32 = 10;

    /// What one take measured.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Take {
        /// A response arrived: `events` of the `asked`, in `bytes`, over `elapsed_ms`.
        Received {
            asked: u32,
            events: u32,
            bytes: u64,
            elapsed_ms: u64,
        },
        /// The response did not arrive in time.
        TimedOut,
    }

    /// The size to ask for next. Only a full batch says how much the link carries; a partial one
    /// (the feed ran dry) keeps the current size.
    pub fn next(current: u32, take: Take) -> u32 {
        let current = current.clamp(MIN, MAX);
        match take {
            Take::TimedOut => (current / 2).max(MIN),
            Take::Received {
                asked,
                events,
                bytes,
                elapsed_ms,
            } => {
                if events == 0 || events < asked || bytes == 0 {
                    return current;
                }
                let bytes_per_event = (bytes / u64::from(events)).max(1);
                let bytes_per_s = bytes.saturating_mul(1000) / elapsed_ms.max(1);
                let fits = bytes_per_s.saturating_mul(BATCH_TARGET_SECS) / bytes_per_event;
                let fits = u32::try_from(fits).unwrap_or(u32::MAX);
                fits.min(current.saturating_mul(GROWTH)).clamp(MIN, MAX)
            }
        }
    }

    /// Bytes per second measured by a take, when it measured anything.
    pub fn throughput(take: Take) -> Option<u64> {
        match take {
            Take::Received {
                bytes, elapsed_ms, ..
            } if bytes > 0 => Some(bytes.saturating_mul(1000) / elapsed_ms.max(1)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod guard_tests {
    use super::batch_size::{next, Take, MAX, MIN, START};
    use super::*;
    use chrono::TimeZone;

    fn ok_event() -> TrackingEvent {
        TrackingEvent {
            id: "E1".into(),
            barcode: "UPN0420000001".into(),
            pallet: None,
            capture_type: CaptureType::Consignment,
            stage: Stage::from_code("BOOKED"),
            at: Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap(),
            location: None,
            source: Source::Upn,
        }
    }

    #[test]
    fn tracking_event_problems_name_the_field_not_the_value() {
        assert_eq!(event_problem(&ok_event()), None);
        let mut e = ok_event();
        e.stage = Stage::from_code(" ");
        assert_eq!(event_problem(&e).as_deref(), Some("stage is empty"));
        let mut e = ok_event();
        e.capture_type = CaptureType::from_code("");
        assert_eq!(event_problem(&e).as_deref(), Some("capture_type is empty"));
        let mut e = ok_event();
        e.barcode = "SECRET\u{7}".into();
        let reason = event_problem(&e).unwrap();
        assert!(!reason.contains("SECRET"), "{reason}");
        let mut e = ok_event();
        e.at = Utc.with_ymd_and_hms(1969, 12, 31, 23, 0, 0).unwrap();
        assert!(event_problem(&e).unwrap().starts_with("at "));
        let mut e = ok_event();
        e.location = Some(Location {
            description: None,
            lat: Some(91.0),
            lon: None,
        });
        assert!(event_problem(&e).unwrap().contains("lat"));
    }

    #[test]
    fn tracking_batch_size_starts_small_grows_with_throughput_and_halves_on_timeout() {
        // Loopback: 500 full events of 200 bytes in 50 ms: grow, by at most the growth factor.
        let fast = Take::Received {
            asked: START,
            events: START,
            bytes: 100_000,
            elapsed_ms: 50,
        };
        assert_eq!(next(START, fast), MAX);
        assert_eq!(next(100, fast), 1000);
        // 15 KB/s with 250-byte events: 20 s carry 1200 events.
        let slow = Take::Received {
            asked: 5000,
            events: 5000,
            bytes: 1_250_000,
            elapsed_ms: 83_000,
        };
        assert_eq!(next(5000, slow), 1204);
        // The feed ran dry: nothing learned.
        let partial = Take::Received {
            asked: 500,
            events: 3,
            bytes: 600,
            elapsed_ms: 1,
        };
        assert_eq!(next(500, partial), 500);
        assert_eq!(next(500, Take::TimedOut), 250);
        assert_eq!(next(MIN, Take::TimedOut), MIN);
        assert_eq!(next(u32::MAX, Take::TimedOut), MAX / 2);
        let zero_time = Take::Received {
            asked: 50,
            events: 50,
            bytes: u64::MAX,
            elapsed_ms: 0,
        };
        assert!((MIN..=MAX).contains(&next(50, zero_time)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, h, m, 0).unwrap()
    }

    fn ev(
        id: &str,
        ct: &str,
        pallet: Option<&str>,
        stage: &str,
        at: DateTime<Utc>,
    ) -> TrackingEvent {
        TrackingEvent {
            id: id.into(),
            barcode: "UPN0420000001".into(),
            pallet: pallet.map(Into::into),
            capture_type: CaptureType::from_code(ct),
            stage: Stage::from_code(stage),
            at,
            location: None,
            source: Source::Upn,
        }
    }

    fn mark(stage: &str, at: DateTime<Utc>) -> StageMark {
        StageMark::new(Stage::from_code(stage), at)
    }

    const ALL: [&str; 8] = [
        "BOOKED",
        "OUT_FOR_DELIVERY",
        "ARRIVED",
        "UNLOADED",
        "DELIVERED",
        "CARDED",
        "COMPLAINT_RAISED",
        "HELD_AT_HUB",
    ];

    #[test]
    fn capture_types_round_trip_and_unknown_ones_survive() {
        for code in ["C", "P", "X", ""] {
            assert_eq!(CaptureType::from_code(code).code(), code);
        }
        assert_eq!(CaptureType::from_code("C"), CaptureType::Consignment);
        assert_eq!(CaptureType::from_code("P"), CaptureType::Pallet);
        assert_eq!(CaptureType::from_code("c"), CaptureType::Other("c".into()));
        for s in [Source::Upn, Source::Device] {
            assert_eq!(Source::from_code(s.code()), Some(s));
        }
        assert_eq!(Source::from_code("x"), None);
    }

    #[test]
    fn c_touches_the_consignment_and_pallets_p_only_its_pallet() {
        let c = ev("1", "C", None, "BOOKED", t(6, 0));
        assert_eq!(target(&c), Target::ConsignmentAndPallets);
        // A C event naming a pallet still applies to the whole consignment.
        let c_with_pallet = ev("2", "C", Some("P1"), "BOOKED", t(6, 0));
        assert_eq!(target(&c_with_pallet), Target::ConsignmentAndPallets);
        let p = ev("3", "P", Some("P1"), "UNLOADED", t(6, 0));
        assert_eq!(target(&p), Target::Pallet("P1"));
        // A P event without a pallet, an unknown capture type, or a device event: timeline only.
        for e in [
            ev("4", "P", None, "UNLOADED", t(6, 0)),
            ev("5", "P", Some("  "), "UNLOADED", t(6, 0)),
            ev("6", "X", Some("P1"), "UNLOADED", t(6, 0)),
        ] {
            assert_eq!(target(&e), Target::TimelineOnly, "{e:?}");
        }
        let mut device = c.clone();
        device.source = Source::Device;
        assert_eq!(target(&device), Target::TimelineOnly);
    }

    #[test]
    fn a_newer_event_replaces_an_older_status_whatever_the_stages() {
        for old in ALL {
            for new in ALL {
                assert!(
                    supersedes(&mark(new, t(9, 0)), Some(&mark(old, t(8, 0)))),
                    "{new} at 9 over {old} at 8"
                );
                assert!(
                    !supersedes(&mark(old, t(8, 0)), Some(&mark(new, t(9, 0)))),
                    "a late {old} at 8 must not replace {new} at 9"
                );
            }
            assert!(supersedes(&mark(old, t(8, 0)), None));
        }
    }

    #[test]
    fn exceptions_follow_time_order() {
        // A later CARDED shows over OUT_FOR_DELIVERY; the redelivery shows over CARDED.
        assert!(supersedes(
            &mark("CARDED", t(11, 0)),
            Some(&mark("OUT_FOR_DELIVERY", t(7, 0)))
        ));
        assert!(supersedes(
            &mark("OUT_FOR_DELIVERY", t(12, 0)),
            Some(&mark("CARDED", t(11, 0)))
        ));
        // A later complaint shows even after DELIVERED; an older one arriving late does not.
        assert!(supersedes(
            &mark("COMPLAINT_RAISED", t(15, 0)),
            Some(&mark("DELIVERED", t(10, 0)))
        ));
        assert!(!supersedes(
            &mark("COMPLAINT_RAISED", t(9, 0)),
            Some(&mark("DELIVERED", t(10, 0)))
        ));
        // A late-arriving older BOOKED never undoes DELIVERED.
        assert!(!supersedes(
            &mark("BOOKED", t(6, 0)),
            Some(&mark("DELIVERED", t(10, 0)))
        ));
    }

    #[test]
    fn ties_are_broken_by_stage_then_code_and_never_by_arrival() {
        let at = t(10, 0);
        let ranked = [
            "HELD_AT_HUB",
            "BOOKED",
            "OUT_FOR_DELIVERY",
            "ARRIVED",
            "UNLOADED",
            "DELIVERED",
            "CARDED",
            "COMPLAINT_RAISED",
        ];
        for (i, lower) in ranked.iter().enumerate() {
            for higher in &ranked[i + 1..] {
                assert!(
                    supersedes(&mark(higher, at), Some(&mark(lower, at))),
                    "{higher} over {lower}"
                );
                assert!(
                    !supersedes(&mark(lower, at), Some(&mark(higher, at))),
                    "{lower} under {higher}"
                );
            }
            // The same stage at the same time is no change.
            assert!(!supersedes(&mark(lower, at), Some(&mark(lower, at))));
        }
        // Two unknown codes at the same time: the text decides, both ways round the same.
        assert!(supersedes(&mark("ZZ", at), Some(&mark("AA", at))));
        assert!(!supersedes(&mark("AA", at), Some(&mark("ZZ", at))));
    }

    #[test]
    fn times_compare_to_the_millisecond() {
        let base = t(10, 0);
        let a = mark("BOOKED", base + chrono::Duration::microseconds(1500));
        let b = mark("BOOKED", base + chrono::Duration::microseconds(1900));
        assert_eq!(a.at, base + chrono::Duration::milliseconds(1));
        assert_eq!(compare_marks(&a, &b), Ordering::Equal);
    }

    #[test]
    fn unknown_stages_are_a_status_when_newest_and_kept_verbatim() {
        let events = [
            ev("1", "C", None, "OUT_FOR_DELIVERY", t(7, 0)),
            ev("2", "C", None, "HELD_AT_HUB", t(8, 0)),
        ];
        let (c, _) = current_stages(&events, &[]);
        let c = c.expect("status");
        assert_eq!(c.stage, Stage::Other("HELD_AT_HUB".into()));
        assert_eq!(c.stage.code(), "HELD_AT_HUB");
    }

    #[test]
    fn current_stages_c_vs_p_on_a_multi_pallet_consignment() {
        let events = [
            ev("1", "C", None, "BOOKED", t(6, 0)),
            ev("2", "C", None, "OUT_FOR_DELIVERY", t(7, 0)),
            ev("3", "P", Some("P2"), "UNLOADED", t(9, 0)),
            // A P event for a pallet not on the consignment touches nothing.
            ev("4", "P", Some("P9"), "DELIVERED", t(9, 30)),
        ];
        let (c, pallets) = current_stages(&events, &["P1", "P2", "P3"]);
        assert_eq!(c, Some(mark("OUT_FOR_DELIVERY", t(7, 0))));
        assert_eq!(
            pallets,
            vec![
                Some(mark("OUT_FOR_DELIVERY", t(7, 0))),
                Some(mark("UNLOADED", t(9, 0))),
                Some(mark("OUT_FOR_DELIVERY", t(7, 0))),
            ]
        );
        // A later C event moves every pallet, including the one with its own older P event.
        let mut more = events.to_vec();
        more.push(ev("5", "C", None, "DELIVERED", t(10, 0)));
        let (c, pallets) = current_stages(&more, &["P1", "P2", "P3"]);
        assert_eq!(c, Some(mark("DELIVERED", t(10, 0))));
        assert!(pallets
            .iter()
            .all(|p| *p == Some(mark("DELIVERED", t(10, 0)))));
        // A P event never moves the consignment.
        let (c, _) = current_stages(&[ev("6", "P", Some("P1"), "DELIVERED", t(10, 0))], &["P1"]);
        assert_eq!(c, None);
    }

    #[test]
    fn every_arrival_order_gives_the_same_statuses() {
        let events = vec![
            ev("1", "C", None, "BOOKED", t(6, 0)),
            ev("2", "C", None, "OUT_FOR_DELIVERY", t(7, 0)),
            ev("3", "P", Some("P1"), "UNLOADED", t(9, 0)),
            ev("4", "C", None, "ARRIVED", t(9, 0)),
            ev("5", "C", None, "CARDED", t(9, 0)),
            ev("6", "P", Some("P2"), "HELD", t(9, 0)),
            ev("7", "X", None, "DELIVERED", t(23, 0)),
        ];
        let expected = current_stages(&events, &["P1", "P2"]);
        assert_eq!(expected.0, Some(mark("CARDED", t(9, 0))));
        // Rotations and the reversal of the list: all agree (the order is total).
        for r in 0..events.len() {
            let mut order = events.clone();
            order.rotate_left(r);
            assert_eq!(
                current_stages(&order, &["P1", "P2"]),
                expected,
                "rotation {r}"
            );
            order.reverse();
            assert_eq!(
                current_stages(&order, &["P1", "P2"]),
                expected,
                "reversed {r}"
            );
        }
        // One-by-one application with `keep_newest` equals the batch computation.
        let mut slot = None;
        for e in events.iter().rev() {
            if target(e) == Target::ConsignmentAndPallets {
                keep_newest(&mut slot, StageMark::of(e));
            }
        }
        assert_eq!(slot, expected.0);
    }

    #[test]
    fn newest_prefers_the_later_mark_and_keeps_either_when_alone() {
        let a = mark("BOOKED", t(6, 0));
        let b = mark("ARRIVED", t(8, 0));
        assert_eq!(newest(Some(a.clone()), Some(b.clone())), Some(b.clone()));
        assert_eq!(newest(Some(b.clone()), Some(a.clone())), Some(b.clone()));
        assert_eq!(newest(Some(a.clone()), None), Some(a.clone()));
        assert_eq!(newest(None, Some(a.clone())), Some(a));
        assert_eq!(newest(None, None), None);
    }

    #[test]
    fn timeline_sorts_by_time_whatever_the_arrival_order() {
        let mut entries: Vec<TimelineEntry> = [
            ev("3", "C", None, "DELIVERED", t(10, 0)),
            ev("1", "C", None, "BOOKED", t(6, 0)),
            ev("2b", "P", Some("P1"), "UNLOADED", t(9, 0)),
            ev("2a", "C", None, "ARRIVED", t(9, 0)),
        ]
        .iter()
        .map(TimelineEntry::from)
        .collect();
        sort_timeline(&mut entries);
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1", "2a", "2b", "3"]);
        assert!(concerns_pallet(&entries[0], "P1"));
        assert!(concerns_pallet(&entries[2], "P1"));
        assert!(!concerns_pallet(&entries[2], "P2"));
    }

    #[test]
    fn locations_read_as_text() {
        let full = Location {
            description: Some("Depot 042".into()),
            lat: Some(53.7),
            lon: Some(-1.4),
        };
        assert_eq!(full.text(), "Depot 042 (53.70000, -1.40000)");
        let only = Location {
            description: Some("Depot".into()),
            ..Location::default()
        };
        assert_eq!(only.text(), "Depot");
        assert_eq!(Location::default().text(), "");
    }

    #[test]
    fn timeline_builds_per_pallet_views() {
        let entries: Vec<TimelineEntry> = [
            ev("3", "C", None, "DELIVERED", t(10, 0)),
            ev("2", "P", Some("P2"), "UNLOADED", t(9, 0)),
            ev("1", "C", None, "OUT_FOR_DELIVERY", t(7, 0)),
            ev("4", "P", Some("P9"), "HELD", t(9, 30)),
        ]
        .iter()
        .map(TimelineEntry::from)
        .collect();
        let tl = Timeline::build("UPN0420000001", entries, &["P1", "P2"]);
        let ids = |e: &[TimelineEntry]| e.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&tl.consignment), ["1", "2", "4", "3"]);
        assert_eq!(ids(tl.pallet("P1").unwrap()), ["1", "3"]);
        assert_eq!(ids(tl.pallet("P2").unwrap()), ["1", "2", "3"]);
        // A pallet only UPN's events name still gets its timeline, after the manifest's.
        assert_eq!(ids(tl.pallet("P9").unwrap()), ["1", "4", "3"]);
        let names: Vec<&str> = tl.pallets.iter().map(|p| p.pallet.as_str()).collect();
        assert_eq!(names, ["P1", "P2", "P9"]);
        assert!(tl.pallet("P3").is_none());
    }

    #[test]
    fn staleness_counts_from_the_last_success_or_the_first_attempt_while_online() {
        let fifteen = std::time::Duration::from_secs(15 * 60);
        let m = |min: i64| t(8, 0) + chrono::Duration::minutes(min);
        // Never attempted: not stale.
        assert!(!is_stale(true, m(60), None, None, fifteen));
        // From the last success.
        assert!(!is_stale(true, m(14), Some(m(0)), None, fifteen));
        assert!(is_stale(true, m(15), Some(m(0)), None, fifteen));
        // Offline: never stale.
        assert!(!is_stale(false, m(120), Some(m(0)), None, fifteen));
        // Never succeeded: from the first attempt.
        assert!(!is_stale(true, m(10), None, Some(m(0)), fifteen));
        assert!(is_stale(true, m(16), None, Some(m(0)), fifteen));
        // A success wins over an older first attempt.
        assert!(!is_stale(true, m(20), Some(m(10)), Some(m(0)), fifteen));
        // A clock that went backwards is not stale.
        assert!(!is_stale(true, m(-30), Some(m(0)), None, fifteen));
    }
}
