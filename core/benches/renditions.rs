//! Photo rendition speed: `upn_core::media::photo_rendition` (DCT-scaled decode, fast_image_resize
//! Lanczos3, jpeg-encoder) against the naive `image` crate path (full decode, `resize` Lanczos3,
//! `JpegEncoder` q80), on a generated 4000x3000 photographic-ish JPEG.
//!
//! Run: `cargo bench -p upn-core --bench renditions` (prints a table; about half a minute).

use std::hint::black_box;
use std::time::{Duration, Instant};

use upn_core::media::{inspect_photo, photo_rendition, MediaLimits};

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;

/// Gradients, soft blobs and sensor-like noise, encoded like a phone camera (q92, 4:2:0).
fn camera_jpeg() -> Vec<u8> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 29) as f32 - 14.0
    };
    let blobs = [
        (900.0, 700.0, 500.0),
        (2900.0, 1200.0, 800.0),
        (1800.0, 2400.0, 650.0),
    ];
    let mut px = Vec::with_capacity((WIDTH * HEIGHT * 3) as usize);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let (xf, yf) = (x as f32, y as f32);
            let mut light = 0.0;
            for (bx, by, r) in blobs {
                let d2 = ((xf - bx).powi(2) + (yf - by).powi(2)) / (r * r);
                light += 90.0 * (-d2).exp();
            }
            let stripes = 12.0 * ((xf * 0.05).sin() * (yf * 0.03).cos());
            let n = noise();
            let r = 30.0 + 110.0 * xf / WIDTH as f32 + light + stripes + n;
            let g = 50.0 + 90.0 * yf / HEIGHT as f32 + light * 0.8 + n;
            let b = 70.0 + 60.0 * (xf + yf) / (WIDTH + HEIGHT) as f32 + light * 0.5 - stripes + n;
            px.extend([r, g, b].map(|v| v.clamp(0.0, 255.0) as u8));
        }
    }
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 92);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    enc.encode(
        &px,
        WIDTH as u16,
        HEIGHT as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .expect("encode the test photo");
    out
}

fn naive(jpeg: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).expect("decode");
    let small = img.resize(1600, 1600, image::imageops::FilterType::Lanczos3);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small.to_rgb8())
        .expect("encode");
    out
}

/// Median wall time of `runs` calls, and the last output's size.
fn measure(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut size = f(); // warm-up
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            size = black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[times.len() / 2], size)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let limits = MediaLimits::default();
    let t = Instant::now();
    let jpeg = camera_jpeg();
    println!(
        "input: {WIDTH}x{HEIGHT} JPEG, {:.1} MB (generated in {:.1} s)",
        jpeg.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let ours = measure(9, || {
        photo_rendition(&jpeg, &limits)
            .expect("rendition")
            .bytes
            .len()
    });
    let baseline = measure(5, || naive(&jpeg).len());
    let inspect = measure(9, || {
        inspect_photo(&jpeg, &limits).expect("inspect");
        0
    });

    println!();
    println!("| {:<56} | median ms | output KB | vs naive |", "path");
    println!("|{}|-----------|-----------|----------|", "-".repeat(58));
    let row = |name: &str, (d, size): (Duration, usize)| {
        let kb = if size > 0 {
            format!("{:.0}", size as f64 / 1024.0)
        } else {
            "-".into()
        };
        println!(
            "| {name:<56} | {:>9.1} | {kb:>9} | {:>7.2}x |",
            ms(d),
            ms(baseline.0) / ms(d)
        );
    };
    row("upn_core photo_rendition (DCT 1/2 + fir Lanczos3)", ours);
    row(
        "naive image: decode + resize Lanczos3 + JpegEncoder q80",
        baseline,
    );
    row(
        "upn_core inspect_photo (capture path, DCT 1/8 decode)",
        inspect,
    );
    println!();
    println!(
        "photo_rendition is {:.1}x faster than the naive path (medians of 9 and 5 runs)",
        ms(baseline.0) / ms(ours.0)
    );
}
