//! The POD and documents view: a consignment's signature and photos read back from the device,
//! at full size or as a thumbnail made by the upload rendition pipeline, so an app needs no copy
//! of its own.

use super::Driver;
use crate::domain::outbox::{CaptureKind, ItemState};
use crate::error::{Error, Result};
use crate::media::{self, MediaLimits};

/// Thumbnails are at least this long on their long side (smaller is not useful on a screen)...
pub const MIN_THUMBNAIL_SIDE: u32 = 64;
/// ...and at most this (larger is the original's job).
pub const MAX_THUMBNAIL_SIDE: u32 = 4096;

/// A capture's image as the app shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct CaptureImage {
    pub bytes: Vec<u8>,
    /// `image/jpeg` or `image/png`.
    pub mime: &'static str,
}

// Signatures and photos never appear in logs: print the size only.
impl std::fmt::Debug for CaptureImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureImage")
            .field("bytes", &self.bytes.len())
            .field("mime", &self.mime)
            .finish()
    }
}

/// The format of bytes the core stored (it only ever stores validated JPEG or PNG).
fn mime_of(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    }
}

impl Driver {
    /// A capture's image: the original as captured (`long_side` `None`), or a thumbnail whose
    /// long side is at most `long_side` pixels (64 to 4096; photos as upright JPEG without
    /// metadata, signatures as their cropped 1-bit PNG, which is already small). Blocking: it
    /// decodes and resizes; call it off the UI thread.
    pub fn capture_image(&self, capture_id: &str, long_side: Option<u32>) -> Result<CaptureImage> {
        let capture = self
            .shared
            .store()?
            .capture(capture_id)?
            .ok_or_else(|| Error::invalid("capture id", "no such capture on this device"))?;
        if capture.state == ItemState::Discarded {
            return Err(Error::invalid(
                "capture id",
                "was discarded; its image is no longer on this device",
            ));
        }
        if let Some(purged_at) = capture.purged_at {
            return Err(Error::OriginalsPurged {
                id: capture.id,
                purged_at,
            });
        }
        if let Some(side) = long_side {
            if !(MIN_THUMBNAIL_SIDE..=MAX_THUMBNAIL_SIDE).contains(&side) {
                return Err(Error::invalid(
                    "long_side",
                    format!("must be {MIN_THUMBNAIL_SIDE} to {MAX_THUMBNAIL_SIDE} pixels, or none for the original"),
                ));
            }
        }
        let original = self
            .shared
            .blobs
            .read_verified(&capture.original.name, &capture.original.sha256)?;
        let Some(side) = long_side else {
            let mime = mime_of(&original);
            return Ok(CaptureImage {
                bytes: original,
                mime,
            });
        };
        let limits = MediaLimits {
            max_long_side: side,
            ..self.shared.config.media
        };
        let rendition = match capture.kind {
            CaptureKind::Pod => media::signature_rendition(&original, &limits),
            _ => media::photo_rendition(original, &limits),
        }
        .map_err(|e| Error::invalid("capture", format!("its image could not be read: {e}")))?;
        Ok(CaptureImage {
            bytes: rendition.bytes,
            mime: rendition.mime,
        })
    }
}
