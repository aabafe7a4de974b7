//! The tracking part of `upn-driver demo`: UPN reports progress on one consignment (through the
//! simulator's event queue, as `POST /_sim/events` does), the driver core pulls it, and the
//! consignment's and pallets' timelines are shown.

use upn_core::upn::wire::stage;
use upn_core::Driver;
use upn_sim::{NewEvent, SimHandle};

use crate::render;
use crate::CliError;

/// Queues Out for delivery (C), Unloaded (P, one pallet) and Delivered (C) for `barcode`, pulls
/// tracking, and prints the timelines. The consignment must be imported already.
///
/// Note: afterwards UPN shows the consignment as delivered, so the core refuses a new POD
/// capture for it (`AlreadyDelivered`) unless one was captured on this device first.
pub fn tracking_demo(sim: &SimHandle, driver: &Driver, barcode: &str) -> Result<(), CliError> {
    let detail = driver.consignment(barcode)?;
    let pallet = detail
        .consignment
        .pallets
        .first()
        .map(|p| p.barcode.clone())
        .ok_or_else(|| CliError::failed(format!("consignment {barcode} has no pallets")))?;

    println!("\n== Tracking: UPN reports progress on {barcode}");
    // The van left the depot before the driver signed, and unloading came just before it; UPN
    // records the delivery when the POD reaches it.
    let signed_at = detail.pod.as_ref().map(|p| p.captured_at);
    let before = |minutes: i64| signed_at.map(|t| t - chrono::Duration::minutes(minutes));
    let event = |capture_type: &str, pallet: Option<&str>, stage: &str, at| NewEvent {
        barcode: barcode.to_string(),
        pallet: pallet.map(str::to_string),
        capture_type: capture_type.to_string(),
        stage: stage.to_string(),
        at,
    };
    let queued = sim.push_events(vec![
        event("C", None, stage::OUT_FOR_DELIVERY, before(95)),
        event("P", Some(&pallet), stage::UNLOADED, before(4)),
        event("C", None, stage::DELIVERED, None),
    ]);
    println!(
        "UPN queued {queued} events: Out for delivery (consignment), Unloaded (pallet {pallet}), Delivered (consignment)"
    );

    let report = driver.pull_tracking_now()?;
    println!(
        "tracking pulled: {} new events in {} response(s), each stored on the device before it was applied",
        report.applied, report.batches
    );

    let timeline = driver.timeline(barcode)?;
    let status = driver.consignment(barcode)?.status;
    println!("{barcode}  {}", status.label());
    print!("{}", render::timeline_text(&timeline));

    let health = driver.tracking_health()?;
    if let Some(at) = health.last_success {
        println!(
            "last tracking sync {}{}",
            at.format("%H:%M:%S UTC"),
            if health.stale { " (stale)" } else { "" }
        );
    }
    Ok(())
}
