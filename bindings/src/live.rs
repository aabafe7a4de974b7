//! The live stop list and cancellable drains through the FFI: the stop phase, stop-list
//! versions with their per-stop changes, and `DrainCancellation`.

use upn_core::domain::{StopChange, StopChangeKind, StopPhase as CorePhase};
use upn_core::listener::StopListUpdate;
use upn_core::CancelToken;

use crate::records::StopRecord;

/// Where a stop is in the driver's day: the stop list's sections, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum StopPhase {
    /// Still to deliver.
    Open,
    /// Signed for on this device (queued, sending, sent, or refused by UPN: see `sync`), not
    /// yet confirmed delivered by UPN's tracking. Shown as done at once.
    DoneOnDevice,
    /// UPN says delivered.
    Done,
    /// UPN cancelled it: do not deliver.
    Cancelled,
}

impl From<CorePhase> for StopPhase {
    fn from(p: CorePhase) -> Self {
        match p {
            CorePhase::Open => StopPhase::Open,
            CorePhase::DoneOnDevice => StopPhase::DoneOnDevice,
            CorePhase::Done => StopPhase::Done,
            CorePhase::Cancelled => StopPhase::Cancelled,
        }
    }
}

/// How one stop differs from the list the listener was last given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum StopChangeKindRecord {
    Added,
    /// Status, badge, phase or position changed.
    Changed,
    Cancelled,
    /// No longer on the list.
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StopChangeRecord {
    pub barcode: String,
    pub kind: StopChangeKindRecord,
}

impl From<&StopChange> for StopChangeRecord {
    fn from(c: &StopChange) -> Self {
        Self {
            barcode: c.barcode.clone(),
            kind: match c.kind {
                StopChangeKind::Added => StopChangeKindRecord::Added,
                StopChangeKind::Changed => StopChangeKindRecord::Changed,
                StopChangeKind::Cancelled => StopChangeKindRecord::Cancelled,
                StopChangeKind::Removed => StopChangeKindRecord::Removed,
            },
        }
    }
}

/// A version of the whole ordered stop list: after it the UI is consistent. The first one a
/// listener hears (before `subscribe` returns) is the snapshot, every change `Added`; later ones
/// have a greater `seq` (versions may be skipped while the listener is slow: the list and the
/// changes are always against what this listener last got).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct StopListUpdateRecord {
    pub seq: u64,
    pub stops: Vec<StopRecord>,
    pub changes: Vec<StopChangeRecord>,
}

impl From<&StopListUpdate> for StopListUpdateRecord {
    fn from(u: &StopListUpdate) -> Self {
        Self {
            seq: u.seq,
            stops: u.stops.iter().map(Into::into).collect(),
            changes: u.changes.iter().map(Into::into).collect(),
        }
    }
}

/// Cancels a running (or future) `drain`: WorkManager's `onStopped`, a BGTask's expiration
/// handler. The drain stops within moments, releasing the outbox for the next one; whatever it
/// left unfinished goes next time. Idempotent; one per drain.
#[derive(Debug, Default, uniffi::Object)]
pub struct DrainCancellation {
    pub(crate) token: CancelToken,
}

#[uniffi::export]
impl DrainCancellation {
    #[uniffi::constructor]
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self::default())
    }

    pub fn cancel(&self) {
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}
