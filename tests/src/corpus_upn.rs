//! The UPN-response half of the corpus (`tests/corpus/upn/`): hostile bodies for the
//! consignments feed, the tracking feed and the POD and image receipts, each with what the core
//! must make of it. Also the seeds of the fuzz targets. Made by [`files`]; see `corpus.rs`.

use serde_json::{json, Value};

/// The instant every generated body carries as UPN's clock.
pub const SERVER_TIME: &str = "2026-11-26T10:00:00Z";
/// The barcodes of [`good_feed`].
pub const BARCODES: [&str; 3] = ["UPN0420000001", "UPN0420000002", "UPN0420000003"];

/// Where a body is served and what the core must do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpnExpect {
    /// Import: the whole response refused as `UpnError::BadResponse`, its reason containing
    /// this; the store unchanged.
    FeedRefused(&'static str),
    /// Import: `applied` records applied; one refused record per reason, in order, each
    /// reason containing its text.
    FeedRecordsRefused {
        applied: usize,
        reasons: &'static [&'static str],
    },
    /// Tracking: the body kept in the inbox, byte for byte, marked failed with a reason
    /// containing this; nothing else changed.
    TrackingFailed(&'static str),
    /// Tracking: the batch processed; `applied` events applied, the others kept aside with a
    /// reason each containing its text, in order.
    TrackingEventsKeptAside {
        applied: usize,
        reasons: &'static [&'static str],
    },
    /// Flush: the POD's receipt is unreadable (`BadResponse` containing this): the POD is not
    /// marked sent, it stays queued for a retry.
    PodReceiptRefused(&'static str),
    /// Flush: a photo's receipt is unreadable, as for the POD.
    ImageReceiptRefused(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct UpnCase {
    pub file: &'static str,
    pub expect: UpnExpect,
}

use UpnExpect::*;

const fn case(file: &'static str, expect: UpnExpect) -> UpnCase {
    UpnCase { file, expect }
}

pub const UPN_CASES: &[UpnCase] = &[
    case("upn/feed-empty.json", FeedRefused("cut short")),
    case("upn/feed-cut-short.json", FeedRefused("cut short")),
    case("upn/feed-html.json", FeedRefused("syntax error")),
    case("upn/feed-deeply-nested.json", FeedRefused("malformed JSON")),
    case("upn/feed-wrong-types.json", FeedRefused("unexpected data")),
    case("upn/feed-server-time-2999.json", FeedRefused("server_time")),
    case("upn/feed-cursor-oversized.json", FeedRefused("cursor")),
    case("upn/feed-cursor-control.json", FeedRefused("cursor")),
    case(
        "upn/feed-out-of-range-records.json",
        FeedRecordsRefused {
            applied: 1,
            reasons: &[
                "updated_at",
                "delivery_date",
                "barcode",
                "delivery_address.lat",
                "weight_kg",
                "pallets",
                "pallet barcode",
                "consignee.name",
                "missing field",
            ],
        },
    ),
    case("upn/tracking-empty.json", TrackingFailed("cut short")),
    case("upn/tracking-cut-short.json", TrackingFailed("cut short")),
    case("upn/tracking-html.json", TrackingFailed("syntax error")),
    case(
        "upn/tracking-deeply-nested.json",
        TrackingFailed("malformed JSON"),
    ),
    case(
        "upn/tracking-events-not-a-list.json",
        TrackingFailed("unexpected data"),
    ),
    case(
        "upn/tracking-out-of-range-events.json",
        TrackingEventsKeptAside {
            applied: 1,
            reasons: &[
                "at is outside the years",
                "location.lat",
                "stage holds control characters",
                "id is longer than",
                "missing field `at`",
                "invalid type",
            ],
        },
    ),
    case(
        "upn/pod-receipt-cut-short.json",
        PodReceiptRefused("cut short"),
    ),
    case(
        "upn/pod-receipt-deeply-nested.json",
        PodReceiptRefused("malformed JSON"),
    ),
    case(
        "upn/pod-receipt-huge-reference.json",
        PodReceiptRefused("pod_reference"),
    ),
    case(
        "upn/pod-receipt-control-reference.json",
        PodReceiptRefused("pod_reference"),
    ),
    case(
        "upn/image-receipt-empty-reference.json",
        ImageReceiptRefused("image_reference"),
    ),
    case(
        "upn/image-receipt-cut-short.json",
        ImageReceiptRefused("cut short"),
    ),
];

fn consignment(barcode: &str) -> Value {
    json!({
        "barcode": barcode,
        "shipper": {"name": "Acme Pallets Ltd", "phone": "0121 000 0000"},
        "consignee": {"name": "B. Consignee"},
        "delivery_address": {
            "lines": ["1 High Street"], "town": "Birmingham", "postcode": "B1 1AA",
            "country": "GB", "lat": 52.4862, "lon": -1.8904
        },
        "pallets": [{"barcode": format!("{barcode}01"), "size": "FULL", "weight_kg": 420.5}],
        "weight_kg": 420.5,
        "service": "ECONOMY",
        "delivery_date": "2026-11-26",
        "updated_at": "2026-11-26T06:00:00Z"
    })
}

fn feed(cursor: &str, consignments: Vec<Value>) -> Value {
    json!({"server_time": SERVER_TIME, "cursor": cursor, "consignments": consignments, "cancellations": []})
}

/// A well-formed feed of the [`BARCODES`] consignments.
pub fn good_feed() -> Vec<u8> {
    bytes(&feed(
        "c1",
        BARCODES.iter().map(|b| consignment(b)).collect(),
    ))
}

/// `v` with the field at `pointer` set (a missing last key of an object is added).
fn with(mut v: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    match v.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key.to_string(), value);
        }
        Some(Value::Array(items)) => {
            if let Some(slot) = key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *slot = value;
            }
        }
        _ => panic!("the corpus generator sets {pointer} where there is nothing"),
    }
    v
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

fn cut(v: &Value) -> Vec<u8> {
    let b = bytes(v);
    b[..b.len() / 2].to_vec()
}

/// `{"key": [[[[…]]]]}` nested `depth` deep: far past serde_json's recursion limit.
fn nested(key: &str, depth: usize) -> Vec<u8> {
    format!(
        "{{\"server_time\":\"{SERVER_TIME}\",\"{key}\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
    .into_bytes()
}

fn out_of_range_records() -> Value {
    let c = |n: u32| consignment(&format!("UPN04209{n:05}"));
    feed(
        "c2",
        vec![
            c(1),
            with(c(2), "/updated_at", json!("2150-01-01T00:00:00Z")),
            with(c(3), "/delivery_date", json!("1900-01-01")),
            with(c(4), "/barcode", json!("UPN/../../etc")),
            with(c(5), "/delivery_address/lat", json!(400.0)),
            with(c(6), "/weight_kg", json!(-5.0)),
            with(
                c(7),
                "/pallets",
                json!(vec![
                    json!({"barcode": "UPN0420900007P", "size": "FULL", "weight_kg": 1.0});
                    1000
                ]),
            ),
            with(c(8), "/pallets/0/barcode", json!("pallet\u{0}one")),
            with(c(9), "/consignee/name", json!("x".repeat(10_000))),
            json!({"barcode": "UPN0420900010"}),
        ],
    )
}

fn event(id: &str, at: &str) -> Value {
    json!({"id": id, "barcode": BARCODES[0], "capture_type": "C", "stage": "ARRIVED", "at": at})
}

fn tracking(events: Vec<Value>) -> Value {
    json!({"server_time": SERVER_TIME, "batch_id": "b-corpus", "events": events, "remaining": 0})
}

fn out_of_range_events() -> Value {
    let at = "2026-11-26T08:00:00Z";
    tracking(vec![
        event("e1", at),
        event("e2", "1999-12-31T23:59:59Z"),
        with(
            event("e3", at),
            "/location",
            json!({"lat": 500.0, "lon": 0.0}),
        ),
        with(event("e4", at), "/stage", json!("ARRIVED\u{1b}[2J")),
        with(event("e5", at), "/id", json!("i".repeat(1000))),
        json!({"id": "e6", "barcode": BARCODES[0], "capture_type": "C", "stage": "ARRIVED"}),
        with(event("e7", at), "/at", json!(12345)),
    ])
}

fn pod_receipt() -> Value {
    json!({
        "server_time": SERVER_TIME, "barcode": BARCODES[0], "pod_reference": "POD-1",
        "received_at": SERVER_TIME, "duplicate": false
    })
}

fn image_receipt() -> Value {
    json!({
        "server_time": SERVER_TIME, "barcode": BARCODES[0], "image_reference": "IMG-1",
        "sha256": "0".repeat(64), "bytes": 1, "duplicate": false
    })
}

/// Every committed file of `tests/corpus/upn/`.
pub fn files() -> Vec<(&'static str, Vec<u8>)> {
    let good = feed("c1", BARCODES.iter().map(|b| consignment(b)).collect());
    let batch = tracking(vec![event("e1", "2026-11-26T08:00:00Z")]);
    vec![
        ("feed.json", bytes(&good)),
        ("feed-empty.json", Vec::new()),
        ("feed-cut-short.json", cut(&good)),
        (
            "feed-html.json",
            b"<html><body>502 Bad Gateway</body></html>".to_vec(),
        ),
        ("feed-deeply-nested.json", nested("consignments", 10_000)),
        (
            "feed-wrong-types.json",
            bytes(&with(good.clone(), "/cursor", json!(42))),
        ),
        (
            "feed-server-time-2999.json",
            bytes(&with(
                good.clone(),
                "/server_time",
                json!("2999-01-01T00:00:00Z"),
            )),
        ),
        (
            "feed-cursor-oversized.json",
            bytes(&with(good.clone(), "/cursor", json!("c".repeat(5000)))),
        ),
        (
            "feed-cursor-control.json",
            bytes(&with(good.clone(), "/cursor", json!("c1\r\nX-Evil: 1"))),
        ),
        (
            "feed-out-of-range-records.json",
            bytes(&out_of_range_records()),
        ),
        ("tracking.json", bytes(&batch)),
        ("tracking-empty.json", Vec::new()),
        ("tracking-cut-short.json", cut(&batch)),
        (
            "tracking-html.json",
            b"<html><body>504 Gateway Timeout</body></html>".to_vec(),
        ),
        ("tracking-deeply-nested.json", nested("events", 10_000)),
        (
            "tracking-events-not-a-list.json",
            bytes(&with(batch.clone(), "/events", json!({"e1": 1}))),
        ),
        (
            "tracking-out-of-range-events.json",
            bytes(&out_of_range_events()),
        ),
        ("pod-receipt.json", bytes(&pod_receipt())),
        ("pod-receipt-cut-short.json", cut(&pod_receipt())),
        (
            "pod-receipt-deeply-nested.json",
            nested("pod_reference", 10_000),
        ),
        (
            "pod-receipt-huge-reference.json",
            bytes(&with(
                pod_receipt(),
                "/pod_reference",
                json!("R".repeat(100_000)),
            )),
        ),
        (
            "pod-receipt-control-reference.json",
            bytes(&with(
                pod_receipt(),
                "/pod_reference",
                json!("POD\u{0}\u{7}1"),
            )),
        ),
        ("image-receipt.json", bytes(&image_receipt())),
        (
            "image-receipt-empty-reference.json",
            bytes(&with(image_receipt(), "/image_reference", json!(""))),
        ),
        ("image-receipt-cut-short.json", cut(&image_receipt())),
        (
            "error-body.json",
            bytes(
                &json!({"server_time": SERVER_TIME, "error": {"code": "rate_limited", "message": "slow down"}}),
            ),
        ),
    ]
}
