//! The outbox as the CLI shows it: a progress bar on a terminal, the flush line, what waits.

use std::io::IsTerminal;
use std::sync::Arc;

use upn_core::listener::{DriverListener, Subscription, UploadProgress};
use upn_core::Driver;
use upn_core::{FlushEnd, FlushReport};

use crate::CliError;

/// One bar on stderr per upload: `[#######.....]  58%  a1b2c3d4 UPN0421000001  93 KiB/160 KiB`.
/// indicatif draws it (rate-limited, cleared and redrawn correctly, hidden off a terminal).
#[derive(Default)]
struct ProgressBar {
    current: std::sync::Mutex<Option<(String, indicatif::ProgressBar)>>,
}

impl ProgressBar {
    fn bar_for(p: &UploadProgress) -> indicatif::ProgressBar {
        let style = indicatif::ProgressStyle::with_template(
            "[{bar:24}] {percent:>3}%  {msg}  {binary_bytes}/{binary_total_bytes}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("#>.");
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(p.total),
            indicatif::ProgressDrawTarget::stderr(),
        )
        .with_style(style);
        bar.set_message(format!(
            "{} {}",
            &p.capture_id[..p.capture_id.len().min(8)],
            p.barcode
        ));
        bar
    }
}

impl DriverListener for ProgressBar {
    fn upload_progress(&self, p: &UploadProgress) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_none_or(|(id, _)| *id != p.capture_id) {
            if let Some((_, previous)) = current.take() {
                previous.abandon();
            }
            *current = Some((p.capture_id.clone(), Self::bar_for(p)));
        }
        if let Some((_, bar)) = current.as_ref() {
            bar.set_length(p.total);
            bar.set_position(p.sent.min(p.total));
            if p.sent >= p.total {
                bar.finish();
                *current = None;
            }
        }
    }
}

/// The progress bar on stderr while the outbox sends, when stderr is a terminal. Dropping the
/// subscription removes it.
pub fn progress_bar(driver: &Driver) -> Result<Option<Subscription>, CliError> {
    if !std::io::stderr().is_terminal() {
        return Ok(None);
    }
    let (_snapshot, subscription) = driver.subscribe(Arc::new(ProgressBar::default()))?;
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
    let held = driver.data_saver_status()?.held;
    if held > 0 {
        println!("{held} photo(s) held by the data saver (see `upn-driver data-saver`)");
        reasons.push(format!(
            "{held} photo(s) are held by the data saver: they go on an unmetered network (or when the budget allows)"
        ));
    }
    if stats.queued + stats.sending > held {
        let queued = stats.queued + stats.sending - held;
        println!("{queued} capture(s) queued for UPN");
        reasons.push(format!("{queued} capture(s) are still queued for UPN"));
    }
    Ok((!reasons.is_empty()).then(|| reasons.join("; ")))
}
