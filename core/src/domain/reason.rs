//! Why an outbox item is not (yet) sent, as a stable code the app switches on. The English text
//! stored beside it is for people and may change; the code may not.
//!
//! The codes of UPN's refusals are those of `upn::UpnError::code`, so a failure's code is
//! decided where the refusal is classified; local failures (a rendition that could not be
//! made, a receipt that does not match, a full disk) have codes of their own.

use serde::Serialize;

/// Which part of the UPN integration a depot's account has not enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    Integration,
    TrackingAction,
    ImageAction,
}

/// Why an item waits or needs attention. Serialized as its [`OutboxReason::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxReason {
    /// 409: UPN already holds a POD for the consignment from another capture.
    AlreadyDelivered,
    /// 409: an image before its POD reached UPN.
    PodRequired,
    /// 413.
    TooLarge,
    /// 400/422: UPN found the request invalid.
    Invalid,
    /// 404: UPN does not know the consignment.
    UnknownBarcode,
    /// 403: the depot's integration, or one of its actions, is not enabled.
    FeatureDisabled(Feature),
    /// 401: the depot's API key was refused.
    Unauthorized,
    /// 403 for another reason.
    Forbidden,
    /// A 3xx, never followed.
    Redirected,
    /// UPN could not be reached, or did not answer in time.
    Offline,
    /// UPN failed (5xx) or sent an answer that could not be read.
    ServerError,
    /// 429.
    RateLimited,
    /// The upload rendition could not be made from the stored file.
    RenditionFailed,
    /// UPN's receipt does not match what was sent.
    ReceiptMismatch,
    /// The device is out of space.
    DiskFull,
    /// Not an error: the data saver holds the photo until the network is unmetered (Wi-Fi).
    /// Never stored; the core sets it on a queued photo it holds now.
    HeldUntilUnmetered,
    /// Not an error: today's metered photo budget is spent; the photo goes on Wi-Fi or on the
    /// next UTC day. Never stored.
    HeldByBudget,
    /// Anything else (and old rows whose text says nothing more).
    Other,
}

impl OutboxReason {
    /// The stable code, as stored (`captures.last_error_code`) and shown in `--json`.
    pub fn code(self) -> &'static str {
        match self {
            OutboxReason::AlreadyDelivered => "already_delivered",
            OutboxReason::PodRequired => "pod_required",
            OutboxReason::TooLarge => "too_large",
            OutboxReason::Invalid => "invalid",
            OutboxReason::UnknownBarcode => "unknown_barcode",
            OutboxReason::FeatureDisabled(Feature::Integration) => "integration_disabled",
            OutboxReason::FeatureDisabled(Feature::TrackingAction) => "tracking_action_disabled",
            OutboxReason::FeatureDisabled(Feature::ImageAction) => "image_action_disabled",
            OutboxReason::Unauthorized => "unauthorized",
            OutboxReason::Forbidden => "forbidden",
            OutboxReason::Redirected => "redirected",
            OutboxReason::Offline => "offline",
            OutboxReason::ServerError => "server_error",
            OutboxReason::RateLimited => "rate_limited",
            OutboxReason::RenditionFailed => "rendition_failed",
            OutboxReason::ReceiptMismatch => "receipt_mismatch",
            OutboxReason::DiskFull => "disk_full",
            OutboxReason::HeldUntilUnmetered => "held_until_unmetered",
            OutboxReason::HeldByBudget => "held_by_budget",
            OutboxReason::Other => "other",
        }
    }

    /// Reads a stored code, or one of `UpnError::code`'s (`unreachable`, `timeout`, `server`,
    /// `bad_response` fold into the reasons the app acts on). `None` for anything else.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "unreachable" | "timeout" => OutboxReason::Offline,
            "server" | "bad_response" => OutboxReason::ServerError,
            other => return Self::ALL.into_iter().find(|r| r.code() == other),
        })
    }

    /// The reason of a row stored before codes were (its text as the code of its day wrote
    /// it): the HTTP status or phrase that text always carried.
    pub fn from_legacy_text(text: &str) -> Self {
        const BY_TEXT: [(&str, OutboxReason); 9] = [
            ("already holds a POD", OutboxReason::AlreadyDelivered),
            ("has no POD yet", OutboxReason::PodRequired),
            ("(413)", OutboxReason::TooLarge),
            (
                "could not be prepared for upload",
                OutboxReason::RenditionFailed,
            ),
            ("receipt", OutboxReason::ReceiptMismatch),
            ("(429)", OutboxReason::RateLimited),
            ("unreachable", OutboxReason::Offline),
            ("UPN failed (", OutboxReason::ServerError),
            ("as invalid", OutboxReason::Invalid),
        ];
        BY_TEXT
            .into_iter()
            .find(|(phrase, _)| text.contains(phrase))
            .map_or(OutboxReason::Other, |(_, reason)| reason)
    }

    /// Whether this is a data-saver hold rather than a failure.
    pub fn is_data_saver(self) -> bool {
        matches!(
            self,
            OutboxReason::HeldUntilUnmetered | OutboxReason::HeldByBudget
        )
    }

    const ALL: [OutboxReason; 20] = [
        OutboxReason::AlreadyDelivered,
        OutboxReason::PodRequired,
        OutboxReason::TooLarge,
        OutboxReason::Invalid,
        OutboxReason::UnknownBarcode,
        OutboxReason::FeatureDisabled(Feature::Integration),
        OutboxReason::FeatureDisabled(Feature::TrackingAction),
        OutboxReason::FeatureDisabled(Feature::ImageAction),
        OutboxReason::Unauthorized,
        OutboxReason::Forbidden,
        OutboxReason::Redirected,
        OutboxReason::Offline,
        OutboxReason::ServerError,
        OutboxReason::RateLimited,
        OutboxReason::RenditionFailed,
        OutboxReason::ReceiptMismatch,
        OutboxReason::DiskFull,
        OutboxReason::HeldUntilUnmetered,
        OutboxReason::HeldByBudget,
        OutboxReason::Other,
    ];
}

impl Serialize for OutboxReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// A failure as stored on its item: the code and the text for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub reason: OutboxReason,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_its_reason() {
        for reason in OutboxReason::ALL {
            assert_eq!(OutboxReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(
            OutboxReason::from_code("timeout"),
            Some(OutboxReason::Offline)
        );
        assert_eq!(
            OutboxReason::from_code("bad_response"),
            Some(OutboxReason::ServerError)
        );
        assert_eq!(OutboxReason::from_code("no such code"), None);
    }

    #[test]
    fn old_rows_get_their_reason_from_the_text_of_their_day() {
        for (text, reason) in [
            (
                "UPN already holds a POD for this consignment from another capture (409)",
                OutboxReason::AlreadyDelivered,
            ),
            (
                "UPN refused the request as too large (413)",
                OutboxReason::TooLarge,
            ),
            (
                "UPN rejected the request as invalid (400): bad barcode",
                OutboxReason::Invalid,
            ),
            (
                "the capture could not be prepared for upload: damaged",
                OutboxReason::RenditionFailed,
            ),
            (
                "UPN's receipt does not match the photo sent (1 bytes received, 2 sent)",
                OutboxReason::ReceiptMismatch,
            ),
            ("refused: payload too large", OutboxReason::Other),
        ] {
            assert_eq!(OutboxReason::from_legacy_text(text), reason, "{text}");
        }
    }
}
