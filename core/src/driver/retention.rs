//! Data that leaves the device: a signature's or photo's files go a while after UPN
//! acknowledged it ([`Retention::originals_after`]); a consignment goes with its captures,
//! events and files once it is old and nothing of it is unsent ([`Retention::consignments_after`]);
//! processed tracking bodies older than that go too. Runs at open and then at most once a day,
//! after an import. What may go is decided in the store, on the row (`store::retention`);
//! files are removed only after the row's commit.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Driver, Shared};
use crate::error::{Error, Result};
use crate::store::keys;

/// Between a purge's commit and the removal of its files.
pub const FAILPOINT_AFTER_PURGE: &str = "retention.after_purge_commit";

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// How long data stays on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A capture's original (and upload rendition) is removed this long after UPN acknowledged
    /// it. The row stays (receipts say "originals purged on …").
    pub originals_after: Duration,
    /// A consignment leaves the stop list and the store this long after its delivery date and
    /// its last activity (import, capture, acknowledgement, tracking event), when nothing of
    /// it is unsent or needs attention.
    pub consignments_after: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            originals_after: 7 * DAY,
            consignments_after: 14 * DAY,
        }
    }
}

/// The shortest and longest settings accepted.
pub const ORIGINALS_AFTER: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(60 * 60)..=Duration::from_secs(365 * 24 * 60 * 60);
pub const CONSIGNMENTS_AFTER: std::ops::RangeInclusive<Duration> =
    DAY..=Duration::from_secs(365 * 24 * 60 * 60);

impl Retention {
    /// Refuses settings outside [`ORIGINALS_AFTER`] / [`CONSIGNMENTS_AFTER`], or originals
    /// kept longer than their consignment.
    pub fn validate(&self) -> Result<()> {
        if !ORIGINALS_AFTER.contains(&self.originals_after) {
            return Err(Error::invalid(
                "retention.originals_after",
                "must be 1 hour to 365 days",
            ));
        }
        if !CONSIGNMENTS_AFTER.contains(&self.consignments_after) {
            return Err(Error::invalid(
                "retention.consignments_after",
                "must be 1 day to 365 days",
            ));
        }
        if self.originals_after > self.consignments_after {
            return Err(Error::invalid(
                "retention.originals_after",
                "must not be longer than retention.consignments_after (a consignment takes its files with it)",
            ));
        }
        Ok(())
    }
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RetentionReport {
    /// Captures whose files were removed.
    pub originals_purged: u32,
    /// Consignments that left the device (with their captures, events and files).
    pub consignments_removed: u32,
    /// Processed tracking bodies emptied.
    pub tracking_bodies_purged: u32,
}

impl Driver {
    /// Runs retention now (it also runs at open and daily after an import).
    pub fn run_retention(&self) -> Result<RetentionReport> {
        run(&self.shared)
    }
}

fn before(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(wait)
        .ok()
        .and_then(|w| now.checked_sub_signed(w))
        .unwrap_or(now)
}

/// One retention pass.
pub(crate) fn run(shared: &Shared) -> Result<RetentionReport> {
    let now = shared.clock.now();
    let policy = shared.config.retention;
    let mut report = RetentionReport::default();

    let cutoff = before(now, policy.originals_after);
    let purgeable = shared.store()?.purgeable_originals(cutoff)?;
    for capture in purgeable {
        if shared.store()?.mark_purged(&capture.id, cutoff, now)? {
            crate::failpoint::hit(FAILPOINT_AFTER_PURGE);
            capture.files.iter().for_each(|f| shared.blobs.remove(f));
            report.originals_purged += 1;
        }
    }

    let cutoff = before(now, policy.consignments_after);
    let expired = shared.store()?.expired_consignments(cutoff)?;
    for barcode in expired {
        if let Some(files) = shared.store()?.remove_consignment(&barcode, cutoff)? {
            files.iter().for_each(|f| shared.blobs.remove(f));
            report.consignments_removed += 1;
        }
    }
    if report.consignments_removed > 0 {
        // Stops left the list: listeners hear it as `Removed` changes of a new version.
        shared.listeners.stops_dirty();
    }
    let store = shared.store()?;
    report.tracking_bodies_purged = store.purge_tracking_bodies(cutoff)?;
    store.put_sync_state(
        keys::RETENTION_LAST_RUN,
        Some(&crate::store::format_time(now).to_string()),
    )?;
    if report != RetentionReport::default() {
        tracing::info!(
            originals = report.originals_purged,
            consignments = report.consignments_removed,
            tracking_bodies = report.tracking_bodies_purged,
            "retention removed data UPN already holds"
        );
    }
    Ok(report)
}

/// Runs a pass when none ran in the last day (by the device clock; a clock set back runs one).
pub(crate) fn run_if_due(shared: &Shared) -> Result<Option<RetentionReport>> {
    let now = shared.clock.now();
    let last = shared.store()?.sync_time(keys::RETENTION_LAST_RUN)?;
    let due = last.is_none_or(|t| t > now || before(now, DAY) >= t);
    if due {
        run(shared).map(Some)
    } else {
        Ok(None)
    }
}
