//! Delivery photos: the capture-path check and the upload rendition.

use std::borrow::Cow;

use fast_image_resize::FilterType;

use super::decode::{self, Plane};
use super::{header, ImageFormat, ImageInfo, MediaError, MediaLimits, Rendition, MIN_PHOTO_SIDE};

fn read_header(bytes: &[u8], limits: &MediaLimits) -> Result<ImageInfo, MediaError> {
    let info = header::read(bytes, limits)?;
    if info.width.min(info.height) < MIN_PHOTO_SIDE {
        return Err(MediaError::TooSmall {
            width: info.width,
            height: info.height,
        });
    }
    Ok(info)
}

/// The capture-path check: everything the header and the stream's structure tell (see
/// `header::read`), no pixel decoded. Corrupt entropy data is found by [`rendition`].
pub(super) fn inspect(bytes: &[u8], limits: &MediaLimits) -> Result<ImageInfo, MediaError> {
    read_header(bytes, limits)
}

pub(super) fn rendition(
    bytes: Cow<'_, [u8]>,
    limits: &MediaLimits,
) -> Result<Rendition, MediaError> {
    let info = read_header(&bytes, limits)?;
    // jpeg-encoder takes u16 sizes; the long side is the same before and after orientation.
    let (width, height) = decode::fit(
        info.width,
        info.height,
        limits.max_long_side.min(u32::from(u16::MAX)),
    );
    let plane = match info.format {
        ImageFormat::Jpeg => decode::decode_jpeg(&bytes, &info, Some((width, height)), limits)?,
        ImageFormat::Png => decode::decode_png(&bytes, &info)?,
    };
    // The original is not read past the decode: one handed over is freed before the resize,
    // the render's peak (decoded plane, resize pass and output: ~22 MB for 12 MP -> 1600 px).
    drop(bytes);
    let (plane, spare) = decode::resize_reusing(plane, None, width, height, FilterType::Lanczos3)?;
    // Rotating the small image is far cheaper than rotating the source; into the source's
    // buffer, already paged in (a fresh one costs a page fault per 4 KiB).
    let plane = decode::orient_into(plane, info.orientation, spare);
    let bytes = encode_jpeg(&plane, limits.jpeg_quality)?;
    Ok(Rendition {
        bytes,
        width: plane.width,
        height: plane.height,
        mime: "image/jpeg",
    })
}

/// A baseline JFIF with no other segment: no EXIF (so no GPS, no camera serial), no ICC, no XMP.
fn encode_jpeg(plane: &Plane, quality: u8) -> Result<Vec<u8>, MediaError> {
    let fail = |e: jpeg_encoder::EncodingError| {
        MediaError::undecodable(format!("encoding the rendition failed: {e}"))
    };
    let too_big = || MediaError::undecodable("the rendition is too large to encode as JPEG");
    let width = u16::try_from(plane.width).map_err(|_| too_big())?;
    let height = u16::try_from(plane.height).map_err(|_| too_big())?;
    let color = if plane.channels == 1 {
        jpeg_encoder::ColorType::Luma
    } else {
        jpeg_encoder::ColorType::Rgb
    };
    let mut out = Vec::with_capacity(plane.data.len() / 8);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    encoder
        .encode(&plane.data, width, height, color)
        .map_err(fail)?;
    Ok(out)
}
