//! Invoice charge line matching, as depot staff use it: a CSV file in, matched lines, near
//! misses and unmatched lines out (`domain::invoice` decides; this reads the known barcodes).

use super::Driver;
use crate::domain::invoice::{match_charge_lines, parse_charge_lines, InvoiceMatch};
use crate::error::{Error, Result};

impl Driver {
    /// Matches a purchase invoice's charge lines (CSV bytes with a header naming `barcode`,
    /// `description`, `amount`) to the imported consignments by exact UPN barcode. Near misses
    /// (whitespace, case, a leading zero, one swapped or wrong character) are reported with the
    /// barcode they resemble, never matched. A malformed file is refused, naming its line.
    pub fn match_invoice(&self, csv: &[u8]) -> Result<InvoiceMatch> {
        let lines =
            parse_charge_lines(csv).map_err(|e| Error::invalid("invoice", e.to_string()))?;
        let consignments = self.shared.store()?.consignments()?;
        Ok(match_charge_lines(
            &lines,
            consignments.iter().map(|c| c.barcode.as_str()),
        ))
    }
}
