//! The depot-support commands: `diagnose`, `support-bundle`, `receipt`, `verify`.

use upn_core::domain::diagnostics::{CheckStatus, Diagnosis};

use crate::args::{DiagnoseArgs, ReceiptArgs, SupportBundleArgs, VerifyArgs};
use crate::{exit, CliError};

pub fn diagnose(args: DiagnoseArgs) -> Result<u8, CliError> {
    let invoice = match &args.invoice {
        Some(path) => Some(super::invoice::read_bounded(path)?),
        None => None,
    };
    let driver = super::open_local(&args.driver)?;
    let invoice = match invoice {
        Some(bytes) => Some(driver.match_invoice(&bytes)?),
        None => None,
    };
    let diagnosis = driver.diagnose(args.barcode.as_deref(), invoice)?;
    if args.json {
        super::print_json(&diagnosis)?;
    } else {
        print!("{}", render(&diagnosis));
    }
    Ok(exit::OK)
}

/// The checks for a person: each with its status; the evidence and the action where it is
/// not ok.
pub fn render(d: &Diagnosis) -> String {
    let scope = d.barcode.as_deref().unwrap_or("this device");
    let mut out = format!(
        "Diagnostics for {scope} at {}\n",
        d.generated_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    for c in &d.checks {
        let status = match c.status {
            CheckStatus::Ok => "ok",
            CheckStatus::Warning => "WARNING",
            CheckStatus::Problem => "PROBLEM",
        };
        out.push_str(&format!("{status:<8} {}: {}\n", c.id.title(), c.summary));
        if c.status != CheckStatus::Ok {
            for e in &c.evidence {
                out.push_str(&format!("           {}: {}\n", e.label, e.value));
            }
        }
        if let Some(action) = &c.action {
            out.push_str(&format!("         → {action}\n"));
        }
    }
    out
}

pub fn bundle(args: SupportBundleArgs) -> Result<u8, CliError> {
    if args.out.exists() {
        return Err(CliError::bad_input(format!(
            "--out {} exists; name a new file",
            args.out.display()
        )));
    }
    let driver = super::open_local(&args.driver)?;
    let bytes = driver.support_bundle(&args.barcodes, Some(env!("CARGO_PKG_VERSION")))?;
    super::write_new_file(&args.out, &bytes, "name a new file")?;
    println!(
        "{}: support bundle, {} bytes",
        args.out.display(),
        bytes.len()
    );
    Ok(exit::OK)
}

pub fn receipt(args: ReceiptArgs) -> Result<u8, CliError> {
    if args.out.exists() {
        return Err(CliError::bad_input(format!(
            "--out {} exists; name a new file",
            args.out.display()
        )));
    }
    let driver = super::open_local(&args.driver)?;
    let html = driver.receipt_html(&args.barcode)?;
    super::write_new_file(&args.out, html.as_bytes(), "name a new file")?;
    println!("{}: receipt for {}", args.out.display(), args.barcode);
    Ok(exit::OK)
}

pub fn verify(args: VerifyArgs) -> Result<u8, CliError> {
    let driver = super::open_local(&args.driver)?;
    let v = driver.verify_pod(&args.barcode)?;
    if args.json {
        super::print_json(&v)?;
    } else {
        let hash = v.stored_sha256.as_deref().unwrap_or(&v.recomputed_sha256);
        let standing = if v.stored_sha256.is_some() {
            "sent to UPN"
        } else {
            "provisional until the POD is sent"
        };
        println!(
            "{}  POD hash {hash} ({standing}, {} photo(s))",
            v.barcode, v.photos_covered
        );
        if v.intact {
            println!("verified: the signature, photos, name, time and place are unchanged");
        } else {
            for p in &v.problems {
                println!("does not verify: {p}");
            }
        }
    }
    Ok(if v.intact { exit::OK } else { exit::FAILED })
}
