//! The one public error: each variant says what the app should do. Mapped once, here, from the
//! core's rich error; messages carry no API keys, signatures or photos (the core's messages never
//! do, and nothing here adds any).
//!
//! Kotlin sees `CoreException` (a sealed class: `CoreException.NotFound`, ...), Swift `CoreError`.

use upn_core::upn::UpnError;

use crate::UpnFeature;

#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum CoreError {
    /// The app passed something unusable; nothing was changed. Show `reason` and let the user
    /// correct `field` (`barcode`, `signature`, `photo`, `signed_by`, `captured_at`, `gps.lat`,
    /// `depot`, `api key`, `config.*`, ...).
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// No such consignment on the device: sync, or check the barcode.
    #[error("consignment {barcode} is not on this device; sync, or check the barcode")]
    NotFound { barcode: String },
    /// UPN cancelled the consignment: do not deliver it.
    #[error("consignment {barcode} was cancelled by UPN; do not deliver it")]
    Cancelled { barcode: String },
    /// UPN already holds a delivery for this consignment from elsewhere: nothing to capture.
    #[error("consignment {barcode} is already delivered according to UPN")]
    AlreadyDelivered { barcode: String },
    /// This consignment's POD already left the device: a second signature is not accepted.
    #[error("consignment {barcode} is already signed for")]
    AlreadySigned { barcode: String },
    /// UPN refused the depot's API key: the depot's credentials need fixing.
    #[error("UPN refused the depot's API key; check the depot's UPN credentials")]
    Unauthorized,
    /// UPN has not enabled the integration (or one action of it, `feature`) for the depot;
    /// `reason` says whom to ask.
    #[error("{reason}")]
    NotEnabled { feature: UpnFeature, reason: String },
    /// UPN refused the request; `reason` says why. Not worth retrying unchanged. `code` is
    /// stable: `already_delivered` (409), `pod_required` (409), `too_large` (413), `invalid`
    /// (400/422), `unknown_barcode` (404), `forbidden` (403), `redirected` (3xx).
    #[error("UPN refused: {reason}")]
    UpnRefused { code: String, reason: String },
    /// UPN could not be reached or failed for now; captured work stays queued and is retried
    /// by the core itself. `code` is stable: `unreachable`, `timeout`, `rate_limited` (429),
    /// `server` (5xx), `bad_response`; `retry_after_ms` is UPN's `Retry-After` (429/503), when
    /// it sent one.
    #[error("UPN unreachable: {reason}")]
    Offline {
        code: String,
        retry_after_ms: Option<u64>,
        reason: String,
    },
    /// The capture is being sent to UPN right now: retry, discard or re-sign it in a moment.
    #[error("capture {id} is being sent right now; try again in a moment")]
    InFlight { id: String },
    /// Another writer held the device's database too long: nothing of this call was stored.
    /// Try again in a moment (background work is retried by the core itself).
    #[error("the database is busy; try again in a moment")]
    Busy,
    /// The capture id given to `add_photo` or `sign` already names a different capture;
    /// nothing was recorded. Resend exactly the same capture, or use a new id.
    #[error("{reason}")]
    CaptureIdConflict { id: String, reason: String },
    /// The device storage failed; `disk_full` asks the user to free space.
    #[error("storage failed: {reason}")]
    Storage { disk_full: bool, reason: String },
    /// Another `DriverCore` (or a `upn-driver` command) owns this data folder: one owner at a
    /// time. Close the other one, or try again shortly.
    #[error("{reason}")]
    AlreadyOpen { reason: String },
    /// The data folder belongs to another depot (`depot`) or UPN endpoint (`endpoint`) than the
    /// configuration: nothing was read or sent. Wipe it (sign out of that depot) or give this
    /// depot its own data folder.
    #[error("{reason}")]
    DataFolderBound {
        depot: String,
        endpoint: String,
        reason: String,
    },
    /// The capture's image was removed from the device by retention (at `purged_at_ms`), after
    /// UPN acknowledged it: show "delivered; image kept by UPN", not an error.
    #[error("{reason}")]
    OriginalsPurged {
        capture_id: String,
        purged_at_ms: i64,
        reason: String,
    },
    /// `wipe` was asked while `count` captures are unsent: nothing was removed and the core
    /// stays open. Sync until the outbox is empty, or wipe with `force`.
    #[error("{reason}")]
    UnsentCaptures { count: u32, reason: String },
    /// The data folder holds capture files its database does not know (the database was lost,
    /// emptied or replaced). Nothing was changed: a person restores the database or moves the
    /// files aside; the core never decides that alone.
    #[error("{reason}")]
    NeedsRecovery { reason: String },
    /// `shutdown` was called: open a new `DriverCore`.
    #[error("the driver core was shut down; open it again")]
    ShutDown,
    /// A bug; report it with the support bundle.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

impl CoreError {
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        CoreError::InvalidInput {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
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
            E::InFlight { id } => CoreError::InFlight { id },
            E::CaptureIdConflict { id, .. } => CoreError::CaptureIdConflict { id, reason },
            E::Upn(UpnError::Unauthorized) => CoreError::Unauthorized,
            E::Upn(UpnError::IntegrationDisabled) => CoreError::NotEnabled {
                feature: UpnFeature::Integration,
                reason,
            },
            E::Upn(UpnError::TrackingActionDisabled) => CoreError::NotEnabled {
                feature: UpnFeature::TrackingAction,
                reason,
            },
            E::Upn(UpnError::ImageActionDisabled) => CoreError::NotEnabled {
                feature: UpnFeature::ImageAction,
                reason,
            },
            E::Upn(u) if u.is_recoverable() => CoreError::Offline {
                code: u.code().to_string(),
                retry_after_ms: u
                    .retry_after()
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                reason,
            },
            E::Upn(u) => CoreError::UpnRefused {
                code: u.code().to_string(),
                reason,
            },
            E::Busy => CoreError::Busy,
            E::Storage { disk_full, .. } => CoreError::Storage { disk_full, reason },
            E::Io { ref source, .. } => CoreError::Storage {
                disk_full: upn_core::error::is_disk_full(source),
                reason,
            },
            E::StoreTooNew { .. } | E::StoreUnreadable { .. } => CoreError::Storage {
                disk_full: false,
                reason,
            },
            E::AlreadyOpen { .. } => CoreError::AlreadyOpen { reason },
            E::NeedsRecovery { .. } => CoreError::NeedsRecovery { reason },
            E::OriginalsPurged { id, purged_at } => CoreError::OriginalsPurged {
                capture_id: id,
                purged_at_ms: purged_at.timestamp_millis(),
                reason,
            },
            E::UnsentCaptures { count } => CoreError::UnsentCaptures { count, reason },
            E::DataFolderBound {
                depot, endpoint, ..
            } => CoreError::DataFolderBound {
                depot,
                endpoint,
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_core_error_maps_to_what_the_app_should_do() {
        use upn_core::Error as E;
        let cases: Vec<(upn_core::Error, &str)> = vec![
            (E::invalid("barcode", "is empty"), "InvalidInput"),
            (
                E::NotFound {
                    barcode: "B".into(),
                },
                "NotFound",
            ),
            (
                E::Cancelled {
                    barcode: "B".into(),
                },
                "Cancelled",
            ),
            (
                E::AlreadyDelivered {
                    barcode: "B".into(),
                },
                "AlreadyDelivered",
            ),
            (
                E::AlreadySigned {
                    barcode: "B".into(),
                },
                "AlreadySigned",
            ),
            (E::InFlight { id: "c1".into() }, "InFlight"),
            (
                E::CaptureIdConflict {
                    id: "c1".into(),
                    differs: "the image bytes",
                },
                "CaptureIdConflict",
            ),
            (E::Upn(UpnError::Unauthorized), "Unauthorized"),
            (E::Upn(UpnError::TrackingActionDisabled), "NotEnabled"),
            (E::Upn(UpnError::Timeout), "Offline"),
            (
                E::Upn(UpnError::Server {
                    status: 503,
                    message: "busy".into(),
                    retry_after: None,
                }),
                "Offline",
            ),
            (E::Upn(UpnError::TooLarge), "UpnRefused"),
            (E::Busy, "Busy"),
            (
                E::Storage {
                    reason: "disk".into(),
                    disk_full: true,
                },
                "Storage",
            ),
            (
                E::Io {
                    action: "writing",
                    source: std::io::Error::from_raw_os_error(28),
                },
                "Storage",
            ),
            (
                E::StoreTooNew {
                    found: 9,
                    supported: 3,
                },
                "Storage",
            ),
            (
                E::StoreUnreadable {
                    path: "db".into(),
                    reason: "file is not a database".into(),
                },
                "Storage",
            ),
            (
                E::AlreadyOpen {
                    data_dir: "/data".into(),
                },
                "AlreadyOpen",
            ),
            (
                E::NeedsRecovery {
                    data_dir: "/data".into(),
                    files: 2,
                },
                "NeedsRecovery",
            ),
            (
                E::DataFolderBound {
                    data_dir: "/data".into(),
                    depot: "D1".into(),
                    endpoint: "https://upn.example".into(),
                },
                "DataFolderBound",
            ),
            (E::UnsentCaptures { count: 2 }, "UnsentCaptures"),
            (
                E::OriginalsPurged {
                    id: "c1".into(),
                    purged_at: chrono::Utc::now(),
                },
                "OriginalsPurged",
            ),
        ];
        for (core, expected) in cases {
            let ffi = CoreError::from(core);
            let name = format!("{ffi:?}");
            assert!(name.starts_with(expected), "{name} is not {expected}");
        }
        match CoreError::from(E::invalid("signed_by", "is empty")) {
            CoreError::InvalidInput { field, reason } => {
                assert_eq!(field, "signed_by");
                assert_eq!(reason, "is empty");
            }
            other => panic!("{other:?}"),
        }
        for (upn, code) in [
            (UpnError::AlreadyDelivered, "already_delivered"),
            (UpnError::TooLarge, "too_large"),
            (
                UpnError::Invalid {
                    status: 400,
                    message: "bad".into(),
                },
                "invalid",
            ),
        ] {
            match CoreError::from(E::Upn(upn)) {
                CoreError::UpnRefused { code: got, .. } => assert_eq!(got, code),
                other => panic!("{other:?}"),
            }
        }
        let limited = CoreError::from(E::Upn(UpnError::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(30)),
        }));
        assert!(
            matches!(&limited, CoreError::Offline { code, retry_after_ms: Some(30_000), .. } if code == "rate_limited"),
            "{limited:?}"
        );
        let busy = CoreError::from(E::Upn(UpnError::Server {
            status: 503,
            message: "busy".into(),
            retry_after: None,
        }));
        assert!(
            matches!(&busy, CoreError::Offline { code, retry_after_ms: None, .. } if code == "server"),
            "{busy:?}"
        );
        assert!(matches!(
            CoreError::from(E::Upn(UpnError::ImageActionDisabled)),
            CoreError::NotEnabled {
                feature: UpnFeature::ImageAction,
                ..
            }
        ));
        let full = CoreError::from(E::Io {
            action: "writing",
            source: std::io::Error::from_raw_os_error(28),
        });
        assert!(matches!(
            full,
            CoreError::Storage {
                disk_full: true,
                ..
            }
        ));
    }
}
