//! Tracking sync as the driver sees it: stored responses are processed at open ([`resume`]),
//! the engine pulls every `intervals.tracking` on its own task ([`scheduled_pull`]), the app can
//! pull now, read a consignment's timeline, and ask whether tracking is healthy.
//!
//! Pulls are single-flight (`Shared::tracking_gate`), and use only the tracking gate: a pull
//! never waits behind an import or a photo upload.

use chrono::{DateTime, Utc};

use super::{Driver, Shared, Task};
use crate::domain::tracking::{is_stale, CaptureType, Location, Source, Timeline, TimelineEntry};
use crate::domain::Stage;
use crate::error::{Error, Result};
use crate::store::tracking::MalformedEvent;
use crate::sync::import::validate_barcode;
use crate::sync::tracking::{self as service, TrackingHealth, TrackingReport};

/// Processes responses stored by a previous run before anything else happens. A failure here
/// does not stop the core opening: the batches stay pending and the next pull processes them
/// first.
pub(crate) fn resume(shared: &Shared) -> Result<()> {
    match service::process_pending(&shared.store, shared.clock.as_ref()) {
        Ok(report) => {
            if report.resumed > 0 {
                tracing::info!(
                    batches = report.resumed,
                    applied = report.applied,
                    failed = report.failed_batches,
                    "tracking responses from an earlier run processed"
                );
            }
            notify(shared, &report);
        }
        Err(e) => {
            tracing::warn!(error = %e, "stored tracking responses could not be processed yet");
        }
    }
    Ok(())
}

/// The scheduled pull. If a pull is already running (e.g. one the app asked for), this one is
/// skipped: never two pulls at once.
pub(crate) async fn scheduled_pull(shared: &Shared) -> Result<()> {
    let Ok(_gate) = shared.tracking_gate.try_lock() else {
        tracing::debug!("a tracking pull is already running; skipping the scheduled one");
        return Ok(());
    };
    pull(shared).await.map(|_| ())
}

/// One pull now, waiting for a pull already running to finish first (`sync_now`, the app).
pub(crate) async fn pull_now(shared: &Shared) -> Result<TrackingReport> {
    let _gate = shared.tracking_gate.lock().await;
    pull(shared).await
}

/// One pull with the gate already held; tells listeners which stops changed.
async fn pull(shared: &Shared) -> Result<TrackingReport> {
    let report = service::pull_tracking(&shared.api, &shared.store, shared.clock.as_ref()).await?;
    notify(shared, &report);
    Ok(report)
}

fn notify(shared: &Shared, report: &TrackingReport) {
    if !report.changed.is_empty() {
        shared.listeners.stops_dirty();
    }
}

impl Driver {
    /// Pulls tracking now (waiting for a pull already running to finish first).
    pub fn pull_tracking_now(&self) -> Result<TrackingReport> {
        self.runtime.block_on(pull_now(&self.shared))
    }

    /// [`Driver::pull_tracking_now`] as a [`Task`] on the core's runtime, for async callers.
    pub fn pull_tracking_task(&self) -> Task<Result<TrackingReport>> {
        let shared = self.shared.clone();
        self.spawn(async move { pull_now(&shared).await })
    }

    /// The tracking timeline of a consignment and of each of its pallets: UPN's events, and
    /// the POD captured on this device. Events that arrived before their consignment are shown
    /// too; a barcode with neither a consignment nor events is not found.
    pub fn timeline(&self, barcode: &str) -> Result<Timeline> {
        let barcode = validate_barcode(barcode)?;
        let store = self.shared.store()?;
        let consignment = store.consignment(barcode)?;
        let mut entries = store.tracking_events_of(barcode)?;
        if let Some(pod) = store.live_pod(barcode)? {
            entries.push(TimelineEntry {
                id: format!("device:{}", pod.id),
                at: pod.captured_at,
                stage: Stage::Delivered,
                capture_type: CaptureType::Consignment,
                pallet: None,
                location: pod.fix.map(|f| Location {
                    description: Some("signed for on this device".into()),
                    lat: Some(f.fix.lat()),
                    lon: Some(f.fix.lon()),
                }),
                source: Source::Device,
            });
        }
        drop(store);
        if consignment.is_none() && entries.is_empty() {
            return Err(Error::NotFound {
                barcode: barcode.to_string(),
            });
        }
        let pallets: Vec<&str> = consignment
            .as_ref()
            .map(|c| c.pallets.iter().map(|p| p.barcode.as_str()).collect())
            .unwrap_or_default();
        Ok(Timeline::build(barcode, entries, &pallets))
    }

    /// When a tracking pull last succeeded.
    pub fn last_tracking_sync(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self.shared.store()?.tracking_sync_state()?.last_success)
    }

    /// Whether tracking is up to date: last success, staleness (online and no success for
    /// `intervals.tracking_stale_after`), the last failure, and unreadable responses kept.
    pub fn tracking_health(&self) -> Result<TrackingHealth> {
        let s = &self.shared;
        let store = s.store()?;
        let state = store.tracking_sync_state()?;
        let failed_batches = store.failed_tracking_batches()?;
        drop(store);
        let spilled_batches = service::spilled_count(&s.config.data_dir);
        let online = s.is_online();
        Ok(TrackingHealth {
            online,
            last_success: state.last_success,
            stale: is_stale(
                online,
                s.clock.now(),
                state.last_success,
                state.first_attempt,
                s.config.intervals.tracking_stale_after,
            ),
            last_error: state.last_error,
            failed_batches,
            pending_batches: state.pending_batches,
            malformed_events: state.malformed_events,
            spilled_batches,
        })
    }

    /// Events UPN sent that could not be used, each with its batch, its position in the batch
    /// and the reason (never the value). Their batches' other events applied.
    pub fn malformed_events(&self) -> Result<Vec<MalformedEvent>> {
        self.shared.store()?.malformed_tracking_events()
    }
}
