//! `upn-driver photo` and `upn-driver sign`: capture at the door. The capture time is now; the
//! GPS fix, when given, is taken now too.

use chrono::Utc;
use upn_core::domain::capture::GpsFix;
use upn_core::domain::outbox::CaptureKind;

use crate::args::{GpsArgs, PhotoArgs, PhotoKind, SignArgs};
use crate::{exit, CliError};

fn read(path: &std::path::Path, what: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::bad_input(format!("cannot read the {what} {}: {e}", path.display())))
}

fn fix(gps: GpsArgs) -> Option<GpsFix> {
    match (gps.lat, gps.lon, gps.accuracy) {
        (Some(lat), Some(lon), Some(accuracy)) => Some(GpsFix::new(lat, lon, accuracy, Utc::now())),
        _ => None,
    }
}

pub fn photo(args: PhotoArgs) -> Result<u8, CliError> {
    let bytes = read(&args.file, "photo")?;
    let kind = match args.kind {
        PhotoKind::Goods => CaptureKind::Goods,
        PhotoKind::Location => CaptureKind::Location,
        PhotoKind::LeaveSafe => CaptureKind::LeaveSafe,
    };
    let driver = super::open_driver(&args.driver)?;
    let at = args.capture.at.unwrap_or_else(Utc::now);
    let item = driver.add_photo_with_id(
        &args.barcode,
        &bytes,
        kind,
        at,
        fix(args.gps),
        args.capture.id.as_deref(),
    )?;
    println!(
        "photo {} of {} stored ({} bytes): {}",
        item.id,
        item.barcode,
        bytes.len(),
        match item.state.code() {
            "waiting" => "waits for the signature",
            "queued" => "queued for UPN",
            other => other,
        }
    );
    Ok(exit::OK)
}

pub fn sign(args: SignArgs) -> Result<u8, CliError> {
    let bytes = read(&args.image, "signature image")?;
    let driver = super::open_driver(&args.driver)?;
    let at = args.capture.at.unwrap_or_else(Utc::now);
    let signed = driver.sign_with_id(
        &args.barcode,
        &bytes,
        &args.name,
        at,
        fix(args.gps),
        args.capture.id.as_deref(),
    )?;
    println!(
        "POD {} for {} stored: queued for UPN",
        signed.item.id, signed.item.barcode
    );
    if let Some(old) = signed.replaced {
        println!("  it replaces the unsent signature {old} (kept, marked replaced)");
    }
    if signed.stale_gps {
        println!("  warning: the GPS fix is more than 30 minutes old");
    }
    Ok(exit::OK)
}
