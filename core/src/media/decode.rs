//! Pixel decoding (jpeg-decoder, png), the in-memory [`Plane`], resizing (fast_image_resize) and
//! EXIF orientation. Every decoder call runs after the header checks, so what it may allocate is
//! bounded by `MediaLimits::max_pixels`.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use fast_image_resize as fir;

use super::{ImageInfo, MediaError, MediaLimits};

/// 8-bit pixels, row-major, `channels` = 1 (grey) or 3 (RGB); alpha is already composited on white.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plane {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Plane {
    fn new(width: u32, height: u32, channels: usize, data: Vec<u8>) -> Result<Self, MediaError> {
        let expected = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(channels));
        if expected != Some(data.len()) {
            return Err(MediaError::undecodable(
                "the decoder returned fewer pixels than the header promised",
            ));
        }
        Ok(Plane {
            width,
            height,
            channels,
            data,
        })
    }

    /// Greyscale (see [`push_luma`]).
    pub fn into_luma(self) -> Plane {
        if self.channels == 1 {
            return self;
        }
        let mut data = Vec::with_capacity(self.data.len() / 3);
        push_luma(&mut data, &self.data);
        Plane {
            channels: 1,
            data,
            ..self
        }
    }
}

/// Appends the BT.601 luma (integer weights summing to 256) of RGB pixels to `out`.
fn push_luma(out: &mut Vec<u8>, rgb: &[u8]) {
    out.extend(rgb.chunks_exact(3).map(|p| {
        ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]) + 128) >> 8) as u8
    }));
}

/// Runs a decoding step, turning a panic inside a third-party decoder into `Undecodable`.
/// (Defence in depth: the decoders used are fuzzed, and nothing here should panic.)
pub(super) fn guarded<T>(f: impl FnOnce() -> Result<T, MediaError>) -> Result<T, MediaError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(MediaError::undecodable(
            "the decoder failed on malformed image data",
        ))
    })
}

fn alloc_failed() -> MediaError {
    MediaError::undecodable("not enough memory to decode the image")
}

fn reserve(len: usize) -> Result<Vec<u8>, MediaError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| alloc_failed())?;
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// JPEG

fn jpeg_error(e: jpeg_decoder::Error) -> MediaError {
    use jpeg_decoder::Error as E;
    match e {
        // jpeg-decoder reads with `read_exact`, and its bit reader reads ahead until it meets a
        // marker, so a file cut anywhere (even just the final EOI marker) ends in UnexpectedEof
        // rather than a silently grey-filled image.
        E::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            MediaError::undecodable("the file is incomplete: it ends before the image data does")
        }
        E::Io(io) => MediaError::undecodable(format!("read error: {io}")),
        E::Format(msg) => MediaError::undecodable(format!("corrupt JPEG data: {msg}")),
        E::Unsupported(what) => {
            MediaError::undecodable(format!("unsupported JPEG variant: {what:?}"))
        }
        other => MediaError::undecodable(format!("JPEG decoding failed: {other}")),
    }
}

/// The IDCT scale, in eighths, that jpeg-decoder will produce for `k`: ceil(len * k / 8).
fn scaled_len(len: u32, k: u32) -> u32 {
    (len * k).div_ceil(8)
}

/// Decodes a JPEG whose header passed [`super::header::read`]. With `at_least = Some((w, h))` the
/// decoder downscales in the DCT domain by the smallest factor (1/8, 1/4, 1/2 or 1) whose output
/// still covers `w` x `h`, so a 12 MP photo wanted at 1600 px is decoded at 2000x1500 and never
/// held at full resolution.
pub(super) fn decode_jpeg(
    bytes: &[u8],
    header: &ImageInfo,
    at_least: Option<(u32, u32)>,
    limits: &MediaLimits,
) -> Result<Plane, MediaError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    let max_buffer = usize::try_from(limits.max_pixels.saturating_mul(4)).unwrap_or(usize::MAX);
    decoder.set_max_decoding_buffer_size(max_buffer);
    decoder.read_info().map_err(jpeg_error)?;
    let info = decoder
        .info()
        .ok_or_else(|| MediaError::undecodable("no frame header"))?;
    if (u32::from(info.width), u32::from(info.height)) != (header.width, header.height) {
        return Err(MediaError::undecodable("inconsistent frame headers"));
    }
    if info.coding_process == jpeg_decoder::CodingProcess::Lossless {
        return Err(MediaError::undecodable(
            "lossless JPEG is not supported; use a normal (baseline or progressive) JPEG",
        ));
    }
    if let Some((want_w, want_h)) = at_least {
        let k = [1, 2, 4]
            .into_iter()
            .find(|&k| {
                scaled_len(header.width, k) >= want_w && scaled_len(header.height, k) >= want_h
            })
            .unwrap_or(8);
        if k < 8 {
            // Both values fit in u16: they are at most the u16 frame size.
            let w = u16::try_from(scaled_len(header.width, k)).unwrap_or(u16::MAX);
            let h = u16::try_from(scaled_len(header.height, k)).unwrap_or(u16::MAX);
            decoder.scale(w, h).map_err(jpeg_error)?;
        }
    }
    let pixels = decoder.decode().map_err(jpeg_error)?;
    let info = decoder
        .info()
        .ok_or_else(|| MediaError::undecodable("no frame header"))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    use jpeg_decoder::PixelFormat as P;
    match info.pixel_format {
        P::L8 => Plane::new(width, height, 1, pixels),
        P::RGB24 => Plane::new(width, height, 3, pixels),
        P::CMYK32 => {
            // jpeg-decoder has already undone Adobe's inversion: plain CMYK, 0 = no ink.
            let rgb = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u32::from(p[3]);
                    let ch = |c: u8| ((255 - u32::from(c)) * k / 255) as u8;
                    [ch(p[0]), ch(p[1]), ch(p[2])]
                })
                .collect();
            Plane::new(width, height, 3, rgb)
        }
        P::L16 => Err(MediaError::undecodable(
            "16-bit JPEG is not supported; use a normal 8-bit JPEG",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// PNG

fn png_error(e: png::DecodingError) -> MediaError {
    use png::DecodingError as E;
    match e {
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            MediaError::undecodable("the file is incomplete: it ends before the image data does")
        }
        E::IoError(io) => MediaError::undecodable(format!("read error: {io}")),
        E::Format(f) => MediaError::undecodable(format!("corrupt PNG data: {f}")),
        E::LimitsExceeded => alloc_failed(),
        other => MediaError::undecodable(format!("PNG decoding failed: {other}")),
    }
}

fn png_reader<'a>(
    bytes: &'a [u8],
    header: &ImageInfo,
) -> Result<png::Reader<Cursor<&'a [u8]>>, MediaError> {
    // The default allocation limit (64 MiB) bounds what png allocates for itself (chunks, rows);
    // whole frames are allocated here, after the pixel limit has passed.
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let reader = decoder.read_info().map_err(png_error)?;
    let info = reader.info();
    if (info.width, info.height) != (header.width, header.height) {
        return Err(MediaError::undecodable("inconsistent PNG headers"));
    }
    Ok(reader)
}

/// Decodes a PNG to grey or RGB, compositing any alpha on white. Non-interlaced images are
/// converted row by row (no full-size RGBA copy); interlaced ones need the whole frame first.
pub(super) fn decode_png(bytes: &[u8], header: &ImageInfo) -> Result<Plane, MediaError> {
    let mut reader = png_reader(bytes, header)?;
    let (color, _) = reader.output_color_type();
    let in_channels = color.samples();
    let out_channels = if in_channels <= 2 { 1 } else { 3 };
    let (width, height) = (header.width, header.height);
    let out_len = (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(out_channels))
        .ok_or_else(alloc_failed)?;
    let mut out = reserve(out_len)?;
    if reader.info().interlaced {
        let size = reader.output_buffer_size().ok_or_else(alloc_failed)?;
        let mut frame = reserve(size)?;
        frame.resize(size, 0);
        let info = reader.next_frame(&mut frame).map_err(png_error)?;
        for row in frame.chunks_exact(info.line_size).take(height as usize) {
            push_row(&mut out, row, in_channels, width);
        }
    } else {
        while let Some(row) = reader.next_row().map_err(png_error)? {
            push_row(&mut out, row.data(), in_channels, width);
        }
    }
    reader.finish().map_err(png_error)?;
    Plane::new(width, height, out_channels, out)
}

/// Hands `row` each row of the image's luma (alpha composited on white), top to bottom, in
/// stored orientation: for a check that needs only per-pixel statistics (the signature's ink),
/// which do not depend on orientation. A non-interlaced PNG streams a row at a time, never
/// holding the frame; other images are decoded whole first (a JPEG with DCT scaling to at least
/// `jpeg_at_least`).
pub(super) fn for_each_luma_row(
    bytes: &[u8],
    header: &ImageInfo,
    jpeg_at_least: (u32, u32),
    limits: &MediaLimits,
    mut row: impl FnMut(&[u8]),
) -> Result<(), MediaError> {
    if header.format == super::ImageFormat::Png {
        let mut reader = png_reader(bytes, header)?;
        if !reader.info().interlaced {
            let in_channels = reader.output_color_type().0.samples();
            let (mut pixels, mut luma) = (Vec::new(), Vec::new());
            while let Some(next) = reader.next_row().map_err(png_error)? {
                pixels.clear();
                push_row(&mut pixels, next.data(), in_channels, header.width);
                if in_channels <= 2 {
                    row(&pixels);
                } else {
                    luma.clear();
                    push_luma(&mut luma, &pixels);
                    row(&luma);
                }
            }
            return reader.finish().map_err(png_error);
        }
    }
    let plane = decode_luma(bytes, header, jpeg_at_least, limits)?;
    plane
        .data
        .chunks_exact(plane.width.max(1) as usize)
        .for_each(row);
    Ok(())
}

/// The whole image as luma (alpha composited on white) in stored orientation; a JPEG decoded
/// with DCT scaling to at least `jpeg_at_least`.
pub(super) fn decode_luma(
    bytes: &[u8],
    header: &ImageInfo,
    jpeg_at_least: (u32, u32),
    limits: &MediaLimits,
) -> Result<Plane, MediaError> {
    let plane = match header.format {
        super::ImageFormat::Png => decode_png(bytes, header)?,
        super::ImageFormat::Jpeg => decode_jpeg(bytes, header, Some(jpeg_at_least), limits)?,
    };
    Ok(plane.into_luma())
}

fn over_white(v: u8, alpha: u8) -> u8 {
    let (v, a) = (u32::from(v), u32::from(alpha));
    ((v * a + 255 * (255 - a) + 127) / 255) as u8
}

fn push_row(out: &mut Vec<u8>, row: &[u8], in_channels: usize, width: u32) {
    let pixels = row.chunks_exact(in_channels).take(width as usize);
    match in_channels {
        // Copied as they are (a plain copy is fast in the size-optimised release build).
        1 | 3 => out.extend_from_slice(&row[..row.len().min(width as usize * in_channels)]),
        2 => out.extend(pixels.map(|p| over_white(p[0], p[1]))),
        _ => {
            for p in pixels {
                out.extend([
                    over_white(p[0], p[3]),
                    over_white(p[1], p[3]),
                    over_white(p[2], p[3]),
                ]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry

fn resize_error(e: impl std::fmt::Display) -> MediaError {
    MediaError::undecodable(format!("resizing failed: {e}"))
}

/// Resamples `plane` (or its `crop` = (left, top, width, height)) to exactly `width` x `height`.
pub(super) fn resize(
    plane: Plane,
    crop: Option<(u32, u32, u32, u32)>,
    width: u32,
    height: u32,
    filter: fir::FilterType,
) -> Result<Plane, MediaError> {
    resize_reusing(plane, crop, width, height, filter).map(|(plane, _)| plane)
}

/// [`resize`], also handing back the source's buffer (empty when nothing was resized): the
/// next step can write into memory already paged in instead of faulting in fresh pages.
pub(super) fn resize_reusing(
    plane: Plane,
    crop: Option<(u32, u32, u32, u32)>,
    width: u32,
    height: u32,
    filter: fir::FilterType,
) -> Result<(Plane, Vec<u8>), MediaError> {
    let whole = (0, 0, plane.width, plane.height);
    let crop = crop.unwrap_or(whole);
    if crop == whole && (width, height) == (plane.width, plane.height) {
        return Ok((plane, Vec::new()));
    }
    let channels = plane.channels;
    let len = (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(channels))
        .ok_or_else(alloc_failed)?;
    let mut out = reserve(len)?;
    out.resize(len, 0);
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(filter))
        .crop(
            f64::from(crop.0),
            f64::from(crop.1),
            f64::from(crop.2),
            f64::from(crop.3),
        );
    // Typed, for the two pixel types a plane has: the untyped `Resizer::resize` instantiates
    // the resampler for every pixel type fast_image_resize knows (~2.5 MB of the cdylib).
    if channels == 1 {
        resize_typed::<fir::pixels::U8>(&plane, &mut out, width, height, &options)?;
    } else {
        resize_typed::<fir::pixels::U8x3>(&plane, &mut out, width, height, &options)?;
    }
    Ok((Plane::new(width, height, channels, out)?, plane.data))
}

fn resize_typed<P: fir::pixels::InnerPixel + fir::PixelTrait>(
    plane: &Plane,
    out: &mut [u8],
    width: u32,
    height: u32,
    options: &fir::ResizeOptions,
) -> Result<(), MediaError> {
    let src = fir::images::TypedImageRef::<P>::from_buffer(plane.width, plane.height, &plane.data)
        .map_err(resize_error)?;
    let mut dst =
        fir::images::TypedImage::<P>::from_buffer(width, height, out).map_err(resize_error)?;
    fir::Resizer::new()
        .resize_typed(&src, &mut dst, options)
        .map_err(resize_error)
}

/// The size that fits `width` x `height` into a `max_long` square box, keeping the aspect ratio
/// and never enlarging.
pub(super) fn fit(width: u32, height: u32, max_long: u32) -> (u32, u32) {
    let max_long = max_long.max(1);
    let long = width.max(height);
    if long <= max_long {
        return (width, height);
    }
    let short = width.min(height);
    let scaled = ((u64::from(short) * u64::from(max_long) + u64::from(long) / 2) / u64::from(long))
        .clamp(1, u64::from(max_long)) as u32;
    if width >= height {
        (max_long, scaled)
    } else {
        (scaled, max_long)
    }
}

/// Applies EXIF orientation `o` (1..=8) so the image is upright. Orientations 5..=8 swap width and
/// height.
pub(super) fn orient(plane: Plane, o: u8) -> Plane {
    orient_into(plane, o, Vec::new())
}

/// [`orient`], writing into `buffer` (reused: its memory is already paged in).
pub(super) fn orient_into(plane: Plane, o: u8, buffer: Vec<u8>) -> Plane {
    if !(2..=8).contains(&o) {
        return plane;
    }
    let (w, h) = (plane.width as usize, plane.height as usize);
    let (ow, oh) = if o >= 5 { (h, w) } else { (w, h) };
    // Output (x, y) comes from source pixel `start + x * step_x + y * step_y` (row-major, in
    // pixels); see the EXIF spec's row/column definitions.
    let (w_, h_) = (w as isize, h as isize);
    let (start, step_x, step_y): (isize, isize, isize) = match o {
        2 => (w_ - 1, -1, w_),
        3 => ((h_ - 1) * w_ + w_ - 1, -1, -w_),
        4 => ((h_ - 1) * w_, 1, -w_),
        5 => (0, w_, 1),
        6 => ((h_ - 1) * w_, -w_, 1),
        7 => ((h_ - 1) * w_ + w_ - 1, -w_, -1),
        _ => (w_ - 1, w_, -1), // 8
    };
    let map = Mapping {
        ow,
        oh,
        start,
        step_x,
        step_y,
    };
    let data = match plane.channels {
        1 => map.apply::<1>(&plane.data, buffer),
        _ => map.apply::<3>(&plane.data, buffer),
    };
    Plane {
        width: ow as u32,
        height: oh as u32,
        channels: plane.channels,
        data,
    }
}

/// Where each output pixel of [`orient`] comes from.
struct Mapping {
    ow: usize,
    oh: usize,
    start: isize,
    step_x: isize,
    step_y: isize,
}

impl Mapping {
    /// Copies pixels of `N` bytes in square tiles, so a rotation reads each source cache line
    /// while it is still cached instead of striding down whole columns (with the buffer reuse,
    /// about 12 ms -> 5 ms of CPU for a 1600x1200 rendition under perf here).
    fn apply<const N: usize>(&self, src: &[u8], mut out: Vec<u8>) -> Vec<u8> {
        const TILE: usize = 32;
        let len = self.ow * self.oh * N;
        // Every byte is written below (each output pixel once), so a buffer that is long enough
        // is only cut to length, not cleared first.
        if out.len() >= len {
            out.truncate(len);
        } else {
            out.clear();
            out.resize(len, 0);
        }
        for ty in (0..self.oh).step_by(TILE) {
            for tx in (0..self.ow).step_by(TILE) {
                for y in ty..(ty + TILE).min(self.oh) {
                    let row = self.start + y as isize * self.step_y;
                    let x_end = (tx + TILE).min(self.ow);
                    let dst = &mut out[(y * self.ow + tx) * N..(y * self.ow + x_end) * N];
                    for (x, px) in (tx..x_end).zip(dst.chunks_exact_mut(N)) {
                        // In range: the mapping is a bijection of the source's pixels.
                        let i = (row + x as isize * self.step_x) as usize * N;
                        px.copy_from_slice(&src[i..i + N]);
                    }
                }
            }
        }
        out
    }
}
