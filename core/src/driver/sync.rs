//! `sync_now`: everything with UPN at once, one policy for the app (FFI) and the CLI alike.
//!
//! The policy:
//! - Three steps: the consignment import, the outbox flush and the tracking pull. Each runs and
//!   reports its own outcome in [`SyncReport`]; a failure of one never skips another.
//! - The import goes first and the flush follows it, so what UPN changed (new stops,
//!   cancellations, a changed delivery) is on the device, and in the stop list the driver looks
//!   at next, before the uploads take the link. But the flush never waits on the import: it
//!   runs whatever the import's result (PODs for stops already on the device must go even when
//!   the feed is broken), and when the import is still running after
//!   [`Intervals::import_head_start`](super::Intervals::import_head_start) the flush starts
//!   beside it.
//! - The tracking pull runs beside both from the start: it has its own gate and its own route,
//!   so it never waits for an upload, and events for stops not imported yet wait on the device
//!   and apply at import.
//! - [`SyncReport::outcome`] folds the three into one [`SyncOutcome`] an app or an exit code
//!   switches on: the worst of the steps.
//!
//! The background engine runs the same pieces ([`Shared::import`], [`Shared::flush`],
//! `tracking::pull_now`), each on its own task and interval.

use std::sync::Arc;

use super::{tracking, DrainReport, Driver, Shared, Task};
use crate::error::{Error, Result};
use crate::sync::import::ImportReport;
use crate::sync::outbox::FlushEnd;
use crate::sync::tracking::TrackingReport;

/// What one `sync_now` did: each step's own outcome.
#[derive(Debug)]
pub struct SyncReport {
    /// The consignment import.
    pub import: Result<ImportReport>,
    /// The outbox flush, and what still waits to reach UPN after it.
    pub outbox: Result<DrainReport>,
    /// The tracking pull.
    pub tracking: Result<TrackingReport>,
}

/// The one value an app or an exit code switches on: the worst outcome of the three steps.
/// Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// Every step succeeded and nothing waits to reach UPN.
    Done,
    /// Every step reached UPN, but captures still wait: on a backoff, a pause, a signature
    /// (photos), or a person (needs attention). See the outbox.
    Pending,
    /// UPN could not be reached, or failed for now, in at least one step. The core retries by
    /// itself; captured work stays queued.
    Offline,
    /// A step failed for a reason retrying will not fix: the key or an action refused by UPN,
    /// a response that could not be read, the device's storage. The step's error says which.
    Failed,
}

impl SyncReport {
    /// The worst outcome of the three steps.
    pub fn outcome(&self) -> SyncOutcome {
        let import = self
            .import
            .as_ref()
            .map_or_else(error_outcome, |_| SyncOutcome::Done);
        let outbox = self
            .outbox
            .as_ref()
            .map_or_else(error_outcome, outbox_outcome);
        let tracking = self.tracking.as_ref().map_or_else(error_outcome, |t| {
            // UPN sent something unreadable: kept for support, and a person should look.
            if t.failed_batches > 0 {
                SyncOutcome::Failed
            } else {
                SyncOutcome::Done
            }
        });
        import.max(outbox).max(tracking)
    }
}

fn outbox_outcome(outbox: &DrainReport) -> SyncOutcome {
    match outbox.flush.ended {
        FlushEnd::Offline => SyncOutcome::Offline,
        FlushEnd::Deadline | FlushEnd::Cancelled => SyncOutcome::Pending,
        FlushEnd::Done if outbox.pending > 0 => SyncOutcome::Pending,
        FlushEnd::Done => SyncOutcome::Done,
    }
}

/// What a step's error means for the whole sync.
fn error_outcome(error: &Error) -> SyncOutcome {
    match error {
        Error::Upn(u) if u.is_recoverable() => SyncOutcome::Offline,
        // Another flush holds an item right now: it is still going, not failed.
        Error::InFlight { .. } => SyncOutcome::Pending,
        _ => SyncOutcome::Failed,
    }
}

impl Shared {
    /// The three steps, as the module's policy says.
    pub(crate) async fn sync_now(self: &Arc<Self>) -> SyncReport {
        let ((import, outbox), tracking) =
            tokio::join!(self.import_then_flush(), tracking::pull_now(self));
        SyncReport {
            import,
            outbox,
            tracking,
        }
    }

    /// The import with its head start, then (or, once the head start is over, beside it) the
    /// flush, whatever the import's result.
    async fn import_then_flush(self: &Arc<Self>) -> (Result<ImportReport>, Result<DrainReport>) {
        let head_start = self.config.intervals.import_head_start;
        let import = self.import();
        tokio::pin!(import);
        match tokio::time::timeout(head_start, &mut import).await {
            Ok(import) => (import, self.flush_and_count(None, None).await),
            Err(_) => {
                tracing::info!(
                    head_start_ms = head_start.as_millis() as u64,
                    "the import is slow: the outbox flush starts beside it"
                );
                tokio::join!(import, self.flush_and_count(None, None))
            }
        }
    }
}

impl Driver {
    /// Imports consignments, flushes the outbox and pulls tracking now, whatever the
    /// connectivity flag says, by the policy of this module: each step runs and reports its own
    /// outcome; [`SyncReport::outcome`] is the one value to switch on.
    pub fn sync_now(&self) -> SyncReport {
        self.runtime.block_on(self.shared.sync_now())
    }

    /// [`Driver::sync_now`] as a [`Task`] on the core's runtime, for async callers. Dropping
    /// the task stops every step at its next await.
    pub fn sync_task(&self) -> Task<SyncReport> {
        let shared = self.shared.clone();
        self.spawn(async move { shared.sync_now().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ImportCounts;
    use crate::sync::outbox::FlushReport;
    use crate::upn::UpnError;

    fn import_ok() -> Result<ImportReport> {
        Ok(ImportReport {
            counts: ImportCounts::default(),
            refused: Vec::new(),
            server_time: chrono::Utc::now(),
        })
    }

    fn outbox(ended: FlushEnd, pending: u32) -> Result<DrainReport> {
        Ok(DrainReport {
            flush: FlushReport::empty(ended),
            pending,
            held_by_data_saver: 0,
        })
    }

    fn report(
        import: Result<ImportReport>,
        outbox: Result<DrainReport>,
        tracking: Result<TrackingReport>,
    ) -> SyncReport {
        SyncReport {
            import,
            outbox,
            tracking,
        }
    }

    fn offline() -> Error {
        Error::Upn(UpnError::Unreachable {
            reason: "connection refused".into(),
        })
    }

    #[test]
    fn everything_done_is_done() {
        let r = report(
            import_ok(),
            outbox(FlushEnd::Done, 0),
            Ok(TrackingReport::default()),
        );
        assert_eq!(r.outcome(), SyncOutcome::Done);
    }

    #[test]
    fn work_left_in_the_outbox_is_pending() {
        for (ended, pending) in [(FlushEnd::Done, 1), (FlushEnd::Deadline, 0)] {
            let r = report(
                import_ok(),
                outbox(ended, pending),
                Ok(TrackingReport::default()),
            );
            assert_eq!(r.outcome(), SyncOutcome::Pending, "{ended:?} {pending}");
        }
    }

    #[test]
    fn a_failed_import_is_its_own_outcome_beside_a_flush_that_worked() {
        let r = report(
            Err(offline()),
            outbox(FlushEnd::Done, 0),
            Ok(TrackingReport::default()),
        );
        assert_eq!(r.outcome(), SyncOutcome::Offline);
        let r = report(
            Err(Error::Upn(UpnError::Unauthorized)),
            outbox(FlushEnd::Done, 0),
            Ok(TrackingReport::default()),
        );
        assert_eq!(r.outcome(), SyncOutcome::Failed);
    }

    #[test]
    fn the_worst_step_wins() {
        let r = report(
            Err(offline()),
            outbox(FlushEnd::Done, 3),
            Err(Error::Upn(UpnError::TrackingActionDisabled)),
        );
        assert_eq!(r.outcome(), SyncOutcome::Failed);
        let r = report(
            import_ok(),
            outbox(FlushEnd::Offline, 2),
            Ok(TrackingReport::default()),
        );
        assert_eq!(r.outcome(), SyncOutcome::Offline);
        let unreadable = TrackingReport {
            failed_batches: 1,
            ..TrackingReport::default()
        };
        let r = report(import_ok(), outbox(FlushEnd::Done, 0), Ok(unreadable));
        assert_eq!(r.outcome(), SyncOutcome::Failed);
    }

    #[test]
    fn an_item_in_flight_elsewhere_is_pending_not_failed() {
        let r = report(
            import_ok(),
            Err(Error::InFlight { id: "a".into() }),
            Ok(TrackingReport::default()),
        );
        assert_eq!(r.outcome(), SyncOutcome::Pending);
    }
}
