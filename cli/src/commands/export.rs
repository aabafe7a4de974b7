//! `upn-driver export BARCODE --out DIR`: a consignment's signature and photos, as captured,
//! written as files (for a dispute, or to attach to an email). Never overwrites a file.

use serde::Serialize;
use upn_core::domain::outbox::CaptureKind;

use crate::args::ExportArgs;
use crate::{exit, CliError};

#[derive(Serialize)]
struct Exported {
    capture_id: String,
    kind: CaptureKind,
    file: String,
    bytes: usize,
}

pub fn run(args: ExportArgs) -> Result<u8, CliError> {
    if args.out.exists() && !args.out.is_dir() {
        return Err(CliError::bad_input(format!(
            "--out {} is a file: name a folder",
            args.out.display()
        )));
    }
    let driver = super::open_local(&args.driver)?;
    let captures = driver.captures(&args.barcode)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::failed(format!("cannot create {}: {e}", args.out.display())))?;
    let mut exported = Vec::new();
    for (n, capture) in captures.iter().filter(|c| c.state.is_live()).enumerate() {
        if let Some(at) = capture.purged_at {
            eprintln!(
                "upn-driver: capture {} was removed from this device on {} (retention, after UPN acknowledged it); UPN holds it",
                capture.id,
                at.format("%Y-%m-%d")
            );
            continue;
        }
        let image = driver.capture_image(&capture.id, None)?;
        let ext = if image.mime == "image/png" {
            "png"
        } else {
            "jpg"
        };
        let name = format!(
            "{}-{:02}-{}.{ext}",
            args.barcode,
            n + 1,
            capture.kind.code()
        );
        let path = args.out.join(&name);
        super::write_new_file(&path, &image.bytes, "export into an empty folder")?;
        exported.push(Exported {
            capture_id: capture.id.clone(),
            kind: capture.kind,
            file: path.display().to_string(),
            bytes: image.bytes.len(),
        });
    }
    if args.json {
        super::print_json(&exported)?;
    } else if exported.is_empty() {
        println!("{}: nothing captured on this device", args.barcode);
    } else {
        for e in &exported {
            println!("{}  {:<10} {:>9} bytes", e.file, e.kind.code(), e.bytes);
        }
    }
    Ok(exit::OK)
}
