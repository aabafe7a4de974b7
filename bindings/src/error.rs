//! The one public error: each variant says what the app should do. Mapped once from the core's
//! rich error; messages carry no API keys, signatures or photos.

use upn_core::upn::UpnError;

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum CoreError {
    /// The app passed something unusable; show `reason` and let the user correct `field`.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// No such consignment on the device; sync, or check the barcode.
    #[error("consignment {barcode} is not on this device")]
    NotFound { barcode: String },
    /// UPN cancelled the consignment: do not deliver it.
    #[error("consignment {barcode} was cancelled")]
    Cancelled { barcode: String },
    /// UPN already holds a delivery for this consignment from elsewhere: nothing to capture.
    #[error("consignment {barcode} is already delivered")]
    AlreadyDelivered { barcode: String },
    /// This consignment's POD already left the device: a second signature is not accepted.
    #[error("consignment {barcode} is already signed for")]
    AlreadySigned { barcode: String },
    /// The depot's API key was refused; the depot's credentials need fixing.
    #[error("UPN refused the depot's API key")]
    Unauthorized,
    /// UPN has not enabled the integration (or a feature of it) for the depot; `reason` says which
    /// and whom to ask.
    #[error("{reason}")]
    NotEnabled { reason: String },
    /// UPN refused the request; `reason` says why. Not worth retrying unchanged.
    #[error("UPN refused: {reason}")]
    UpnRefused { reason: String },
    /// UPN could not be reached or failed; the work stays queued and is retried by itself.
    #[error("UPN unreachable: {reason}")]
    Offline { reason: String },
    /// The device storage failed; `disk_full` asks the user to free space.
    #[error("storage failed: {reason}")]
    Storage { disk_full: bool, reason: String },
    /// A bug; report it with the support bundle.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

impl From<upn_core::Error> for CoreError {
    fn from(e: upn_core::Error) -> Self {
        use upn_core::Error as E;
        let reason = e.to_string();
        match e {
            E::InvalidInput { field, reason } => CoreError::InvalidInput {
                field: field.to_string(),
                reason,
            },
            E::NotFound { barcode } => CoreError::NotFound { barcode },
            E::Cancelled { barcode } => CoreError::Cancelled { barcode },
            E::AlreadyDelivered { barcode } => CoreError::AlreadyDelivered { barcode },
            E::AlreadySigned { barcode } => CoreError::AlreadySigned { barcode },
            E::Upn(UpnError::Unauthorized) => CoreError::Unauthorized,
            E::Upn(
                UpnError::IntegrationDisabled
                | UpnError::TrackingActionDisabled
                | UpnError::ImageActionDisabled,
            ) => CoreError::NotEnabled { reason },
            E::Upn(u) if u.is_recoverable() => CoreError::Offline { reason },
            E::Upn(_) => CoreError::UpnRefused { reason },
            E::Storage { disk_full, .. } => CoreError::Storage { disk_full, reason },
            E::Io { ref source, .. } => CoreError::Storage {
                disk_full: upn_core::error::is_disk_full(source),
                reason,
            },
            E::StoreTooNew { .. } => CoreError::Storage {
                disk_full: false,
                reason,
            },
        }
    }
}
