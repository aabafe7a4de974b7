//! Troubleshooting: one check per row of UPN's troubleshooting table (consignments not
//! appearing, tracking not updating, ePOD not in UPN, images not visible, invoice not matching),
//! plus what the seed does not ask: a POD captured far from the delivery address, a stale GPS
//! fix, a device clock that disagrees with UPN's.
//!
//! Pure: the driver gathers [`Facts`] from the store, [`diagnose`] decides what they mean and
//! what a depot clerk should do about it. Each check has a status, the evidence it rests on
//! (times, counts, UPN's own words) and one action in plain words.

use chrono::{DateTime, Duration, Utc};
use geo_types::Point;
use serde::Serialize;

use super::capture::CheckedFix;
use super::invoice::InvoiceMatch;
use super::outbox::{CaptureKind, ItemState, OutboxItem, Pauses};

/// How bad a check's finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    /// Worth a look; work still flows.
    Warning,
    /// Something is stuck until a person acts.
    Problem,
}

impl CheckStatus {
    pub fn code(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warning => "warning",
            CheckStatus::Problem => "problem",
        }
    }
}

/// The checks, in the order they are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// "UPN consignments not appearing".
    ConsignmentsImport,
    /// "Tracking events not updating".
    Tracking,
    /// "ePOD not appearing in UPN after delivery".
    Pod,
    /// "Delivery images not visible in UPN".
    Images,
    /// "Invoice matching not finding a consignment".
    Invoice,
    /// A POD captured far from the delivery address.
    Geofence,
    /// A GPS fix that was old when the capture was made.
    GpsFix,
    /// The device clock against UPN's.
    DeviceClock,
}

impl CheckId {
    pub fn code(self) -> &'static str {
        match self {
            CheckId::ConsignmentsImport => "consignments_import",
            CheckId::Tracking => "tracking",
            CheckId::Pod => "pod",
            CheckId::Images => "images",
            CheckId::Invoice => "invoice",
            CheckId::Geofence => "geofence",
            CheckId::GpsFix => "gps_fix",
            CheckId::DeviceClock => "device_clock",
        }
    }

    /// The question the check answers, as the troubleshooting table words it.
    pub fn title(self) -> &'static str {
        match self {
            CheckId::ConsignmentsImport => "UPN consignments appearing",
            CheckId::Tracking => "Tracking events updating",
            CheckId::Pod => "ePOD reaching UPN",
            CheckId::Images => "Delivery images reaching UPN",
            CheckId::Invoice => "Invoice lines matching consignments",
            CheckId::Geofence => "POD captured at the delivery address",
            CheckId::GpsFix => "GPS fix fresh at capture",
            CheckId::DeviceClock => "Device clock agrees with UPN",
        }
    }
}

/// One fact a check rests on, labelled for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: CheckId,
    pub status: CheckStatus,
    /// One line: what was found.
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// What to do, when something needs doing.
    pub action: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    pub generated_at: DateTime<Utc>,
    /// The consignment asked about; `None` for the whole device.
    pub barcode: Option<String>,
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// The worst status of any check.
    pub fn worst(&self) -> CheckStatus {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(CheckStatus::Ok)
    }

    pub fn check(&self, id: CheckId) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Thresholds, configurable by the app.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// A POD captured farther than this from the delivery address is flagged.
    pub geofence_m: f64,
    /// Device clock minus UPN clock beyond this (either way) is flagged.
    pub clock_skew: Duration,
    /// UPN's tracking cycle: allow this long before worrying.
    pub tracking_cycle: Duration,
    /// No successful tracking pull for this long: stale (the seed's "15+ minutes").
    pub tracking_stale_after: Duration,
    /// No successful import for this long: consignments may be missing.
    pub import_stale_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            geofence_m: 250.0,
            clock_skew: Duration::minutes(2),
            tracking_cycle: Duration::minutes(10),
            tracking_stale_after: Duration::minutes(15),
            import_stale_after: Duration::minutes(30),
        }
    }
}

/// A failure of a sync step, as stored: a stable code to decide on, words to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LastFailure {
    /// `UpnError::code`: `unauthorized`, `integration_disabled`, `unreachable`, `timeout`, ….
    pub code: String,
    pub message: String,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportFacts {
    pub last_success: Option<DateTime<Utc>>,
    /// The last import's failure, cleared by the next success.
    pub last_failure: Option<LastFailure>,
    pub consignments: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackingFacts {
    pub last_success: Option<DateTime<Utc>>,
    /// The last pull's failure in words, cleared by the next success.
    pub last_error: Option<String>,
    /// UPN refused the tracking action for the depot.
    pub action_disabled: bool,
    pub failed_batches: usize,
    pub malformed_events: u32,
    pub spilled_batches: u32,
}

/// What the app last said about connectivity.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Connectivity {
    /// `None` when this process has not been told (a CLI run).
    pub online: Option<bool>,
    /// When the app last reported the device offline, while it still is.
    pub offline_since: Option<DateTime<Utc>>,
}

/// One capture as the checks need it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureFacts {
    pub item: OutboxItem,
    pub fix: Option<CheckedFix>,
    /// Device clock minus UPN clock when the capture was made, if known.
    pub clock_offset_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsignmentFacts {
    pub barcode: String,
    /// The delivery address, (x = longitude, y = latitude).
    pub delivery_point: Point<f64>,
    pub cancelled: bool,
    /// UPN's tracking says delivered.
    pub delivered: bool,
    /// The live POD (not replaced or discarded).
    pub pod: Option<CaptureFacts>,
    /// Photos, discarded ones left out.
    pub photos: Vec<CaptureFacts>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub now: DateTime<Utc>,
    pub limits: Limits,
    /// The consignment asked about, when one was.
    pub barcode: Option<String>,
    pub import: ImportFacts,
    pub tracking: TrackingFacts,
    pub connectivity: Connectivity,
    pub pauses: Pauses,
    /// Device clock minus UPN clock from the latest UPN response.
    pub clock_offset_ms: Option<i64>,
    /// The consignments in scope: the one asked about, or every one.
    pub consignments: Vec<ConsignmentFacts>,
    /// An invoice's match result, when a file was given.
    pub invoice: Option<InvoiceMatch>,
}

/// Runs every check over `facts`.
pub fn diagnose(facts: &Facts) -> Diagnosis {
    Diagnosis {
        generated_at: facts.now,
        barcode: facts.barcode.clone(),
        checks: vec![
            import_check(facts),
            tracking_check(facts),
            pod_check(facts),
            images_check(facts),
            invoice_check(facts),
            geofence_check(facts),
            gps_check(facts),
            clock_check(facts),
        ],
    }
}

/// A check under construction: every finding adds evidence; the worst one speaks for the check.
struct Builder {
    id: CheckId,
    evidence: Vec<Evidence>,
    worst: Option<(CheckStatus, String, Option<String>)>,
    ok_summary: String,
}

impl Builder {
    fn new(id: CheckId, ok_summary: impl Into<String>) -> Self {
        Self {
            id,
            evidence: Vec::new(),
            worst: None,
            ok_summary: ok_summary.into(),
        }
    }

    fn fact(&mut self, label: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.evidence.push(Evidence {
            label: label.into(),
            value: value.into(),
        });
        self
    }

    /// A finding: the first of the highest status is kept as the summary and action.
    fn finding(
        &mut self,
        status: CheckStatus,
        summary: impl Into<String>,
        action: impl Into<String>,
    ) {
        if self.worst.as_ref().is_none_or(|(s, _, _)| status > *s) {
            let action = action.into();
            self.worst = Some((
                status,
                summary.into(),
                (!action.is_empty()).then_some(action),
            ));
        }
    }

    fn build(self) -> Check {
        let (status, summary, action) =
            self.worst
                .unwrap_or((CheckStatus::Ok, self.ok_summary, None));
        Check {
            id: self.id,
            status,
            summary,
            evidence: self.evidence,
            action,
        }
    }
}

/// An instant for people: UTC, to the second, with its age.
pub fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ({})", t.format("%Y-%m-%d %H:%M:%S UTC"), age(now - t))
}

fn age(d: Duration) -> String {
    let (d, suffix) = if d < Duration::zero() {
        (-d, "from now")
    } else {
        (d, "ago")
    };
    let s = d.num_seconds();
    match s {
        0..=59 => format!("{s} s {suffix}"),
        60..=3599 => format!("{} min {suffix}", s / 60),
        3600..=172_799 => format!("{} h {} min {suffix}", s / 3600, s % 3600 / 60),
        _ => format!("{} days {suffix}", s / 86_400),
    }
}

fn minutes(d: Duration) -> i64 {
    d.num_minutes()
}

fn import_check(f: &Facts) -> Check {
    let mut b = Builder::new(CheckId::ConsignmentsImport, "consignments import normally");
    b.fact(
        "consignments on the device",
        f.import.consignments.to_string(),
    );
    match f.import.last_success {
        Some(t) => {
            b.fact("last successful import", when(t, f.now));
            if f.now - t > f.limits.import_stale_after {
                b.finding(
                    CheckStatus::Warning,
                    format!("no import has succeeded for {} minutes", minutes(f.now - t)),
                    "connect the device to the network and sync; if imports keep failing, report it with a support bundle",
                );
            }
        }
        None => {
            b.fact("last successful import", "never");
            b.finding(
                CheckStatus::Warning,
                "no import has succeeded on this device yet",
                "connect the device to the network and sync",
            );
        }
    }
    if let Some(e) = &f.import.last_failure {
        b.fact(
            "last import failure",
            format!("{} — {}", when(e.at, f.now), e.message),
        );
        match e.code.as_str() {
            "unauthorized" => b.finding(
                CheckStatus::Problem,
                "UPN refused the depot's API key",
                "check the depot's UPN credentials in the app's settings (ask the depot admin for the current key)",
            ),
            "integration_disabled" => b.finding(
                CheckStatus::Problem,
                "the UPN order import is not active for this depot",
                "ask the admin team to confirm the UPN order import is active for the depot and enable the integration in Configuration → Integrations; UPN must enable it too",
            ),
            "unreachable" | "timeout" => b.finding(
                CheckStatus::Warning,
                "the last import could not reach UPN",
                "connect the device to the network; the import runs again by itself",
            ),
            _ => b.finding(
                CheckStatus::Warning,
                "the last import failed",
                "sync again; if it keeps failing, report it with a support bundle",
            ),
        }
    }
    b.build()
}

fn tracking_check(f: &Facts) -> Check {
    let t = &f.tracking;
    let l = &f.limits;
    let mut b = Builder::new(CheckId::Tracking, "tracking is up to date");
    b.fact(
        "UPN's cycle",
        format!(
            "every {} minutes; stale after {} minutes",
            minutes(l.tracking_cycle),
            minutes(l.tracking_stale_after)
        ),
    );
    match t.last_success {
        Some(at) => {
            b.fact("last successful pull", when(at, f.now));
            let since = f.now - at;
            if since > l.tracking_stale_after {
                b.finding(
                    CheckStatus::Problem,
                    format!("tracking has not updated for {} minutes", minutes(since)),
                    "check the device's connection; if statuses stay stale, ask your admin to verify UPN has enabled the tracking action for the depot",
                );
            } else if since > l.tracking_cycle {
                b.finding(
                    CheckStatus::Warning,
                    format!(
                        "the last pull was {} minutes ago; the next cycle is due",
                        minutes(since)
                    ),
                    "allow up to 10 minutes for the sync cycle to run",
                );
            }
        }
        None => {
            b.fact("last successful pull", "never");
            b.finding(
                CheckStatus::Warning,
                "no tracking pull has succeeded on this device yet",
                "connect the device to the network; allow up to 10 minutes for the first cycle",
            );
        }
    }
    if let Some(e) = &t.last_error {
        b.fact("last pull failure", e.clone());
    }
    if t.action_disabled {
        b.finding(
            CheckStatus::Problem,
            "UPN has not enabled the tracking action for this depot",
            "ask your admin to have UPN IT enable the tracking action for the depot",
        );
    }
    if t.spilled_batches > 0 {
        b.fact("responses waiting in files", t.spilled_batches.to_string());
        b.finding(
            CheckStatus::Warning,
            format!(
                "{} tracking response(s) could not be stored in the database yet",
                t.spilled_batches
            ),
            "free some space on the device; they are applied at the next sync",
        );
    }
    if t.failed_batches > 0 || t.malformed_events > 0 {
        b.fact(
            "responses kept aside as unreadable",
            t.failed_batches.to_string(),
        );
        b.fact(
            "events kept aside as malformed",
            t.malformed_events.to_string(),
        );
        b.finding(
            CheckStatus::Warning,
            format!(
                "{} tracking response(s) and {} event(s) from UPN could not be read",
                t.failed_batches, t.malformed_events
            ),
            "report it with a support bundle: the rest of tracking still applies",
        );
    }
    b.build()
}

fn describe_queued(item: &OutboxItem, now: DateTime<Utc>) -> String {
    let mut text = format!(
        "{} — captured {}, {} attempt(s)",
        item.barcode,
        when(item.captured_at, now),
        item.attempts
    );
    if let Some(next) = item.next_attempt_at {
        text.push_str(&format!(", next attempt {}", when(next, now)));
    }
    if let Some(e) = &item.last_error {
        text.push_str(&format!(", last error: {e}"));
    }
    text
}

fn offline_fact(b: &mut Builder, f: &Facts) -> bool {
    match (f.connectivity.online, f.connectivity.offline_since) {
        (Some(false), Some(since)) => {
            b.fact("device offline since", when(since, f.now));
            true
        }
        (Some(false), None) => {
            b.fact("device", "offline");
            true
        }
        _ => false,
    }
}

fn pause_finding(b: &mut Builder, pause: &super::outbox::Pause, f: &Facts, what: &str) {
    b.fact(format!("{what} paused since"), when(pause.since, f.now));
    b.fact("UPN's refusal", pause.message.clone());
    let action = match pause.reason {
        super::outbox::AccountPause::CredentialsRejected => {
            "check the depot's UPN credentials in the app's settings; nothing is lost, everything is sent once UPN accepts the key"
        }
        super::outbox::AccountPause::IntegrationDisabled => {
            "ask the admin team to enable the UPN integration for the depot; nothing is lost, everything is sent once it is enabled"
        }
        super::outbox::AccountPause::ImageActionDisabled => {
            "ask your admin to have UPN IT enable the image action for the depot; the photos are kept and sent once it is enabled"
        }
    };
    b.finding(
        CheckStatus::Problem,
        format!("{what} paused: UPN refuses the depot's account"),
        action,
    );
}

fn pod_check(f: &Facts) -> Check {
    let mut b = Builder::new(CheckId::Pod, "every POD captured has reached UPN");
    let offline = offline_fact(&mut b, f);
    if let Some(p) = &f.pauses.outbox {
        pause_finding(&mut b, p, f, "the outbox is");
    }
    let mut unsigned = 0usize;
    for c in &f.consignments {
        let Some(pod) = &c.pod else {
            if !c.cancelled && !c.delivered {
                unsigned += 1;
                if f.barcode.is_some() {
                    b.finding(
                        CheckStatus::Warning,
                        format!("no signature has been captured for {}", c.barcode),
                        "capture the consignee's signature and printed name: the ePOD is sent to UPN once it is signed",
                    );
                }
            }
            continue;
        };
        let item = &pod.item;
        match item.state {
            ItemState::Sent => {
                let reference = item.upn_reference.as_deref().unwrap_or("none given");
                let at = item.sent_at.map(|t| when(t, f.now)).unwrap_or_default();
                b.fact(
                    format!("{} sent", c.barcode),
                    format!("acknowledged by UPN {at}, reference {reference}"),
                );
            }
            ItemState::Queued | ItemState::Sending | ItemState::Waiting => {
                b.fact(
                    format!("{} queued", c.barcode),
                    describe_queued(item, f.now),
                );
                let (summary, action) = if offline {
                    (
                        format!(
                            "the POD for {} was signed but the device is offline",
                            c.barcode
                        ),
                        "connect the device to the network: queued PODs are sent automatically",
                    )
                } else if item.attempts > 0 {
                    (
                        format!("the POD for {} was signed {} but is still queued after {} attempt(s)", c.barcode, when(item.captured_at, f.now), item.attempts),
                        "it is retried automatically; if it stays queued, report it with a support bundle (barcode and delivery time)",
                    )
                } else {
                    (
                        format!("the POD for {} is signed and waits to be sent", c.barcode),
                        "it is sent at the next sync while the device is online",
                    )
                };
                b.finding(CheckStatus::Warning, summary, action);
            }
            ItemState::NeedsAttention => {
                let reason = item.last_error.as_deref().unwrap_or("no reason recorded");
                b.fact(
                    format!("{} needs attention", c.barcode),
                    format!("UPN said: {reason}"),
                );
                b.finding(
                    CheckStatus::Problem,
                    format!("UPN refused the POD for {}: {reason}", c.barcode),
                    format!("check the consignment with the depot; then retry it (`upn-driver retry {}`) or discard it", item.id),
                );
            }
            ItemState::Replaced | ItemState::Discarded => {}
        }
    }
    if f.barcode.is_none() {
        b.fact("stops not signed yet", unsigned.to_string());
    }
    b.build()
}

fn images_check(f: &Facts) -> Check {
    let mut b = Builder::new(CheckId::Images, "every photo captured has reached UPN");
    if let Some(p) = &f.pauses.images {
        pause_finding(&mut b, p, f, "photos are");
    }
    let (mut sent, mut waiting, mut queued, mut attention) = (0, 0, 0, 0);
    for c in &f.consignments {
        let pod_state = c.pod.as_ref().map(|p| p.item.state);
        for photo in &c.photos {
            let item = &photo.item;
            match item.state {
                ItemState::Sent => sent += 1,
                ItemState::Waiting => {
                    waiting += 1;
                    if pod_state.is_none() {
                        b.finding(
                            CheckStatus::Warning,
                            format!("photos of {} wait for a signature: images are only sent to UPN once a signature exists", c.barcode),
                            "capture the consignee's signature for the consignment",
                        );
                    } else {
                        b.finding(
                            CheckStatus::Warning,
                            format!("photos of {} wait for their POD to reach UPN", c.barcode),
                            "they follow the POD automatically; see the ePOD check",
                        );
                    }
                }
                ItemState::Queued if item.reason.is_some_and(|r| r.is_data_saver()) => {
                    queued += 1;
                    held_finding(&mut b, c, item);
                }
                ItemState::Queued | ItemState::Sending => {
                    queued += 1;
                    b.fact(
                        format!("{} photo queued", c.barcode),
                        describe_queued(item, f.now),
                    );
                    b.finding(
                        CheckStatus::Warning,
                        format!("photos of {} are still queued", c.barcode),
                        "they are sent automatically while the device is online",
                    );
                }
                ItemState::NeedsAttention => {
                    attention += 1;
                    let reason = item.last_error.as_deref().unwrap_or("no reason recorded");
                    b.fact(
                        format!("{} photo needs attention", c.barcode),
                        format!("{}: {reason}", item.id),
                    );
                    b.finding(
                        CheckStatus::Problem,
                        format!("UPN refused a photo of {}: {reason}", c.barcode),
                        format!("retry it (`upn-driver retry {}`) or discard it", item.id),
                    );
                }
                ItemState::Replaced | ItemState::Discarded => {}
            }
        }
    }
    b.fact(
        "photos",
        format!(
            "{sent} sent, {waiting} waiting for a POD, {queued} queued, {attention} need attention"
        ),
    );
    b.build()
}

/// A photo the data saver holds: the driver's own setting, not an error. The check names it
/// as the cause, so nobody chases UPN for it.
fn held_finding(b: &mut Builder, c: &ConsignmentFacts, item: &OutboxItem) {
    let (why, action) = if item.reason == Some(super::reason::OutboxReason::HeldByBudget) {
        (
            "today's data-saver budget for photos on mobile data is spent",
            "they are sent on Wi-Fi or tomorrow (UTC); raise the budget or switch the data saver off in the app's settings to send them now",
        )
    } else {
        (
            "the data saver sends photos only on Wi-Fi and the device is on mobile data",
            "they are sent automatically once the device is on Wi-Fi; switch the data saver off in the app's settings to send them now",
        )
    };
    b.fact(
        format!("{} photo held by the data saver", c.barcode),
        format!("{}: {why}", item.id),
    );
    b.finding(
        CheckStatus::Warning,
        format!("photos of {} are held by the data saver: {why}", c.barcode),
        action,
    );
}

fn invoice_check(f: &Facts) -> Check {
    let mut b = Builder::new(CheckId::Invoice, "invoice lines match consignments");
    let Some(m) = &f.invoice else {
        if let Some(barcode) = &f.barcode {
            b.fact("UPN barcode", barcode.clone());
        }
        b.fact("invoice file", "none given");
        let mut check = b.build();
        check.summary =
            "no invoice given: invoices must carry the UPN consignment barcode exactly".into();
        check.action = Some(
            "run `upn-driver invoice-match FILE.csv` with the purchase invoice's charge lines"
                .into(),
        );
        return check;
    };
    let concerns = |barcode: &str| f.barcode.as_deref().is_none_or(|b| b == barcode);
    let matched = m.matched.iter().filter(|l| concerns(&l.barcode)).count();
    b.fact("lines matched", matched.to_string());
    for n in m.near_misses.iter().filter(|n| concerns(&n.candidate)) {
        b.fact(
            format!("line {}", n.line),
            format!(
                "'{}' {} — did you mean {}?",
                n.barcode,
                n.reason.describe(),
                n.candidate
            ),
        );
        b.finding(
            CheckStatus::Warning,
            format!("invoice line {} is close to {} but does not match it", n.line, n.candidate),
            "correct the reference on the invoice (or the order) so it matches the UPN consignment barcode exactly",
        );
    }
    if f.barcode.is_none() {
        for u in &m.unmatched {
            b.fact(
                format!("line {}", u.line),
                format!("'{}' matches no consignment", u.barcode),
            );
            b.finding(
                CheckStatus::Warning,
                format!(
                    "invoice line {} matches no consignment on this device",
                    u.line
                ),
                "check the barcode on the invoice against the UPN consignment barcode on the order",
            );
        }
    }
    b.build()
}

/// Great-circle distance in metres (haversine, mean Earth radius).
pub fn distance_m(a: Point<f64>, b: Point<f64>) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let (lat1, lat2) = (a.y().to_radians(), b.y().to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.x() - a.x()).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

fn geofence_check(f: &Facts) -> Check {
    let limit = f.limits.geofence_m;
    let mut b = Builder::new(
        CheckId::Geofence,
        format!("every POD was captured within {limit:.0} m of its delivery address"),
    );
    let pods = f.consignments.iter().filter(|c| c.pod.is_some()).count();
    b.fact("PODs checked", pods.to_string());
    for c in &f.consignments {
        let Some(pod) = &c.pod else { continue };
        let Some(fix) = &pod.fix else {
            b.fact(format!("{} POD", c.barcode), "no GPS fix recorded");
            continue;
        };
        let d = distance_m(fix.fix.point, c.delivery_point);
        b.fact(
            format!("{} POD", c.barcode),
            format!(
                "{d:.0} m from the delivery address (fix accuracy {:.0} m)",
                fix.fix.accuracy_m
            ),
        );
        if d > limit {
            b.finding(
                CheckStatus::Warning,
                format!("the POD for {} was captured {d:.0} m from the delivery address (limit {limit:.0} m)", c.barcode),
                "check with the driver that the goods went to the right address; a location photo helps",
            );
        }
    }
    b.build()
}

fn gps_check(f: &Facts) -> Check {
    let mut b = Builder::new(CheckId::GpsFix, "every GPS fix was fresh at capture");
    let fixes = f
        .consignments
        .iter()
        .flat_map(|c| c.pod.iter().chain(&c.photos))
        .filter(|cap| cap.fix.is_some())
        .count();
    b.fact("captures with a GPS fix", fixes.to_string());
    for c in &f.consignments {
        for cap in c.pod.iter().chain(&c.photos) {
            let Some(fix) = &cap.fix else { continue };
            if fix.stale {
                let what = match cap.item.kind {
                    CaptureKind::Pod => "POD",
                    _ => "photo",
                };
                let old = cap.item.captured_at - fix.fix.fix_at;
                b.fact(
                    format!("{} {what}", c.barcode),
                    format!("fix {} minutes old at capture", minutes(old)),
                );
                b.finding(
                    CheckStatus::Warning,
                    format!("the {what} for {} used a GPS fix {} minutes old", c.barcode, minutes(old)),
                    "make sure location is on and the phone has a fix before capturing; the place recorded may be wrong",
                );
            }
        }
    }
    b.build()
}

fn clock_check(f: &Facts) -> Check {
    let skew = f.limits.clock_skew;
    let mut b = Builder::new(CheckId::DeviceClock, "the device clock agrees with UPN's");
    let describe = |ms: i64| {
        let direction = if ms >= 0 { "ahead of" } else { "behind" };
        format!(
            "{:.1} s {direction} UPN's",
            ms.unsigned_abs() as f64 / 1000.0
        )
    };
    match f.clock_offset_ms {
        Some(ms) => {
            b.fact("device clock now", describe(ms));
            if Duration::milliseconds(ms).abs() > skew {
                b.finding(
                    CheckStatus::Warning,
                    format!("the device clock is {}", describe(ms)),
                    "set the phone's date and time to automatic; capture times are recorded with the offset so nothing is lost",
                );
            }
        }
        None => {
            b.fact(
                "device clock now",
                "not known yet (no answer from UPN so far)",
            );
        }
    }
    for c in &f.consignments {
        let Some(pod) = &c.pod else { continue };
        let Some(ms) = pod.clock_offset_ms else {
            continue;
        };
        if Duration::milliseconds(ms).abs() > skew {
            b.fact(
                format!("{} POD", c.barcode),
                format!("device clock {} at capture", describe(ms)),
            );
            b.finding(
                CheckStatus::Warning,
                format!(
                    "the device clock was {} when the POD for {} was captured",
                    describe(ms),
                    c.barcode
                ),
                "set the phone's date and time to automatic; UPN receives the offset with the POD",
            );
        }
    }
    b.build()
}

#[cfg(test)]
mod tests;
