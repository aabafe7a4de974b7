//! Sample captures for the demo, the tests and app developers: a photographic-looking JPEG and
//! a hand-drawn-looking signature PNG, generated from a seed (no binary files in the repo).

use crate::rng::SplitMix64;

/// A photo-like JPEG: smooth gradients with grain, and a bright "label" patch, `width`x`height`.
pub fn photo_jpeg(seed: u64, width: u16, height: u16) -> Vec<u8> {
    let mut rng = SplitMix64::for_stream(seed, "sample-photo");
    let (w, h) = (width as usize, height as usize);
    let tint = [
        rng.range(60, 200) as f32,
        rng.range(60, 200) as f32,
        rng.range(60, 200) as f32,
    ];
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let fx = x as f32 / w.max(1) as f32;
            let fy = y as f32 / h.max(1) as f32;
            let label = (0.35..0.65).contains(&fx) && (0.4..0.6).contains(&fy);
            let grain = (rng.next_u64() % 24) as f32 - 12.0;
            for (c, t) in tint.iter().enumerate() {
                let base = if label {
                    235.0
                } else {
                    t * (0.6 + 0.4 * fx) + 50.0 * fy * (c as f32 - 1.0)
                };
                rgb.push((base + grain).clamp(0.0, 255.0) as u8);
            }
        }
    }
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 88);
    // Encoding an in-memory buffer of the right size cannot fail.
    let _ = encoder.encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb);
    out
}

/// A signature: a dark, looping stroke on white, 600x200, 8-bit greyscale PNG.
pub fn signature_png(seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::for_stream(seed, "sample-signature");
    let (w, h) = (600usize, 200usize);
    let mut pixels = vec![255u8; w * h];
    let loops = 3.0 + rng.below(4) as f32;
    let phase = rng.next_f64() as f32 * std::f32::consts::TAU;
    for step in 0..4000 {
        let t = step as f32 / 4000.0;
        let x = 40.0 + t * 520.0 + 18.0 * (t * loops * std::f32::consts::TAU + phase).cos();
        let y = 100.0 + 45.0 * (t * loops * std::f32::consts::TAU).sin() * (1.0 - t * 0.5);
        for dy in -2i32..=2 {
            for dx in -2i32..=2 {
                let (px, py) = (x as i32 + dx, y as i32 + dy);
                if (0..w as i32).contains(&px) && (0..h as i32).contains(&py) {
                    pixels[py as usize * w + px as usize] = 20;
                }
            }
        }
    }
    grey_png(&pixels, w as u32, h as u32)
}

/// A blank "signature": white everywhere (the core must refuse it).
pub fn blank_png(width: u32, height: u32) -> Vec<u8> {
    grey_png(&vec![255u8; (width * height) as usize], width, height)
}

fn grey_png(pixels: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(pixels);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_deterministic_images() {
        let a = photo_jpeg(1, 320, 240);
        assert_eq!(a, photo_jpeg(1, 320, 240));
        assert_ne!(a, photo_jpeg(2, 320, 240));
        assert_eq!(&a[..2], &[0xFF, 0xD8]);
        let s = signature_png(1);
        assert_eq!(&s[1..4], b"PNG");
        assert_eq!(s, signature_png(1));
        assert_eq!(&blank_png(10, 10)[1..4], b"PNG");
    }
}
