//! The seeded inputs, written to a folder: `camera.jpg`, a 4032x3024 (12 MP) camera-like JPEG
//! with real detail (sensor noise, light falloff, hard-edged boxes and label "text" that a
//! resize must keep sharp), encoded like a phone (q92, 4:2:0) with EXIF orientation 6 (the
//! sensor's landscape pixels shown portrait, so orientation must be applied); and
//! `signature.png`, the simulator's own sample signature. Same seed, same bytes.

use std::path::Path;

use upn_sim::rng::SplitMix64;

use crate::{report, Result};

pub const CAMERA_WIDTH: u32 = 4032;
pub const CAMERA_HEIGHT: u32 = 3024;
const SEED: u64 = 11;
/// Like a phone camera's default.
const CAMERA_QUALITY: u8 = 92;

pub fn write_all(dir: &Path) -> Result {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let photo = camera_jpeg(SEED, CAMERA_WIDTH, CAMERA_HEIGHT)?;
    let signature = upn_sim::samples::signature_png(SEED);
    for (name, bytes) in [("camera.jpg", &photo), ("signature.png", &signature)] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    report(serde_json::json!({
        "camera_bytes": photo.len(),
        "signature_bytes": signature.len(),
        "width": CAMERA_WIDTH,
        "height": CAMERA_HEIGHT,
    }));
    Ok(())
}

fn camera_jpeg(seed: u64, w: u32, h: u32) -> Result<Vec<u8>> {
    let rgb = camera_rgb(seed, w, h);
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, CAMERA_QUALITY);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder
        .encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| format!("encoding the camera photo: {e}"))?;
    Ok(with_exif_orientation(&out, 6))
}

/// The scene: a lit gradient with grain, then boxes with outlines and labels drawn over it.
fn camera_rgb(seed: u64, w: u32, h: u32) -> Vec<u8> {
    let mut rng = SplitMix64::for_stream(seed, "bench-camera");
    let (wf, hf) = (w as f32, h as f32);
    let lights: Vec<(f32, f32, f32)> = (0..3)
        .map(|_| {
            (
                rng.below(w as u64) as f32,
                rng.below(h as u64) as f32,
                400.0 + rng.below(600) as f32,
            )
        })
        .collect();
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f32, y as f32);
            let light: f32 = lights
                .iter()
                .map(|(lx, ly, r)| {
                    70.0 * (-((xf - lx).powi(2) + (yf - ly).powi(2)) / (r * r)).exp()
                })
                .sum();
            // Floor planks: a fine texture with a hard seam every 180 rows.
            let plank = if y % 180 < 3 {
                -40.0
            } else {
                8.0 * (xf * 0.11 + yf * 0.013).sin()
            };
            let grain = (rng.next_u64() % 25) as f32 - 12.0;
            let r = 40.0 + 100.0 * xf / wf + light + plank + grain;
            let g = 45.0 + 80.0 * yf / hf + light * 0.9 + plank + grain;
            let b = 60.0 + 50.0 * (1.0 - yf / hf) + light * 0.7 + grain;
            px.extend([r, g, b].map(|v| v.clamp(0.0, 255.0) as u8));
        }
    }
    for _ in 0..6 {
        draw_box(&mut px, w, h, &mut rng);
    }
    px
}

/// A parcel: a flat-ish coloured rectangle (grain kept), a dark outline, a white label with
/// rows of stroke "glyphs".
fn draw_box(px: &mut [u8], w: u32, h: u32, rng: &mut SplitMix64) {
    let (bw, bh) = (300 + rng.below(900) as u32, 300 + rng.below(700) as u32);
    let (x0, y0) = (
        rng.below((w - bw) as u64) as u32,
        rng.below((h - bh) as u64) as u32,
    );
    let colour = [
        rng.range(90, 200) as u8,
        rng.range(60, 150) as u8,
        rng.range(30, 90) as u8,
    ];
    fill(px, w, (x0, y0, x0 + bw, y0 + bh), colour, 0.75);
    for (a, b, c, d) in [
        (x0, y0, x0 + bw, y0 + 5),
        (x0, y0 + bh - 5, x0 + bw, y0 + bh),
        (x0, y0, x0 + 5, y0 + bh),
        (x0 + bw - 5, y0, x0 + bw, y0 + bh),
    ] {
        fill(px, w, (a, b, c, d), [25, 20, 15], 0.9);
    }
    let (lx, ly, lw, lh) = (x0 + bw / 8, y0 + bh / 6, bw * 3 / 4, bh / 2);
    fill(px, w, (lx, ly, lx + lw, ly + lh), [240, 240, 235], 0.92);
    let (cell_w, cell_h) = (22u32, 34u32);
    for row in 0..(lh / cell_h).saturating_sub(1) {
        for col in 0..(lw / cell_w).saturating_sub(1) {
            let (gx, gy) = (lx + 8 + col * cell_w, ly + 8 + row * cell_h);
            for _ in 0..2 + rng.below(3) {
                // (x, y, width, height): a bar, a stem or a cross-bar.
                let (sx, sy, sw, sh) = match rng.below(3) {
                    0 => (gx, gy + rng.below(24) as u32, 14, 3),
                    1 => (gx + rng.below(12) as u32, gy, 3, 26),
                    _ => (gx, gy + 12, 16, 3),
                };
                fill(px, w, (sx, sy, sx + sw, sy + sh), [20, 20, 30], 0.95);
            }
        }
    }
}

/// Blends `colour` over a rectangle (x0, y0, x1, y1), keeping `1 - alpha` of what is there.
fn fill(
    px: &mut [u8],
    w: u32,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
    colour: [u8; 3],
    alpha: f32,
) {
    let h = px.len() as u32 / (w * 3);
    for y in y0..y1.min(h) {
        for x in x0..x1.min(w) {
            let i = ((y * w + x) * 3) as usize;
            for c in 0..3 {
                let v = px[i + c] as f32 * (1.0 - alpha) + colour[c] as f32 * alpha;
                px[i + c] = v as u8;
            }
        }
    }
}

/// Inserts an EXIF APP1 segment holding only the orientation tag right after SOI, where a
/// camera writes it (big-endian TIFF, one IFD entry: 0x0112 SHORT).
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff: Vec<u8> = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend(1u16.to_be_bytes());
    tiff.extend(0x0112u16.to_be_bytes());
    tiff.extend(3u16.to_be_bytes());
    tiff.extend(1u32.to_be_bytes());
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_be_bytes());
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(tiff);
    let mut out = Vec::with_capacity(jpeg.len() + payload.len() + 4);
    out.extend(&jpeg[..2]);
    out.extend([0xFF, 0xE1]);
    out.extend(((payload.len() + 2) as u16).to_be_bytes());
    out.extend(payload);
    out.extend(&jpeg[2..]);
    out
}
