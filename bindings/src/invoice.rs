//! Invoice charge line matching through the FFI: records mirroring `domain::invoice`.

use upn_core::domain::invoice::{InvoiceMatch, MatchedLine, NearMiss, NearMissReason};

use crate::{guard, CoreError, DriverCore};

/// Why a charge line's barcode is close to, but not, a consignment's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum InvoiceNearMissReason {
    /// Equal once spaces are removed.
    Whitespace,
    /// Equal but for upper/lower case.
    Case,
    /// A leading zero of the number missing or extra.
    LeadingZero,
    /// Two neighbouring characters swapped.
    Transposed,
    /// One character different.
    OneCharacter,
}

impl From<NearMissReason> for InvoiceNearMissReason {
    fn from(r: NearMissReason) -> Self {
        match r {
            NearMissReason::Whitespace => Self::Whitespace,
            NearMissReason::Case => Self::Case,
            NearMissReason::LeadingZero => Self::LeadingZero,
            NearMissReason::Transposed => Self::Transposed,
            NearMissReason::OneCharacter => Self::OneCharacter,
        }
    }
}

/// A charge line and the barcode it carries (`line` is 1-based; the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InvoiceLineRecord {
    pub line: u64,
    pub barcode: String,
}

impl From<&MatchedLine> for InvoiceLineRecord {
    fn from(l: &MatchedLine) -> Self {
        Self {
            line: l.line,
            barcode: l.barcode.clone(),
        }
    }
}

/// A charge line whose barcode nearly is a consignment's: a warning for a person, not a match.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InvoiceNearMissRecord {
    pub line: u64,
    pub barcode: String,
    /// The consignment barcode it resembles.
    pub candidate: String,
    pub reason: InvoiceNearMissReason,
    /// The near miss in words.
    pub explanation: String,
}

impl From<&NearMiss> for InvoiceNearMissRecord {
    fn from(n: &NearMiss) -> Self {
        Self {
            line: n.line,
            barcode: n.barcode.clone(),
            candidate: n.candidate.clone(),
            reason: n.reason.into(),
            explanation: n.reason.describe().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InvoiceMatchRecord {
    pub matched: Vec<InvoiceLineRecord>,
    pub near_misses: Vec<InvoiceNearMissRecord>,
    pub unmatched: Vec<InvoiceLineRecord>,
}

impl From<&InvoiceMatch> for InvoiceMatchRecord {
    fn from(m: &InvoiceMatch) -> Self {
        Self {
            matched: m.matched.iter().map(Into::into).collect(),
            near_misses: m.near_misses.iter().map(Into::into).collect(),
            unmatched: m.unmatched.iter().map(Into::into).collect(),
        }
    }
}

#[uniffi::export]
impl DriverCore {
    /// Matches a purchase invoice (CSV bytes: a header naming barcode, description, amount) to
    /// the imported consignments by exact UPN barcode. A malformed file is `InvalidInput`
    /// naming its line.
    pub fn match_invoice(&self, csv: Vec<u8>) -> Result<InvoiceMatchRecord, CoreError> {
        guard("match_invoice", || {
            Ok((&self.driver()?.match_invoice(&csv)?).into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upn_core::domain::invoice::{match_charge_lines, parse_charge_lines};

    #[test]
    fn records_carry_every_line_and_the_reason_in_words() {
        let lines = parse_charge_lines(b"barcode,amount\nUPN1,1\nupn1,2\nX,3\n").expect("csv");
        let record = InvoiceMatchRecord::from(&match_charge_lines(&lines, ["UPN1"]));
        assert_eq!(
            record.matched,
            vec![InvoiceLineRecord {
                line: 2,
                barcode: "UPN1".into()
            }]
        );
        assert_eq!(record.near_misses.len(), 1);
        assert_eq!(record.near_misses[0].reason, InvoiceNearMissReason::Case);
        assert!(record.near_misses[0].explanation.contains("case"));
        assert_eq!(record.unmatched[0].line, 4);
    }
}
