//! Consignee signatures: the ink check and the 1-bit PNG rendition.
//!
//! A signature is reduced to luma composited on white (transparent pad exports work). Ink is luma
//! below [`INK_THRESHOLD`]. A signature is blank when the image is one uniform colour, or when
//! fewer than 0.2% of its pixels are ink. Light ink on a dark background (a dark-mode pad) is
//! inverted first, so the rendition is always black on white.

use fast_image_resize::FilterType;

use super::decode::{self, Plane};
use super::{
    header, ImageFormat, ImageInfo, MediaError, MediaLimits, Rendition, MIN_SIGNATURE_SIDE,
    SIGNATURE_MAX_LONG_SIDE,
};

/// Luma below this is ink.
const INK_THRESHOLD: u8 = 160;
/// Fewer ink pixels than this per 1000 is a blank signature (0.2%).
const MIN_INK_PER_MILLE: u64 = 2;
/// An image whose darkest and lightest pixels differ by less than this is one colour: blank.
const MIN_CONTRAST: u8 = 48;
/// JPEG signatures (rare: pads export PNG) are decoded with DCT scaling to at least this long side.
const JPEG_WORK_LONG_SIDE: u32 = 2048;
/// After downscaling, luma below this becomes black. Higher than [`INK_THRESHOLD`] so thin strokes
/// that downscaling has turned grey survive.
const RENDER_THRESHOLD: u8 = 176;

/// The signature as upright luma, black ink on white, with the ink's bounding box.
struct Ink {
    luma: Plane,
    /// Inclusive (left, top, right, bottom).
    bbox: (u32, u32, u32, u32),
}

fn analyse(bytes: &[u8], limits: &MediaLimits) -> Result<(ImageInfo, Ink), MediaError> {
    let info = header::read(bytes, limits)?;
    if info.width.min(info.height) < MIN_SIGNATURE_SIDE {
        return Err(MediaError::TooSmall {
            width: info.width,
            height: info.height,
        });
    }
    let plane = match info.format {
        ImageFormat::Jpeg => {
            let at_least = decode::fit(info.width, info.height, JPEG_WORK_LONG_SIDE);
            decode::decode_jpeg(bytes, &info, Some(at_least), limits)?
        }
        ImageFormat::Png => decode::decode_png(bytes, &info)?,
    };
    let mut luma = decode::orient(plane.into_luma(), info.orientation);

    let (mut min, mut max, mut dark) = (u8::MAX, u8::MIN, 0u64);
    for &v in &luma.data {
        min = min.min(v);
        max = max.max(v);
        dark += u64::from(v < INK_THRESHOLD);
    }
    if max - min < MIN_CONTRAST {
        return Err(MediaError::BlankSignature);
    }
    let total = luma.data.len() as u64;
    if dark * 2 > total {
        // Mostly "ink": light strokes on a dark background. Make it dark on light.
        for v in &mut luma.data {
            *v = 255 - *v;
        }
        dark = luma
            .data
            .iter()
            .map(|&v| u64::from(v < INK_THRESHOLD))
            .sum();
    }
    if dark * 1000 < total * MIN_INK_PER_MILLE {
        return Err(MediaError::BlankSignature);
    }

    let w = luma.width as usize;
    let (mut left, mut top, mut right, mut bottom) = (usize::MAX, usize::MAX, 0, 0);
    for (y, row) in luma.data.chunks_exact(w).enumerate() {
        if let Some(first) = row.iter().position(|&v| v < INK_THRESHOLD) {
            // `rposition` finds at least `first`.
            let last = row
                .iter()
                .rposition(|&v| v < INK_THRESHOLD)
                .unwrap_or(first);
            left = left.min(first);
            right = right.max(last);
            top = top.min(y);
            bottom = y;
        }
    }
    if top == usize::MAX {
        return Err(MediaError::BlankSignature);
    }
    let bbox = (left as u32, top as u32, right as u32, bottom as u32);
    Ok((info, Ink { luma, bbox }))
}

pub(super) fn inspect(bytes: &[u8], limits: &MediaLimits) -> Result<ImageInfo, MediaError> {
    analyse(bytes, limits).map(|(info, _)| info)
}

pub(super) fn rendition(bytes: &[u8], limits: &MediaLimits) -> Result<Rendition, MediaError> {
    let (_, Ink { luma, bbox }) = analyse(bytes, limits)?;
    let (left, top, right, bottom) = bbox;
    let margin = ((right - left).max(bottom - top) / 32).max(4);
    let left = left.saturating_sub(margin);
    let top = top.saturating_sub(margin);
    let right = (right + margin).min(luma.width - 1);
    let bottom = (bottom + margin).min(luma.height - 1);
    let (crop_w, crop_h) = (right - left + 1, bottom - top + 1);
    let (width, height) = decode::fit(crop_w, crop_h, SIGNATURE_MAX_LONG_SIDE);
    let small = decode::resize(
        luma,
        Some((left, top, crop_w, crop_h)),
        width,
        height,
        FilterType::CatmullRom,
    )?;
    let bytes = encode_1bit_png(&small)?;
    Ok(Rendition {
        bytes,
        width,
        height,
        mime: "image/png",
    })
}

/// Thresholds luma to black/white and writes a bit-depth-1 greyscale PNG (0 = black ink), with no
/// ancillary chunks.
fn encode_1bit_png(luma: &Plane) -> Result<Vec<u8>, MediaError> {
    let fail = |e: png::EncodingError| {
        MediaError::undecodable(format!("encoding the signature failed: {e}"))
    };
    let w = luma.width as usize;
    let stride = w.div_ceil(8);
    let mut packed = vec![0u8; stride * luma.height as usize];
    for (src, dst) in luma
        .data
        .chunks_exact(w)
        .zip(packed.chunks_exact_mut(stride))
    {
        for (x, &v) in src.iter().enumerate() {
            if v >= RENDER_THRESHOLD {
                dst[x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, luma.width, luma.height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(&packed).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}
