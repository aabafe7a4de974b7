//! The support bundle: one zip a depot clerk sends to support, holding what they need to see
//! why a POD "isn't in UPN" (barcodes, depot, every relevant timestamp, outbox history with
//! attempts and errors, timelines, diagnostics, recent log lines, versions) and nothing they
//! must not get: no API key, no signature or photo bytes, no GPS fix (only what the
//! consignment itself carries, its delivery address).

use std::io::Write as _;

use serde::Serialize;
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;

use super::Driver;
use crate::domain::diagnostics::{distance_m, CheckId, CheckStatus};
use crate::domain::outbox::{ItemState, OutboxItem};
use crate::error::{Error, Result};
use crate::logbook;
use crate::store::captures::Capture;
use crate::store::schema;
use crate::sync::import::validate_barcode;

/// Log lines put in a bundle.
const BUNDLE_LOG_LINES: usize = 500;
/// A bundle names at most this many consignments (a day's round is far fewer).
pub const MAX_BUNDLE_CONSIGNMENTS: usize = 1000;

const README: &str = "UPN Driver Core support bundle

manifest.json          versions, depot, endpoint origin, when it was made, what it covers
diagnostics.json       the troubleshooting checks for the device and for each consignment
consignments/*.json    each consignment: status, timeline, captures with their outbox history
outbox.json            everything not yet at UPN, the outbox's pauses and counts
tracking.json          tracking health, responses and events kept aside as unreadable
sync_state.json        the device's sync bookkeeping (cursors, last successes and failures)
log.txt                recent log lines

Not included, by design: the API key, signature and photo images, and GPS fixes (a capture's
distance from its delivery address is given instead). Times are UTC.
";

impl Driver {
    /// The support bundle as zip bytes, for `barcodes` (every consignment with an open problem
    /// when empty). `app_version` is the app's own version, shown beside the core's.
    pub fn support_bundle(
        &self,
        barcodes: &[String],
        app_version: Option<&str>,
    ) -> Result<Vec<u8>> {
        if barcodes.len() > MAX_BUNDLE_CONSIGNMENTS {
            return Err(Error::invalid(
                "barcodes",
                format!("name at most {MAX_BUNDLE_CONSIGNMENTS} consignments"),
            ));
        }
        let chosen = self.bundle_selection(barcodes)?;
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut per_consignment = serde_json::Map::new();
        for barcode in &chosen {
            per_consignment.insert(
                barcode.clone(),
                to_value(&self.diagnose(Some(barcode), None)?),
            );
            let doc = self.consignment_document(barcode)?;
            files.push((format!("consignments/{barcode}.json"), pretty(&doc)?));
        }
        let diagnostics = json!({
            "device": to_value(&self.diagnose(None, None)?),
            "consignments": per_consignment,
        });
        let manifest = self.manifest(&chosen, barcodes.is_empty(), app_version)?;
        let outbox = json!({
            "pending": self.outbox()?.iter().map(item_json).collect::<Vec<_>>(),
            "stats": to_value(&self.outbox_stats()?),
            "pauses": to_value(&self.outbox_pauses()?),
        });
        let tracking = json!({
            "health": to_value(&self.tracking_health()?),
            "malformed_events": to_value(&self.malformed_events()?),
        });
        let log = logbook::recent(&self.shared.config.data_dir, BUNDLE_LOG_LINES).join("\n");

        let mut all = vec![
            ("README.txt".to_string(), README.as_bytes().to_vec()),
            ("manifest.json".to_string(), pretty(&manifest)?),
            ("diagnostics.json".to_string(), pretty(&diagnostics)?),
            ("outbox.json".to_string(), pretty(&outbox)?),
            ("tracking.json".to_string(), pretty(&tracking)?),
            (
                "sync_state.json".to_string(),
                pretty(&self.sync_state_document()?)?,
            ),
            ("log.txt".to_string(), (log + "\n").into_bytes()),
        ];
        all.append(&mut files);
        zip_files(&all)
    }

    /// The consignments asked for (each must be on the device), or those with an open problem:
    /// a capture not yet at UPN, or a geofence or GPS warning.
    fn bundle_selection(&self, barcodes: &[String]) -> Result<Vec<String>> {
        if !barcodes.is_empty() {
            let mut chosen = Vec::with_capacity(barcodes.len());
            for b in barcodes {
                let b = validate_barcode(b)?;
                if self.shared.store()?.consignment(b)?.is_none() {
                    return Err(Error::NotFound {
                        barcode: b.to_string(),
                    });
                }
                if !chosen.iter().any(|c: &String| c == b) {
                    chosen.push(b.to_string());
                }
            }
            return Ok(chosen);
        }
        let diagnosis = self.diagnose(None, None)?;
        let flagged = |id: CheckId| {
            diagnosis
                .check(id)
                .is_some_and(|c| c.status != CheckStatus::Ok)
        };
        let location_flags = flagged(CheckId::Geofence) || flagged(CheckId::GpsFix);
        let mut chosen = Vec::new();
        // Bound first: the store's guard must not live across the loop (it locks again).
        let consignments = self.shared.store()?.consignments()?;
        for c in consignments {
            let captures = self.shared.store()?.captures_of(&c.barcode)?;
            let unsent = captures.iter().any(|cap| {
                matches!(
                    cap.state,
                    ItemState::Waiting
                        | ItemState::Queued
                        | ItemState::Sending
                        | ItemState::NeedsAttention
                )
            });
            let located = location_flags
                && self
                    .diagnose(Some(&c.barcode), None)?
                    .checks
                    .iter()
                    .any(|check| {
                        matches!(check.id, CheckId::Geofence | CheckId::GpsFix)
                            && check.status != CheckStatus::Ok
                    });
            if unsent || located {
                chosen.push(c.barcode);
            }
        }
        Ok(chosen)
    }

    fn manifest(
        &self,
        chosen: &[String],
        automatic: bool,
        app_version: Option<&str>,
    ) -> Result<Value> {
        let upn = &self.shared.config.upn;
        let origin = upn
            .validate()
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_default();
        let schema_version = self.shared.store()?.schema_version()?;
        Ok(json!({
            "generated_at": self.shared.clock.now(),
            "app_version": app_version,
            "core_version": env!("CARGO_PKG_VERSION"),
            "schema_version": schema_version,
            "schema_version_of_this_core": schema::latest_version(),
            "depot": upn.depot,
            "endpoint": origin,
            "online": self.is_online(),
            "selection": if automatic { "every consignment with an open problem" } else { "the consignments asked for" },
            "consignments": chosen,
        }))
    }

    fn consignment_document(&self, barcode: &str) -> Result<Value> {
        let detail = self.consignment(barcode)?;
        let timeline = self.timeline(barcode)?;
        let captures = self.captures(barcode)?;
        let c = &detail.consignment;
        let point = geo_types::Point::new(c.address.lon, c.address.lat);
        Ok(json!({
            "consignment": to_value(c),
            "status": format!("{:?}", detail.status),
            "sync_badge": format!("{:?}", detail.sync),
            "timeline": to_value(&timeline),
            "captures": captures.iter().map(|cap| capture_json(cap, point)).collect::<Vec<_>>(),
        }))
    }

    fn sync_state_document(&self) -> Result<Value> {
        Ok(Value::Object(
            self.shared
                .store()?
                .all_sync_state()?
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        ))
    }
}

/// A capture's outbox history, without its image bytes or its GPS fix.
fn capture_json(c: &Capture, delivery_point: geo_types::Point<f64>) -> Value {
    json!({
        "id": c.id,
        "kind": c.kind.code(),
        "state": c.state.code(),
        "seq": c.seq,
        "captured_at": c.captured_at,
        "clock_offset_ms": c.clock_offset_ms,
        "signed_by": c.signed_by,
        "gps_fix_recorded": c.fix.is_some(),
        "gps_fix_stale": c.fix.map(|f| f.stale),
        "gps_accuracy_m": c.fix.map(|f| f.fix.accuracy_m.round()),
        // Rounded to 10 m: evidence for the geofence check, not a location.
        "distance_from_address_m": c.fix.map(|f| (distance_m(f.fix.point, delivery_point) / 10.0).round() * 10.0),
        "original": { "sha256": c.original.sha256, "bytes": c.original.bytes },
        "upload": c.upload.as_ref().map(|u| json!({ "sha256": u.sha256, "bytes": u.bytes })),
        "attempts": c.attempts,
        "next_attempt_at": c.next_attempt_at,
        "last_error": c.last_error,
        "sent_at": c.sent_at,
        "upn_reference": c.upn_reference,
        "replaces": c.replaces,
        "pod_image_count": c.pod_image_count,
        "pod_sha256": c.pod_sha256,
    })
}

fn item_json(i: &OutboxItem) -> Value {
    json!({
        "id": i.id,
        "barcode": i.barcode,
        "kind": i.kind.code(),
        "state": i.state.code(),
        "attempts": i.attempts,
        "captured_at": i.captured_at,
        "next_attempt_at": i.next_attempt_at,
        "last_error": i.last_error,
        "bytes": i.bytes,
    })
}

fn to_value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| json!({ "unavailable": e.to_string() }))
}

fn pretty(v: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::Storage {
        reason: format!("writing the support bundle: {e}"),
        disk_full: false,
    })
}

fn zip_files(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let fail = |e: zip::result::ZipError| Error::Storage {
        reason: format!("writing the support bundle: {e}"),
        disk_full: false,
    };
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), options).map_err(fail)?;
        zip.write_all(bytes)
            .map_err(Error::io("writing the support bundle"))?;
    }
    Ok(zip.finish().map_err(fail)?.into_inner())
}
