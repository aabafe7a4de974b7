//! `upn-driver sync`: the core's `sync_now` (import, outbox flush, tracking pull; each step
//! runs and reports its own outcome, see `core/src/driver/sync.rs`), printed for a person.
//!
//! Exit code: the sync's one outcome. 0 `done` (everything captured reached UPN, nothing
//! needs attention); 3 `pending` (work remains: queued, paused, waiting for a signature or
//! for attention) or `offline` (UPN unreachable or failing for now in some step); 1 `failed`
//! (UPN refused the key or an action, sent something unreadable, or storage failed).

use upn_core::{SyncOutcome, SyncReport};

use crate::args::SyncArgs;
use crate::{exit, CliError};

pub fn run(args: SyncArgs) -> Result<u8, CliError> {
    let driver = super::open_driver(&args.driver)?;
    // Photos obey the data saver (the background work stays off: this command syncs once).
    driver.set_metered(args.metered);
    if args.offline {
        return Ok(match super::flush::report_pending(&driver)? {
            None => exit::OK,
            Some(reason) => {
                eprintln!("upn-driver: {reason}");
                exit::QUEUED_OR_UNREACHABLE
            }
        });
    }
    let report = {
        let _bar = super::flush::progress_bar(&driver)?;
        driver.sync_now()
    };
    print_import(&report);
    print_tracking(&report);
    match &report.outbox {
        Ok(outbox) => super::flush::print_flush(&outbox.flush),
        Err(e) => eprintln!("upn-driver: the outbox could not be flushed: {e}"),
    }
    if let Some(reason) = super::flush::report_pending(&driver)? {
        eprintln!("upn-driver: {reason}");
    }
    Ok(exit_code(report.outcome()))
}

/// The documented exit code of each outcome (see the module's doc and `--help`).
pub fn exit_code(outcome: SyncOutcome) -> u8 {
    match outcome {
        SyncOutcome::Done => exit::OK,
        SyncOutcome::Pending | SyncOutcome::Offline => exit::QUEUED_OR_UNREACHABLE,
        SyncOutcome::Failed => exit::FAILED,
    }
}

fn print_import(report: &SyncReport) {
    match &report.import {
        Ok(import) => {
            let c = import.counts;
            println!(
                "imported: {} new, {} updated, {} unchanged, {} cancelled",
                c.added, c.updated, c.unchanged, c.cancelled
            );
            // UPN's bad records are refused one by one; the rest applied. Say so, on stderr.
            for r in &import.refused {
                eprintln!(
                    "upn-driver: refused {} #{}{} from UPN: {}",
                    r.kind,
                    r.index,
                    r.barcode
                        .as_deref()
                        .map(|b| format!(" ({b})"))
                        .unwrap_or_default(),
                    r.reason
                );
            }
        }
        Err(e) => eprintln!("upn-driver: import failed: {e}"),
    }
}

/// Tracking: UPN hands each batch out once; the core stores it before applying it.
fn print_tracking(report: &SyncReport) {
    match &report.tracking {
        Ok(r) => {
            println!(
                "tracking: {} new events, {} already known, {} waiting for their consignment ({} responses{})",
                r.applied,
                r.duplicates,
                r.waiting_for_consignment,
                r.batches,
                if r.resumed > 0 {
                    format!(", {} resumed from an earlier run", r.resumed)
                } else {
                    String::new()
                }
            );
            if r.failed_batches > 0 {
                eprintln!(
                    "upn-driver: {} tracking response(s) from UPN could not be read; they are kept on the device for support",
                    r.failed_batches
                );
            }
        }
        Err(e) => eprintln!("upn-driver: tracking pull failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_documented_exit_code() {
        assert_eq!(exit_code(SyncOutcome::Done), 0);
        assert_eq!(exit_code(SyncOutcome::Pending), 3);
        assert_eq!(exit_code(SyncOutcome::Offline), 3);
        assert_eq!(exit_code(SyncOutcome::Failed), 1);
    }
}
