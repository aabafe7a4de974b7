//! `upn-driver sync`: import the depot's consignments, pull tracking, and flush the outbox.
//! Each step runs even when an earlier one failed; the exit code is the worst outcome.

use crate::args::SyncArgs;
use crate::{exit, CliError};

pub fn run(args: SyncArgs) -> Result<u8, CliError> {
    let driver = super::open_driver(&args.driver)?;
    if args.offline {
        return Ok(match super::flush::report_pending(&driver)? {
            None => exit::OK,
            Some(reason) => {
                eprintln!("upn-driver: {reason}");
                exit::QUEUED_OR_UNREACHABLE
            }
        });
    }
    let mut worst: Option<CliError> = None;
    let mut keep_worst = |e: CliError| {
        eprintln!("upn-driver: {}", e.message);
        if worst.as_ref().is_none_or(|w| rank(e.code) > rank(w.code)) {
            worst = Some(e);
        }
    };

    match driver.import_now() {
        Ok(report) => {
            let c = report.counts;
            println!(
                "imported: {} new, {} updated, {} unchanged, {} cancelled",
                c.added, c.updated, c.unchanged, c.cancelled
            );
            // UPN's bad records are refused one by one; the rest applied. Say so, on stderr.
            for r in &report.refused {
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
        Err(e) => keep_worst(e.into()),
    }

    // Tracking: UPN hands each batch out once; the core stores it before applying it.
    match driver.pull_tracking_now() {
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
                keep_worst(CliError::failed(format!(
                    "{} tracking response(s) from UPN could not be read; they are kept on the device for support",
                    r.failed_batches
                )));
            }
        }
        Err(e) => keep_worst(e.into()),
    }

    // Exit 0 only when everything captured reached UPN and nothing needs attention.
    match super::flush::flush_with_progress(&driver) {
        Ok(None) => {}
        Ok(Some(reason)) => keep_worst(CliError {
            code: exit::QUEUED_OR_UNREACHABLE,
            message: reason,
        }),
        Err(e) => keep_worst(e),
    }
    match worst {
        None => Ok(exit::OK),
        // Already printed; only the exit code is left to give.
        Some(e) => Ok(e.code),
    }
}

/// Which exit code wins when steps fail differently: a hard failure over bad input over "queued".
fn rank(code: u8) -> u8 {
    match code {
        exit::FAILED => 3,
        exit::BAD_INPUT => 2,
        exit::QUEUED_OR_UNREACHABLE => 1,
        _ => 0,
    }
}
