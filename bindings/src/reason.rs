//! Typed reasons the app switches on: why an outbox item waits or needs attention, and which
//! part of the UPN integration a depot has not enabled. Mirrors `upn_core::domain::reason`.

use upn_core::domain::outbox::{Feature, OutboxReason as Core};

/// Which part of the UPN integration the depot's account has not enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum UpnFeature {
    Integration,
    TrackingAction,
    ImageAction,
}

impl From<Feature> for UpnFeature {
    fn from(f: Feature) -> Self {
        match f {
            Feature::Integration => UpnFeature::Integration,
            Feature::TrackingAction => UpnFeature::TrackingAction,
            Feature::ImageAction => UpnFeature::ImageAction,
        }
    }
}

/// Why an outbox item waits or needs attention (beside the English `last_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OutboxReason {
    /// 409: UPN already holds a POD for the consignment from another capture.
    AlreadyDelivered,
    /// 409: an image before its POD reached UPN.
    PodRequired,
    /// 413.
    TooLarge,
    /// 400/422.
    Invalid,
    /// 404: UPN does not know the consignment.
    UnknownBarcode,
    /// 403: the depot has not enabled `feature`.
    FeatureDisabled {
        feature: UpnFeature,
    },
    /// 401: the depot's API key was refused.
    Unauthorized,
    Forbidden,
    Redirected,
    /// UPN could not be reached; retried by the core.
    Offline,
    /// UPN failed or answered garbage; retried by the core.
    ServerError,
    /// 429; retried by the core.
    RateLimited,
    /// The upload rendition could not be made from the stored file.
    RenditionFailed,
    /// UPN's receipt does not match what was sent.
    ReceiptMismatch,
    DiskFull,
    /// Not an error: the data saver holds the photo until the network is unmetered (Wi-Fi).
    HeldUntilUnmetered,
    /// Not an error: today's metered photo budget is spent; it goes on Wi-Fi or the next day.
    HeldByBudget,
    Other,
}

impl From<Core> for OutboxReason {
    fn from(r: Core) -> Self {
        match r {
            Core::AlreadyDelivered => OutboxReason::AlreadyDelivered,
            Core::PodRequired => OutboxReason::PodRequired,
            Core::TooLarge => OutboxReason::TooLarge,
            Core::Invalid => OutboxReason::Invalid,
            Core::UnknownBarcode => OutboxReason::UnknownBarcode,
            Core::FeatureDisabled(f) => OutboxReason::FeatureDisabled { feature: f.into() },
            Core::Unauthorized => OutboxReason::Unauthorized,
            Core::Forbidden => OutboxReason::Forbidden,
            Core::Redirected => OutboxReason::Redirected,
            Core::Offline => OutboxReason::Offline,
            Core::ServerError => OutboxReason::ServerError,
            Core::RateLimited => OutboxReason::RateLimited,
            Core::RenditionFailed => OutboxReason::RenditionFailed,
            Core::ReceiptMismatch => OutboxReason::ReceiptMismatch,
            Core::DiskFull => OutboxReason::DiskFull,
            Core::HeldUntilUnmetered => OutboxReason::HeldUntilUnmetered,
            Core::HeldByBudget => OutboxReason::HeldByBudget,
            Core::Other => OutboxReason::Other,
        }
    }
}
