//! The bad-input corpus (`tests/corpus/`): its generator and its manifest.
//!
//! Every file there is made by [`files`] from a seed, so the corpus can be checked and remade:
//! the test `corpus_files_are_what_the_generator_makes` (tests/tests/corpus.rs) compares them,
//! and with `UPN_CORPUS_BLESS=1` writes them. Cases too big to commit (a 40 MB photo, a 1 GB
//! response) are made at test time. The manifests ([`IMAGE_CASES`], ...) give each case the typed
//! error it must get; the tests assert that error and that nothing in the store changed.

use std::path::PathBuf;

/// `tests/corpus/`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// What a capture call must do with a corpus file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Recorded.
    Accepted,
    /// `Error::InvalidInput` for the image's field (`photo` or `signature`), its reason
    /// containing this text.
    Refused(&'static str),
    /// Recorded (the header and the stream's structure are sound), then refused by the
    /// background rendition's decode: the photo needs attention with a reason containing this
    /// text, and is never sent. Only what a decode alone can find (corrupt entropy or zlib data).
    RenderFails(&'static str),
}

/// One image file and what `add_photo` and `sign` must each do with it (`None`: not a case for
/// that call).
#[derive(Debug, Clone, Copy)]
pub struct ImageCase {
    pub file: &'static str,
    pub photo: Option<Expect>,
    pub signature: Option<Expect>,
}

const EMPTY: Expect = Expect::Refused("the image is empty (0 bytes)");
const NOT_IMAGE: Expect = Expect::Refused("not a JPEG or PNG image (HEIC/HEIF");
const HEADER_CUT: Expect = Expect::Refused("ends inside the image header");
const INCOMPLETE: Expect = Expect::Refused("the file is incomplete");
const BLANK: Expect = Expect::Refused("the signature is blank");

const fn both(file: &'static str, e: Expect) -> ImageCase {
    ImageCase {
        file,
        photo: Some(e),
        signature: Some(e),
    }
}

const fn photo(file: &'static str, e: Expect) -> ImageCase {
    ImageCase {
        file,
        photo: Some(e),
        signature: None,
    }
}

const fn signature(file: &'static str, e: Expect) -> ImageCase {
    ImageCase {
        file,
        photo: None,
        signature: Some(e),
    }
}

/// The image cases of `tests/corpus/images/`.
pub const IMAGE_CASES: &[ImageCase] = &[
    both("images/empty.bin", EMPTY),
    both("images/zeros.bin", NOT_IMAGE),
    both("images/text.txt", NOT_IMAGE),
    both("images/document.pdf", NOT_IMAGE),
    both("images/iphone.heic", NOT_IMAGE),
    both("images/jpeg-cut-in-header.jpg", HEADER_CUT),
    both("images/jpeg-cut-in-scan.jpg", INCOMPLETE),
    both("images/jpeg-without-eoi.jpg", INCOMPLETE),
    both(
        "images/jpeg-zero-width.jpg",
        Expect::Refused("the frame header gives a zero width or height"),
    ),
    both(
        "images/jpeg-second-soi.jpg",
        Expect::Refused("a second start-of-image marker"),
    ),
    both(
        "images/jpeg-no-frame-header.jpg",
        Expect::Refused("image data comes before the frame header"),
    ),
    // Still refused at capture as a photo, by the structure check: the garbage run leaves a
    // lone 0xFF before original data, a marker in the middle of the scan.
    both(
        "images/jpeg-garbage-scan.jpg",
        Expect::Refused("the image is damaged or incomplete"),
    ),
    both(
        "images/jpeg-bad-huffman-table.jpg",
        Expect::Refused("the image is damaged or incomplete"),
    ),
    both(
        "images/png-100000x100000.png",
        Expect::Refused("the image is 100000x100000 pixels, more than can be processed"),
    ),
    signature("images/png-cut.png", INCOMPLETE),
    // Moved off the capture path (issue 11): a photo's capture checks its structure only, so
    // a short zlib stream is found by the background rendition. A signature is still decoded
    // (and refused) at capture.
    ImageCase {
        file: "images/png-short-data.png",
        photo: Some(Expect::RenderFails("does not have enough data for image")),
        signature: Some(Expect::Refused("does not have enough data for image")),
    },
    both(
        "images/png-no-ihdr.png",
        Expect::Refused("the PNG header (IHDR) is missing"),
    ),
    photo(
        "images/photo-120x90.jpg",
        Expect::Refused("the image is only 120x90 pixels, too small"),
    ),
    photo("images/photo.jpg", Expect::Accepted),
    signature("images/signature.png", Expect::Accepted),
    signature("images/signature-blank.png", BLANK),
    signature("images/signature-uniform-grey.png", BLANK),
    signature("images/signature-near-blank.png", BLANK),
    signature("images/signature-faint.png", BLANK),
    // Fuzz findings, kept verbatim (tests/corpus/findings/): a LeakSanitizer report on
    // jpeg-decoder's worker threads (their thread-locals outlive the decode), on a mutated JPEG
    // that must be refused like any cut one.
    both("findings/image_ingest-leak-90a156ae.jpg", INCOMPLETE),
    signature(
        "images/signature-20x20.png",
        Expect::Refused("the image is only 20x20 pixels, too small"),
    ),
];

/// Width and height, as stored, of `images/orientation-N.jpg` (N = EXIF orientation 1..=8).
pub const ORIENTATION_SIZE: (u32, u32) = (300, 240);

/// The bytes of a 40 MB photo: a valid JPEG padded with trailing bytes (made at test time).
pub fn photo_40mb() -> Vec<u8> {
    let mut bytes = base_jpeg();
    bytes.resize(40 * 1024 * 1024, 0);
    bytes
}

/// Every committed corpus file, by path under `tests/corpus/`, as the generator makes it.
pub fn files() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = image_files()
        .into_iter()
        .map(|(name, bytes)| (format!("images/{name}"), bytes))
        .collect();
    for o in 1..=8u16 {
        out.push((
            format!("images/orientation-{o}.jpg"),
            with_exif_orientation(&base_jpeg(), o),
        ));
    }
    out.extend(
        crate::corpus_upn::files()
            .into_iter()
            .map(|(name, bytes)| (format!("upn/{name}"), bytes)),
    );
    out
}

fn image_files() -> Vec<(&'static str, Vec<u8>)> {
    let jpeg = base_jpeg();
    let png = upn_sim::samples::signature_png(5);
    vec![
        ("empty.bin", Vec::new()),
        ("zeros.bin", vec![0; 4096]),
        (
            "text.txt",
            b"this is not an image, it is a note about a delivery\n".to_vec(),
        ),
        (
            "document.pdf",
            b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n".to_vec(),
        ),
        ("iphone.heic", heic_header()),
        ("jpeg-cut-in-header.jpg", jpeg[..30].to_vec()),
        ("jpeg-cut-in-scan.jpg", jpeg[..jpeg.len() * 6 / 10].to_vec()),
        ("jpeg-without-eoi.jpg", jpeg[..jpeg.len() - 2].to_vec()),
        ("jpeg-zero-width.jpg", zero_width(&jpeg)),
        ("jpeg-second-soi.jpg", [&jpeg[..2], &jpeg[..]].concat()),
        ("jpeg-no-frame-header.jpg", without_segment(&jpeg, 0xC0)),
        ("jpeg-garbage-scan.jpg", garbage_scan(&jpeg)),
        ("jpeg-bad-huffman-table.jpg", bad_huffman_table(&jpeg)),
        ("png-100000x100000.png", grey_png_claiming(100_000, 100_000)),
        ("png-cut.png", png[..png.len() / 2].to_vec()),
        ("png-short-data.png", grey_png_claiming(320, 240)),
        ("png-no-ihdr.png", no_ihdr(&png)),
        ("photo-120x90.jpg", upn_sim::samples::photo_jpeg(3, 120, 90)),
        ("photo.jpg", jpeg),
        ("signature.png", png),
        ("signature-blank.png", grey_png(160, 60, |_, _| 255)),
        ("signature-uniform-grey.png", grey_png(160, 60, |_, _| 128)),
        // 2 x 2 = 4 ink pixels of 9600: 0.04 %, under the 0.2 % that is a signature.
        (
            "signature-near-blank.png",
            grey_png(160, 60, |x, y| {
                if (80..82).contains(&x) && (30..32).contains(&y) {
                    0
                } else {
                    255
                }
            }),
        ),
        // A stroke, but lighter than any ink (luma 200 on white).
        (
            "signature-faint.png",
            grey_png(160, 60, |x, y| {
                if y.abs_diff(30) < 3 && (20..140).contains(&x) {
                    200
                } else {
                    255
                }
            }),
        ),
        (
            "signature-20x20.png",
            grey_png(20, 20, |x, _| if x == 10 { 0 } else { 255 }),
        ),
    ]
}

/// The photo every JPEG case derives from (baseline, 300x240, JFIF, no EXIF).
fn base_jpeg() -> Vec<u8> {
    let (w, h) = ORIENTATION_SIZE;
    upn_sim::samples::photo_jpeg(11, w as u16, h as u16)
}

/// Marker segments between SOI and SOS: (marker, offset of the 0xFF, total length with marker).
fn segments(jpeg: &[u8]) -> Vec<(u8, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF {
        let marker = jpeg[pos + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        out.push((marker, pos, len + 2));
        if marker == 0xDA {
            break;
        }
        pos += len + 2;
    }
    out
}

fn segment(jpeg: &[u8], marker: u8) -> (usize, usize) {
    segments(jpeg)
        .into_iter()
        .find(|s| s.0 == marker)
        .map(|(_, at, len)| (at, len))
        .unwrap_or_else(|| panic!("the base JPEG has no {marker:02X} segment"))
}

fn zero_width(jpeg: &[u8]) -> Vec<u8> {
    let (sof, _) = segment(jpeg, 0xC0);
    let mut out = jpeg.to_vec();
    // FF C0, length (2), precision (1), height (2), width (2).
    out[sof + 7] = 0;
    out[sof + 8] = 0;
    out
}

fn without_segment(jpeg: &[u8], marker: u8) -> Vec<u8> {
    let (at, len) = segment(jpeg, marker);
    [&jpeg[..at], &jpeg[at + len..]].concat()
}

/// The middle third of the entropy-coded data replaced by stuffed 0xFF bytes (`FF 00`): a run
/// of one-bits longer than any Huffman code, which no table decodes.
fn garbage_scan(jpeg: &[u8]) -> Vec<u8> {
    let (sos, len) = segment(jpeg, 0xDA);
    let start = sos + len;
    let scan = jpeg.len() - 2 - start;
    let mut out = jpeg.to_vec();
    for (i, b) in out[start + scan / 3..start + 2 * scan / 3]
        .iter_mut()
        .enumerate()
    {
        *b = if i % 2 == 0 { 0xFF } else { 0x00 };
    }
    out
}

/// The first Huffman table's code counts claim 255 codes of every length: no such table exists.
fn bad_huffman_table(jpeg: &[u8]) -> Vec<u8> {
    let (dht, _) = segment(jpeg, 0xC4);
    let mut out = jpeg.to_vec();
    // FF C4, length (2), class/id (1), then 16 counts.
    for b in &mut out[dht + 5..dht + 21] {
        *b = 0xFF;
    }
    out
}

/// An APP1 Exif segment (big-endian TIFF, IFD0 holding only Orientation) right after SOI.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut exif = b"Exif\0\0MM\0*\0\0\0\x08".to_vec();
    exif.extend(1u16.to_be_bytes());
    exif.extend(0x0112u16.to_be_bytes());
    exif.extend(3u16.to_be_bytes());
    exif.extend(1u32.to_be_bytes());
    exif.extend(orientation.to_be_bytes());
    exif.extend([0, 0, 0, 0, 0, 0]);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((exif.len() + 2) as u16).to_be_bytes());
    out.extend(exif);
    out.extend(&jpeg[2..]);
    out
}

fn heic_header() -> Vec<u8> {
    let mut out = 24u32.to_be_bytes().to_vec();
    out.extend(b"ftypheic\0\0\0\0mif1heic");
    out.extend(vec![0; 64]);
    out
}

fn no_ihdr(png: &[u8]) -> Vec<u8> {
    // The signature, then everything after IHDR (8 + 4 + 4 + 13 + 4 bytes).
    [&png[..8], &png[33..]].concat()
}

// ---------------------------------------------------------------------------------------------
// PNG writing: stored (uncompressed) deflate, so no encoder is needed here.

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend(data);
    out.extend(&body);
    out.extend(crc32(&body).to_be_bytes());
}

fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

fn png_with(width: u32, height: u32, raw: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit greyscale, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// An 8-bit greyscale PNG of `width` x `height`, pixel (x, y) = `luma(x, y)`.
fn grey_png(width: u32, height: u32, luma: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // filter: none
        raw.extend((0..width).map(|x| luma(x, y)));
    }
    png_with(width, height, &raw)
}

/// A PNG whose header claims `width` x `height` and whose data is one short row.
fn grey_png_claiming(width: u32, height: u32) -> Vec<u8> {
    png_with(width, height, &[0; 64])
}

// ---------------------------------------------------------------------------------------------
// Capture fields: printed names, GPS fixes, capture times and barcodes.

/// What `sign` must do with a value of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldExpect {
    /// Recorded, the field stored as this (names: trimmed, inner whitespace collapsed; nothing
    /// else touched: SQL and emoji are data).
    Stored(String),
    /// `Error::InvalidInput` naming `field`, the reason containing `reason`.
    Refused {
        field: &'static str,
        reason: &'static str,
    },
}

fn stored(s: &str) -> FieldExpect {
    FieldExpect::Stored(s.to_string())
}

const fn refused(field: &'static str, reason: &'static str) -> FieldExpect {
    FieldExpect::Refused { field, reason }
}

/// Printed names (`signed_by`) and what `sign` makes of each.
pub fn name_cases() -> Vec<(String, FieldExpect)> {
    let long = refused("signed_by", "longer than 80 characters");
    let control = refused("signed_by", "control characters");
    let invisible = refused("signed_by", "no visible characters");
    let sql = "Robert'); DROP TABLE captures;--";
    let quotes = "O'Brien \"Bob\" `x` ; -- /* */ \\";
    vec![
        ("Zoë Ångström-Łukasz".into(), stored("Zoë Ångström-Łukasz")),
        ("Jo 👩‍👩‍👧 Patel 🚚".into(), stored("Jo 👩‍👩‍👧 Patel 🚚")),
        ("李小龍".into(), stored("李小龍")),
        ("  Jo \t  Patel\n".into(), stored("Jo Patel")),
        (sql.into(), stored(sql)),
        (quotes.into(), stored(quotes)),
        ("%s %n {0} ${x}".into(), stored("%s %n {0} ${x}")),
        ("🚚".repeat(80), stored(&"🚚".repeat(80))),
        ("x".repeat(10_000), long.clone()),
        ("🚚".repeat(81), long.clone()),
        // One letter under 10,000 combining marks: one glyph, 10,001 characters.
        (format!("Z{}", "\u{0301}".repeat(10_000)), long),
        ("".into(), refused("signed_by", "is empty")),
        (" \t\n\r ".into(), refused("signed_by", "is empty")),
        ("Jo\u{0}Patel".into(), control.clone()),
        ("Jo\u{7}Patel".into(), control.clone()),
        ("Jo\u{1b}[31mPatel".into(), control.clone()),
        ("Jo\u{7f}Patel".into(), control.clone()),
        ("Jo\u{85}Patel".into(), stored("Jo Patel")),
        ("Jo\u{9b}Patel".into(), control),
        // Right-to-left override: displays "Jo Patel" as something else.
        (
            "\u{202e}letaP oJ".into(),
            refused("signed_by", "text-direction control characters"),
        ),
        (
            "Jo\u{2066}Patel".into(),
            refused("signed_by", "text-direction control characters"),
        ),
        ("\u{200b}\u{200d}\u{feff}".into(), invisible.clone()),
        ("\u{2060} \u{200b}".into(), invisible),
    ]
}

/// What `sign` and `add_photo` must do with a GPS fix, or a capture time: accepted (`None`), or
/// refused naming the field, the reason containing the text.
pub type Refusal = Option<(&'static str, &'static str)>;

/// GPS fixes (lat, lon, accuracy, fix time as an offset from the capture time in minutes, or
/// an absolute RFC 3339 instant) and their refusals.
pub fn gps_cases() -> Vec<(&'static str, f64, f64, f64, FixTime, Refusal)> {
    use FixTime::*;
    let lat = Some(("gps.lat", "between -90 and 90"));
    let lon = Some(("gps.lon", "between -180 and 180"));
    let acc = Some(("gps.accuracy_m", "between 0 and"));
    let fix_at = Some(("gps.fix_at", ""));
    vec![
        ("good", 52.4862, -1.8904, 6.5, Minutes(-1), None),
        ("stale but real", 52.4862, -1.8904, 6.5, Minutes(-90), None),
        ("poles and date line", -90.0, 180.0, 0.0, Minutes(0), None),
        ("lat NaN", f64::NAN, 0.0, 5.0, Minutes(0), lat),
        ("lat +inf", f64::INFINITY, 0.0, 5.0, Minutes(0), lat),
        ("lat -inf", f64::NEG_INFINITY, 0.0, 5.0, Minutes(0), lat),
        ("lat 90.0001", 90.0001, 0.0, 5.0, Minutes(0), lat),
        ("lat -1e308", -1e308, 0.0, 5.0, Minutes(0), lat),
        ("lon NaN", 0.0, f64::NAN, 5.0, Minutes(0), lon),
        ("lon inf", 0.0, f64::INFINITY, 5.0, Minutes(0), lon),
        ("lon 180.5", 0.0, 180.5, 5.0, Minutes(0), lon),
        ("lon -181", 0.0, -181.0, 5.0, Minutes(0), lon),
        ("accuracy NaN", 0.0, 0.0, f64::NAN, Minutes(0), acc),
        ("accuracy inf", 0.0, 0.0, f64::INFINITY, Minutes(0), acc),
        ("accuracy negative", 0.0, 0.0, -1.0, Minutes(0), acc),
        ("accuracy 1e9", 0.0, 0.0, 1e9, Minutes(0), acc),
        (
            "fix 11 min after capture",
            0.0,
            0.0,
            5.0,
            Minutes(11),
            fix_at,
        ),
        (
            "fix in 1970",
            0.0,
            0.0,
            5.0,
            At("1970-01-01T00:00:00Z"),
            fix_at,
        ),
        (
            "fix in 1999",
            0.0,
            0.0,
            5.0,
            At("1999-12-31T23:59:59Z"),
            fix_at,
        ),
    ]
}

/// When a GPS fix was taken.
#[derive(Debug, Clone, Copy)]
pub enum FixTime {
    /// Minutes after the capture time (negative: before).
    Minutes(i64),
    /// An absolute instant.
    At(&'static str),
}

/// Capture times, relative to the device clock's now in minutes or absolute, and their refusals.
pub fn captured_at_cases() -> Vec<(&'static str, FixTime, Refusal)> {
    use FixTime::*;
    let refused = Some(("captured_at", ""));
    vec![
        ("now", Minutes(0), None),
        ("an hour ago", Minutes(-60), None),
        ("4 min ahead (clock skew)", Minutes(4), None),
        ("an hour ahead", Minutes(60), refused),
        ("in 2150", At("2150-01-01T00:00:00Z"), refused),
        ("in 1970", At("1970-01-01T00:00:00Z"), refused),
        ("in 1999", At("1999-12-31T23:59:59Z"), refused),
    ]
}

/// Barcodes that are not barcodes: refused as `InvalidInput { field: "barcode" }`.
pub fn bad_barcodes() -> Vec<String> {
    vec![
        String::new(),
        " UPN0420000001".into(),
        "UPN0420000001\n".into(),
        "../../etc/passwd".into(),
        "UPN'; DROP TABLE consignments;--".into(),
        "UPN%2F..".into(),
        "UPN\u{0}1".into(),
        "🚚".into(),
        "U".repeat(65),
        "U".repeat(10_000),
    ]
}
