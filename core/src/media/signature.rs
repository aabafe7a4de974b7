//! Consignee signatures: the ink check and the 1-bit PNG rendition.
//!
//! A signature is reduced to luma composited on white (transparent pad exports work). Ink is luma
//! below [`INK_THRESHOLD`]. A signature is blank when the image is one uniform colour, or when
//! fewer than 0.2% of its pixels are ink. Light ink on a dark background (a dark-mode pad) is
//! inverted first, so the rendition is always black on white.

use fast_image_resize::FilterType;

use super::decode::{self, Plane};
use super::{
    header, ImageInfo, MediaError, MediaLimits, Rendition, MIN_SIGNATURE_SIDE,
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

/// What the blank check needs of a signature's luma, gathered a row at a time: a histogram,
/// from which the darkest and lightest values and the ink counts (either way up) are read.
///
/// A histogram rather than comparisons per pixel because the release build optimises this
/// crate for size, which leaves per-pixel loops unvectorised (about 1 ms for a 600x200 pad
/// image); runs of one value (a signature is mostly paper) are counted 8 pixels at a time.
struct InkStats {
    histogram: [u64; 256],
}

impl InkStats {
    fn new() -> Self {
        InkStats {
            histogram: [0; 256],
        }
    }

    fn add(&mut self, luma: &[u8]) {
        let (runs, rest) = luma.as_chunks::<8>();
        for eight in runs {
            if u64::from_ne_bytes(*eight) == u64::from(eight[0]) * 0x0101_0101_0101_0101 {
                self.histogram[usize::from(eight[0])] += 8;
            } else {
                for &v in eight {
                    self.histogram[usize::from(v)] += 1;
                }
            }
        }
        for &v in rest {
            self.histogram[usize::from(v)] += 1;
        }
    }

    fn total(&self) -> u64 {
        self.histogram.iter().sum()
    }

    /// Whether the image is light strokes on a dark background (mostly "ink"), and how many
    /// pixels are ink once it is dark on light: inverted, v' = 255 - v is ink when
    /// v > 255 - INK_THRESHOLD.
    fn ink(&self) -> (bool, u64) {
        let threshold = usize::from(INK_THRESHOLD);
        let dark: u64 = self.histogram[..threshold].iter().sum();
        match dark * 2 > self.total() {
            true => (true, self.histogram[256 - threshold..].iter().sum()),
            false => (false, dark),
        }
    }

    /// Whether the image must be inverted to be dark ink on light; `BlankSignature` when it is
    /// one colour or has too little ink.
    fn verdict(&self) -> Result<bool, MediaError> {
        let h = &self.histogram;
        let (Some(min), Some(max)) = (
            h.iter().position(|&n| n > 0),
            h.iter().rposition(|&n| n > 0),
        ) else {
            return Err(MediaError::BlankSignature);
        };
        if max - min < usize::from(MIN_CONTRAST) {
            return Err(MediaError::BlankSignature);
        }
        let (inverted, ink) = self.ink();
        if ink * 1000 < self.total() * MIN_INK_PER_MILLE {
            return Err(MediaError::BlankSignature);
        }
        Ok(inverted)
    }
}

/// The header checks every signature gets before its pixels are read.
fn checked_header(bytes: &[u8], limits: &MediaLimits) -> Result<ImageInfo, MediaError> {
    let info = header::read(bytes, limits)?;
    if info.width.min(info.height) < MIN_SIGNATURE_SIDE {
        return Err(MediaError::TooSmall {
            width: info.width,
            height: info.height,
        });
    }
    Ok(info)
}

/// The size a JPEG signature is decoded at (DCT scaling keeps at least this).
fn jpeg_work_size(info: &ImageInfo) -> (u32, u32) {
    decode::fit(info.width, info.height, JPEG_WORK_LONG_SIDE)
}

fn analyse(bytes: &[u8], limits: &MediaLimits) -> Result<(ImageInfo, Ink), MediaError> {
    let info = checked_header(bytes, limits)?;
    let plane = decode::decode_luma(bytes, &info, jpeg_work_size(&info), limits)?;
    let mut luma = decode::orient(plane, info.orientation);
    let mut stats = InkStats::new();
    stats.add(&luma.data);
    if stats.verdict()? {
        for v in &mut luma.data {
            *v = 255 - *v;
        }
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

/// The capture-time check: the same verdict as the rendition's [`analyse`], from one streamed
/// pass over the luma rows (no frame held, no crop found).
pub(super) fn inspect(bytes: &[u8], limits: &MediaLimits) -> Result<ImageInfo, MediaError> {
    let info = checked_header(bytes, limits)?;
    let mut stats = InkStats::new();
    decode::for_each_luma_row(bytes, &info, jpeg_work_size(&info), limits, |row| {
        stats.add(row)
    })?;
    stats.verdict()?;
    Ok(info)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The ink count as first written, a comparison per pixel.
    fn naive_ink(luma: &[u8]) -> (bool, u64) {
        let count = |f: &dyn Fn(u8) -> bool| luma.iter().filter(|&&v| f(v)).count() as u64;
        let dark = count(&|v| v < INK_THRESHOLD);
        match dark * 2 > luma.len() as u64 {
            true => (true, count(&|v| 255 - v < INK_THRESHOLD)),
            false => (false, dark),
        }
    }

    /// The rule as first written, a comparison per pixel: the histogram must agree with it.
    fn naive_verdict(luma: &[u8]) -> Result<bool, MediaError> {
        let (min, max) = (luma.iter().min(), luma.iter().max());
        let (Some(&min), Some(&max)) = (min, max) else {
            return Err(MediaError::BlankSignature);
        };
        if max - min < MIN_CONTRAST {
            return Err(MediaError::BlankSignature);
        }
        let total = luma.len() as u64;
        let count = |f: &dyn Fn(u8) -> bool| luma.iter().filter(|&&v| f(v)).count() as u64;
        let mut dark = count(&|v| v < INK_THRESHOLD);
        let inverted = dark * 2 > total;
        if inverted {
            dark = count(&|v| 255 - v < INK_THRESHOLD);
        }
        if dark * 1000 < total * MIN_INK_PER_MILLE {
            return Err(MediaError::BlankSignature);
        }
        Ok(inverted)
    }

    #[test]
    fn the_histogram_verdict_matches_a_comparison_per_pixel() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..400 {
            let len = (next() % 5000) as usize;
            let paper = [255u8, 0, 128, 200][case % 4];
            // Ink density from none to all, values at and around the thresholds included.
            let per_mille = next() % 1001;
            let luma: Vec<u8> = (0..len)
                .map(|_| match next() % 1000 < per_mille {
                    true => [0, 95, 96, 159, 160, 161, (next() % 256) as u8][(next() % 7) as usize],
                    false => paper,
                })
                .collect();
            let mut stats = InkStats::new();
            // Fed in uneven rows, as a decoder hands them over.
            for row in luma.chunks(1 + (next() % 700) as usize) {
                stats.add(row);
            }
            assert_eq!(stats.ink(), naive_ink(&luma), "case {case}");
            assert_eq!(stats.verdict(), naive_verdict(&luma), "case {case}");
        }
    }
}
