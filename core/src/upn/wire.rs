//! Every byte UPN sees or sends, as Rust types: the one place that changes when UPN publishes a
//! real spec. Documented for humans in `docs/upn-api.md` and `docs/upn-api.openapi.yaml`.
//!
//! Shared by the client (`upn::http`) and the simulator (`upn-sim`), so the two cannot drift.
//! Field names are the wire names; unknown fields are ignored so UPN can add fields freely.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// Header carrying the depot's API key. Never logged.
pub const API_KEY_HEADER: &str = "X-UPN-Api-Key";
/// Header carrying the client-made idempotency key on POD and image requests.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// Header present on every UPN response (success or refusal): UPN's clock, RFC 3339.
pub const SERVER_TIME_HEADER: &str = "X-UPN-Server-Time";
/// Header on image uploads: hex sha256 of the body, checked by UPN.
pub const CONTENT_SHA256_HEADER: &str = "X-Content-SHA256";

/// Path of the consignments feed for a depot.
pub fn consignments_path(depot: &str) -> String {
    format!("/v1/depots/{depot}/consignments")
}
/// Path of the consuming tracking-events feed for a depot.
pub fn tracking_events_path(depot: &str) -> String {
    format!("/v1/depots/{depot}/tracking-events")
}
/// Path of the POD submission for a consignment.
pub fn pod_path(depot: &str, barcode: &str) -> String {
    format!("/v1/depots/{depot}/consignments/{barcode}/pod")
}
/// Path of the image upload for a consignment.
pub fn images_path(depot: &str, barcode: &str) -> String {
    format!("/v1/depots/{depot}/consignments/{barcode}/images")
}

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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConsignmentFeed {
    pub server_time: DateTime<Utc>,
    /// Opaque; pass as `since` next time to receive only changes.
    pub cursor: String,
    #[serde(default)]
    pub consignments: Vec<WireConsignment>,
    #[serde(default)]
    pub cancellations: Vec<WireCancellation>,
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

/// `E` is the event type: the core reads `TrackingBatch<serde_json::Value>` first and each event
/// on its own, so one malformed event does not take its batch down.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrackingBatch<E = WireTrackingEvent> {
    pub server_time: DateTime<Utc>,
    /// Unique per batch; `None` when there was nothing to hand out.
    #[serde(default)]
    pub batch_id: Option<String>,
    #[serde(default)]
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
