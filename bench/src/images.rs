//! Row 1: the photo rendition, its `image` crate reference, and SSIM against a full-quality
//! resize.

use std::io::Cursor;
use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use upn_core::media::{photo_rendition, MediaLimits};

use crate::{report, Result};

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// `rendition IN OUT`: the core's upload rendition with the product's default limits.
pub fn ours(input: &Path, output: &Path) -> Result {
    let bytes = read(input)?;
    let rendition =
        photo_rendition(&bytes, &MediaLimits::default()).map_err(|e| format!("rendition: {e}"))?;
    write(output, &rendition.bytes)?;
    report(serde_json::json!({
        "bytes": rendition.bytes.len(),
        "width": rendition.width,
        "height": rendition.height,
    }));
    Ok(())
}

/// `decode IN`: the rendition's first step alone: the core's JPEG decoder (jpeg-decoder, pure
/// Rust) making the same DCT-scaled decode as `djpeg -scale 1/2`, the largest 1/k scale that
/// still covers 1600 px. What the rendition's ratio to djpeg owes to the decoder itself.
pub fn decode_only(input: &Path) -> Result {
    let bytes = read(input)?;
    let mut decoder = jpeg_decoder::Decoder::new(bytes.as_slice());
    decoder.read_info().map_err(|e| format!("header: {e}"))?;
    let info = decoder.info().ok_or("no frame header")?;
    let (w, h) = (info.width.div_ceil(2), info.height.div_ceil(2));
    decoder.scale(w, h).map_err(|e| format!("scale: {e}"))?;
    let pixels = decoder.decode().map_err(|e| format!("decode: {e}"))?;
    let info = decoder.info().ok_or("no frame header")?;
    report(serde_json::json!({
        "bytes": pixels.len(), "width": info.width, "height": info.height,
    }));
    Ok(())
}

/// The `image` crate's plain path, orientation applied, decoded in full.
fn decode_upright(bytes: &[u8]) -> Result<DynamicImage> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("image format: {e}"))?;
    let mut decoder = reader.into_decoder().map_err(|e| format!("decoder: {e}"))?;
    let orientation = decoder
        .orientation()
        .map_err(|e| format!("orientation: {e}"))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| format!("decode: {e}"))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// `image-resize IN OUT`: decode + `resize(Lanczos3)` to a 1600 px long side + JPEG q80.
pub fn image_crate(input: &Path, output: &Path) -> Result {
    let img = decode_upright(&read(input)?)?;
    let small = img.resize(1600, 1600, FilterType::Lanczos3).to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small)
        .map_err(|e| format!("encode: {e}"))?;
    write(output, &out)?;
    report(serde_json::json!({
        "bytes": out.len(),
        "width": small.width(),
        "height": small.height(),
    }));
    Ok(())
}

/// `ssim ORIGINAL RENDITION [--beside OTHER]`: the rendition against the original decoded in
/// full, upright, resized with Lanczos3 in floating point to the rendition's size and never
/// re-encoded; `--beside` scores another tool's rendition against the same reference (the
/// original decoded once). Also the ceiling: that reference itself through the core's encoder
/// at the same quality (no resize, nothing else lost), the best any rendition at that quality
/// can score.
pub fn ssim_report(original: &Path, rendition: &Path, beside: Option<&Path>) -> Result {
    let load = |path: &Path| -> Result<RgbImage> {
        Ok(image::load_from_memory(&read(path)?)
            .map_err(|e| format!("decoding {}: {e}", path.display()))?
            .to_rgb8())
    };
    let ours = load(rendition)?;
    let upright = decode_upright(&read(original)?)?;
    let reference = upright
        .resize_exact(ours.width(), ours.height(), FilterType::Lanczos3)
        .to_rgb8();
    let reference_luma = luma(&reference);
    let score = |img: &RgbImage| {
        let resized;
        let against = if img.dimensions() == reference.dimensions() {
            &reference_luma
        } else {
            let other = upright.resize_exact(img.width(), img.height(), FilterType::Lanczos3);
            resized = luma(&other.to_rgb8());
            &resized
        };
        ssim(&luma(img), against, img.width())
    };
    let mut png = Vec::new();
    reference
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("writing the reference as PNG: {e}"))?;
    let limits = MediaLimits {
        max_long_side: reference.width().max(reference.height()),
        ..MediaLimits::default()
    };
    let encoded = photo_rendition(png, &limits).map_err(|e| format!("re-encoding: {e}"))?;
    let ceiling = image::load_from_memory(&encoded.bytes)
        .map_err(|e| format!("decoding the re-encoded reference: {e}"))?
        .to_rgb8();
    let beside = beside.map(load).transpose()?;
    report(serde_json::json!({
        "ssim": score(&ours),
        "ceiling": score(&ceiling),
        "beside_ssim": beside.as_ref().map(score),
    }));
    Ok(())
}

/// BT.601 luma, as SSIM is usually reported on.
fn luma(img: &RgbImage) -> Vec<f64> {
    img.pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect()
}

/// Mean SSIM (Wang et al. 2004) over 8x8 windows at a stride of 4, with the paper's constants
/// (K1 = 0.01, K2 = 0.03, L = 255) and uniform weights in each window.
pub fn ssim(a: &[f64], b: &[f64], width: u32) -> f64 {
    const WIN: usize = 8;
    const STRIDE: usize = 4;
    let c1 = (0.01f64 * 255.0).powi(2);
    let c2 = (0.03f64 * 255.0).powi(2);
    let w = width as usize;
    let h = a.len().min(b.len()).checked_div(w).unwrap_or(0);
    let (mut total, mut windows) = (0.0, 0usize);
    for y0 in (0..h.saturating_sub(WIN - 1)).step_by(STRIDE) {
        for x0 in (0..w.saturating_sub(WIN - 1)).step_by(STRIDE) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for y in y0..y0 + WIN {
                for x in x0..x0 + WIN {
                    let (p, q) = (a[y * w + x], b[y * w + x]);
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let n = (WIN * WIN) as f64;
            let (ma, mb) = (sa / n, sb / n);
            let va = saa / n - ma * ma;
            let vb = sbb / n - mb * mb;
            let cov = sab / n - ma * mb;
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            windows += 1;
        }
    }
    if windows == 0 {
        f64::NAN
    } else {
        total / windows as f64
    }
}

#[cfg(test)]
mod tests {
    use super::ssim;

    #[test]
    fn ssim_is_one_for_equal_images_and_drops_with_noise() {
        let a: Vec<f64> = (0..64 * 64).map(|i| f64::from(i % 251)).collect();
        assert!((ssim(&a, &a, 64) - 1.0).abs() < 1e-9);
        let b: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i % 2 == 0 { 40.0 } else { -40.0 })
            .collect();
        assert!(ssim(&a, &b, 64) < 0.9);
    }
}
