//! Row 3: a day's flush (200 deliveries, each a signature and 3 photos, renditions not yet
//! made) over real HTTP on loopback to a simulator throttled like a mobile uplink. The
//! simulator runs in a process of its own (`sim`), so the measured `flush` process holds only
//! the core: its peak RSS is the core's.

use std::io::Read;
use std::time::Instant;

use chrono::Utc;
use upn_core::domain::outbox::CaptureKind;
use upn_core::upn::{ApiKey, UpnConfig};
use upn_core::{Driver, DriverConfig};

use crate::stats::ms;
use crate::{report, setup, Options, Result};

/// `sim --consignments N --throttle BYTES_PER_S`: prints the endpoint, serves until stdin closes.
pub fn serve(o: &Options) -> Result {
    let throttle = o.number("throttle", 0)?;
    let sim = setup::sim(
        o.number("consignments", 200)? as usize,
        (throttle > 0).then_some(throttle),
    )?;
    report(serde_json::json!({
        "endpoint": sim.endpoint(),
        "depot": sim.depot(),
        "key": sim.api_key(),
    }));
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    sim.shutdown();
    Ok(())
}

fn upn(o: &Options) -> Result<UpnConfig> {
    Ok(UpnConfig {
        endpoint: o.string("endpoint")?,
        depot: o.string_or("depot", "042"),
        api_key: ApiKey::new(o.string_or("key", "sim-key-042")),
    })
}

/// `flush-setup --endpoint E --dir D --photo F --signature F --deliveries N`: the day's
/// captures, recorded offline (so nothing is sent and no rendition is made yet).
pub fn setup(o: &Options) -> Result {
    let photo = std::fs::read(o.string("photo")?).map_err(|e| format!("--photo: {e}"))?;
    let signature =
        std::fs::read(o.string("signature")?).map_err(|e| format!("--signature: {e}"))?;
    let deliveries = o.number("deliveries", 200)? as usize;
    let mut config = DriverConfig::new(std::path::PathBuf::from(o.string("dir")?), upn(o)?);
    // The row's premise is that no rendition is made yet when the flush starts: the setup's
    // own background renderer would make some while the captures are recorded.
    config.background_renditions = false;
    let driver = Driver::open(config).map_err(|e| format!("open: {e}"))?;
    driver.import_now().map_err(|e| format!("import: {e}"))?;
    let stops = driver.stops().map_err(|e| format!("stops: {e}"))?;
    if stops.len() < deliveries {
        return Err(format!(
            "{} stops, {deliveries} deliveries asked",
            stops.len()
        ));
    }
    for stop in stops.iter().take(deliveries) {
        let barcode = &stop.consignment.barcode;
        driver
            .sign(barcode, &signature, "A. Consignee", Utc::now(), None)
            .map_err(|e| format!("sign: {e}"))?;
        for kind in [
            CaptureKind::Goods,
            CaptureKind::Location,
            CaptureKind::Goods,
        ] {
            driver
                .add_photo(barcode, &photo, kind, Utc::now(), None)
                .map_err(|e| format!("add_photo: {e}"))?;
        }
    }
    let stats = driver.outbox_stats().map_err(|e| e.to_string())?;
    setup::close(driver);
    report(serde_json::json!({ "queued": stats.queued, "waiting": stats.waiting }));
    Ok(())
}

/// `flush --endpoint E --dir D`: opens the core and flushes until the outbox is empty. Goodput
/// is the upload payloads (renditions, signatures) acknowledged, over the wall time from open.
pub fn run(o: &Options) -> Result {
    let started = Instant::now();
    let driver = setup::open(std::path::Path::new(&o.string("dir")?), upn(o)?)?;
    let mut passes = 0;
    loop {
        passes += 1;
        driver.flush_now().map_err(|e| format!("flush: {e}"))?;
        let s = driver.outbox_stats().map_err(|e| e.to_string())?;
        if s.queued + s.sending + s.waiting == 0 || passes >= 20 {
            break;
        }
    }
    let elapsed = started.elapsed();
    let (mut sent, mut bytes) = (0u64, 0u64);
    for stop in driver.stops().map_err(|e| e.to_string())? {
        for capture in driver
            .captures(&stop.consignment.barcode)
            .map_err(|e| e.to_string())?
        {
            if capture.sent_at.is_some() {
                sent += 1;
                bytes += capture.upload.map(|u| u.bytes).unwrap_or(0);
            }
        }
    }
    let stats = driver.outbox_stats().map_err(|e| e.to_string())?;
    setup::close(driver);
    report(serde_json::json!({
        "seconds": elapsed.as_secs_f64(),
        "ms": ms(elapsed),
        "passes": passes,
        "sent": sent,
        "needs_attention": stats.needs_attention,
        "left": stats.queued + stats.sending + stats.waiting,
        "bytes": bytes,
        "goodput_bytes_per_s": bytes as f64 / elapsed.as_secs_f64(),
    }));
    Ok(())
}
