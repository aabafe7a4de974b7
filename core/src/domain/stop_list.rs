//! The driver's stop list: which consignments to visit, in what order, and how each is doing.

use std::cmp::Ordering;

use serde::Serialize;

use super::consignment::{Consignment, Status, Window};
use super::outbox::{CaptureKind, ItemState};

/// Per-stop sync badge: where the driver's captures for this stop are on their way to UPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncBadge {
    /// Nothing captured for this stop yet.
    None,
    /// Photos captured; waiting for the consignee's signature before anything is sent.
    WaitingForSignature,
    /// Captured and stored on the device; not yet queued (e.g. renditions being made).
    Captured,
    /// Waiting for connectivity or a retry.
    Queued,
    Sending,
    /// UPN acknowledged everything captured.
    Sent,
    /// UPN refused something; a person must look (the reason is kept).
    NeedsAttention,
}

impl SyncBadge {
    pub fn code(self) -> &'static str {
        match self {
            SyncBadge::None => "none",
            SyncBadge::WaitingForSignature => "waiting_for_signature",
            SyncBadge::Captured => "captured",
            SyncBadge::Queued => "queued",
            SyncBadge::Sending => "sending",
            SyncBadge::Sent => "sent",
            SyncBadge::NeedsAttention => "needs_attention",
        }
    }
}

/// Where a stop is in the driver's day; the stop list's sections, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopPhase {
    /// Still to deliver.
    Open,
    /// Signed for on this device (the POD is stored, queued, sending, sent or refused by UPN):
    /// the driver's work is done although UPN has not said DELIVERED yet. The sync badge tells
    /// whether the POD still has to reach UPN (or needs attention).
    DoneOnDevice,
    /// UPN says delivered.
    Done,
    /// UPN cancelled it: do not deliver.
    Cancelled,
}

impl StopPhase {
    pub fn code(self) -> &'static str {
        match self {
            StopPhase::Open => "open",
            StopPhase::DoneOnDevice => "done_on_device",
            StopPhase::Done => "done",
            StopPhase::Cancelled => "cancelled",
        }
    }

    /// A stop's phase from UPN's status and whether a live POD (not replaced, not discarded)
    /// was captured on this device. UPN's word wins over the device's: a cancellation over
    /// everything, then a delivery; a POD on the device only moves an open stop.
    pub fn of(status: &Status, pod_on_device: bool) -> Self {
        match status {
            Status::Cancelled => StopPhase::Cancelled,
            s if s.is_done() => StopPhase::Done,
            _ if pod_on_device => StopPhase::DoneOnDevice,
            _ => StopPhase::Open,
        }
    }
}

/// Whether a live POD is among a stop's captures (kind and state of each, any order).
pub fn pod_on_device(items: &[(CaptureKind, ItemState)]) -> bool {
    items
        .iter()
        .any(|(kind, state)| *kind == CaptureKind::Pod && state.is_live())
}

/// What the device knows about a stop beside UPN's consignment record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFacts {
    pub sync: SyncBadge,
    pub pod_on_device: bool,
}

impl DeviceFacts {
    /// Nothing captured for the stop.
    pub const NONE: DeviceFacts = DeviceFacts {
        sync: SyncBadge::None,
        pod_on_device: false,
    };

    /// From the kind and state of each of the stop's captures.
    pub fn of(items: &[(CaptureKind, ItemState)]) -> Self {
        DeviceFacts {
            sync: super::outbox::badge(items),
            pod_on_device: pod_on_device(items),
        }
    }
}

/// One line of the stop list.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    /// 1-based position in the list.
    pub position: u32,
    pub consignment: Consignment,
    pub status: Status,
    pub sync: SyncBadge,
    /// The section the stop is in (the list's first sort key).
    pub phase: StopPhase,
}

/// A window closes at `to`; stops without a window have no deadline inside the day.
fn deadline(window: Option<&Window>) -> Option<chrono::NaiveTime> {
    window.map(|w| w.to)
}

fn compare(a: &Consignment, pa: StopPhase, b: &Consignment, pb: StopPhase) -> Ordering {
    pa.cmp(&pb)
        // Windowed stops by closing time, ahead of untimed ones.
        .then_with(
            || match (deadline(a.window.as_ref()), deadline(b.window.as_ref())) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
        )
        .then_with(|| a.service.urgency().cmp(&b.service.urgency()))
        // Postcode groups neighbouring drops; the barcode makes the order total and stable.
        .then_with(|| a.address.postcode.cmp(&b.address.postcode))
        .then_with(|| a.barcode.cmp(&b.barcode))
}

/// Orders consignments into the stop list: by [`StopPhase`] (open work first, then what was
/// signed on this device, then what UPN says is delivered, then cancellations), and within a
/// phase by urgency. `facts` gives what the device knows of each stop.
pub fn order_stops(
    consignments: Vec<Consignment>,
    facts: impl Fn(&Consignment) -> DeviceFacts,
) -> Vec<Stop> {
    let mut keyed: Vec<(Consignment, StopPhase, SyncBadge)> = consignments
        .into_iter()
        .map(|c| {
            let facts = facts(&c);
            let phase = StopPhase::of(&c.status(), facts.pod_on_device);
            (c, phase, facts.sync)
        })
        .collect();
    keyed.sort_by(|(a, pa, _), (b, pb, _)| compare(a, *pa, b, *pb));
    keyed
        .into_iter()
        .enumerate()
        .map(|(i, (consignment, phase, sync))| Stop {
            position: u32::try_from(i + 1).unwrap_or(u32::MAX),
            status: consignment.status(),
            sync,
            phase,
            consignment,
        })
        .collect()
}

/// How one stop differs between two stop lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopChangeKind {
    /// New on the list (imported).
    Added,
    /// Anything shown changed: UPN's record, the status, the sync badge, the phase or the
    /// position (a stop that moved up because another one was done is a change too, so no
    /// position ever shifts silently).
    Changed,
    /// UPN cancelled it since the last list.
    Cancelled,
    /// No longer on the list (left the device).
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopChange {
    pub barcode: String,
    pub kind: StopChangeKind,
}

/// The per-stop changes from `old` to `new`, in `new`'s order, removals last (by barcode).
pub fn diff(old: &[Stop], new: &[Stop]) -> Vec<StopChange> {
    use std::collections::HashMap;
    let before: HashMap<&str, &Stop> = old
        .iter()
        .map(|s| (s.consignment.barcode.as_str(), s))
        .collect();
    let mut changes = Vec::new();
    for stop in new {
        let barcode = stop.consignment.barcode.as_str();
        let kind = match before.get(barcode) {
            None => Some(StopChangeKind::Added),
            Some(was) if *was == stop => None,
            Some(was)
                if stop.phase == StopPhase::Cancelled && was.phase != StopPhase::Cancelled =>
            {
                Some(StopChangeKind::Cancelled)
            }
            Some(_) => Some(StopChangeKind::Changed),
        };
        if let Some(kind) = kind {
            changes.push(StopChange {
                barcode: barcode.to_string(),
                kind,
            });
        }
    }
    let after: std::collections::HashSet<&str> =
        new.iter().map(|s| s.consignment.barcode.as_str()).collect();
    let mut removed: Vec<&str> = before
        .keys()
        .copied()
        .filter(|b| !after.contains(b))
        .collect();
    removed.sort_unstable();
    changes.extend(removed.into_iter().map(|barcode| StopChange {
        barcode: barcode.to_string(),
        kind: StopChangeKind::Removed,
    }));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consignment::*;
    use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};

    fn consignment(barcode: &str, service: &str, postcode: &str) -> Consignment {
        Consignment {
            barcode: barcode.into(),
            shipper: Party {
                name: "S".into(),
                phone: None,
            },
            consignee: Party {
                name: "C".into(),
                phone: None,
            },
            address: Address {
                lines: vec!["1 High St".into()],
                town: "Coventry".into(),
                postcode: postcode.into(),
                country: "GB".into(),
                lat: 52.4,
                lon: -1.5,
            },
            pallets: vec![],
            weight_kg: 100.0,
            service: ServiceLevel::from_code(service),
            window: None,
            delivery_date: NaiveDate::from_ymd_opt(2026, 11, 26).expect("date"),
            instructions: None,
            stage: None,
            cancelled: None,
            upn_updated_at: Utc.with_ymd_and_hms(2026, 11, 26, 6, 0, 0).unwrap(),
        }
    }

    fn window(from: u32, to: u32) -> Option<Window> {
        Some(Window {
            from: NaiveTime::from_hms_opt(from, 0, 0).expect("time"),
            to: NaiveTime::from_hms_opt(to, 0, 0).expect("time"),
        })
    }

    #[test]
    fn open_work_first_windows_by_deadline_then_service_then_postcode() {
        let mut am = consignment("A1", "AM", "CV9 1AA");
        am.window = window(8, 12);
        let mut timed = consignment("T1", "TIMED", "CV1 1AA");
        timed.window = window(10, 11);
        let premium_far = consignment("P2", "PREMIUM", "CV8 1AA");
        let premium_near = consignment("P1", "PREMIUM", "CV2 1AA");
        let economy = consignment("E1", "ECONOMY", "CV1 1AA");
        let mut delivered = consignment("D1", "AM", "CV1 1AA");
        delivered.stage = Some(Stage::Delivered);
        let mut cancelled = consignment("X1", "AM", "CV1 1AA");
        cancelled.cancelled = Some(Cancellation {
            at: Utc.with_ymd_and_hms(2026, 11, 26, 7, 0, 0).unwrap(),
            reason: None,
        });

        let stops = order_stops(
            vec![
                cancelled,
                economy,
                delivered,
                premium_far,
                am,
                premium_near,
                timed,
            ],
            |_| DeviceFacts::NONE,
        );
        let order: Vec<_> = stops
            .iter()
            .map(|s| s.consignment.barcode.as_str())
            .collect();
        assert_eq!(order, ["T1", "A1", "P1", "P2", "E1", "D1", "X1"]);
        let positions: Vec<_> = stops.iter().map(|s| s.position).collect();
        assert_eq!(positions, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(stops[6].status, Status::Cancelled);
    }

    #[test]
    fn order_is_total_and_independent_of_input_order() {
        let a = consignment("B", "PREMIUM", "CV1 1AA");
        let b = consignment("A", "PREMIUM", "CV1 1AA");
        let one = order_stops(vec![a.clone(), b.clone()], |_| DeviceFacts::NONE);
        let two = order_stops(vec![b, a], |_| DeviceFacts::NONE);
        assert_eq!(one, two);
        assert_eq!(one[0].consignment.barcode, "A");
    }

    fn cancellation() -> Option<Cancellation> {
        Some(Cancellation {
            at: Utc.with_ymd_and_hms(2026, 11, 26, 7, 0, 0).unwrap(),
            reason: None,
        })
    }

    #[test]
    fn phase_of_every_status_with_and_without_a_pod_on_device() {
        let booked = Status::AtStage(Stage::Booked);
        let delivered = Status::AtStage(Stage::Delivered);
        let unknown = Status::AtStage(Stage::Other("NEW_STAGE".into()));
        let cases = [
            (Status::Imported, false, StopPhase::Open),
            (Status::Imported, true, StopPhase::DoneOnDevice),
            (booked.clone(), false, StopPhase::Open),
            (booked, true, StopPhase::DoneOnDevice),
            (unknown.clone(), false, StopPhase::Open),
            (unknown, true, StopPhase::DoneOnDevice),
            (delivered.clone(), false, StopPhase::Done),
            (delivered, true, StopPhase::Done),
            (Status::Cancelled, false, StopPhase::Cancelled),
            (Status::Cancelled, true, StopPhase::Cancelled),
        ];
        for (status, pod, phase) in cases {
            assert_eq!(StopPhase::of(&status, pod), phase, "{status:?} pod={pod}");
        }
        let codes: Vec<_> = [
            StopPhase::Open,
            StopPhase::DoneOnDevice,
            StopPhase::Done,
            StopPhase::Cancelled,
        ]
        .map(StopPhase::code)
        .to_vec();
        assert_eq!(codes, ["open", "done_on_device", "done", "cancelled"]);
    }

    #[test]
    fn a_live_pod_in_any_state_is_on_the_device_a_replaced_or_discarded_one_is_not() {
        use CaptureKind::*;
        use ItemState::*;
        for state in [Queued, Sending, Sent, NeedsAttention, Waiting] {
            assert!(pod_on_device(&[(Pod, state)]), "{state:?}");
        }
        for state in [Replaced, Discarded] {
            assert!(!pod_on_device(&[(Pod, state)]), "{state:?}");
        }
        assert!(!pod_on_device(&[(Goods, Queued), (Location, Sent)]));
        assert!(pod_on_device(&[(Pod, Replaced), (Pod, Queued)]));
        assert!(!pod_on_device(&[]));
        let facts = DeviceFacts::of(&[(Goods, Waiting)]);
        assert_eq!(facts.sync, SyncBadge::WaitingForSignature);
        assert!(!facts.pod_on_device);
    }

    #[test]
    fn a_stop_signed_on_the_device_leaves_the_open_section_at_once() {
        let mut first = consignment("A1", "PREMIUM", "CV1 1AA");
        first.window = window(8, 9);
        let second = consignment("B1", "PREMIUM", "CV1 1AA");
        let mut delivered = consignment("D1", "PREMIUM", "CV1 1AA");
        delivered.stage = Some(Stage::Delivered);
        let mut cancelled = consignment("X1", "PREMIUM", "CV1 1AA");
        cancelled.cancelled = cancellation();
        let stops = order_stops(vec![cancelled, delivered, second, first], |c| {
            if c.barcode == "A1" {
                DeviceFacts::of(&[(CaptureKind::Pod, ItemState::Queued)])
            } else {
                DeviceFacts::NONE
            }
        });
        let order: Vec<_> = stops
            .iter()
            .map(|s| (s.consignment.barcode.as_str(), s.phase, s.position))
            .collect();
        assert_eq!(
            order,
            [
                ("B1", StopPhase::Open, 1),
                ("A1", StopPhase::DoneOnDevice, 2),
                ("D1", StopPhase::Done, 3),
                ("X1", StopPhase::Cancelled, 4),
            ]
        );
        assert_eq!(stops[1].sync, SyncBadge::Queued);
    }

    #[test]
    fn diff_names_added_changed_cancelled_and_removed_stops() {
        let a = consignment("A", "PREMIUM", "CV1 1AA");
        let b = consignment("B", "PREMIUM", "CV2 1AA");
        let c = consignment("C", "PREMIUM", "CV3 1AA");
        let old = order_stops(vec![a.clone(), b.clone(), c.clone()], |_| DeviceFacts::NONE);
        assert!(diff(&old, &old).is_empty());

        let mut b2 = b.clone();
        b2.cancelled = cancellation();
        let d = consignment("D", "PREMIUM", "CV0 1AA");
        // A signed on the device moves down: B is cancelled, C moves up, D is new, nothing
        // is removed yet.
        let new = order_stops(vec![a.clone(), b2.clone(), c.clone(), d], |x| {
            if x.barcode == "A" {
                DeviceFacts::of(&[(CaptureKind::Pod, ItemState::Queued)])
            } else {
                DeviceFacts::NONE
            }
        });
        let kinds: Vec<_> = diff(&old, &new)
            .into_iter()
            .map(|ch| (ch.barcode, ch.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("D".to_string(), StopChangeKind::Added),
                ("C".to_string(), StopChangeKind::Changed),
                ("A".to_string(), StopChangeKind::Changed),
                ("B".to_string(), StopChangeKind::Cancelled),
            ]
        );
        let removed = diff(&new, &order_stops(vec![c], |_| DeviceFacts::NONE));
        let kinds: Vec<_> = removed
            .iter()
            .map(|ch| (ch.barcode.as_str(), ch.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("C", StopChangeKind::Changed),
                ("A", StopChangeKind::Removed),
                ("B", StopChangeKind::Removed),
                ("D", StopChangeKind::Removed),
            ]
        );
    }
}
