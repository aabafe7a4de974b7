//! Every byte UPN sees or sends, as Rust types: the one place that changes when UPN publishes a
//! real spec. Documented for humans in `docs/upn-api.md` and `docs/upn-api.openapi.yaml`.
//!
//! Shared by the client (`upn::http`) and the simulator (`upn-sim`), so the two cannot drift.
//! Field names are the wire names; unknown fields are ignored so UPN can add fields freely.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// Header carrying the depot's API key. Never logged.
pub const API_KEY_HEADER: &str = "X-UPN-Api-Key";
/// Header carrying the client-made idempotency key on POD and image requests.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// Header present on every UPN response (success or refusal): UPN's clock, RFC 3339.
pub const SERVER_TIME_HEADER: &str = "X-UPN-Server-Time";
/// Header on image uploads: hex sha256 of the body, checked by UPN.
pub const CONTENT_SHA256_HEADER: &str = "X-Content-SHA256";

/// Path segments of the consignments feed for a depot. Segments, not a string: the client
/// percent-encodes each one into the URL, so no value can add a path level or a query.
pub fn consignments_segments(depot: &str) -> Vec<&str> {
    vec!["v1", "depots", depot, "consignments"]
}
/// Path segments of the consuming tracking-events feed for a depot.
pub fn tracking_events_segments(depot: &str) -> Vec<&str> {
    vec!["v1", "depots", depot, "tracking-events"]
}
/// Path segments of the POD submission for a consignment.
pub fn pod_segments<'a>(depot: &'a str, barcode: &'a str) -> Vec<&'a str> {
    vec!["v1", "depots", depot, "consignments", barcode, "pod"]
}
/// Path segments of the image upload for a consignment.
pub fn images_segments<'a>(depot: &'a str, barcode: &'a str) -> Vec<&'a str> {
    vec!["v1", "depots", depot, "consignments", barcode, "images"]
}

/// A path as text (for the simulator's tests and the docs); values must already be valid.
pub fn path(segments: &[&str]) -> String {
    segments.iter().map(|s| format!("/{s}")).collect()
}
/// Path of the consignments feed for a depot.
pub fn consignments_path(depot: &str) -> String {
    path(&consignments_segments(depot))
}
/// Path of the consuming tracking-events feed for a depot.
pub fn tracking_events_path(depot: &str) -> String {
    path(&tracking_events_segments(depot))
}
/// Path of the POD submission for a consignment.
pub fn pod_path(depot: &str, barcode: &str) -> String {
    path(&pod_segments(depot, barcode))
}
/// Path of the image upload for a consignment.
pub fn images_path(depot: &str, barcode: &str) -> String {
    path(&images_segments(depot, barcode))
}

// ---------------------------------------------------------------------------------------------
// What the device accepts from UPN at all: every value below is checked where it is parsed.
// ---------------------------------------------------------------------------------------------

/// Earliest year of any instant accepted from UPN. Anything outside [`EARLIEST_YEAR`] ..=
/// [`LATEST_YEAR`] is a broken or hostile server: stored, it would not read back (chrono and
/// RFC 3339 stop at year 9999) or would sort wrongly as text.
pub const EARLIEST_YEAR: i32 = *crate::domain::INSTANT_YEARS.start();
/// Latest year of any instant accepted from UPN.
pub const LATEST_YEAR: i32 = *crate::domain::INSTANT_YEARS.end();

/// True when a year from UPN is outside the accepted range.
fn out_of_range(year: i32) -> bool {
    !crate::domain::year_in_range(year)
}

/// Checks one instant UPN sent; the reason names `field` and the accepted range, never the value.
pub fn check_instant(field: &str, t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if out_of_range(t.year()) {
        Err(format!(
            "{field} is outside the years {EARLIEST_YEAR}..={LATEST_YEAR}"
        ))
    } else {
        Ok(t)
    }
}

/// Checks one calendar date UPN sent, like [`check_instant`].
pub fn check_date(field: &str, d: NaiveDate) -> Result<NaiveDate, String> {
    if out_of_range(d.year()) {
        Err(format!(
            "{field} is outside the years {EARLIEST_YEAR}..={LATEST_YEAR}"
        ))
    } else {
        Ok(d)
    }
}

/// An instant from a header (RFC 3339), or `None` when it is malformed or out of range.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| check_instant("", *t).is_ok())
}

/// Longest barcode UPN issues.
pub const MAX_BARCODE_LEN: usize = 64;

/// Why `barcode` cannot be a UPN consignment barcode, or `None` when it can. The one rule for
/// barcodes from the app, the CLI and the feed alike: they end up in URL paths.
pub fn barcode_problem(barcode: &str) -> Option<&'static str> {
    if barcode.is_empty() {
        Some("is empty; scan or type the consignment barcode")
    } else if barcode.len() > MAX_BARCODE_LEN
        || !barcode
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Some("must be up to 64 letters, digits or '-', exactly as on the label")
    } else {
        None
    }
}

/// Longest depot code accepted.
pub const MAX_DEPOT_LEN: usize = 16;

/// Why `depot` cannot be a UPN depot code, or `None` when it can.
pub fn depot_problem(depot: &str) -> Option<&'static str> {
    if depot.is_empty() {
        Some("is empty; give the depot code UPN issued")
    } else if depot.len() > MAX_DEPOT_LEN || !depot.chars().all(|c| c.is_ascii_alphanumeric()) {
        Some("must be 1 to 16 letters or digits, exactly as UPN issued it")
    } else {
        None
    }
}

/// Longest feed cursor accepted: it is stored and sent back as a query parameter.
pub const MAX_CURSOR_LEN: usize = 1024;

// ---------------------------------------------------------------------------------------------
// Consignments feed: GET /v1/depots/{depot}/consignments?since={cursor}
// ---------------------------------------------------------------------------------------------

/// Query of the consignments feed. Without `since`, UPN returns every open consignment of the
/// depot; with the `cursor` of a previous page it returns only what changed since then.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ConsignmentsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// One feed response. Deserialized record by record: a consignment or cancellation that cannot
/// be read or fails a range check is left out and listed in `refused`; the others apply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(from = "FeedOnWire")]
pub struct ConsignmentFeed {
    pub server_time: DateTime<Utc>,
    /// Opaque; pass as `since` next time to receive only changes.
    pub cursor: String,
    #[serde(default)]
    pub consignments: Vec<WireConsignment>,
    #[serde(default)]
    pub cancellations: Vec<WireCancellation>,
    /// Records of this response the device refused (never sent by UPN as such).
    #[serde(skip_serializing)]
    pub refused: Vec<RefusedRecord>,
}

/// A record from UPN the device refused, and why. Carries no field values but a valid barcode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedRecord {
    /// `consignment` or `cancellation`.
    pub kind: &'static str,
    /// Position in its list in the response.
    pub index: usize,
    /// The record's barcode, when it has a valid one.
    pub barcode: Option<String>,
    pub reason: String,
}

/// The feed as it arrives: records stay raw JSON until each is parsed and checked on its own.
#[derive(Deserialize)]
struct FeedOnWire {
    server_time: DateTime<Utc>,
    cursor: String,
    #[serde(default)]
    consignments: Vec<serde_json::Value>,
    #[serde(default)]
    cancellations: Vec<serde_json::Value>,
}

impl From<FeedOnWire> for ConsignmentFeed {
    fn from(raw: FeedOnWire) -> Self {
        let mut refused = Vec::new();
        let consignments = parse_records(
            "consignment",
            raw.consignments,
            WireConsignment::check,
            &mut refused,
        );
        let cancellations = parse_records(
            "cancellation",
            raw.cancellations,
            WireCancellation::check,
            &mut refused,
        );
        Self {
            server_time: raw.server_time,
            cursor: raw.cursor,
            consignments,
            cancellations,
            refused,
        }
    }
}

/// Parses each raw record and runs `check` on it; failures go to `refused` with their reason.
fn parse_records<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    raw: Vec<serde_json::Value>,
    check: fn(&T) -> Result<(), String>,
    refused: &mut Vec<RefusedRecord>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(raw.len());
    for (index, value) in raw.into_iter().enumerate() {
        let barcode = value
            .get("barcode")
            .and_then(|b| b.as_str())
            .filter(|b| barcode_problem(b).is_none())
            .map(str::to_string);
        let parsed = serde_json::from_value::<T>(value)
            .map_err(|e| record_error(&e))
            .and_then(|record| check(&record).map(|()| record));
        match parsed {
            Ok(record) => out.push(record),
            Err(reason) => refused.push(RefusedRecord {
                kind,
                index,
                barcode,
                reason,
            }),
        }
    }
    out
}

/// Describes a record that did not deserialize without echoing its values (they may be
/// personal data): serde's "missing field" names only the field; other messages quote values.
fn record_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.starts_with("missing field") {
        text
    } else {
        "a field has the wrong type or format (a timestamp past year 9999, say)".into()
    }
}

/// Most pallets one consignment may have.
pub const MAX_PALLETS: usize = 100;
/// Heaviest consignment or pallet accepted, in kilograms.
pub const MAX_WEIGHT_KG: f64 = 100_000.0;
/// Longest name, address line, phone number or instruction text accepted.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Longest POD or image reference accepted from UPN.
pub const MAX_REFERENCE_CHARS: usize = 128;

fn check_range(field: &str, v: f64, min: f64, max: f64) -> Result<(), String> {
    if v.is_finite() && (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(format!("{field} is outside {min} to {max}"))
    }
}

/// A text field from UPN: bounded, and without control characters except line breaks.
fn check_text(field: &str, text: &str) -> Result<(), String> {
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(format!(
            "{field} is longer than {MAX_TEXT_CHARS} characters"
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(format!("{field} holds control characters"));
    }
    Ok(())
}

impl WireConsignment {
    /// The range checks a consignment from UPN must pass before it reaches the store.
    pub fn check(&self) -> Result<(), String> {
        if let Some(problem) = barcode_problem(&self.barcode) {
            return Err(format!("barcode {problem}"));
        }
        check_instant("updated_at", self.updated_at)?;
        check_date("delivery_date", self.delivery_date)?;
        let a = &self.delivery_address;
        check_range("delivery_address.lat", a.lat, -90.0, 90.0)?;
        check_range("delivery_address.lon", a.lon, -180.0, 180.0)?;
        check_range("weight_kg", self.weight_kg, 0.0, MAX_WEIGHT_KG)?;
        if self.pallets.len() > MAX_PALLETS {
            return Err(format!("pallets: more than {MAX_PALLETS}"));
        }
        for p in &self.pallets {
            if let Some(problem) = barcode_problem(&p.barcode) {
                return Err(format!("pallet barcode {problem}"));
            }
            check_range("pallet weight_kg", p.weight_kg, 0.0, MAX_WEIGHT_KG)?;
            check_text("pallet size", &p.size)?;
        }
        let texts = [
            ("shipper.name", Some(&self.shipper.name)),
            ("shipper.phone", self.shipper.phone.as_ref()),
            ("consignee.name", Some(&self.consignee.name)),
            ("consignee.phone", self.consignee.phone.as_ref()),
            ("delivery_address.town", Some(&a.town)),
            ("delivery_address.postcode", Some(&a.postcode)),
            ("delivery_address.country", Some(&a.country)),
            ("service", Some(&self.service)),
            ("special_instructions", self.special_instructions.as_ref()),
        ];
        for (field, text) in texts {
            text.map_or(Ok(()), |t| check_text(field, t))?;
        }
        if a.lines.len() > 10 {
            return Err("delivery_address.lines: more than 10".into());
        }
        a.lines
            .iter()
            .try_for_each(|l| check_text("delivery_address.lines", l))
    }
}

/// A reference UPN gives a stored POD or image: kept and shown, so 1 to
/// [`MAX_REFERENCE_CHARS`] characters without control characters.
fn check_reference(field: &str, reference: &str) -> Result<(), String> {
    let n = reference.chars().count();
    if reference.trim().is_empty() || n > MAX_REFERENCE_CHARS {
        return Err(format!(
            "{field} is not 1 to {MAX_REFERENCE_CHARS} characters"
        ));
    }
    if reference.chars().any(char::is_control) {
        return Err(format!("{field} holds control characters"));
    }
    Ok(())
}

impl PodReceipt {
    /// The checks a POD receipt must pass before the POD counts as sent.
    pub fn check(&self) -> Result<(), String> {
        check_reference("the receipt's pod_reference", &self.pod_reference)?;
        match &self.pod_sha256 {
            Some(h) if !crate::domain::pod_hash::is_pod_hash(h) => {
                Err("the receipt's pod_sha256 is not 64 lowercase hex digits".into())
            }
            _ => Ok(()),
        }
    }
}

impl ImageReceipt {
    /// The checks an image receipt must pass before the image counts as sent.
    pub fn check(&self) -> Result<(), String> {
        check_reference("the receipt's image_reference", &self.image_reference)
    }
}

impl WireCancellation {
    /// The range checks a cancellation from UPN must pass before it reaches the store.
    pub fn check(&self) -> Result<(), String> {
        if let Some(problem) = barcode_problem(&self.barcode) {
            return Err(format!("barcode {problem}"));
        }
        check_instant("cancelled_at", self.cancelled_at)?;
        Ok(())
    }
}

impl WireTrackingEvent {
    /// The range checks a tracking event from UPN must pass before it reaches the store.
    pub fn check(&self) -> Result<(), String> {
        check_instant("at", self.at)?;
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireConsignment {
    /// The UPN consignment barcode: the key across systems, matched exactly.
    pub barcode: String,
    pub shipper: WireParty,
    pub consignee: WireParty,
    pub delivery_address: WireAddress,
    pub pallets: Vec<WirePallet>,
    /// Total gross weight in kilograms.
    pub weight_kg: f64,
    /// Service level code: `PREMIUM`, `ECONOMY`, `AM`, `TIMED`, `SATURDAY`; others may appear.
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_window: Option<WireWindow>,
    pub delivery_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_instructions: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireParty {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireAddress {
    /// Street lines, most specific first.
    pub lines: Vec<String>,
    pub town: String,
    pub postcode: String,
    /// ISO 3166-1 alpha-2, `GB` for the network.
    pub country: String,
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WirePallet {
    pub barcode: String,
    /// `FULL`, `HALF`, `QUARTER`, `MICRO`; others may appear.
    pub size: String,
    pub weight_kg: f64,
}

/// A booked delivery window for `AM` and `TIMED` services (local UK time).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct WireWindow {
    pub from: NaiveTime,
    pub to: NaiveTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireCancellation {
    pub barcode: String,
    pub cancelled_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Tracking feed: GET /v1/depots/{depot}/tracking-events?max={n}
// Consuming: every event is handed out in exactly one batch, and never again.
// ---------------------------------------------------------------------------------------------

/// `E` is the event type: the core reads `TrackingBatch<&RawValue>` first (each event a slice
/// of the body) and then each event on its own, so one malformed event does not take its batch
/// down.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrackingBatch<E = WireTrackingEvent> {
    pub server_time: DateTime<Utc>,
    /// Unique per batch; `None` when there was nothing to hand out.
    #[serde(default)]
    pub batch_id: Option<String>,
    // A named default: plain `default` would make serde require `E: Default`.
    #[serde(default = "Vec::new")]
    pub events: Vec<E>,
    /// Events still waiting after this batch; call again at once while non-zero.
    #[serde(default)]
    pub remaining: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireTrackingEvent {
    /// Unique and stable per event: the key for idempotent application.
    pub id: String,
    pub barcode: String,
    /// Set when `capture_type` is `P`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pallet: Option<String>,
    /// `C` (consignment and all its pallets) or `P` (one pallet).
    pub capture_type: String,
    /// `BOOKED`, `OUT_FOR_DELIVERY`, `ARRIVED`, `UNLOADED`, `DELIVERED`, `CARDED`,
    /// `COMPLAINT_RAISED`; any other code is possible and must be kept verbatim.
    pub stage: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<WireLocation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireLocation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// POD: POST /v1/depots/{depot}/consignments/{barcode}/pod   (Idempotency-Key required)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PodSubmission {
    /// Printed name of the person who signed.
    pub signed_by: String,
    /// When the signature was captured on the device (not when it was uploaded).
    pub signed_at: DateTime<Utc>,
    /// Device clock minus UPN clock at capture, in milliseconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps: Option<WireGpsFix>,
    /// PNG of the signature, base64 (standard alphabet, padded).
    pub signature_png_base64: String,
    /// Number of delivery images that will follow for this POD.
    pub image_count: u32,
    /// The tamper-evident POD hash (64 lowercase hex; `domain::pod_hash`): sha256 over the
    /// signature, the photos, the name, the time and the place. Absent from a POD first sent
    /// before the device computed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_sha256: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct WireGpsFix {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
    pub fix_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PodReceipt {
    pub server_time: DateTime<Utc>,
    pub barcode: String,
    /// UPN's reference for the POD.
    pub pod_reference: String,
    pub received_at: DateTime<Utc>,
    /// True when this request repeated an idempotency key UPN had already stored.
    pub duplicate: bool,
    /// sha256 (hex) of the signature PNG UPN stored under this key. Optional in the contract
    /// (an older UPN may omit it); when present the client checks it against what it sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_sha256: Option<String>,
    /// Size in bytes of that signature PNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_bytes: Option<u64>,
    /// The POD hash UPN stored under this key, when it reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_sha256: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Image: POST /v1/depots/{depot}/consignments/{barcode}/images?kind=&captured_at=&lat=&lon=&accuracy_m=
// Body: the JPEG bytes. Idempotency-Key and X-Content-SHA256 required. 409 `pod_required` before a POD.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageQuery {
    /// `goods`, `location` or `leave_safe`.
    pub kind: String,
    pub captured_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageReceipt {
    pub server_time: DateTime<Utc>,
    pub barcode: String,
    pub image_reference: String,
    pub sha256: String,
    pub bytes: u64,
    pub duplicate: bool,
}

/// Largest image body UPN accepts; larger uploads are refused with 413.
pub const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Refusals: every non-2xx response carries this body and the server-time header.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub server_time: DateTime<Utc>,
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    /// One of the `code` constants below; others may appear and are treated by HTTP status.
    pub code: String,
    pub message: String,
}

/// Machine-readable refusal codes in [`ErrorDetail::code`].
pub mod code {
    /// 401: missing or wrong API key.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 403: the UPN integration is not enabled for the depot.
    pub const INTEGRATION_DISABLED: &str = "integration_disabled";
    /// 403: UPN has not enabled the tracking action for the depot.
    pub const TRACKING_ACTION_DISABLED: &str = "tracking_action_disabled";
    /// 403: UPN has not enabled the image action for the depot.
    pub const IMAGE_ACTION_DISABLED: &str = "image_action_disabled";
    /// 404: the barcode is not a consignment of this depot.
    pub const UNKNOWN_BARCODE: &str = "unknown_barcode";
    /// 409: a POD with another idempotency key was already accepted.
    pub const ALREADY_DELIVERED: &str = "already_delivered";
    /// 409: an image arrived before the consignment's POD.
    pub const POD_REQUIRED: &str = "pod_required";
    /// 413: the body is larger than UPN accepts.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// 400: the request is malformed (the message says which field).
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// 429: slow down; honour `Retry-After` (seconds).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// 5xx: UPN failed; retry later.
    pub const INTERNAL: &str = "internal";
    /// 503: UPN is temporarily unavailable; retry later.
    pub const UNAVAILABLE: &str = "unavailable";
}

/// Well-known tracking stage codes.
pub mod stage {
    pub const BOOKED: &str = "BOOKED";
    pub const OUT_FOR_DELIVERY: &str = "OUT_FOR_DELIVERY";
    pub const ARRIVED: &str = "ARRIVED";
    pub const UNLOADED: &str = "UNLOADED";
    pub const DELIVERED: &str = "DELIVERED";
    pub const CARDED: &str = "CARDED";
    pub const COMPLAINT_RAISED: &str = "COMPLAINT_RAISED";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_outside_the_accepted_years_are_refused() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(check_instant("at", at("2026-05-01T10:00:00Z")).is_ok());
        assert!(check_instant("at", at("2000-01-01T00:00:00Z")).is_ok());
        assert!(check_instant("at", at("2100-12-31T23:59:59Z")).is_ok());
        let e = check_instant("at", at("2101-01-01T00:00:00Z")).unwrap_err();
        assert!(e.contains("at") && e.contains("2100"), "{e}");
        assert!(check_instant("at", at("1999-12-31T23:59:59Z")).is_err());
        assert_eq!(parse_instant("+10000-01-01T00:00:00Z"), None);
        assert_eq!(parse_instant("2150-01-01T00:00:00Z"), None);
        assert_eq!(parse_instant("garbage"), None);
        assert_eq!(
            parse_instant("2026-05-01T10:00:00+01:00"),
            Some(at("2026-05-01T09:00:00Z"))
        );
    }

    #[test]
    fn receipt_references_are_bounded_and_printable() {
        let pod = |reference: &str| PodReceipt {
            server_time: Utc::now(),
            barcode: "B1".into(),
            pod_reference: reference.into(),
            received_at: Utc::now(),
            duplicate: false,
            signature_sha256: None,
            signature_bytes: None,
            pod_sha256: None,
        };
        assert!(pod("POD-1").check().is_ok());
        assert!(pod(&"R".repeat(MAX_REFERENCE_CHARS)).check().is_ok());
        for bad in ["", "  ", "POD\u{0}1", "POD\n1"] {
            let e = pod(bad).check().unwrap_err();
            assert!(e.contains("pod_reference"), "{bad:?}: {e}");
        }
        let e = pod(&"R".repeat(MAX_REFERENCE_CHARS + 1))
            .check()
            .unwrap_err();
        assert!(e.contains("pod_reference") && !e.contains("RRR"), "{e}");
    }

    #[test]
    fn path_helpers_join_segments() {
        assert_eq!(pod_path("042", "B1"), "/v1/depots/042/consignments/B1/pod");
        assert_eq!(
            tracking_events_path("042"),
            "/v1/depots/042/tracking-events"
        );
    }
}
