//! The outbox as a state machine: what each captured POD or photo is waiting for, and what a
//! send result does to it. Pure: the store persists these decisions, the flush carries them out.
//!
//! ```text
//!  photo before the POD is sent ─► Waiting ──(POD sent, same transaction)──► Queued
//!  POD, or photo after POD sent ─► Queued ──► Sending ──ok──► Sent
//!                                    ▲           │
//!                                    └─retry─────┤ recoverable (offline, timeout, 5xx, 429)
//!                                                └─permanent──► NeedsAttention ──retry──► Queued/Waiting
//!                                                                              └─discard──► Discarded
//!  a POD never attempted, signed again ─► Replaced (kept, with what replaced it)
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::stop_list::SyncBadge;
use crate::upn::UpnError;

/// What was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureKind {
    /// The consignee's signature with printed name, time and place: the ePOD.
    Pod,
    /// Delivery photos.
    Goods,
    Location,
    LeaveSafe,
}

impl CaptureKind {
    pub fn code(self) -> &'static str {
        match self {
            CaptureKind::Pod => "pod",
            CaptureKind::Goods => "goods",
            CaptureKind::Location => "location",
            CaptureKind::LeaveSafe => "leave_safe",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "pod" => CaptureKind::Pod,
            "goods" => CaptureKind::Goods,
            "location" => CaptureKind::Location,
            "leave_safe" => CaptureKind::LeaveSafe,
            _ => return None,
        })
    }

    /// Parses a photo kind given by the app or the driver.
    pub fn photo(code: &str) -> Option<Self> {
        Self::from_code(code).filter(|k| k.is_photo())
    }

    pub fn is_photo(self) -> bool {
        self != CaptureKind::Pod
    }

    /// `pod` or `image`: what the outbox sends.
    pub fn outbox_kind(self) -> &'static str {
        if self.is_photo() {
            "image"
        } else {
            "pod"
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// A photo waiting for its consignment's POD to reach UPN.
    Waiting,
    /// Ready to send when due and online.
    Queued,
    /// A request is (or was, when the app died) in flight.
    Sending,
    Sent,
    /// UPN refused it for good; kept with the reason until retried or discarded.
    NeedsAttention,
    /// A POD replaced by a new signature before it was ever sent.
    Replaced,
    /// Given up on by an explicit discard.
    Discarded,
}

impl ItemState {
    pub fn code(self) -> &'static str {
        match self {
            ItemState::Waiting => "waiting",
            ItemState::Queued => "queued",
            ItemState::Sending => "sending",
            ItemState::Sent => "sent",
            ItemState::NeedsAttention => "needs_attention",
            ItemState::Replaced => "replaced",
            ItemState::Discarded => "discarded",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "waiting" => ItemState::Waiting,
            "queued" => ItemState::Queued,
            "sending" => ItemState::Sending,
            "sent" => ItemState::Sent,
            "needs_attention" => ItemState::NeedsAttention,
            "replaced" => ItemState::Replaced,
            "discarded" => ItemState::Discarded,
            _ => return None,
        })
    }

    /// Not replaced or discarded.
    pub fn is_live(self) -> bool {
        !matches!(self, ItemState::Replaced | ItemState::Discarded)
    }

    /// Still on its way to UPN.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            ItemState::Waiting | ItemState::Queued | ItemState::Sending | ItemState::NeedsAttention
        )
    }
}

/// One item of the outbox as the app lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxItem {
    /// The capture id, also the idempotency key UPN sees.
    pub id: String,
    pub barcode: String,
    pub kind: CaptureKind,
    pub state: ItemState,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub captured_at: DateTime<Utc>,
    /// Bytes to upload (the rendition once made, the original before).
    pub bytes: u64,
    pub sent_at: Option<DateTime<Utc>>,
    pub upn_reference: Option<String>,
}

/// The state a new photo starts in.
pub fn initial_photo_state(pod_sent: bool) -> ItemState {
    if pod_sent {
        ItemState::Queued
    } else {
        ItemState::Waiting
    }
}

/// What a second signature does to the consignment's existing POD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResignDecision {
    /// No live POD: just capture.
    Capture,
    /// The first POD never left the device: replace it (and record that).
    Replace,
    /// The first POD was (or may have been) sent: refuse.
    Refuse,
}

pub fn resign(existing: Option<(ItemState, u32)>) -> ResignDecision {
    match existing {
        None => ResignDecision::Capture,
        Some((ItemState::Replaced | ItemState::Discarded, _)) => ResignDecision::Capture,
        // Never attempted: UPN cannot have it.
        Some((ItemState::Queued | ItemState::NeedsAttention | ItemState::Waiting, 0)) => {
            ResignDecision::Replace
        }
        // Sent, in flight, or attempted (a lost response may mean UPN has it).
        Some(_) => ResignDecision::Refuse,
    }
}

/// What to do after a failed send.
#[derive(Debug, Clone, PartialEq)]
pub enum FailureDecision {
    /// Try again at `at`.
    Retry { at: DateTime<Utc> },
    /// The device is offline: retry at `at`, and stop this flush pass (everything would fail).
    Offline { at: DateTime<Utc> },
    /// Stop retrying; keep the data and the reason for a person.
    NeedsAttention { reason: String },
}

/// Backoff after the `attempts`-th failed attempt: 5 s doubling up to 15 min, scaled by
/// `jitter` in [0, 1) into [50 %, 100 %] so a fleet of phones does not retry in lockstep.
pub fn backoff(attempts: u32, jitter: f64) -> Duration {
    const BASE_MS: u64 = 5_000;
    const CAP_MS: u64 = 15 * 60 * 1_000;
    let exp = attempts.saturating_sub(1).min(20);
    let full = BASE_MS.saturating_mul(1 << exp).min(CAP_MS);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    Duration::from_millis((full as f64 * (0.5 + 0.5 * jitter)) as u64)
}

/// Classifies a send failure once. `attempts` counts this attempt.
pub fn on_failure(
    error: &UpnError,
    attempts: u32,
    now: DateTime<Utc>,
    jitter: f64,
) -> FailureDecision {
    if !error.is_recoverable() {
        return FailureDecision::NeedsAttention {
            reason: error.to_string(),
        };
    }
    let mut wait = backoff(attempts, jitter);
    if let Some(asked) = error.retry_after() {
        wait = wait.max(asked);
    }
    let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    if error.is_connectivity() {
        FailureDecision::Offline { at }
    } else {
        FailureDecision::Retry { at }
    }
}

/// A stop's sync badge from the states of its captures (replaced and discarded ones ignored).
pub fn badge(items: &[(CaptureKind, ItemState)]) -> SyncBadge {
    let live: Vec<_> = items.iter().filter(|(_, s)| s.is_live()).collect();
    if live.is_empty() {
        return SyncBadge::None;
    }
    let any = |state: ItemState| live.iter().any(|(_, s)| *s == state);
    let has_pod = live.iter().any(|(k, _)| *k == CaptureKind::Pod);
    if any(ItemState::NeedsAttention) {
        SyncBadge::NeedsAttention
    } else if any(ItemState::Sending) {
        SyncBadge::Sending
    } else if !has_pod {
        SyncBadge::WaitingForSignature
    } else if any(ItemState::Queued) || any(ItemState::Waiting) {
        SyncBadge::Queued
    } else {
        SyncBadge::Sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()
    }

    #[test]
    fn codes_round_trip() {
        for s in [
            ItemState::Waiting,
            ItemState::Queued,
            ItemState::Sending,
            ItemState::Sent,
            ItemState::NeedsAttention,
            ItemState::Replaced,
            ItemState::Discarded,
        ] {
            assert_eq!(ItemState::from_code(s.code()), Some(s));
        }
        for k in [
            CaptureKind::Pod,
            CaptureKind::Goods,
            CaptureKind::Location,
            CaptureKind::LeaveSafe,
        ] {
            assert_eq!(CaptureKind::from_code(k.code()), Some(k));
        }
        assert_eq!(CaptureKind::photo("pod"), None);
        assert_eq!(
            CaptureKind::photo("leave_safe"),
            Some(CaptureKind::LeaveSafe)
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(5));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(2_500));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(3, 1.0), Duration::from_secs(20));
        assert_eq!(backoff(100, 1.0), Duration::from_secs(900));
        assert_eq!(backoff(100, f64::NAN), Duration::from_secs(450));
        for a in 1..40 {
            assert!(backoff(a, 0.3) <= Duration::from_secs(900));
        }
    }

    #[test]
    fn failures_are_classified_once() {
        let server = UpnError::Server {
            status: 503,
            message: "x".into(),
            retry_after: None,
        };
        assert!(matches!(
            on_failure(&server, 1, now(), 1.0),
            FailureDecision::Retry { at } if at == now() + chrono::Duration::seconds(5)
        ));
        let limited = UpnError::RateLimited {
            retry_after: Some(Duration::from_secs(120)),
        };
        assert!(matches!(
            on_failure(&limited, 1, now(), 1.0),
            FailureDecision::Retry { at } if at == now() + chrono::Duration::seconds(120)
        ));
        assert!(matches!(
            on_failure(&UpnError::Timeout, 2, now(), 1.0),
            FailureDecision::Offline { .. }
        ));
        for permanent in [
            UpnError::AlreadyDelivered,
            UpnError::TooLarge,
            UpnError::Unauthorized,
            UpnError::Invalid {
                status: 400,
                message: "bad".into(),
            },
        ] {
            assert!(matches!(
                on_failure(&permanent, 1, now(), 0.5),
                FailureDecision::NeedsAttention { .. }
            ));
        }
    }

    #[test]
    fn a_signature_can_be_replaced_only_before_any_attempt() {
        assert_eq!(resign(None), ResignDecision::Capture);
        assert_eq!(
            resign(Some((ItemState::Queued, 0))),
            ResignDecision::Replace
        );
        assert_eq!(resign(Some((ItemState::Queued, 1))), ResignDecision::Refuse);
        assert_eq!(
            resign(Some((ItemState::Sending, 0))),
            ResignDecision::Refuse
        );
        assert_eq!(resign(Some((ItemState::Sent, 1))), ResignDecision::Refuse);
        assert_eq!(
            resign(Some((ItemState::Discarded, 3))),
            ResignDecision::Capture
        );
    }

    #[test]
    fn badges_follow_the_captures() {
        use CaptureKind::*;
        use ItemState::*;
        assert_eq!(badge(&[]), SyncBadge::None);
        assert_eq!(badge(&[(Goods, Waiting)]), SyncBadge::WaitingForSignature);
        assert_eq!(badge(&[(Goods, Waiting), (Pod, Queued)]), SyncBadge::Queued);
        assert_eq!(
            badge(&[(Goods, Waiting), (Pod, Sending)]),
            SyncBadge::Sending
        );
        assert_eq!(badge(&[(Goods, Sent), (Pod, Sent)]), SyncBadge::Sent);
        assert_eq!(
            badge(&[(Goods, Queued), (Pod, NeedsAttention)]),
            SyncBadge::NeedsAttention
        );
        assert_eq!(badge(&[(Pod, Replaced), (Pod, Sent)]), SyncBadge::Sent);
    }
}
