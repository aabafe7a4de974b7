//! Purchase-invoice charge lines matched to consignments by their UPN barcode.
//!
//! The barcode is the key that links records across systems, so a match is exact, byte for
//! byte. What is *almost* a known barcode (stray whitespace, other case, a leading zero missing
//! or extra, two neighbouring characters swapped, one character wrong) is reported as a near
//! miss with the barcode it resembles, for a person to check: never as a match.
//!
//! Pure: the caller reads the file and supplies the known barcodes.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

/// The largest invoice file read (a month of charge lines is a few hundred kilobytes).
pub const MAX_INVOICE_BYTES: usize = 32 * 1024 * 1024;
/// Longer barcode cells are not barcodes; they are reported unmatched, cut to this length.
const MAX_BARCODE_CHARS: usize = 64;

/// One charge line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChargeLine {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub barcode: String,
    pub description: String,
    pub amount: String,
}

/// Why a charge line's barcode is close to, but not, a known consignment barcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NearMissReason {
    /// Equal once spaces, tabs and line breaks are removed.
    Whitespace,
    /// Equal but for upper/lower case (whitespace ignored too).
    Case,
    /// One leading zero of the number missing or extra.
    LeadingZero,
    /// Two neighbouring characters swapped.
    Transposed,
    /// One character different.
    OneCharacter,
}

impl NearMissReason {
    /// The near miss in words, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            NearMissReason::Whitespace => "differs only in spaces",
            NearMissReason::Case => "differs only in upper/lower case",
            NearMissReason::LeadingZero => "has a leading zero missing or extra",
            NearMissReason::Transposed => "has two neighbouring characters swapped",
            NearMissReason::OneCharacter => "has one character different",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedLine {
    pub line: u64,
    pub barcode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NearMiss {
    pub line: u64,
    /// The barcode as the invoice has it.
    pub barcode: String,
    /// The known consignment barcode it resembles.
    pub candidate: String,
    pub reason: NearMissReason,
}

/// The whole result; `--json` prints exactly this shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvoiceMatch {
    pub matched: Vec<MatchedLine>,
    pub near_misses: Vec<NearMiss>,
    pub unmatched: Vec<MatchedLine>,
}

/// A malformed invoice file: what is wrong and on which line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct InvoiceFileError {
    pub line: Option<u64>,
    pub reason: String,
}

fn file_error(line: Option<u64>, reason: impl Into<String>) -> InvoiceFileError {
    InvoiceFileError {
        line,
        reason: reason.into(),
    }
}

/// The column holding the barcode, by its header name (case and spaces ignored).
fn is_barcode_header(name: &str) -> bool {
    let name: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    matches!(
        name.as_str(),
        "barcode" | "consignmentbarcode" | "upnbarcode" | "consignment"
    )
}

fn header_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Reads charge lines from CSV: a header row naming `barcode`, `description` and `amount` (in
/// any order; other columns ignored), then one line per charge. Quoting, a UTF-8 byte-order
/// mark and CRLF line ends are accepted. Every record must have as many fields as the header.
pub fn parse_charge_lines(bytes: &[u8]) -> Result<Vec<ChargeLine>, InvoiceFileError> {
    if bytes.len() > MAX_INVOICE_BYTES {
        return Err(file_error(
            None,
            format!(
                "the file is {} bytes; invoices over {MAX_INVOICE_BYTES} bytes are not read (split it)",
                bytes.len()
            ),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| csv_error(&e, "the header row", &mut LineCounter::new(bytes)))?
        .clone();
    let column = |wanted: &str| headers.iter().position(|h| header_key(h) == wanted);
    let barcode = headers.iter().position(is_barcode_header).ok_or_else(|| {
        file_error(
            Some(1),
            "no `barcode` column in the header row (expected barcode, description, amount)",
        )
    })?;
    let description = column("description");
    let amount = column("amount");
    let mut lines = Vec::new();
    let mut line_of = LineCounter::new(bytes);
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&e, "a charge line", &mut line_of))?;
        let line = line_of.at(record.position().map_or(0, |p| p.byte()));
        let field = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .unwrap_or_default()
                .to_string()
        };
        lines.push(ChargeLine {
            line,
            barcode: field(Some(barcode)),
            description: field(description),
            amount: field(amount),
        });
    }
    Ok(lines)
}

/// 1-based line numbers from byte offsets, counted once through the file as offsets grow (the
/// csv crate's own line count does not say where a record starts).
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line where a record reported at byte `offset` starts (offsets must not go
    /// backwards). The csv crate reports a record from the end of the one before, so the line
    /// ends in between are skipped first.
    fn at(&mut self, offset: u64) -> u64 {
        let mut offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while matches!(self.bytes.get(offset), Some(b'\r' | b'\n')) {
            offset += 1;
        }
        if offset > self.offset {
            let newlines = self.bytes[self.offset..offset]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.line += newlines as u64;
            self.offset = offset;
        }
        self.line
    }
}

fn csv_error(e: &csv::Error, what: &str, line_of: &mut LineCounter<'_>) -> InvoiceFileError {
    let line = e.position().map(|p| line_of.at(p.byte()));
    let reason = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            format!("{what} is not UTF-8 text: save the file as UTF-8 CSV")
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{what} has {len} fields where the header has {expected_len}"),
        _ => format!("{what} could not be read as CSV"),
    };
    file_error(line, reason)
}

/// The known barcodes, indexed so that each kind of near miss is a few hash look-ups per charge
/// line rather than a scan of every consignment.
struct Known<'a> {
    exact: HashSet<&'a str>,
    /// By the barcode without whitespace, upper-cased.
    folded: HashMap<String, &'a str>,
    /// By the folded barcode with one character masked: equal keys are one character apart.
    masked: HashMap<String, &'a str>,
}

/// Stands for "any character" in a masked key (no barcode contains it).
const MASK: char = '\u{0}';

fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// `s` with its `i`-th character masked.
fn masked(chars: &[char], i: usize) -> String {
    chars
        .iter()
        .enumerate()
        .map(|(j, c)| if j == i { MASK } else { *c })
        .collect()
}

impl<'a> Known<'a> {
    fn new(known: impl IntoIterator<Item = &'a str>) -> Self {
        // Sorted, so the candidate named for a near miss is the same on every run.
        let sorted: BTreeSet<&str> = known.into_iter().collect();
        let mut index = Known {
            exact: sorted.iter().copied().collect(),
            folded: HashMap::new(),
            masked: HashMap::new(),
        };
        for barcode in sorted {
            let folded = fold(barcode);
            let chars: Vec<char> = folded.chars().collect();
            for i in 0..chars.len() {
                index.masked.entry(masked(&chars, i)).or_insert(barcode);
            }
            index.folded.entry(folded).or_insert(barcode);
        }
        index
    }

    /// The known barcode `barcode` nearly is, with why; the closest kind of miss wins.
    fn nearest(&self, barcode: &str) -> Option<(&'a str, NearMissReason)> {
        let squeezed: String = barcode.chars().filter(|c| !c.is_whitespace()).collect();
        if squeezed.is_empty() {
            return None;
        }
        if let Some(k) = self.exact.get(squeezed.as_str()) {
            return Some((k, NearMissReason::Whitespace));
        }
        let folded = fold(&squeezed);
        if let Some(k) = self.folded.get(&folded) {
            return Some((k, NearMissReason::Case));
        }
        let chars: Vec<char> = folded.chars().collect();
        let lookup = |variants: Vec<String>, reason| {
            variants
                .iter()
                .find_map(|v| self.folded.get(v))
                .map(|k| (*k, reason))
        };
        lookup(leading_zero_variants(&folded), NearMissReason::LeadingZero)
            .or_else(|| lookup(transpositions(&chars), NearMissReason::Transposed))
            .or_else(|| {
                (0..chars.len())
                    .find_map(|i| self.masked.get(&masked(&chars, i)))
                    .map(|k| (*k, NearMissReason::OneCharacter))
            })
    }
}

/// Matches every charge line against the known consignment barcodes.
pub fn match_charge_lines<'a>(
    lines: &[ChargeLine],
    known: impl IntoIterator<Item = &'a str>,
) -> InvoiceMatch {
    let known = Known::new(known);
    let mut result = InvoiceMatch::default();
    for charge in lines {
        let too_long = charge.barcode.chars().count() > MAX_BARCODE_CHARS;
        let barcode: String = charge.barcode.chars().take(MAX_BARCODE_CHARS).collect();
        let unmatched = MatchedLine {
            line: charge.line,
            barcode: barcode.clone(),
        };
        if too_long {
            result.unmatched.push(unmatched);
        } else if known.exact.contains(barcode.as_str()) {
            result.matched.push(unmatched);
        } else if let Some((candidate, reason)) = known.nearest(&barcode) {
            result.near_misses.push(NearMiss {
                line: charge.line,
                barcode,
                candidate: candidate.to_string(),
                reason,
            });
        } else {
            result.unmatched.push(unmatched);
        }
    }
    result
}

/// `s` with one `0` added at, or removed from, the start of its number (after a letter prefix
/// such as `UPN`).
fn leading_zero_variants(s: &str) -> Vec<String> {
    let at = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
    let (prefix, number) = s.split_at(at);
    let mut variants = vec![format!("{prefix}0{number}")];
    if let Some(rest) = number.strip_prefix('0') {
        variants.push(format!("{prefix}{rest}"));
    }
    variants
}

/// `s` with each pair of neighbouring (different) characters swapped.
fn transpositions(chars: &[char]) -> Vec<String> {
    (1..chars.len())
        .filter(|&i| chars[i - 1] != chars[i])
        .map(|i| {
            let mut swapped = chars.to_vec();
            swapped.swap(i - 1, i);
            swapped.into_iter().collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [&str; 3] = ["UPN0421000001", "UPN0421000002", "UPN0421000137"];

    fn line(n: u64, barcode: &str) -> ChargeLine {
        ChargeLine {
            line: n,
            barcode: barcode.into(),
            description: String::new(),
            amount: String::new(),
        }
    }

    fn reason_for(barcode: &str) -> Option<(String, NearMissReason)> {
        let m = match_charge_lines(&[line(2, barcode)], KNOWN);
        assert!(m.matched.is_empty(), "{barcode} must never match");
        m.near_misses
            .first()
            .map(|n| (n.candidate.clone(), n.reason))
    }

    #[test]
    fn exact_barcodes_match_and_nothing_else_does() {
        let m = match_charge_lines(&[line(2, "UPN0421000001"), line(3, "UPN9999999999")], KNOWN);
        assert_eq!(
            m.matched,
            vec![MatchedLine {
                line: 2,
                barcode: "UPN0421000001".into()
            }]
        );
        assert_eq!(m.unmatched.len(), 1);
        assert_eq!(m.unmatched[0].line, 3);
        assert!(m.near_misses.is_empty());
    }

    #[test]
    fn near_misses_name_the_candidate_and_why() {
        use NearMissReason::*;
        let c = |s: &str| s.to_string();
        assert_eq!(
            reason_for(" UPN0421000001 "),
            Some((c("UPN0421000001"), Whitespace))
        );
        assert_eq!(
            reason_for("UPN 0421 000001"),
            Some((c("UPN0421000001"), Whitespace))
        );
        assert_eq!(
            reason_for("upn0421000137"),
            Some((c("UPN0421000137"), Case))
        );
        assert_eq!(
            reason_for("UPN421000137"),
            Some((c("UPN0421000137"), LeadingZero))
        );
        assert_eq!(
            reason_for("UPN00421000137"),
            Some((c("UPN0421000137"), LeadingZero))
        );
        assert_eq!(
            reason_for("UPN0421000173"),
            Some((c("UPN0421000137"), Transposed))
        );
        assert_eq!(
            reason_for("UPN0421000138"),
            Some((c("UPN0421000137"), OneCharacter))
        );
        assert_eq!(reason_for("UPN0421009999"), None);
        assert_eq!(reason_for(""), None);
        assert_eq!(reason_for("   "), None);
    }

    #[test]
    fn a_closer_kind_of_miss_wins() {
        // One character away from ...002 and only whitespace away from ...001.
        let m = match_charge_lines(&[line(2, "UPN0421000001 ")], KNOWN);
        assert_eq!(m.near_misses[0].reason, NearMissReason::Whitespace);
        assert_eq!(m.near_misses[0].candidate, "UPN0421000001");
    }

    #[test]
    fn csv_with_bom_crlf_quotes_and_reordered_columns_is_read() {
        let file = b"\xEF\xBB\xBFAmount,Barcode,Description\r\n\
            12.50,UPN0421000001,\"Delivery, 2 pallets\"\r\n\
            \"3.00\",\"UPN0421000002\",\"Tail lift\nsurcharge\"\r\n\
            7,UPN0421000137,Fuel\r\n";
        let lines = parse_charge_lines(file).expect("a valid invoice");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].line, 2);
        assert_eq!(lines[0].barcode, "UPN0421000001");
        assert_eq!(lines[0].description, "Delivery, 2 pallets");
        assert_eq!(lines[0].amount, "12.50");
        assert_eq!(lines[1].line, 3);
        assert_eq!(lines[1].description, "Tail lift\nsurcharge");
        // The quoted line break makes the next record start on line 5.
        assert_eq!(lines[2].line, 5);
    }

    #[test]
    fn a_malformed_file_names_its_line() {
        let missing = parse_charge_lines(b"ref,amount\nUPN1,2\n").unwrap_err();
        assert_eq!(missing.line, Some(1));
        assert!(missing.reason.contains("barcode"), "{missing}");

        let ragged =
            parse_charge_lines(b"barcode,description,amount\nUPN1,a,1\nUPN2,b\n").unwrap_err();
        assert_eq!(ragged.line, Some(3));
        assert!(ragged.to_string().starts_with("line 3: "), "{ragged}");

        let binary = parse_charge_lines(b"barcode,amount\n\xff\xfe,1\n").unwrap_err();
        assert_eq!(binary.line, Some(2));
        assert!(binary.reason.contains("UTF-8"), "{binary}");
    }

    #[test]
    fn an_empty_invoice_has_no_lines() {
        assert_eq!(
            parse_charge_lines(b"barcode,description,amount\n"),
            Ok(vec![])
        );
    }
}
