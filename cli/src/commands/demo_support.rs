//! The depot-support part of `upn-driver demo`: a POD UPN refuses (another device already
//! delivered the consignment), the diagnostics explaining it, a receipt with the tamper-evident
//! hash, an invoice matched with a near miss flagged, and the device's diagnostics summary.

use std::path::Path;

use chrono::Utc;
use upn_core::domain::diagnostics::CheckId;
use upn_core::upn::http::HttpUpn;
use upn_core::upn::wire::PodSubmission;
use upn_core::upn::{UpnApi, UpnConfig};
use upn_core::Driver;
use upn_sim::samples;

use crate::CliError;

/// Before the device's POD for `barcode` goes, another device's POD reaches UPN (the same
/// request any device makes), so UPN refuses ours with 409.
pub fn pod_from_another_device(upn: UpnConfig, barcode: &str) -> Result<(), CliError> {
    let client = HttpUpn::new(upn)?;
    let pod = PodSubmission {
        signed_by: "Other Driver".into(),
        signed_at: Utc::now(),
        clock_offset_ms: None,
        gps: None,
        signature_png_base64: base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            samples::signature_png(9),
        ),
        image_count: 0,
        pod_sha256: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("could not start a runtime: {e}")))?;
    runtime
        .block_on(client.submit_pod(barcode, "demo-other-device", &pod))
        .map_err(|e| CliError::failed(format!("the other device's POD failed: {e}")))?;
    Ok(())
}

pub fn refused_pod(driver: &Driver, barcode: &str) -> Result<(), CliError> {
    println!("\n== Needs attention: UPN refused the POD for {barcode}");
    let diagnosis = driver.diagnose(Some(barcode), None)?;
    if let Some(check) = diagnosis.check(CheckId::Pod) {
        println!("  {}", check.summary);
        if let Some(action) = &check.action {
            println!("  → {action}");
        }
    }
    Ok(())
}

pub fn receipt(driver: &Driver, barcode: &str, dir: &Path, kept: bool) -> Result<(), CliError> {
    println!("\n== Receipt for {barcode}");
    let verification = driver.verify_pod(barcode)?;
    let path = dir.join(format!("receipt-{barcode}.html"));
    let html = driver.receipt_html(barcode)?;
    std::fs::write(&path, html)
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?;
    println!(
        "  POD hash {} over the signature, {} photo(s), name, time and place: {}",
        verification
            .stored_sha256
            .as_deref()
            .unwrap_or(&verification.recomputed_sha256),
        verification.photos_covered,
        if verification.intact {
            "verified"
        } else {
            "DOES NOT VERIFY"
        }
    );
    println!("  written to {}", path.display());
    if !kept {
        println!("  (the demo's data folder is temporary: pass --db DIR to keep it)");
    }
    Ok(())
}

pub fn invoice(driver: &Driver, barcodes: &[&str]) -> Result<(), CliError> {
    println!("\n== The depot's purchase invoice, matched to consignments");
    let [a, b, c, ..] = barcodes else {
        return Ok(());
    };
    // Line 4 carries a typo a clerk makes: the barcode in lower case.
    let csv = format!(
        "barcode,description,amount\r\n{a},Delivery,41.20\r\n{b},Delivery,38.75\r\n{},Tail lift,12.00\r\nUPN-UNKNOWN-1,Storage,5.00\r\n",
        c.to_lowercase()
    );
    print!(
        "{}",
        super::invoice::table(&driver.match_invoice(csv.as_bytes())?)
    );
    Ok(())
}

pub fn summary(driver: &Driver) -> Result<(), CliError> {
    println!("\n== Diagnostics summary (upn-driver diagnose)");
    let d = driver.diagnose(None, None)?;
    for c in &d.checks {
        println!("  {:<8} {}: {}", c.status.code(), c.id.title(), c.summary);
    }
    Ok(())
}
