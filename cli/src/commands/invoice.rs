//! `upn-driver invoice-match FILE.csv`: purchase-invoice charge lines matched to consignments by
//! exact UPN barcode, with near misses flagged as warnings (never as matches).

use upn_core::domain::invoice::{InvoiceMatch, MAX_INVOICE_BYTES};

use crate::args::InvoiceMatchArgs;
use crate::{exit, CliError};

pub fn run(args: InvoiceMatchArgs) -> Result<u8, CliError> {
    let bytes = read_bounded(&args.file)?;
    let driver = super::open_driver(&args.driver)?;
    let result = driver.match_invoice(&bytes)?;
    if args.json {
        super::print_json(&result)?;
    } else {
        print!("{}", table(&result));
    }
    Ok(exit::OK)
}

/// Reads the invoice, refusing a file too large to be one before reading it all.
pub(crate) fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| CliError::bad_input(format!("cannot read the invoice {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(CliError::bad_input(format!(
            "the invoice {shown} is not a file"
        )));
    }
    if meta.len() > MAX_INVOICE_BYTES as u64 {
        return Err(CliError::bad_input(format!(
            "the invoice {shown} is {} bytes; files over {MAX_INVOICE_BYTES} bytes are not read (split it)",
            meta.len()
        )));
    }
    std::fs::read(path)
        .map_err(|e| CliError::bad_input(format!("cannot read the invoice {shown}: {e}")))
}

pub(crate) fn table(result: &InvoiceMatch) -> String {
    let mut out = format!(
        "{} matched, {} near misses (check these), {} unmatched\n",
        result.matched.len(),
        result.near_misses.len(),
        result.unmatched.len()
    );
    for miss in &result.near_misses {
        out.push_str(&format!(
            "warning: line {}: {:?} is not a known barcode; it {} from {}\n",
            miss.line,
            miss.barcode,
            miss.reason.describe(),
            miss.candidate
        ));
    }
    for line in &result.unmatched {
        out.push_str(&format!(
            "unmatched: line {}: {:?} is no consignment of this depot\n",
            line.line, line.barcode
        ));
    }
    out
}
