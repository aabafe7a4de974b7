//! Media tests. Every image is generated here, in memory.

use std::time::{Duration, Instant};

use super::decode::{self, Plane};
use super::header::exif_orientation;
use super::*;

// ---------------------------------------------------------------------------------------------
// Generators

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
}

/// Gradients plus noise, with a pure red block marking the stored top-left corner.
fn photo_rgb(w: u32, h: u32) -> Vec<u8> {
    let mut rng = Lcg(u64::from(w) * 31 + u64::from(h));
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            if x < w / 6 && y < h / 6 {
                px.extend([255, 0, 0]);
                continue;
            }
            let n = rng.next() % 24;
            let r = 40 + (x * 120 / w) + n;
            let g = 60 + (y * 120 / h) + n;
            let b = 90 + ((x + y) * 60 / (w + h)) + n;
            px.extend([r as u8, g as u8, b as u8]);
        }
    }
    px
}

fn encode_jpeg(
    px: &[u8],
    w: u32,
    h: u32,
    color: jpeg_encoder::ColorType,
    progressive: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.set_progressive(progressive);
    enc.encode(px, w as u16, h as u16, color).unwrap();
    out
}

fn photo_jpeg(w: u32, h: u32) -> Vec<u8> {
    encode_jpeg(&photo_rgb(w, h), w, h, jpeg_encoder::ColorType::Rgb, false)
}

/// Inserts marker segments right after SOI.
fn with_segments(jpeg: &[u8], segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for (marker, payload) in segments {
        out.extend([0xFF, *marker]);
        out.extend(((payload.len() + 2) as u16).to_be_bytes());
        out.extend(payload);
    }
    out.extend(&jpeg[2..]);
    out
}

/// A minimal big-endian Exif APP1 payload: IFD0 with Orientation, plus some GPS-looking text.
fn exif_payload(orientation: u16) -> Vec<u8> {
    let mut p = b"Exif\0\0MM\0*\0\0\0\x08".to_vec();
    p.extend(1u16.to_be_bytes()); // one entry
    p.extend(0x0112u16.to_be_bytes()); // Orientation
    p.extend(3u16.to_be_bytes()); // SHORT
    p.extend(1u32.to_be_bytes()); // count
    p.extend(orientation.to_be_bytes());
    p.extend([0, 0]);
    p.extend(0u32.to_be_bytes()); // no next IFD
    p.extend(b"GPS 51.5074N 0.1278W serial CAM-1234");
    p
}

fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    with_segments(jpeg, &[(0xE1, exif_payload(orientation))])
}

fn encode_png(w: u32, h: u32, color: png::ColorType, depth: png::BitDepth, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(color);
    enc.set_depth(depth);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
    out
}

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

fn ihdr(w: u32, h: u32, color: u8, interlaced: bool) -> Vec<u8> {
    let mut d = w.to_be_bytes().to_vec();
    d.extend(h.to_be_bytes());
    d.extend([8, color, 0, 0, u8::from(interlaced)]);
    d
}

/// An Adam7-interlaced 8-bit PNG (the png crate's encoder does not interlace), zlib with stored
/// blocks. `channels` = 1 (grey, colour type 0) or 4 (RGBA, colour type 6).
fn interlaced_png(w: u32, h: u32, channels: usize, px: &[u8]) -> Vec<u8> {
    const PASSES: [(u32, u32, u32, u32); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in PASSES {
        if x0 >= w || y0 >= h {
            continue;
        }
        for y in (y0..h).step_by(dy as usize) {
            raw.push(0);
            for x in (x0..w).step_by(dx as usize) {
                let i = (y * w + x) as usize * channels;
                raw.extend(&px[i..i + channels]);
            }
        }
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend(len.to_le_bytes());
        z.extend((!len).to_le_bytes());
        z.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(
        &mut out,
        b"IHDR",
        &ihdr(w, h, if channels == 1 { 0 } else { 6 }, true),
    );
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Ink coverage (0..=1 per pixel) of a handwriting-like stroke (a wobbly line with loops), drawn
/// as anti-aliased discs of `radius`, as signature pads do.
fn signature_coverage(w: u32, h: u32, radius: f64) -> Vec<f32> {
    let mut cov = vec![0f32; (w * h) as usize];
    let (wf, hf) = (f64::from(w), f64::from(h));
    let reach = radius.ceil() as i64 + 1;
    for i in 0..4000 {
        let t = f64::from(i) / 4000.0;
        let x = wf * (0.15 + 0.6 * t) + wf * 0.04 * (t * 60.0).cos();
        let y = hf * 0.5 + hf * 0.2 * (t * 9.0).sin() + hf * 0.08 * (t * 60.0).sin();
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                let (px, py) = (x as i64 + dx, y as i64 + dy);
                if px < 0 || py < 0 || px >= i64::from(w) || py >= i64::from(h) {
                    continue;
                }
                let d = ((px as f64 + 0.5 - x).powi(2) + (py as f64 + 0.5 - y).powi(2)).sqrt();
                let c = (radius + 0.5 - d).clamp(0.0, 1.0) as f32;
                let i = (py as u32 * w + px as u32) as usize;
                cov[i] = cov[i].max(c);
            }
        }
    }
    cov
}

/// What a signature pad exports: RGBA, `ink` blended over `background` by coverage.
fn signature_rgba(w: u32, h: u32, background: [u8; 4], ink: [u8; 4]) -> Vec<u8> {
    signature_coverage(w, h, 2.0)
        .into_iter()
        .flat_map(|c| {
            let mix = |i: usize| {
                (f32::from(background[i]) * (1.0 - c) + f32::from(ink[i]) * c).round() as u8
            };
            [mix(0), mix(1), mix(2), mix(3)]
        })
        .collect()
}

fn signature_png(w: u32, h: u32) -> Vec<u8> {
    let px = signature_rgba(w, h, [255, 255, 255, 255], [10, 10, 40, 255]);
    encode_png(w, h, png::ColorType::Rgba, png::BitDepth::Eight, &px)
}

fn grey_png(w: u32, h: u32, value: u8) -> Vec<u8> {
    encode_png(
        w,
        h,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &vec![value; (w * h) as usize],
    )
}

fn decode_rgb(jpeg: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    let px = d.decode().unwrap();
    let info = d.info().unwrap();
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
    (u32::from(info.width), u32::from(info.height), px)
}

fn rgb_at(px: &[u8], w: u32, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * w + x) * 3) as usize;
    [px[i], px[i + 1], px[i + 2]]
}

fn is_red(p: [u8; 3]) -> bool {
    p[0] > 200 && p[1] < 60 && p[2] < 60
}

/// Marker codes of every segment before the first SOS.
fn jpeg_markers(jpeg: &[u8]) -> Vec<u8> {
    let mut markers = Vec::new();
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF {
        let m = jpeg[pos + 1];
        markers.push(m);
        if m == 0xDA {
            break;
        }
        pos += 2 + u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]) as usize;
    }
    markers
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn all_four(bytes: &[u8], limits: &MediaLimits) -> [Result<(), MediaError>; 4] {
    [
        inspect_photo(bytes, limits).map(drop),
        inspect_signature(bytes, limits).map(drop),
        photo_rendition(bytes, limits).map(drop),
        signature_rendition(bytes, limits).map(drop),
    ]
}

fn lim() -> MediaLimits {
    MediaLimits::default()
}

// ---------------------------------------------------------------------------------------------
// Errors, one by one

#[test]
fn defaults_are_as_documented() {
    let l = MediaLimits::default();
    assert_eq!(l.max_input_bytes, 30 * 1024 * 1024);
    assert_eq!(l.max_pixels, 64_000_000);
    assert_eq!(l.max_dimension, 16_384);
    assert_eq!(l.max_long_side, 1600);
    assert_eq!(l.jpeg_quality, 80);
}

#[test]
fn empty_input_is_refused() {
    for r in all_four(&[], &lim()) {
        assert_eq!(r, Err(MediaError::Empty));
    }
}

#[test]
fn oversized_input_is_refused_before_anything_else() {
    let jpeg = photo_jpeg(480, 360);
    let limits = MediaLimits {
        max_input_bytes: 1000,
        ..lim()
    };
    for r in all_four(&jpeg, &limits) {
        assert_eq!(
            r,
            Err(MediaError::TooLarge {
                bytes: jpeg.len(),
                limit: 1000
            })
        );
    }
    // Even garbage of that size is refused for its size, not its content.
    let junk = vec![0u8; 1001];
    assert!(matches!(
        inspect_photo(&junk, &limits),
        Err(MediaError::TooLarge { .. })
    ));
}

#[test]
fn non_images_and_heic_are_refused_naming_heic() {
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    for bytes in [
        b"hello, world".to_vec(),
        heic,
        b"GIF89a....".to_vec(),
        vec![0xFF, 0xD8],
    ] {
        for r in all_four(&bytes, &lim()) {
            assert_eq!(r, Err(MediaError::NotAnImage));
        }
    }
    let msg = MediaError::NotAnImage.to_string();
    assert!(msg.contains("HEIC"), "{msg}");
    assert!(msg.contains("JPEG"), "{msg}");
}

#[test]
fn truncated_jpegs_are_undecodable_never_grey_filled() {
    for progressive in [false, true] {
        let px = photo_rgb(480, 360);
        let jpeg = encode_jpeg(&px, 480, 360, jpeg_encoder::ColorType::Rgb, progressive);
        let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let n = jpeg.len();
        // Just the EOI byte, the whole EOI, mid-scan cuts, and right after the scan header.
        for cut in [n - 1, n - 2, n - 3, n * 9 / 10, n / 2, sos + 14] {
            let part = &jpeg[..cut];
            for r in [
                inspect_photo(part, &lim()).map(drop),
                photo_rendition(part, &lim()).map(drop),
            ] {
                match r {
                    Err(MediaError::Undecodable { reason }) => {
                        assert!(reason.contains("incomplete"), "{reason}")
                    }
                    other => panic!("progressive={progressive} cut {cut}/{n}: {other:?}"),
                }
            }
        }
        // The untruncated file is fine.
        assert!(inspect_photo(&jpeg, &lim()).is_ok());
    }
}

#[test]
fn cut_in_the_header_is_undecodable() {
    let jpeg = photo_jpeg(480, 360);
    for cut in [3, 4, 10, 30, 100] {
        assert!(
            matches!(
                inspect_photo(&jpeg[..cut], &lim()),
                Err(MediaError::Undecodable { .. })
            ),
            "cut {cut}"
        );
    }
    let png = signature_png(600, 200);
    for cut in [8, 12, 20, 32, 40] {
        assert!(
            matches!(
                inspect_signature(&png[..cut], &lim()),
                Err(MediaError::Undecodable { .. })
            ),
            "cut {cut}"
        );
    }
}

#[test]
fn truncated_pngs_are_undecodable() {
    let px = photo_rgb(480, 360);
    let png = encode_png(480, 360, png::ColorType::Rgb, png::BitDepth::Eight, &px);
    let n = png.len();
    // n - 12 drops exactly IEND: every pixel is there, but the file is still cut short.
    for cut in [n - 12, n - 20, n / 2, 60] {
        let part = &png[..cut];
        assert!(
            matches!(
                inspect_photo(part, &lim()),
                Err(MediaError::Undecodable { .. })
            ),
            "cut {cut}/{n}: {:?}",
            inspect_photo(part, &lim())
        );
        assert!(matches!(
            photo_rendition(part, &lim()),
            Err(MediaError::Undecodable { .. })
        ));
    }
    assert!(inspect_photo(&png, &lim()).is_ok());
}

#[test]
fn png_decompression_bomb_is_refused_from_the_header() {
    // 100000 x 100000 = 10^10 pixels claimed by a 57-byte file.
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut bomb, b"IHDR", &ihdr(100_000, 100_000, 6, false));
    chunk(
        &mut bomb,
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0, 0, 0, 1],
    );
    chunk(&mut bomb, b"IEND", &[]);
    let start = Instant::now();
    for r in all_four(&bomb, &lim()) {
        assert_eq!(
            r,
            Err(MediaError::TooManyPixels {
                width: 100_000,
                height: 100_000,
                limit: 64_000_000
            })
        );
    }
    assert!(
        start.elapsed() < Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn jpeg_decompression_bomb_is_refused_from_the_header() {
    let mut bomb = photo_jpeg(480, 360);
    let sof = bomb.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bomb[sof + 5..sof + 7].copy_from_slice(&65_000u16.to_be_bytes()); // height
    bomb[sof + 7..sof + 9].copy_from_slice(&65_000u16.to_be_bytes()); // width
    let start = Instant::now();
    for r in all_four(&bomb, &lim()) {
        assert!(
            matches!(
                r,
                Err(MediaError::TooManyPixels {
                    width: 65_000,
                    height: 65_000,
                    ..
                })
            ),
            "{r:?}"
        );
    }
    assert!(
        start.elapsed() < Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );

    // Few pixels, but one side over max_dimension.
    bomb[sof + 5..sof + 7].copy_from_slice(&300u16.to_be_bytes());
    bomb[sof + 7..sof + 9].copy_from_slice(&20_000u16.to_be_bytes());
    assert!(matches!(
        inspect_photo(&bomb, &lim()),
        Err(MediaError::TooManyPixels {
            width: 20_000,
            height: 300,
            ..
        })
    ));
}

#[test]
fn tiny_images_are_too_small() {
    let jpeg = photo_jpeg(200, 150);
    assert_eq!(
        inspect_photo(&jpeg, &lim()),
        Err(MediaError::TooSmall {
            width: 200,
            height: 150
        })
    );
    assert_eq!(
        photo_rendition(&jpeg, &lim()).map(drop),
        Err(MediaError::TooSmall {
            width: 200,
            height: 150
        })
    );
    let sig = signature_png(300, 40);
    assert_eq!(
        inspect_signature(&sig, &lim()),
        Err(MediaError::TooSmall {
            width: 300,
            height: 40
        })
    );
    assert_eq!(
        signature_rendition(&sig, &lim()).map(drop),
        Err(MediaError::TooSmall {
            width: 300,
            height: 40
        })
    );
}

#[test]
fn blank_signatures_are_refused() {
    let (w, h) = (600u32, 200u32);
    let mut dot = vec![255u8; (w * h) as usize];
    for y in 100..105 {
        for x in 300..305 {
            dot[(y * w + x) as usize] = 0;
        }
    }
    let transparent = vec![0u8; (w * h * 4) as usize];
    let blanks = [
        ("white", grey_png(w, h, 255)),
        ("grey", grey_png(w, h, 128)),
        ("black", grey_png(w, h, 0)),
        (
            "one dot",
            encode_png(w, h, png::ColorType::Grayscale, png::BitDepth::Eight, &dot),
        ),
        (
            "transparent",
            encode_png(
                w,
                h,
                png::ColorType::Rgba,
                png::BitDepth::Eight,
                &transparent,
            ),
        ),
        (
            "white jpeg",
            encode_jpeg(
                &vec![250; (w * h * 3) as usize],
                w,
                h,
                jpeg_encoder::ColorType::Rgb,
                false,
            ),
        ),
    ];
    for (name, bytes) in blanks {
        assert_eq!(
            inspect_signature(&bytes, &lim()),
            Err(MediaError::BlankSignature),
            "{name}"
        );
        assert_eq!(
            signature_rendition(&bytes, &lim()).map(drop),
            Err(MediaError::BlankSignature),
            "{name}"
        );
    }
    assert_eq!(
        MediaError::BlankSignature.to_string(),
        "the signature is blank: ask the consignee to sign again"
    );
}

#[test]
fn every_message_says_what_to_do() {
    let errors = [
        MediaError::Empty,
        MediaError::TooLarge { bytes: 2, limit: 1 },
        MediaError::NotAnImage,
        MediaError::undecodable("x"),
        MediaError::TooManyPixels {
            width: 1,
            height: 1,
            limit: 1,
        },
        MediaError::BlankSignature,
        MediaError::TooSmall {
            width: 1,
            height: 1,
        },
    ];
    for e in errors {
        let msg = e.to_string();
        assert!(
            msg.contains(": ") && (msg.contains("again") || msg.contains("capture")),
            "{msg}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Photos

#[test]
fn inspect_reports_format_size_and_orientation() {
    let jpeg = with_orientation(&photo_jpeg(480, 360), 6);
    assert_eq!(
        inspect_photo(&jpeg, &lim()),
        Ok(ImageInfo {
            format: ImageFormat::Jpeg,
            width: 480,
            height: 360,
            orientation: 6
        })
    );
    let png = encode_png(
        480,
        360,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &photo_rgb(480, 360),
    );
    assert_eq!(
        inspect_photo(&png, &lim()),
        Ok(ImageInfo {
            format: ImageFormat::Png,
            width: 480,
            height: 360,
            orientation: 1
        })
    );
}

#[test]
fn every_exif_orientation_puts_the_marked_corner_where_expected() {
    let jpeg = photo_jpeg(480, 360);
    // Where the stored top-left corner ends up once upright: (right?, bottom?).
    let expected = [
        (false, false),
        (true, false),
        (true, true),
        (false, true),
        (false, false),
        (true, false),
        (true, true),
        (false, true),
    ];
    for o in 1..=8u8 {
        let r = photo_rendition(with_orientation(&jpeg, u16::from(o)), &lim()).unwrap();
        let (w, h, px) = decode_rgb(&r.bytes);
        assert_eq!((r.width, r.height), (w, h));
        assert_eq!(
            (w, h),
            if o >= 5 { (360, 480) } else { (480, 360) },
            "orientation {o}"
        );
        let corner = |right: bool, bottom: bool| {
            rgb_at(
                &px,
                w,
                if right { w - 10 } else { 10 },
                if bottom { h - 10 } else { 10 },
            )
        };
        let (right, bottom) = expected[usize::from(o - 1)];
        assert!(
            is_red(corner(right, bottom)),
            "orientation {o}: {:?}",
            corner(right, bottom)
        );
        assert!(!is_red(corner(!right, bottom)), "orientation {o}");
        assert!(!is_red(corner(right, !bottom)), "orientation {o}");
    }
}

#[test]
fn orientation_six_rotates_clockwise() {
    let jpeg = with_orientation(&photo_jpeg(640, 480), 6);
    let r = photo_rendition(&jpeg, &lim()).unwrap();
    assert_eq!((r.width, r.height, r.mime), (480, 640, "image/jpeg"));
    let (w, _, px) = decode_rgb(&r.bytes);
    // Stored top-left is the upright top-right.
    assert!(is_red(rgb_at(&px, w, w - 5, 5)));
    assert!(!is_red(rgb_at(&px, w, 5, 5)));
}

#[test]
fn all_metadata_is_stripped() {
    let icc = b"ICC_PROFILE\0\x01\x01fake-profile-bytes".to_vec();
    let xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>GPS</x:xmpmeta>".to_vec();
    let jpeg = with_segments(
        &photo_jpeg(800, 600),
        &[
            (0xE1, exif_payload(1)),
            (0xE1, xmp),
            (0xE2, icc),
            (0xFE, b"driver comment".to_vec()),
        ],
    );
    assert!(contains(&jpeg, b"Exif"));
    let r = photo_rendition(&jpeg, &lim()).unwrap();
    for needle in [
        &b"Exif"[..],
        b"GPS",
        b"ICC_PROFILE",
        b"xmpmeta",
        b"driver comment",
        b"CAM-1234",
    ] {
        assert!(
            !contains(&r.bytes, needle),
            "{}",
            String::from_utf8_lossy(needle)
        );
    }
    let markers = jpeg_markers(&r.bytes);
    assert!(
        markers
            .iter()
            .all(|m| !(0xE1..=0xEF).contains(m) && *m != 0xFE),
        "{markers:x?}"
    );
}

#[test]
fn long_side_is_capped_and_small_images_are_not_upscaled() {
    // Small: untouched size.
    let r = photo_rendition(photo_jpeg(480, 360), &lim()).unwrap();
    assert_eq!((r.width, r.height), (480, 360));

    // 2400x1800 at the default 1600.
    let r = photo_rendition(photo_jpeg(2400, 1800), &lim()).unwrap();
    assert_eq!((r.width, r.height), (1600, 1200));
    assert_eq!(decode_rgb(&r.bytes).0, 1600);

    // DCT 1/4 path, landscape and rotated portrait.
    let small = MediaLimits {
        max_long_side: 500,
        ..lim()
    };
    let jpeg = photo_jpeg(2000, 1000);
    let r = photo_rendition(&jpeg, &small).unwrap();
    assert_eq!((r.width, r.height), (500, 250));
    assert!(is_red(rgb_at(&decode_rgb(&r.bytes).2, 500, 5, 5)));
    let r = photo_rendition(with_orientation(&jpeg, 6), &small).unwrap();
    assert_eq!((r.width, r.height), (250, 500));

    // PNG source.
    let png = encode_png(
        1000,
        600,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &photo_rgb(1000, 600),
    );
    let r = photo_rendition(
        &png,
        &MediaLimits {
            max_long_side: 400,
            ..lim()
        },
    )
    .unwrap();
    assert_eq!((r.width, r.height), (400, 240));
    assert!(is_red(rgb_at(&decode_rgb(&r.bytes).2, 400, 5, 5)));
}

#[test]
fn grey_and_cmyk_jpegs_render() {
    let (w, h) = (640u32, 480u32);
    let grey: Vec<u8> = photo_rgb(w, h).chunks(3).map(|p| p[1]).collect();
    let jpeg = encode_jpeg(&grey, w, h, jpeg_encoder::ColorType::Luma, false);
    let r = photo_rendition(
        &jpeg,
        &MediaLimits {
            max_long_side: 320,
            ..lim()
        },
    )
    .unwrap();
    assert_eq!((r.width, r.height), (320, 240));
    assert!(inspect_photo(&jpeg, &lim()).is_ok());

    let cmyk: Vec<u8> = (0..w * h)
        .flat_map(|i| [(i % 200) as u8, 30, 60, 10])
        .collect();
    let jpeg = encode_jpeg(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk, false);
    assert!(inspect_photo(&jpeg, &lim()).is_ok());
    let r = photo_rendition(&jpeg, &lim()).unwrap();
    assert_eq!((r.width, r.height), (640, 480));
    assert_eq!(decode_rgb(&r.bytes).2.len(), 640 * 480 * 3);
}

#[test]
fn quality_setting_changes_the_output() {
    let jpeg = photo_jpeg(1200, 900);
    let low = photo_rendition(
        &jpeg,
        &MediaLimits {
            jpeg_quality: 30,
            ..lim()
        },
    )
    .unwrap();
    let high = photo_rendition(
        &jpeg,
        &MediaLimits {
            jpeg_quality: 95,
            ..lim()
        },
    )
    .unwrap();
    assert!(low.bytes.len() < high.bytes.len());
    // Out-of-range quality is clamped, not an error.
    assert!(photo_rendition(
        &jpeg,
        &MediaLimits {
            jpeg_quality: 0,
            ..lim()
        }
    )
    .is_ok());
}

#[test]
fn interlaced_png_decodes_like_the_plain_one() {
    let (w, h) = (301u32, 257u32);
    let rgb = photo_rgb(w, h);
    let rgba: Vec<u8> = rgb
        .chunks(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], (i % 256) as u8])
        .collect();
    let plain = encode_png(w, h, png::ColorType::Rgba, png::BitDepth::Eight, &rgba);
    let interlaced = interlaced_png(w, h, 4, &rgba);
    let info = header_info(&plain);
    assert_eq!(info, header_info(&interlaced));
    let a = decode::decode_png(&plain, &info).unwrap();
    let b = decode::decode_png(&interlaced, &info).unwrap();
    assert_eq!(a, b);
    // Alpha composited on white: a fully transparent pixel is white.
    assert_eq!(&a.data[..3], &[255, 255, 255]);
    assert!(inspect_photo(&interlaced, &lim()).is_ok());
    let n = interlaced.len();
    assert!(matches!(
        inspect_photo(&interlaced[..n / 2], &lim()),
        Err(MediaError::Undecodable { .. })
    ));
}

#[test]
fn png_exif_orientation_is_applied() {
    let png = encode_png(
        480,
        360,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &photo_rgb(480, 360),
    );
    let mut oriented = png[..33].to_vec(); // signature + IHDR
    chunk(&mut oriented, b"eXIf", &exif_payload(6)[6..]);
    oriented.extend(&png[33..]);
    assert_eq!(
        inspect_photo(&oriented, &lim()).map(|i| i.orientation),
        Ok(6)
    );
    let r = photo_rendition(&oriented, &lim()).unwrap();
    assert_eq!((r.width, r.height), (360, 480));
    let (w, _, px) = decode_rgb(&r.bytes);
    assert!(is_red(rgb_at(&px, w, w - 5, 5)));
    assert!(!contains(&r.bytes, b"GPS"));
}

fn header_info(bytes: &[u8]) -> ImageInfo {
    super::header::read(bytes, &lim()).unwrap()
}

#[test]
fn exif_orientation_parser_handles_both_byte_orders_and_garbage() {
    let be = exif_payload(8);
    assert_eq!(exif_orientation(&be[6..]), 8);
    let mut le = b"II*\0\x08\0\0\0\x01\0".to_vec();
    le.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0]);
    assert_eq!(exif_orientation(&le), 3);
    assert_eq!(exif_orientation(&le[..le.len() - 4]), 1);
    assert_eq!(exif_orientation(b""), 1);
    assert_eq!(exif_orientation(b"MM\0*\xFF\xFF\xFF\xFF"), 1);
    let mut bad = be[6..].to_vec();
    bad[19] = 9; // orientation 9 does not exist
    assert_eq!(exif_orientation(&bad), 1);
}

#[test]
fn orient_maps_pixels_exactly() {
    // 3x2 grey image, values 0..6; orientation 6 (rotate 90 clockwise) gives 2x3.
    let p = Plane {
        width: 3,
        height: 2,
        channels: 1,
        data: vec![0, 1, 2, 3, 4, 5],
    };
    let r = decode::orient(p.clone(), 6);
    assert_eq!((r.width, r.height, r.data), (2, 3, vec![3, 0, 4, 1, 5, 2]));
    let r = decode::orient(p.clone(), 8);
    assert_eq!(r.data, vec![2, 5, 1, 4, 0, 3]);
    let r = decode::orient(p.clone(), 3);
    assert_eq!(r.data, vec![5, 4, 3, 2, 1, 0]);
    assert_eq!(decode::orient(p.clone(), 1), p);
}

#[test]
fn orient_matches_the_exif_definitions_across_tiles_for_every_orientation() {
    // Larger than one copy tile, odd sides: every tile edge case, grey and RGB.
    let (w, h) = (71usize, 38usize);
    for channels in [1usize, 3] {
        let data: Vec<u8> = (0..w * h * channels).map(|i| (i * 7 % 251) as u8).collect();
        let p = Plane {
            width: w as u32,
            height: h as u32,
            channels,
            data,
        };
        for o in 1..=8u8 {
            let r = decode::orient(p.clone(), o);
            // A reused buffer, longer and full of other bytes, gives the same image.
            let reused = decode::orient_into(p.clone(), o, vec![0xAA; 3 * w * h * channels]);
            assert_eq!(reused, r, "{o}");
            let (ow, oh) = if o >= 5 { (h, w) } else { (w, h) };
            assert_eq!((r.width as usize, r.height as usize), (ow, oh), "{o}");
            for y in 0..oh {
                for x in 0..ow {
                    let (sx, sy) = match o {
                        1 => (x, y),
                        2 => (w - 1 - x, y),
                        3 => (w - 1 - x, h - 1 - y),
                        4 => (x, h - 1 - y),
                        5 => (y, x),
                        6 => (y, h - 1 - x),
                        7 => (w - 1 - y, h - 1 - x),
                        _ => (w - 1 - y, x),
                    };
                    let (i, j) = ((sy * w + sx) * channels, (y * ow + x) * channels);
                    assert_eq!(
                        r.data[j..j + channels],
                        p.data[i..i + channels],
                        "{o} {x} {y}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures

fn png_ihdr(png: &[u8]) -> (u32, u32, u8, u8) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
    (be(16), be(20), png[24], png[25])
}

fn png_chunk_types(png: &[u8]) -> Vec<String> {
    let mut types = Vec::new();
    let mut pos = 8;
    while pos + 8 <= png.len() {
        let len = u32::from_be_bytes([png[pos], png[pos + 1], png[pos + 2], png[pos + 3]]) as usize;
        types.push(String::from_utf8_lossy(&png[pos + 4..pos + 8]).into_owned());
        pos += 12 + len;
    }
    types
}

/// Decodes a rendition to 8-bit grey (0 = ink).
fn decode_grey(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut d = png::Decoder::new(std::io::Cursor::new(png_bytes));
    d.set_transformations(png::Transformations::EXPAND);
    let mut r = d.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    (info.width, info.height, buf)
}

#[test]
fn signature_rendition_is_a_small_cropped_one_bit_png() {
    let (w, h) = (1200, 400);
    let input = signature_png(w, h);
    assert_eq!(
        inspect_signature(&input, &lim()),
        Ok(ImageInfo {
            format: ImageFormat::Png,
            width: w,
            height: h,
            orientation: 1
        })
    );
    let r = signature_rendition(&input, &lim()).unwrap();
    assert_eq!(r.mime, "image/png");
    let (rw, rh, depth, color) = png_ihdr(&r.bytes);
    assert_eq!((rw, rh), (r.width, r.height));
    assert_eq!((depth, color), (1, 0), "bit depth 1, greyscale");
    assert_eq!(png_chunk_types(&r.bytes), ["IHDR", "IDAT", "IEND"]);
    assert!(r.width.max(r.height) <= SIGNATURE_MAX_LONG_SIDE);
    // Cropped to the ink: the stroke spans ~64% of the width and ~60% of the height.
    assert!(
        r.width < w * 3 / 4 && r.height < h * 3 / 4,
        "{}x{}",
        r.width,
        r.height
    );
    assert!(
        r.bytes.len() * 4 < input.len(),
        "{} vs {}",
        r.bytes.len(),
        input.len()
    );
    let (_, _, grey) = decode_grey(&r.bytes);
    let ink = grey.iter().filter(|&&v| v == 0).count();
    assert!(
        ink * 100 > grey.len() && ink * 2 < grey.len(),
        "{ink} of {}",
        grey.len()
    );
    assert!(grey.iter().all(|&v| v == 0 || v == 255));
    eprintln!(
        "signature: {} bytes in, {} bytes out ({}x{})",
        input.len(),
        r.bytes.len(),
        r.width,
        r.height
    );
}

#[test]
fn large_signatures_are_scaled_to_800() {
    let input = signature_png(3000, 1000);
    let r = signature_rendition(&input, &lim()).unwrap();
    assert_eq!(r.width.max(r.height), 800);
    let (_, _, grey) = decode_grey(&r.bytes);
    assert!(grey.iter().filter(|&&v| v == 0).count() > 1000);
}

#[test]
fn transparent_ink_signature_is_accepted() {
    let (w, h) = (900, 300);
    // Transparent *black* background, opaque black ink: without compositing on white this
    // would look like an all-black image.
    let px = signature_rgba(w, h, [0, 0, 0, 0], [0, 0, 0, 255]);
    let input = encode_png(w, h, png::ColorType::Rgba, png::BitDepth::Eight, &px);
    assert!(inspect_signature(&input, &lim()).is_ok());
    let r = signature_rendition(&input, &lim()).unwrap();
    let (_, _, grey) = decode_grey(&r.bytes);
    let ink = grey.iter().filter(|&&v| v == 0).count();
    assert!(
        ink * 100 > grey.len() && ink * 2 < grey.len(),
        "{ink} of {}",
        grey.len()
    );

    // Grey + alpha as well.
    let ga: Vec<u8> = px.chunks(4).flat_map(|p| [p[0], p[3]]).collect();
    let input = encode_png(
        w,
        h,
        png::ColorType::GrayscaleAlpha,
        png::BitDepth::Eight,
        &ga,
    );
    assert!(signature_rendition(&input, &lim()).is_ok());
}

#[test]
fn dark_mode_signature_comes_out_black_on_white() {
    let (w, h) = (900, 300);
    let px = signature_rgba(w, h, [20, 20, 20, 255], [250, 250, 250, 255]);
    let input = encode_png(w, h, png::ColorType::Rgba, png::BitDepth::Eight, &px);
    let r = signature_rendition(&input, &lim()).unwrap();
    let (_, _, grey) = decode_grey(&r.bytes);
    let ink = grey.iter().filter(|&&v| v == 0).count();
    assert!(ink * 2 < grey.len(), "mostly white after inversion");
    assert_eq!(grey[0], 255, "margin is white");
}

#[test]
fn jpeg_and_interlaced_signatures_work() {
    let (w, h) = (1000u32, 400u32);
    let rgba = signature_rgba(w, h, [255, 255, 255, 255], [0, 0, 0, 255]);
    let rgb: Vec<u8> = rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let jpeg = with_orientation(
        &encode_jpeg(&rgb, w, h, jpeg_encoder::ColorType::Rgb, false),
        8,
    );
    let info = inspect_signature(&jpeg, &lim()).unwrap();
    assert_eq!((info.format, info.orientation), (ImageFormat::Jpeg, 8));
    let r = signature_rendition(&jpeg, &lim()).unwrap();
    assert!(
        r.height > r.width,
        "rotated to portrait: {}x{}",
        r.width,
        r.height
    );

    let interlaced = interlaced_png(w, h, 4, &rgba);
    let a = signature_rendition(&interlaced, &lim()).unwrap();
    let b = signature_rendition(
        &encode_png(w, h, png::ColorType::Rgba, png::BitDepth::Eight, &rgba),
        &lim(),
    )
    .unwrap();
    assert_eq!(a, b);
}

#[test]
fn rendition_debug_does_not_print_the_image() {
    let r = Rendition {
        bytes: vec![7; 5000],
        width: 1,
        height: 2,
        mime: "image/png",
    };
    let s = format!("{r:?}");
    assert!(s.contains("<5000 bytes>") && s.len() < 200, "{s}");
}

// ---------------------------------------------------------------------------------------------
// Hostile input

#[test]
fn no_panic_on_truncated_or_mutated_images() {
    // Tight limits keep mutated headers from asking for large (slow, in debug builds) decodes.
    let limits = MediaLimits {
        max_pixels: 1_000_000,
        max_dimension: 4096,
        ..lim()
    };
    let (w, h) = (320u32, 240u32);
    let rgb = photo_rgb(w, h);
    let rgba: Vec<u8> = rgb
        .chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], p[0]])
        .collect();
    let samples = [
        with_orientation(&photo_jpeg(w, h), 6),
        encode_jpeg(&rgb, w, h, jpeg_encoder::ColorType::Rgb, true),
        encode_png(w, h, png::ColorType::Rgb, png::BitDepth::Eight, &rgb),
        interlaced_png(w, h, 4, &rgba),
        signature_png(400, 160),
    ];
    let mut rng = Lcg(42);
    let mut runs = 0;
    for sample in &samples {
        let n = sample.len();
        // Every byte near the start (headers), then evenly spaced cut points.
        let cuts = (0..64.min(n)).chain((64..n).step_by((n / 30).max(1)));
        for cut in cuts {
            let _ = all_four(&sample[..cut], &limits);
            runs += 1;
        }
        for _ in 0..40 {
            let mut m = sample.clone();
            let flips = 1 + rng.next() % 8;
            for _ in 0..flips {
                // Bias towards the header, where mutations change the most.
                let span = if rng.next().is_multiple_of(2) {
                    n.min(400)
                } else {
                    n
                };
                let at = rng.next() as usize % span;
                m[at] = rng.next() as u8;
            }
            let _ = all_four(&m, &limits);
            runs += 1;
        }
        for _ in 0..5 {
            let junk: Vec<u8> = sample[..8.min(n)]
                .iter()
                .copied()
                .chain((0..2000).map(|_| rng.next() as u8))
                .collect();
            let _ = all_four(&junk, &limits);
            runs += 1;
        }
    }
    assert!(runs > 400);
}

// ---------------------------------------------------------------------------------------------
// The capture path's structure check (no pixel decoded)

/// Offset of the first `FF marker` in a JPEG.
fn marker_at(jpeg: &[u8], marker: u8) -> usize {
    jpeg.windows(2)
        .position(|w| w == [0xFF, marker])
        .unwrap_or_else(|| panic!("no FF {marker:02X}"))
}

fn refused_with(bytes: &[u8], text: &str) {
    match inspect_photo(bytes, &lim()) {
        Err(MediaError::Undecodable { reason }) => assert!(reason.contains(text), "{reason}"),
        other => panic!("expected a refusal with {text:?}, got {other:?}"),
    }
}

/// The middle third of the entropy-coded data turned into stuffed 0xFF bytes (`FF 00`): a run
/// of one-bits no Huffman table decodes.
fn garbage_scan(jpeg: &[u8]) -> Vec<u8> {
    let sos = marker_at(jpeg, 0xDA);
    let start = sos + 2 + usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
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

#[test]
fn corrupt_entropy_data_passes_the_capture_check_and_fails_the_rendition() {
    let bad = garbage_scan(&photo_jpeg(480, 360));
    assert!(
        inspect_photo(&bad, &lim()).is_ok(),
        "the structure is intact"
    );
    assert!(matches!(
        photo_rendition(&bad, &lim()),
        Err(MediaError::Undecodable { .. })
    ));
    // A signature is still decoded at capture: refused there.
    assert!(matches!(
        inspect_signature(&bad, &lim()),
        Err(MediaError::Undecodable { .. })
    ));
}

#[test]
fn jpeg_structure_refusals_each_name_what_is_wrong() {
    let jpeg = photo_jpeg(480, 360);
    let sof = marker_at(&jpeg, 0xC0);
    let dht = marker_at(&jpeg, 0xC4);
    let dqt = marker_at(&jpeg, 0xDB);
    let sos = marker_at(&jpeg, 0xDA);
    let edit = |at: usize, value: u8| {
        let mut b = jpeg.clone();
        b[at] = value;
        b
    };
    refused_with(&jpeg[..jpeg.len() - 2], "incomplete");
    refused_with(&jpeg[..jpeg.len() - 1], "incomplete");
    refused_with(&jpeg[..sos + 30], "incomplete");
    refused_with(&edit(sof + 1, 0xC3), "lossless JPEG is not supported");
    refused_with(
        &edit(sof + 1, 0xC9),
        "arithmetic-coded JPEG is not supported",
    );
    refused_with(&edit(sof + 1, 0xC5), "hierarchical JPEG is not supported");
    refused_with(&edit(sof + 4, 12), "12-bit JPEG is not supported");
    refused_with(&edit(sof + 9, 2), "the frame header is malformed"); // 2 components
    refused_with(&edit(dht + 5, 0xFF), "a Huffman table is malformed");
    refused_with(&edit(dht + 4, 0x27), "a Huffman table is malformed"); // class 2
    refused_with(&edit(dqt + 4, 0x20), "a quantisation table is malformed");
    refused_with(&edit(sos + 4, 0), "a scan header is malformed");
    refused_with(&edit(dqt + 3, 1), "invalid length");
    // A second frame header after the scan, and a second SOI.
    let mut two_frames = jpeg[..jpeg.len() - 2].to_vec();
    two_frames.extend(&jpeg[sof..sof + 2 + 17]);
    two_frames.extend([0xFF, 0xD9]);
    refused_with(&two_frames, "more than one frame header");
    let mut second_soi = jpeg[..jpeg.len() - 2].to_vec();
    second_soi.extend([0xFF, 0xD8, 0xFF, 0xD9]);
    refused_with(&second_soi, "a second start-of-image marker");
    // Bytes after EOI (camera trailers) are not looked at.
    let mut trailer = jpeg.clone();
    trailer.extend(b"SEFH trailer data");
    assert!(inspect_photo(&trailer, &lim()).is_ok());
}

#[test]
fn progressive_and_restart_marked_jpegs_pass_the_structure_check() {
    let px = photo_rgb(480, 360);
    let progressive = encode_jpeg(&px, 480, 360, jpeg_encoder::ColorType::Rgb, true);
    let scans = progressive
        .windows(2)
        .filter(|w| *w == [0xFF, 0xDA])
        .count();
    assert!(scans > 1, "{scans} scans");
    assert!(inspect_photo(&progressive, &lim()).is_ok());
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.set_restart_interval(4);
    enc.encode(&px, 480, 360, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    assert!(out.windows(2).any(|w| w == [0xFF, 0xD0]), "restart markers");
    assert!(inspect_photo(&out, &lim()).is_ok());
}

#[test]
fn png_structure_refusals_each_name_what_is_wrong() {
    let px = photo_rgb(320, 240);
    let png = encode_png(320, 240, png::ColorType::Rgb, png::BitDepth::Eight, &px);
    refused_with(&png[..png.len() - 12], "incomplete");
    refused_with(&png[..png.len() - 3], "incomplete");
    let mut no_data = png[..33].to_vec();
    chunk(&mut no_data, b"IEND", &[]);
    refused_with(&no_data, "no image data");
    let mut bad_kind = png[..33].to_vec();
    chunk(&mut bad_kind, b"ID\x01T", &[0; 4]);
    refused_with(&bad_kind, "a PNG chunk is malformed");
    // Short zlib data is only found by decoding: accepted at capture, refused by the rendition.
    let mut short = png[..33].to_vec();
    chunk(
        &mut short,
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0, 0, 0, 1],
    );
    chunk(&mut short, b"IEND", &[]);
    assert!(inspect_photo(&short, &lim()).is_ok());
    assert!(matches!(
        photo_rendition(&short, &lim()),
        Err(MediaError::Undecodable { .. })
    ));
}

#[test]
fn the_capture_check_decodes_nothing_so_it_is_fast() {
    // 3 MP (kept small for debug builds): the walk is at memory speed, far below a decode.
    let jpeg = photo_jpeg(2000, 1500);
    let start = Instant::now();
    for _ in 0..10 {
        inspect_photo(&jpeg, &lim()).expect("valid");
    }
    let walk = start.elapsed() / 10;
    let start = Instant::now();
    photo_rendition(&jpeg, &lim()).expect("renders");
    let render = start.elapsed();
    assert!(walk * 20 < render, "walk {walk:?}, rendition {render:?}");
}
