//! The UPN contract as the simulator speaks it: its own request and response types, written
//! from `docs/upn-api.openapi.yaml`, never shared with the client (`upn_core::upn::wire`).
//!
//! Why a second copy: with one set of types for both sides a field renamed in the client is
//! renamed in the simulator too, and every test still passes against a contract UPN no longer
//! speaks. Here the two sides are written independently and checked against the spec (the
//! contract tests, `cargo xtask contract`), so a rename on one side fails a test.
//!
//! What the simulator *receives* refuses unknown fields (`deny_unknown_fields`): a client that
//! renamed `signed_by` gets a 400 naming the field instead of a silently missing value.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// Header carrying the depot's API key.
pub const API_KEY_HEADER: &str = "X-UPN-Api-Key";
/// Header carrying the client-made idempotency key on POD and image requests.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// Header on every response: the simulator's clock, RFC 3339.
pub const SERVER_TIME_HEADER: &str = "X-UPN-Server-Time";
/// Header on image uploads: hex sha256 of the body.
pub const CONTENT_SHA256_HEADER: &str = "X-Content-SHA256";
/// Largest image body accepted; larger uploads are refused with 413.
pub const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Consignments feed (sent)
// ---------------------------------------------------------------------------------------------

/// Query of the consignments feed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsignmentsQuery {
    #[serde(default)]
    pub since: Option<String>,
}

/// One feed response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConsignmentFeed {
    pub server_time: DateTime<Utc>,
    pub cursor: String,
    pub consignments: Vec<WireConsignment>,
    pub cancellations: Vec<WireCancellation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireConsignment {
    pub barcode: String,
    pub shipper: WireParty,
    pub consignee: WireParty,
    pub delivery_address: WireAddress,
    pub pallets: Vec<WirePallet>,
    pub weight_kg: f64,
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
    pub lines: Vec<String>,
    pub town: String,
    pub postcode: String,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WirePallet {
    pub barcode: String,
    pub size: String,
    pub weight_kg: f64,
}

/// `HH:MM:SS` local UK time (no offset, by the contract).
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
// Tracking feed (sent)
// ---------------------------------------------------------------------------------------------

/// Query of the tracking feed. `max` stays text so a bad value gets a message naming it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    pub max: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrackingBatch {
    pub server_time: DateTime<Utc>,
    /// `None` (sent as `null`) when there was nothing to hand out.
    pub batch_id: Option<String>,
    pub events: Vec<WireTrackingEvent>,
    pub remaining: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireTrackingEvent {
    pub id: String,
    pub barcode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pallet: Option<String>,
    pub capture_type: String,
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
// POD (received, then its receipt sent)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PodSubmission {
    pub signed_by: String,
    pub signed_at: DateTime<Utc>,
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
    #[serde(default)]
    pub gps: Option<WireGpsFix>,
    pub signature_png_base64: String,
    pub image_count: u32,
    /// The tamper-evident POD hash the device computed: 64 lowercase hex characters.
    #[serde(default)]
    pub pod_sha256: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
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
    pub pod_reference: String,
    pub received_at: DateTime<Utc>,
    pub duplicate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_bytes: Option<u64>,
    /// The `pod_sha256` stored with the POD, echoed when the device sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_sha256: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Image (received as query + body, then its receipt sent)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageQuery {
    pub kind: String,
    pub captured_at: DateTime<Utc>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
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

// ---------------------------------------------------------------------------------------------
// Refusals (sent)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub server_time: DateTime<Utc>,
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// Refusal codes, as the spec lists them.
pub mod code {
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const INTEGRATION_DISABLED: &str = "integration_disabled";
    pub const TRACKING_ACTION_DISABLED: &str = "tracking_action_disabled";
    pub const IMAGE_ACTION_DISABLED: &str = "image_action_disabled";
    pub const UNKNOWN_BARCODE: &str = "unknown_barcode";
    pub const ALREADY_DELIVERED: &str = "already_delivered";
    pub const POD_REQUIRED: &str = "pod_required";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const INTERNAL: &str = "internal";
    pub const UNAVAILABLE: &str = "unavailable";
}

/// Stage codes the simulator emits itself.
pub mod stage {
    pub const BOOKED: &str = "BOOKED";
    pub const OUT_FOR_DELIVERY: &str = "OUT_FOR_DELIVERY";
}

/// True for 64 lowercase hex characters (a sha256 as the contract writes it).
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_with_an_unknown_field_is_refused() {
        let good = serde_json::json!({
            "signed_by": "J. Smith", "signed_at": "2025-03-14T10:00:00Z",
            "signature_png_base64": "iVBORw0KGgo=", "image_count": 0,
        });
        assert!(serde_json::from_value::<PodSubmission>(good.clone()).is_ok());
        let mut renamed = good;
        let name = renamed["signed_by"].take();
        renamed["signer"] = name;
        renamed.as_object_mut().unwrap().remove("signed_by");
        let e = serde_json::from_value::<PodSubmission>(renamed).unwrap_err();
        assert!(e.to_string().contains("signer"), "{e}");
    }

    #[test]
    fn sha256_hex_is_64_lowercase_hex() {
        assert!(is_sha256_hex(&"a1".repeat(32)));
        assert!(!is_sha256_hex(&"A1".repeat(32)));
        assert!(!is_sha256_hex(&"a1".repeat(31)));
        assert!(!is_sha256_hex(&"g1".repeat(32)));
    }
}
