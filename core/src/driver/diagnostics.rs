//! Troubleshooting on the device: gathers the facts `domain::diagnostics` decides on, and
//! records the two facts nothing else keeps (the last import failure, and since when the app
//! has reported the device offline).

use chrono::{DateTime, Utc};

use super::{Driver, Shared};
use crate::domain::diagnostics::{
    diagnose, CaptureFacts, Connectivity, ConsignmentFacts, Diagnosis, Facts, ImportFacts,
    LastFailure, TrackingFacts,
};
use crate::domain::invoice::InvoiceMatch;
use crate::domain::outbox::{CaptureKind, OutboxItem};
use crate::domain::{Consignment, Stage};
use crate::error::{Error, Result};
use crate::store::captures::Capture;
use crate::store::{format_time, keys};
use crate::sync::import::{validate_barcode, ImportReport};
use crate::upn::UpnError;

/// Keeps the last import's failure (or clears it on success) for the import check. Best
/// effort: a store error here must not turn a successful import into a failed one.
pub(super) fn record_import(shared: &Shared, result: &Result<ImportReport>) {
    let failure = match result {
        Ok(_) => None,
        Err(e) => {
            let code = match e {
                Error::Upn(upn) => upn.code(),
                _ => "other",
            };
            let failure = LastFailure {
                code: code.to_string(),
                message: e.to_string(),
                at: shared.clock.now(),
            };
            serde_json::to_string(&failure).ok()
        }
    };
    let stored = shared
        .store()
        .and_then(|s| s.put_sync_state(keys::IMPORT_LAST_FAILURE, failure.as_deref()));
    if let Err(e) = stored {
        tracing::warn!(error = %e, "could not record the import's outcome for diagnostics");
    }
}

/// Keeps since when the app has reported the device offline. Written only when it changes.
pub(super) fn record_connectivity(shared: &Shared, online: bool) {
    let result = shared.store().and_then(|s| {
        let known = s.sync_state(keys::DEVICE_OFFLINE_SINCE)?.is_some();
        match (online, known) {
            (true, true) => s.put_sync_state(keys::DEVICE_OFFLINE_SINCE, None),
            (false, false) => {
                let since = format_time(shared.clock.now()).to_string();
                s.put_sync_state(keys::DEVICE_OFFLINE_SINCE, Some(&since))
            }
            _ => Ok(()),
        }
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not record connectivity for diagnostics");
    }
}

impl Driver {
    /// Runs the troubleshooting checks, for one consignment (`barcode`) or the whole device.
    /// `invoice` adds the invoice check's lines (from [`Driver::match_invoice`]).
    pub fn diagnose(
        &self,
        barcode: Option<&str>,
        invoice: Option<InvoiceMatch>,
    ) -> Result<Diagnosis> {
        Ok(diagnose(&self.diagnostic_facts(barcode, invoice)?))
    }

    fn diagnostic_facts(
        &self,
        barcode: Option<&str>,
        invoice: Option<InvoiceMatch>,
    ) -> Result<Facts> {
        let s = &self.shared;
        let barcode = barcode.map(validate_barcode).transpose()?;
        let health = self.tracking_health()?;
        let pauses = self.outbox_pauses()?;
        let store = s.store()?;
        let all = store.consignments()?;
        let chosen: Vec<&Consignment> = match barcode {
            Some(b) => match all.iter().find(|c| c.barcode == b) {
                Some(c) => vec![c],
                None => {
                    return Err(Error::NotFound {
                        barcode: b.to_string(),
                    })
                }
            },
            None => all.iter().collect(),
        };
        let mut consignments = Vec::with_capacity(chosen.len());
        for c in chosen {
            let captures = store.captures_of(&c.barcode)?;
            let items = s.outbox_items(&store, &captures)?;
            consignments.push(consignment_facts(c, captures, items));
        }
        let import = ImportFacts {
            last_success: store.sync_time(keys::IMPORT_LAST_SUCCESS)?,
            last_failure: store
                .sync_state(keys::IMPORT_LAST_FAILURE)?
                .and_then(|json| serde_json::from_str(&json).ok()),
            consignments: all.len(),
        };
        let offline_since: Option<DateTime<Utc>> = store.sync_time(keys::DEVICE_OFFLINE_SINCE)?;
        let clock_offset_ms = store
            .sync_state(keys::CLOCK_OFFSET_MS)?
            .and_then(|v| v.parse::<i64>().ok());
        drop(store);
        let tracking_disabled = UpnError::TrackingActionDisabled.to_string();
        Ok(Facts {
            now: s.clock.now(),
            limits: s.config.diagnostics,
            barcode: barcode.map(str::to_string),
            import,
            tracking: TrackingFacts {
                last_success: health.last_success,
                action_disabled: health.last_error.as_deref() == Some(tracking_disabled.as_str()),
                last_error: health.last_error,
                failed_batches: health.failed_batches.len(),
                malformed_events: health.malformed_events,
                spilled_batches: health.spilled_batches,
            },
            connectivity: Connectivity {
                // Told offline (the time is kept), told online, or never told (a CLI run).
                online: match (s.is_online(), offline_since) {
                    (true, _) => Some(true),
                    (false, Some(_)) => Some(false),
                    (false, None) => None,
                },
                offline_since: offline_since.filter(|_| !s.is_online()),
            },
            pauses,
            clock_offset_ms,
            consignments,
            invoice,
        })
    }
}

/// `items`: the captures as the app sees them (a data-saver hold as the reason).
fn consignment_facts(
    c: &Consignment,
    captures: Vec<Capture>,
    items: Vec<OutboxItem>,
) -> ConsignmentFacts {
    let mut pod = None;
    let mut photos = Vec::new();
    for (capture, item) in captures.into_iter().zip(items) {
        if !capture.state.is_live() {
            continue;
        }
        let facts = CaptureFacts {
            item,
            fix: capture.fix,
            clock_offset_ms: capture.clock_offset_ms,
        };
        match capture.kind {
            CaptureKind::Pod => pod = Some(facts),
            _ => photos.push(facts),
        }
    }
    ConsignmentFacts {
        barcode: c.barcode.clone(),
        delivery_point: geo_types::Point::new(c.address.lon, c.address.lat),
        cancelled: c.cancelled.is_some(),
        delivered: matches!(c.stage, Some(Stage::Delivered)),
        pod,
        photos,
    }
}
