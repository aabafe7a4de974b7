//! The POD and documents view through the FFI: a capture's image read back from the device.

use upn_core::driver::CaptureImage;

use crate::{blocking, CoreError, DriverCore};

/// A capture's image, as the app shows it.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct CaptureImageRecord {
    pub bytes: Vec<u8>,
    /// `image/jpeg` or `image/png`.
    pub mime: String,
}

// Signatures and photos never appear in logs: print the size only.
impl std::fmt::Debug for CaptureImageRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureImageRecord")
            .field("bytes", &self.bytes.len())
            .field("mime", &self.mime)
            .finish()
    }
}

impl From<CaptureImage> for CaptureImageRecord {
    fn from(i: CaptureImage) -> Self {
        Self {
            bytes: i.bytes,
            mime: i.mime.to_string(),
        }
    }
}

#[uniffi::export]
impl DriverCore {
    /// A capture's image (its id from `outbox()`, `consignment()`): the original when
    /// `long_side` is null, or a thumbnail whose long side is at most `long_side` pixels
    /// (64 to 4096), made by the same pipeline as the upload rendition.
    pub async fn capture_image(
        &self,
        capture_id: String,
        long_side: Option<u32>,
    ) -> Result<CaptureImageRecord, CoreError> {
        blocking(self.driver()?, "capture_image", move |driver| {
            Ok(driver.capture_image(&capture_id, long_side)?.into())
        })
        .await
    }
}
