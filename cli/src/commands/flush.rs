//! The outbox as the CLI shows it: a progress bar on a terminal, the flush line, what waits.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use upn_core::listener::{DriverListener, Subscription, UploadProgress};
use upn_core::Driver;
use upn_core::{FlushEnd, FlushReport};

use crate::CliError;

/// Draws one line on stderr: `[#######.....]  58%  a1b2c3d4 UPN0421000001  93/160 KB`.
struct ProgressBar;

impl DriverListener for ProgressBar {
    fn upload_progress(&self, p: &UploadProgress) {
        let fraction = if p.total == 0 {
            1.0
        } else {
            (p.sent as f64 / p.total as f64).min(1.0)
        };
        let filled = (fraction * 24.0).round() as usize;
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r[{}{}] {:>3.0}%  {} {}  {}/{} KB ",
            "#".repeat(filled),
            ".".repeat(24 - filled.min(24)),
            fraction * 100.0,
            &p.capture_id[..p.capture_id.len().min(8)],
            p.barcode,
            // Both rounded the same way, so 100 % reads "160/160 KB", never "159/160".
            p.sent.min(p.total).div_ceil(1024),
            p.total.div_ceil(1024),
        );
        if p.sent >= p.total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

/// The progress bar on stderr while the outbox sends, when stderr is a terminal. Dropping the
/// subscription removes it.
pub fn progress_bar(driver: &Driver) -> Result<Option<Subscription>, CliError> {
    if !std::io::stderr().is_terminal() {
        return Ok(None);
    }
    let (_snapshot, subscription) = driver.subscribe(Arc::new(ProgressBar))?;
    Ok(Some(subscription))
}

/// One line about a flush pass.
pub fn print_flush(report: &FlushReport) {
    println!(
        "outbox: {} sent, {} to retry, {} need attention{}{}",
        report.sent,
        report.retrying,
        report.needs_attention,
        if report.paused > 0 {
            format!(", {} held by a pause", report.paused)
        } else {
            String::new()
        },
        if report.ended == FlushEnd::Offline {
            " (UPN unreachable)"
        } else {
            ""
        }
    );
}

/// Prints what still waits. `Some(reason)` (for stderr and exit code 3) unless nothing is
/// pending and nothing needs attention.
pub fn report_pending(driver: &Driver) -> Result<Option<String>, CliError> {
    let stats = driver.outbox_stats()?;
    let mut reasons = Vec::new();
    if let Some(p) = &stats.pauses.outbox {
        reasons.push(format!("the outbox is paused: {}", p.message));
    }
    if let Some(p) = &stats.pauses.images {
        reasons.push(format!("photos are paused: {}", p.message));
    }
    if stats.needs_attention > 0 {
        println!(
            "{} capture(s) need attention: see `upn-driver outbox`",
            stats.needs_attention
        );
        reasons.push(format!(
            "{} capture(s) need attention (see `upn-driver outbox`, then `retry` or `discard`)",
            stats.needs_attention
        ));
    }
    if stats.waiting > 0 {
        println!("{} photo(s) wait for a signature", stats.waiting);
        reasons.push(format!("{} photo(s) wait for a signature", stats.waiting));
    }
    if stats.queued + stats.sending > 0 {
        println!("{} capture(s) queued for UPN", stats.queued + stats.sending);
        reasons.push(format!(
            "{} capture(s) are still queued for UPN",
            stats.queued + stats.sending
        ));
    }
    Ok((!reasons.is_empty()).then(|| reasons.join("; ")))
}
