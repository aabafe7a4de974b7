//! `upn-driver demo`: a delivery day against the embedded simulator on a free loopback port:
//! morning import, deliveries captured with no signal, the signal coming back and the outbox
//! flushing by itself, what UPN received and the POD it refused, tracking, a receipt, an invoice
//! matched, and the diagnostics summary.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use upn_core::domain::capture::GpsFix;
use upn_core::domain::outbox::CaptureKind;
use upn_core::upn::{ApiKey, UpnConfig};
use upn_core::{Driver, DriverConfig};
use upn_sim::{samples, SimHandle, Simulator};

use crate::args::DemoArgs;
use crate::render;
use crate::{exit, CliError};

pub fn run(args: DemoArgs) -> Result<u8, CliError> {
    let config = super::sim::config(&args.sim)?;
    let sim = Simulator::start_background(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| CliError::failed(format!("could not start the simulator: {e}")))?;
    println!(
        "== UPN simulator on {} (depot {})",
        sim.endpoint(),
        sim.depot()
    );

    let temp;
    let data_dir = match &args.db {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()
                .map_err(|e| CliError::failed(format!("could not make a data folder: {e}")))?;
            temp.path().to_path_buf()
        }
    };
    let upn = UpnConfig {
        endpoint: sim.endpoint(),
        depot: sim.depot(),
        api_key: ApiKey::new(sim.api_key()),
    };
    let kept = args.db.is_some();
    let driver = super::open_waiting(
        DriverConfig::new(data_dir.clone(), upn.clone()),
        Duration::from_secs(super::LOCK_WAIT_SECS),
    )?;

    println!("\n== Morning import at the depot");
    let report = driver.import_now()?;
    println!(
        "{} consignments imported for today",
        report.counts.added + report.counts.updated
    );
    let tracking = driver.pull_tracking_now()?;
    println!("{} tracking events pulled from UPN", tracking.events);
    let stops = driver.stops()?;
    print!("{}", render::stop_table(&stops));
    if stops.len() < 3 {
        println!("\n(the demo needs at least 3 consignments for the delivery part)");
        return Ok(exit::OK);
    }

    println!("\n== On the road, no signal: deliveries captured offline");
    let first = &stops[0].consignment;
    let second = &stops[1].consignment;
    let at_door = |c: &upn_core::domain::Consignment| {
        Some(GpsFix::new(
            c.address.lat + 0.0001,
            c.address.lon,
            6.0,
            Utc::now(),
        ))
    };
    let photo = samples::photo_jpeg(1, 2400, 1800);
    driver.add_photo(
        &first.barcode,
        &photo,
        CaptureKind::Goods,
        Utc::now(),
        at_door(first),
    )?;
    println!(
        "{}: goods photo taken before the signature (waits for it)",
        first.barcode
    );
    let signed = driver.sign(
        &first.barcode,
        &samples::signature_png(1),
        &format!(
            "J. {}",
            first
                .consignee
                .name
                .split_whitespace()
                .next()
                .unwrap_or("Patel")
        ),
        Utc::now(),
        at_door(first),
    )?;
    println!(
        "{}: consignee signed; POD {} queued",
        first.barcode,
        &signed.item.id[..8]
    );
    driver.add_photo(
        &first.barcode,
        &samples::photo_jpeg(2, 1600, 1200),
        CaptureKind::Location,
        Utc::now(),
        at_door(first),
    )?;
    println!(
        "{}: location photo taken after the signature",
        first.barcode
    );
    driver.add_photo(
        &second.barcode,
        &samples::photo_jpeg(3, 1600, 1200),
        CaptureKind::LeaveSafe,
        Utc::now(),
        at_door(second),
    )?;
    println!(
        "{}: leave-safe photo, no signature yet (stays on the device)",
        second.barcode
    );
    let third = &stops[2].consignment;
    driver.sign(
        &third.barcode,
        &samples::signature_png(3),
        "R. Okafor",
        Utc::now(),
        at_door(third),
    )?;
    println!("{}: consignee signed; POD queued", third.barcode);
    // Meanwhile another device delivers the third consignment too: UPN will refuse ours.
    super::demo_support::pod_from_another_device(upn, &third.barcode)?;
    println!();
    print!(
        "{}",
        render::outbox_table(&driver.outbox()?, &driver.outbox_stats()?)
    );

    println!("\n== Signal is back: the outbox flushes by itself");
    let _progress = driver.subscribe(Arc::new(DemoProgress))?;
    driver.set_online(true);
    wait_until_flushed(&driver, Duration::from_secs(60))?;
    println!();
    print!(
        "{}",
        render::outbox_table(&driver.outbox()?, &driver.outbox_stats()?)
    );

    println!("\n== What UPN received");
    print_received(&sim);
    super::demo_support::refused_pod(&driver, &third.barcode)?;

    super::demo_tracking::tracking_demo(&sim, &driver, &first.barcode)?;
    super::demo_support::receipt(&driver, &first.barcode, &data_dir, kept)?;
    super::demo_support::invoice(&driver, &[&first.barcode, &second.barcode, &third.barcode])?;
    super::demo_support::summary(&driver)?;
    driver.shutdown(Duration::from_secs(2));
    Ok(exit::OK)
}

/// Prints each upload once, when it completes.
struct DemoProgress;

impl upn_core::listener::DriverListener for DemoProgress {
    fn upload_progress(&self, p: &upn_core::listener::UploadProgress) {
        if p.sent == p.total && p.total > 0 {
            println!(
                "  sent {} bytes for {} ({})",
                p.total,
                p.barcode,
                &p.capture_id[..8]
            );
        }
    }
}

/// Waits until nothing sendable is left (photos still waiting for a signature stay).
fn wait_until_flushed(driver: &Driver, limit: Duration) -> Result<(), CliError> {
    let started = Instant::now();
    loop {
        let stats = driver.outbox_stats()?;
        if stats.queued + stats.sending == 0 {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(CliError {
                code: exit::QUEUED_OR_UNREACHABLE,
                message: "the outbox did not flush in time".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn print_received(sim: &SimHandle) {
    let received = sim.received();
    for pod in &received.pods {
        println!(
            "  #{} POD   {}  signed by {:<20} at {}  ({} attempt{})",
            pod.seq,
            pod.barcode,
            pod.signed_by,
            pod.signed_at.format("%H:%M:%S"),
            pod.attempts,
            if pod.attempts == 1 { "" } else { "s" }
        );
    }
    for image in &received.images {
        println!(
            "  #{} image {}  {:<10} {:>7} bytes  sha256 {}…",
            image.seq,
            image.barcode,
            image.kind,
            image.bytes,
            &image.sha256[..12]
        );
    }
    if received.pods.is_empty() && received.images.is_empty() {
        println!("  nothing");
    }
}
