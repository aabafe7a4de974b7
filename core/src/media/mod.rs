//! Delivery photos and consignee signatures: validation on the capture path and renditions for
//! upload.
//!
//! Everything here is a pure function of bytes and [`MediaLimits`]: no files, no clock, no global
//! state. Input is treated as hostile: sizes are checked before anything is allocated, dimensions
//! are read from the header before any pixel is decoded (decompression bombs are refused there),
//! and a decoder panic is turned into [`MediaError::Undecodable`].
//!
//! Two uses:
//! - [`inspect_photo`] / [`inspect_signature`] run on the capture path while the driver waits.
//!   A photo is checked from its header and its stream's structure only (markers or chunks to
//!   the end marker), no pixel decoded: a few ms for 12 MP. What only a decode finds (corrupt
//!   entropy data) is found by [`photo_rendition`], in the background after the capture. A
//!   signature is small, so it is decoded at capture (the ink check needs the pixels).
//! - [`photo_rendition`] / [`signature_rendition`] run off the capture path and produce what is
//!   uploaded: a metadata-free, upright JPEG of bounded size, and a cropped 1-bit PNG signature.
//!
//! Formats: JPEG and PNG. HEIC/HEIF is refused with [`MediaError::NotAnImage`], whose message
//! says so; the app must capture JPEG.

mod decode;
mod header;
mod photo;
mod signature;
mod structure;

#[cfg(test)]
mod tests;

use std::fmt;

/// Bounds applied to every input. `Default` is sized for phone cameras (up to ~64 MP).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaLimits {
    /// Refuse inputs larger than this many bytes (default 30 MiB).
    pub max_input_bytes: usize,
    /// Refuse images whose header claims more pixels than this (default 64 000 000).
    pub max_pixels: u64,
    /// Refuse images with a side longer than this (default 16 384).
    pub max_dimension: u32,
    /// Photo renditions are scaled down (never up) so the long side is at most this (default 1600).
    pub max_long_side: u32,
    /// JPEG quality of photo renditions, 1..=100 (default 80).
    pub jpeg_quality: u8,
}

impl Default for MediaLimits {
    fn default() -> Self {
        MediaLimits {
            max_input_bytes: 30 * 1024 * 1024,
            max_pixels: 64_000_000,
            max_dimension: 16_384,
            max_long_side: 1600,
            jpeg_quality: 80,
        }
    }
}

/// Photos whose shorter side is below this many pixels are refused as [`MediaError::TooSmall`].
pub const MIN_PHOTO_SIDE: u32 = 240;
/// Signatures whose shorter side is below this many pixels are refused as [`MediaError::TooSmall`].
pub const MIN_SIGNATURE_SIDE: u32 = 48;
/// Signature renditions are scaled down so the long side is at most this.
pub const SIGNATURE_MAX_LONG_SIDE: u32 = 800;

/// Why a photo or signature was refused. Messages say what was wrong and what to do; none of them
/// carries image data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MediaError {
    #[error("the image is empty (0 bytes): capture it again")]
    Empty,

    #[error("the image is {bytes} bytes, more than the {limit}-byte limit: capture it again at a lower resolution")]
    TooLarge { bytes: usize, limit: usize },

    #[error("the data is not a JPEG or PNG image (HEIC/HEIF photos are not supported): set the camera to save JPEG (on iPhone: Settings > Camera > Formats > Most Compatible) and capture it again")]
    NotAnImage,

    #[error("the image is damaged or incomplete ({reason}): capture it again")]
    Undecodable { reason: String },

    #[error("the image is {width}x{height} pixels, more than can be processed safely (at most {limit} pixels, and a limited side length): capture it again at a lower resolution")]
    TooManyPixels { width: u32, height: u32, limit: u64 },

    #[error("the signature is blank: ask the consignee to sign again")]
    BlankSignature,

    #[error("the image is only {width}x{height} pixels, too small to be useful: capture it again with the camera or the signature pad")]
    TooSmall { width: u32, height: u32 },
}

impl MediaError {
    pub(crate) fn undecodable(reason: impl Into<String>) -> Self {
        MediaError::Undecodable {
            reason: reason.into(),
        }
    }
}

/// The image formats that are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

/// What an accepted image is, as stored (before orientation is applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    /// Width as stored; for orientations 5..=8 the upright image is `height` wide.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation, 1..=8; 1 when the image has none.
    pub orientation: u8,
}

/// An encoded image ready for upload.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendition {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub mime: &'static str,
}

impl fmt::Debug for Rendition {
    // The bytes are a photo or a signature: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendition")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .field("mime", &self.mime)
            .finish()
    }
}

/// Checks a delivery photo cheaply enough for the capture path, without decoding pixels: size,
/// format, header dimensions against the limits, minimum size, EXIF orientation, and the
/// stream's structure (JPEG: SOI, a supported frame header, well-formed tables and scan headers,
/// EOI reached; PNG: IHDR, chunks that fit, IDAT, IEND). [`photo_rendition`] decodes and so finds
/// the rest (corrupt entropy or zlib data).
pub fn inspect_photo(bytes: &[u8], limits: &MediaLimits) -> Result<ImageInfo, MediaError> {
    decode::guarded(|| photo::inspect(bytes, limits))
}

/// Checks a consignee signature: everything [`inspect_photo`] checks, plus that there is ink.
/// A signature with (almost) no ink, or of one uniform colour, is [`MediaError::BlankSignature`].
/// Transparent PNGs (ink on alpha) are composited on white first.
pub fn inspect_signature(bytes: &[u8], limits: &MediaLimits) -> Result<ImageInfo, MediaError> {
    decode::guarded(|| signature::inspect(bytes, limits))
}

/// The upload rendition of a photo: upright (EXIF orientation applied), every metadata segment
/// dropped, long side at most `limits.max_long_side` (never upscaled), JPEG at
/// `limits.jpeg_quality`.
///
/// Hand the original over (a `Vec`) where it is not needed afterwards: it is then freed as
/// soon as it is decoded, ~4 MB less at the render's peak; a borrowed one is left alone.
pub fn photo_rendition<'a>(
    bytes: impl Into<std::borrow::Cow<'a, [u8]>>,
    limits: &MediaLimits,
) -> Result<Rendition, MediaError> {
    let bytes = bytes.into();
    decode::guarded(move || photo::rendition(bytes, limits))
}

/// The upload rendition of a signature: cropped to the ink plus a small margin, long side at most
/// [`SIGNATURE_MAX_LONG_SIDE`], black ink on white as a 1-bit greyscale PNG (typically a few KB).
pub fn signature_rendition(bytes: &[u8], limits: &MediaLimits) -> Result<Rendition, MediaError> {
    decode::guarded(|| signature::rendition(bytes, limits))
}
