//! The driver's stop list: which consignments to visit, in what order, and how each is doing.

use std::cmp::Ordering;

use serde::Serialize;

use super::consignment::{Consignment, Status, Window};

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

/// One line of the stop list.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    /// 1-based position in the list.
    pub position: u32,
    pub consignment: Consignment,
    pub status: Status,
    pub sync: SyncBadge,
}

/// Where a stop goes in the day: open work first (most urgent first), then finished work,
/// then cancellations, so the next thing to do is always at the top.
fn phase(status: &Status) -> u8 {
    match status {
        Status::Cancelled => 2,
        s if s.is_done() => 1,
        _ => 0,
    }
}

/// A window closes at `to`; stops without a window have no deadline inside the day.
fn deadline(window: Option<&Window>) -> Option<chrono::NaiveTime> {
    window.map(|w| w.to)
}

fn compare(a: &Consignment, b: &Consignment) -> Ordering {
    let (sa, sb) = (a.status(), b.status());
    phase(&sa)
        .cmp(&phase(&sb))
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

/// Orders consignments into the stop list. `badge` gives each stop's sync badge.
pub fn order_stops(
    mut consignments: Vec<Consignment>,
    badge: impl Fn(&Consignment) -> SyncBadge,
) -> Vec<Stop> {
    consignments.sort_by(compare);
    consignments
        .into_iter()
        .enumerate()
        .map(|(i, consignment)| Stop {
            position: u32::try_from(i + 1).unwrap_or(u32::MAX),
            status: consignment.status(),
            sync: badge(&consignment),
            consignment,
        })
        .collect()
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
            |_| SyncBadge::None,
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
        let one = order_stops(vec![a.clone(), b.clone()], |_| SyncBadge::None);
        let two = order_stops(vec![b, a], |_| SyncBadge::None);
        assert_eq!(one, two);
        assert_eq!(one[0].consignment.barcode, "A");
    }
}
