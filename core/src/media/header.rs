//! Everything learnt without decoding pixels: the size check, format sniffing, dimensions and
//! EXIF orientation, read by walking the JPEG marker segments / PNG chunks with bounds checks.
//! Nothing here allocates in proportion to what the header claims. [`read`] then walks the rest
//! of the stream's structure (`structure.rs`), still without decoding a pixel.

use super::{structure, ImageFormat, ImageInfo, MediaError, MediaLimits};

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Size limit, format, dimensions (with the pixel and dimension limits), orientation, then the
/// stream's structure to its end marker, in that order.
pub(super) fn read(bytes: &[u8], limits: &MediaLimits) -> Result<ImageInfo, MediaError> {
    if bytes.is_empty() {
        return Err(MediaError::Empty);
    }
    if bytes.len() > limits.max_input_bytes {
        return Err(MediaError::TooLarge {
            bytes: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    let format = sniff(bytes)?;
    let (width, height, orientation, first_scan) = match format {
        ImageFormat::Jpeg => {
            let (w, h, o, sos) = jpeg_header(bytes)?;
            (w, h, o, Some(sos))
        }
        ImageFormat::Png => {
            let (w, h, o) = png_header(bytes)?;
            (w, h, o, None)
        }
    };
    // A bomb is refused for its size before its structure is walked.
    check_pixels(width, height, limits)?;
    match first_scan {
        Some(sos) => structure::jpeg_scans(bytes, sos)?,
        None => structure::png_chunks(bytes)?,
    }
    Ok(ImageInfo {
        format,
        width,
        height,
        orientation,
    })
}

fn sniff(bytes: &[u8]) -> Result<ImageFormat, MediaError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(ImageFormat::Jpeg)
    } else if bytes.starts_with(PNG_SIGNATURE) {
        Ok(ImageFormat::Png)
    } else {
        // HEIC/HEIF ("....ftypheic"), WebP, GIF, PDF, text...: all refused the same way; the
        // message names HEIC because that is what an iPhone produces by default.
        Err(MediaError::NotAnImage)
    }
}

pub(super) fn check_pixels(
    width: u32,
    height: u32,
    limits: &MediaLimits,
) -> Result<(), MediaError> {
    let pixels = u64::from(width) * u64::from(height);
    if width > limits.max_dimension || height > limits.max_dimension || pixels > limits.max_pixels {
        return Err(MediaError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn truncated_header() -> MediaError {
    MediaError::undecodable("the file ends inside the image header")
}

/// Walks the marker segments from SOI to the first SOS: frame size from the first SOFn,
/// orientation from the first APP1 Exif segment, tables checked; returns where the first scan
/// header's length field is.
fn jpeg_header(b: &[u8]) -> Result<(u32, u32, u8, usize), MediaError> {
    let mut pos = 2; // after SOI
    let mut size: Option<(u32, u32)> = None;
    let mut orientation: Option<u8> = None;
    loop {
        // Like libjpeg (and jpeg-decoder), tolerate junk between segments, then fill bytes.
        while b.get(pos).is_some_and(|&x| x != 0xFF) {
            pos += 1;
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *b.get(pos).ok_or_else(truncated_header)?;
        pos += 1;
        match marker {
            // Stuffed zero outside a scan, TEM, RSTn: no length, nothing to read.
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            0xD8 => return Err(MediaError::undecodable("a second start-of-image marker")),
            0xD9 => {
                return Err(MediaError::undecodable(
                    "the image ends before any image data",
                ))
            }
            0xDA => {
                let (width, height) = size.ok_or_else(|| {
                    MediaError::undecodable("image data comes before the frame header")
                })?;
                return Ok((width, height, orientation.unwrap_or(1), pos));
            }
            _ => {}
        }
        let len = usize::from(be16(b, pos).ok_or_else(truncated_header)?);
        if len < 2 {
            return Err(MediaError::undecodable(
                "a header segment has an invalid length",
            ));
        }
        let end = pos + len;
        let payload = b.get(pos + 2..end).ok_or_else(truncated_header)?;
        match marker {
            // The first SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if size.is_some() {
                    return Err(MediaError::undecodable("more than one frame header"));
                }
                let height = be16(payload, 1).ok_or_else(truncated_header)?;
                let width = be16(payload, 3).ok_or_else(truncated_header)?;
                if width == 0 || height == 0 {
                    return Err(MediaError::undecodable(
                        "the frame header gives a zero width or height",
                    ));
                }
                structure::frame_header(marker, payload)?;
                size = Some((u32::from(width), u32::from(height)));
            }
            0xC4 => structure::huffman_tables(payload)?,
            0xDB => structure::quantisation_tables(payload)?,
            0xE1 if orientation.is_none() => {
                if let Some(tiff) = payload.strip_prefix(b"Exif\0\0") {
                    orientation = Some(exif_orientation(tiff));
                }
            }
            _ => {}
        }
        pos = end;
    }
}

/// IHDR must be the first chunk; an eXIf chunk before the image data gives the orientation.
fn png_header(b: &[u8]) -> Result<(u32, u32, u8), MediaError> {
    if be32(b, 8) != Some(13) || b.get(12..16) != Some(b"IHDR".as_slice()) {
        return Err(if b.len() < 33 {
            truncated_header()
        } else {
            MediaError::undecodable("the PNG header (IHDR) is missing")
        });
    }
    let width = be32(b, 16).ok_or_else(truncated_header)?;
    let height = be32(b, 20).ok_or_else(truncated_header)?;
    if width == 0 || height == 0 {
        return Err(MediaError::undecodable(
            "the PNG header gives a zero width or height",
        ));
    }
    let mut orientation = 1;
    let mut pos = 8usize;
    // Bounded by the input length: every step advances by at least 12 bytes.
    // (`be32` succeeding means `pos + 4` is within the input, so `pos + 8` cannot overflow.)
    while let Some(len) = be32(b, pos) {
        let Some(kind) = b.get(pos + 4..pos + 8) else {
            break;
        };
        let start = pos + 8;
        let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
            break;
        };
        match kind {
            b"IDAT" | b"IEND" => break,
            b"eXIf" => {
                if let Some(data) = b.get(start..end) {
                    let tiff = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
                    orientation = exif_orientation(tiff);
                }
                break;
            }
            _ => {}
        }
        let Some(next) = end.checked_add(4) else {
            break;
        };
        pos = next;
    }
    Ok((width, height, orientation))
}

/// The Orientation tag (0x0112) of IFD0 of a TIFF structure; 1 when absent or invalid.
pub(super) fn exif_orientation(tiff: &[u8]) -> u8 {
    fn read(tiff: &[u8]) -> Option<u8> {
        let little = match tiff.get(0..4)? {
            b"II*\0" => true,
            b"MM\0*" => false,
            _ => return None,
        };
        let u16_at = |at: usize| -> Option<u16> {
            let s = tiff.get(at..at.checked_add(2)?)?;
            Some(if little {
                u16::from_le_bytes([s[0], s[1]])
            } else {
                u16::from_be_bytes([s[0], s[1]])
            })
        };
        let u32_at = |at: usize| -> Option<u32> {
            let s = tiff.get(at..at.checked_add(4)?)?;
            let a = [s[0], s[1], s[2], s[3]];
            Some(if little {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            })
        };
        let ifd = usize::try_from(u32_at(4)?).ok()?;
        let count = usize::from(u16_at(ifd)?);
        for i in 0..count {
            let entry = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
            if u16_at(entry)? != 0x0112 {
                continue;
            }
            let value = match u16_at(entry + 2)? {
                3 => u16_at(entry + 8)?,                      // SHORT, as the spec says
                4 => u16::try_from(u32_at(entry + 8)?).ok()?, // LONG, seen in the wild
                _ => return None,
            };
            return u8::try_from(value).ok().filter(|v| (1..=8).contains(v));
        }
        None
    }
    read(tiff).unwrap_or(1)
}
